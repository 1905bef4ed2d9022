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
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"runtime"
	"syscall"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/metrics"
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
  status [-json] show the daemon's state
  check NAME     exit 0 if check NAME is healthy, 1 if failed, 2 if unknown
  config check [-cloud] [-keepalived FILE]
                 validate the configuration
  version        print version, revision and Go version

Every command takes -config FILE (default ` + config.DefaultPath + `).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFail    = 1
	exitUsage   = 2
	exitUnknown = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "notify":
		return cmdNotify(rest, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
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

func cmdRun(args []string, stderr io.Writer) int {
	fs, cfgPath, ok := flags("run", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr(stderr, "run takes no arguments")
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "%v\nhavip-agent: not starting: the configuration has errors\n", err)
		return exitUsage
	}
	log := newLogger(cfg.Agent, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m := metrics.New(metrics.BuildInfo{Version: version, Revision: revision})
	client, background, err := cloudClient(ctx, cfg, log, m.CloudRequest)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	opts := agent.Options{Config: cfg, Logger: log, Version: version, Observer: m,
		Notify: func(state string) { sdnotify.SdNotify(false, state) },
		Ready:  func() { sdnotify.SdNotify(false, sdnotify.SdNotifyReady) }}
	if wd, err := sdnotify.SdWatchdogEnabled(false); err == nil && wd > 0 {
		opts.WatchdogInterval = wd
	}
	if client != nil {
		opts.Cloud = client
		go background(ctx)
		log.Info("cloud claims enabled", "provider", "bce", "region", cfg.Cloud.Region, "instance_id", client.NodeID(), "dry_run", cfg.Cloud.DryRun)
	}
	d, err := agent.New(opts)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	if cfg.Metrics.Listen != "" {
		// Listening before Run: READY=1 must mean the endpoint answers.
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			log.Error("cannot start", "err", fmt.Errorf("metrics.listen: %w", err))
			return exitFail
		}
		srv := &http.Server{Handler: m.Handler(d.Ready), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("metrics listening", "address", ln.Addr().String())
	}

	if err := d.Run(ctx); err != nil {
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
	return cfg, nil
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

// socketPath finds the control socket through the configuration; a
// configuration that cannot be read falls back to the default socket, so
// the client commands work even when only the daemon may read the file.
func socketPath(cfgPath string, stderr io.Writer) (string, bool) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return config.DefaultSocket, true
		}
		fmt.Fprintf(stderr, "%v\n", err)
		return "", false
	}
	return cfg.Agent.Socket, true
}

func cmdNotify(args []string, stderr io.Writer) int {
	fs, cfgPath, ok := flags("notify", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	if n := fs.NArg(); n < 3 || n > 4 {
		return usageErr(stderr, "notify wants TYPE NAME STATE [PRIORITY], as keepalived passes them")
	}
	sock, ok := socketPath(cfgPath, stderr)
	if !ok {
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := control.Do(ctx, sock, control.Request{Op: control.OpNotify, Args: fs.Args()}); err != nil {
		fmt.Fprintf(stderr, "havip-agent notify: %v\n", err)
		return exitFail
	}
	return exitOK
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
		exp.Instances = append(exp.Instances, keepalived.ConfInstance{Kind: keepalived.KindName(in.Kind), Name: in.Name, VIPs: in.VIPs})
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
