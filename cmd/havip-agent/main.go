// Command havip-agent makes keepalived failover real inside a Baidu AI Cloud
// VPC. See "havip-agent help".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/metrics"
	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/cloud/bce"
	"github.com/havip-agent/havip-agent/health"
)

// Set by the Makefile through -ldflags.
var (
	version  = "dev"
	revision = "unknown"
)

const usage = `usage: havip-agent COMMAND [flags]

commands:
  run            run the daemon
  notify TYPE NAME STATE [PRIORITY]
                 pass a keepalived notify event to the daemon
  reload         make the daemon read its configuration again (ExecReload)
  status [-json] show the daemon's state
  history [-json] [-n N] [-since DURATION] [INSTANCE]
                 print the failover history from the journal in state_dir
                 (works while the daemon is down)
  drain [--timeout D] [--force] [INSTANCE...]
                 planned switchover: step down through keepalived (the
                 instance's drain_file) and wait until another node is
                 MASTER and the cloud points at it; undone after --timeout
                 (default 30s) unless --force; no INSTANCE: every instance
  resume [INSTANCE...]
                 lift a drain at once (keepalived decides when this node is
                 MASTER again); no INSTANCE: every instance
  check NAME     exit 0 if check NAME is healthy, 1 if failed, 2 if unknown
  config check [-cloud] [-keepalived FILE]
                 validate the configuration
  version        print version, revision and Go version

Every command takes -config FILE (default ` + config.DefaultPath + `).
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFail    = 1
	exitUsage   = 2
	exitUnknown = 2
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "reload":
		return cmdReload(rest, stderr)
	case "notify":
		return cmdNotify(rest, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "history":
		return cmdHistory(rest, stdout, stderr, time.Now())
	case "drain":
		return cmdDrain(ctx, rest, stdout, stderr)
	case "resume":
		return cmdResume(rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "config":
		if len(rest) == 0 || rest[0] != "check" {
			return usageErr(stderr, "config: want \"config check\"")
		}
		return cmdConfigCheck(rest[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "havip-agent %s (revision %s, %s %s/%s)\n", version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	return usageErr(stderr, fmt.Sprintf("unknown command %q", cmd))
}

func usageErr(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "havip-agent: %s (see \"havip-agent help\")\n", msg)
	return exitUsage
}

// flags parses a subcommand's flags; ok is false after a usage error
// (already reported).
func flags(name string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (fs *flag.FlagSet, cfgPath string, ok bool) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfgPath, "config", config.DefaultPath, "configuration file")
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		usageErr(stderr, name+": "+err.Error())
		return fs, "", false
	}
	return fs, cfgPath, true
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs, cfgPath, ok := flags("run", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr(stderr, "run takes no arguments")
	}
	// From the start: SIGHUP's default would end the daemon, and systemd
	// counts that as a clean exit and does not restart it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "%v\nhavip-agent: not starting: the configuration has errors\n", err)
		return exitUsage
	}
	log := newLogger(cfg.Agent, stderr)
	for _, w := range cfg.Warnings() {
		log.Warn("configuration warning", "warning", w)
	}
	// A write to a log pipe whose reader went away must fail, not kill
	// the daemon (Go's default for SIGPIPE on stdout and stderr).
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m := metrics.New(metrics.BuildInfo{Version: version, Revision: revision})
	opts := agent.Options{Config: cfg, Logger: log, Version: version, Observer: m, LoadConfig: loadConfig,
		// Outside systemd SdNotify does nothing; a lost message shows
		// there as a start or watchdog timeout.
		Notify: func(state string) { _, _ = sdnotify.SdNotify(false, state) },
		Ready:  func() { _, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyReady) }}
	if wd, err := sdnotify.SdWatchdogEnabled(false); err == nil && wd > 0 {
		opts.WatchdogInterval = wd
	}
	if cfg.Cloud.Enabled() {
		var creds credentialState
		opts.CloudCredentials = creds.status
		m.CredentialsFrom(creds.metrics)
		// Built in the background: a metadata service or credentials
		// that are not there yet must not keep the local path down.
		opts.CloudSetup = func(ctx context.Context) (cloud.Provider, func(context.Context), error) {
			client, background, err := cloudClient(ctx, cfg, log, m.CloudRequest, &creds)
			if err != nil {
				return nil, nil, err
			}
			log.Info("cloud claims enabled", "provider", "bce", "region", cfg.Cloud.Region, "instance_id", client.NodeID(), "dry_run", cfg.Cloud.DryRun)
			return client, background, nil
		}
	}
	d, err := agent.New(opts)
	if errors.Is(err, agent.ErrAlreadyRunning) {
		fmt.Fprintf(stderr, "havip-agent: not starting: %v\n", err)
		return exitUsage
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	m.HistoryFrom(func() (metrics.History, bool) {
		st := d.JournalStats()
		return metrics.History{Written: st.Written, Dropped: st.Dropped, Failed: st.Failed}, true
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	if cfg.Metrics.Listen != "" {
		// Listening before Run: READY=1 must mean the endpoint answers.
		srv, err := metrics.Listen(cfg.Metrics.Listen, m.Handler(d.Ready), log, metrics.ServerOptions{Rejected: m.ConnectionRejected})
		if err != nil {
			log.Error("cannot start", "err", fmt.Errorf("metrics.listen: %w", err))
			return exitFail
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(serveCtx); err != nil {
				log.Error("metrics endpoint stopped", "err", err)
			}
		}()
		log.Info("metrics listening", "address", srv.Addr().String())
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-serveCtx.Done():
				return
			case <-hup:
				if err := d.Reload(); err == nil {
					log.Info("reloaded on SIGHUP")
				}
			}
		}
	}()

	err = d.Run(ctx)
	stopServing()
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	return exitOK
}

// loadConfig reads the configuration and checks what it names on disk
// (exec check commands), as both run and config check must.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.ValidateCommands(health.ValidateCommand); err != nil {
		return nil, err
	}
	if err := cfg.ReadHookFiles(config.SecretFileReader(secretOwners()...)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// secretOwners are the users a file of secrets (a hook's headers) may
// belong to, as for the credentials file: the agent's user, and root, who
// may also read the service user's file ("config check" as root).
func secretOwners() []int {
	owners := []int{os.Geteuid()}
	if owners[0] != 0 {
		return append(owners, 0)
	}
	if u, err := user.Lookup(bce.ServiceUser); err == nil {
		if id, err := strconv.Atoi(u.Uid); err == nil {
			owners = append(owners, id)
		}
	}
	return owners
}

func newLogger(a config.Agent, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(a.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if a.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// socketPath finds the control socket: the client commands read only
// agent.socket, so that a mistake elsewhere in a file saved while the
// daemon runs does not break every vrrp_script and notify. A file only the
// daemon may read falls back to the default socket.
func socketPath(cfgPath string, stderr io.Writer) (string, bool) {
	sock, err := config.SocketPath(cfgPath)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return config.DefaultSocket, true
		}
		fmt.Fprintf(stderr, "%v\n", err)
		return "", false
	}
	return sock, true
}

// cmdReload asks the daemon to read its configuration again and waits for
// the outcome, so that "systemctl reload" fails when the file is refused.
func cmdReload(args []string, stderr io.Writer) int {
	fs, cfgPath, ok := flags("reload", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr(stderr, "reload takes no arguments")
	}
	return send("reload", cfgPath, control.Request{Op: control.OpReload}, 30*time.Second, stderr)
}

// send delivers a request that answers only success or an error.
func send(name, cfgPath string, req control.Request, timeout time.Duration, stderr io.Writer) int {
	sock, ok := socketPath(cfgPath, stderr)
	if !ok {
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := control.Do(ctx, sock, req); err != nil {
		fmt.Fprintf(stderr, "havip-agent %s: %v\n", name, err)
		return exitFail
	}
	return exitOK
}

func cmdNotify(args []string, stderr io.Writer) int {
	fs, cfgPath, ok := flags("notify", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	if n := fs.NArg(); n < 3 || n > 4 {
		return usageErr(stderr, "notify wants TYPE NAME STATE [PRIORITY], as keepalived passes them")
	}
	return send("notify", cfgPath, control.Request{Op: control.OpNotify, Args: fs.Args()}, 2*time.Second, stderr)
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	fs, cfgPath, ok := flags("status", args, stderr, func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") })
	if !ok {
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr(stderr, "status takes no arguments")
	}
	sock, ok := socketPath(cfgPath, stderr)
	if !ok {
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := control.Do(ctx, sock, control.Request{Op: control.OpStatus})
	if err != nil {
		fmt.Fprintf(stderr, "havip-agent status: %v\n", err)
		return exitFail
	}
	if asJSON {
		stdout.Write(resp.Status)
		fmt.Fprintln(stdout)
		return exitOK
	}
	var s agent.Status
	if err := json.Unmarshal(resp.Status, &s); err != nil {
		fmt.Fprintf(stderr, "havip-agent status: bad answer: %v\n", err)
		return exitFail
	}
	s.WriteText(stdout, time.Now())
	return exitOK
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath, ok := flags("check", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	if fs.NArg() != 1 {
		return usageErr(stderr, "check wants one check name")
	}
	sock, ok := socketPath(cfgPath, stderr)
	if !ok {
		return exitUnknown
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := control.Do(ctx, sock, control.Request{Op: control.OpCheck, Name: fs.Arg(0)})
	if err != nil {
		fmt.Fprintf(stderr, "havip-agent check: %v\n", err)
		return exitUnknown
	}
	fmt.Fprintln(stdout, resp.Verdict)
	switch resp.Verdict {
	case "healthy":
		return exitOK
	case "failed":
		return exitFail
	}
	return exitUnknown
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) int {
	var cloud bool
	var kaConf string
	fs, cfgPath, ok := flags("config check", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&cloud, "cloud", false, "also check the cloud resources with read-only API calls")
		fs.StringVar(&kaConf, "keepalived", "", "also check this keepalived.conf against the configuration")
	})
	if !ok {
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr(stderr, "config check takes no arguments")
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	fmt.Fprint(stdout, cfg.Summary())
	if kaConf != "" && !checkKeepalivedConf(kaConf, cfg, stdout, stderr) {
		return exitFail
	}
	if !cloud {
		return exitOK
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	report, ok, err := preflight(ctx, cfg, newLogger(cfg.Agent, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "havip-agent config check -cloud: %v\n", err)
		return exitFail
	}
	fmt.Fprint(stdout, report)
	if !ok {
		return exitFail
	}
	return exitOK
}

// checkKeepalivedConf reports what in keepalived.conf would keep the
// agent from hearing keepalived; false when there is an error.
func checkKeepalivedConf(path string, cfg *config.Config, stdout, stderr io.Writer) bool {
	kc, err := keepalived.ReadConf(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return false
	}
	exp := keepalived.ConfExpect{FIFO: cfg.Keepalived.FIFO}
	if _, err := user.Lookup("keepalived_script"); err == nil {
		exp.ScriptUserExists = true
	}
	for _, in := range cfg.Instances {
		exp.Instances = append(exp.Instances, keepalived.ConfInstance{Kind: keepalived.KindName(in.Kind), Name: in.Name, VIPs: in.VIPs, Shared: in.SharedVIPs, DrainFile: in.DrainFile})
	}
	ok := true
	for _, f := range keepalived.LintConf(kc, exp) {
		if f.File == "" {
			f.File = path
		}
		fmt.Fprintln(stderr, f)
		ok = ok && !f.Error
	}
	if ok {
		fmt.Fprintf(stdout, "%s: OK for this configuration\n", path)
	}
	return ok
}
