package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/agent/hooks"
	"github.com/havip-agent/havip-agent/agent/journal"
	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/netif"
	"github.com/havip-agent/havip-agent/agent/vocab"
	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/health"
)

// Options are the daemon's dependencies.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Network overrides the real netlink and raw-socket implementation
	// (tests).
	Network Network
	// Version is reported by status.
	Version string
	// Cloud claims the cloud resources; nil (with CloudSetup nil) runs
	// local only.
	Cloud cloud.Provider
	// CloudSetup, when Cloud is nil, builds the provider. Run calls it in
	// the background, with backoff, until it succeeds: a metadata service
	// or credentials that are not there yet must not keep the local half
	// (addresses, announcements) from running. The returned function, if
	// not nil, runs background work of the provider (credential refresh)
	// until its context ends.
	CloudSetup func(ctx context.Context) (cloud.Provider, func(context.Context), error)
	// CloudCredentials, when set, reports the state of the cloud credentials for status; a
	// nil answer (no cloud side yet) shows nothing.
	CloudCredentials func() *CredentialsStatus
	// Observer receives metrics; nil means none.
	Observer Observer
	// Ready is called once everything runs and every instance has been
	// reconciled once (systemd's READY=1).
	Ready func()
	// Notify, when set, receives systemd notification lines: STATUS= on
	// every transition, WATCHDOG=1 while every actor loop turns.
	Notify func(state string)
	// WatchdogInterval is systemd's watchdog timeout; 0 disables pings.
	WatchdogInterval time.Duration
	// BootID names this boot; "" reads /proc/sys/kernel/random/boot_id.
	BootID string
	// Proc is the proc file system's root for the keepalived watch; ""
	// means /proc (tests).
	Proc string
	// LoadConfig reads and validates the configuration file for Reload.
	LoadConfig func(path string) (*config.Config, error)
	// HookOptions, when set, adjusts the options of the hook runner
	// (tests: a client for http hooks, the check of exec hooks).
	HookOptions func(*hooks.Options)
}

// hookStopTimeout is how long shutdown lets queued and running hooks
// finish before it ends them: well within the unit's TimeoutStopSec.
const hookStopTimeout = 5 * time.Second

// Daemon is the agent: its instances and the inputs that feed them.
type Daemon struct {
	log     *slog.Logger
	net     Network
	obs     Observer
	version string
	ready   func()
	notify  func(string)
	wdog    time.Duration
	isReady atomic.Bool
	started time.Time
	store   *store

	// cfg is the running configuration; a reload replaces it under
	// reloadMu. The parts a reload may not change (see reloadable) are
	// read without the lock.
	cfg      *config.Config
	reloadMu sync.Mutex
	// fixed is the configuration the daemon started with, for the
	// settings no reload changes (notReloadable): read without a lock.
	fixed   *config.Config
	reloads reloadStatus
	// stopping: Run is shutting down; reloads change nothing.
	stopping bool
	// tab is the instance table; a reload swaps it whole.
	tab atomic.Pointer[table]

	checksMu  sync.Mutex
	checks    *health.Runner
	stopCheck func()
	ignored   map[keepalived.Reason]*counter
	linesRead atomic.Uint64

	kaMu     sync.Mutex
	kaState  string // "", "alive", "dead"
	kaDetail string
	// watcher is keepalived's liveness watch; nil when pid_file is "".
	watcher *keepalived.Watcher
	bootID  string

	// provider is what the cloud sides call; cloudSetup builds it in the
	// background when it was not given ready.
	provider   *lateProvider
	cloudSetup func(ctx context.Context) (cloud.Provider, func(context.Context), error)
	loadConfig func(path string) (*config.Config, error)

	// credentials reports the cloud credentials' state; nil without.
	credentials func() *CredentialsStatus

	runCtx context.Context
	wg     sync.WaitGroup
	// retired are cloud sides a reload stopped; shutdown waits for them.
	retired []*cloudSide
	cleanup []func()

	// events takes transitions, cloud calls, claims, drains and hook runs
	// for the failover history (journal, opened in state_dir) and the
	// hooks.
	events      *events
	journal     *journal.Journal
	hookOptions func(*hooks.Options)
	hostname    string

	// drains are the drained instances by key, drainErrs the drain files
	// that could not be written; drainSeq numbers the drains.
	drainMu   sync.Mutex
	drains    map[string]*drainMark
	drainErrs map[string]string
	drainSeq  uint64
}

// table is the set of instances and the indexes the intake routes by.
// It is never changed once published: a reload builds a new one.
type table struct {
	instances []*instance
	byKey     map[string]*instance // kind/name
	// byVIP finds the instances of an address on an interface.
	byVIP map[string]map[netip.Addr][]*instance
}

func newTable(ins []*instance) *table {
	t := &table{instances: ins, byKey: map[string]*instance{}, byVIP: map[string]map[netip.Addr][]*instance{}}
	for _, in := range ins {
		t.byKey[key(in.cfg.Kind, in.cfg.Name)] = in
		m := t.byVIP[in.cfg.Interface]
		if m == nil {
			m = map[netip.Addr][]*instance{}
			t.byVIP[in.cfg.Interface] = m
		}
		for _, v := range in.cfg.VIPs {
			m[v.Addr()] = append(m[v.Addr()], in)
		}
	}
	return t
}

// onInterface lists the instances whose VIPs go on ifname.
func (t *table) onInterface(ifname string) []*instance {
	var out []*instance
	for _, in := range t.instances {
		if in.cfg.Interface == ifname {
			out = append(out, in)
		}
	}
	return out
}

func (d *Daemon) table() *table { return d.tab.Load() }

type counter struct {
	n      atomic.Uint64
	logged atomic.Bool
}

// New prepares a daemon: it opens netlink and the state directory and
// restores the persisted state, but starts nothing.
func New(opts Options) (*Daemon, error) {
	cfg := opts.Config
	d := &Daemon{
		cfg:        cfg,
		fixed:      cfg,
		log:        opts.Logger,
		net:        opts.Network,
		version:    opts.Version,
		ready:      opts.Ready,
		notify:     opts.Notify,
		wdog:       opts.WatchdogInterval,
		obs:        opts.Observer,
		started:    time.Now(),
		ignored:    map[keepalived.Reason]*counter{},
		bootID:     opts.BootID,
		cloudSetup: opts.CloudSetup,
		loadConfig: opts.LoadConfig,

		hookOptions: opts.HookOptions,
		drains:      map[string]*drainMark{},
		drainErrs:   map[string]string{},
	}
	d.hostname, _ = os.Hostname()
	d.credentials = opts.CloudCredentials
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	// Before anything is opened: a second daemon must not drain the
	// FIFO of the first.
	unlock, err := lockStateDir(cfg.Agent.StateDir)
	if err != nil {
		return nil, err
	}
	d.cleanup = append(d.cleanup, unlock)
	// The history is opened under the lock, as the state records are: a
	// second daemon must not append to it.
	j, err := journal.Open(cfg.Agent.StateDir, journal.Options{MaxBytes: cfg.Agent.HistoryMaxBytes, Keep: cfg.Agent.HistoryKeep, Logger: d.log})
	if err != nil {
		return nil, fmt.Errorf("state_dir: failover history: %w", err)
	}
	d.journal = j
	d.cleanup = append(d.cleanup, func() {
		if err := j.Close(); err != nil {
			d.log.Error("failover history: closing", "err", err)
		}
	})
	d.events = &events{log: d.log, journal: j, node: d.node}
	for _, r := range keepalived.Reasons {
		d.ignored[r] = &counter{}
	}
	if d.obs == nil {
		d.obs = nopObserver{}
	}
	d.events.hooks.Store(d.newHooks(cfg))
	if d.bootID == "" {
		d.bootID = readBootID(filepath.Dir(cfg.Agent.Socket))
	}
	switch {
	case opts.Cloud != nil:
		d.provider = newLateProvider()
		d.provider.set(opts.Cloud)
		d.watchResources(cfg)
		d.cloudSetup = nil
	case opts.CloudSetup != nil:
		d.provider = newLateProvider()
	}
	if d.net == nil {
		addrs, err := netif.NewAddrs()
		if err != nil {
			return nil, err
		}
		ann := netif.NewAnnouncer()
		d.net = netNetwork{addrs, ann}
		d.cleanup = append(d.cleanup, addrs.Close, ann.Close)
	}
	if cfg.Keepalived.PIDFile != "" {
		d.watcher = keepalived.NewWatcher(keepalived.WatchOptions{PIDFile: cfg.Keepalived.PIDFile, DeadAfter: cfg.Keepalived.DeadAfter.Duration, Proc: opts.Proc, Log: d.log})
	}
	checks, err := d.newChecks(cfg)
	if err != nil {
		return nil, err
	}
	d.checks = checks
	st, err := newStore(cfg.Agent.StateDir)
	if err != nil {
		return nil, err
	}
	d.store = st
	d.cleanup = append(d.cleanup, st.close)
	st.onSync = d.syncOutcome()
	ins := make([]*instance, 0, len(cfg.Instances))
	for _, ic := range cfg.Instances {
		in, err := d.newInstance(cfg, ic)
		if err != nil {
			return nil, err
		}
		ins = append(ins, in)
	}
	d.tab.Store(newTable(ins))
	d.loadDrains(ins)
	ok = true
	return d, nil
}

// node is this node's identity in hook payloads.
func (d *Daemon) node() hooks.Node {
	n := hooks.Node{Hostname: d.hostname}
	if d.provider != nil {
		n.InstanceID = d.provider.NodeID()
	}
	return n
}

// hookObserver reports hook runs to the daemon's observer.
type hookObserver struct{ obs Observer }

func (h hookObserver) HookRun(hook string, r hooks.Result, d time.Duration) {
	h.obs.HookRun(hook, string(r), d)
}
func (h hookObserver) HookDropped(hook string) { h.obs.HookDropped(hook) }

// newHooks builds the hook runner of cfg; nil when no hook is configured.
// It starts no goroutine until an event comes.
func (d *Daemon) newHooks(cfg *config.Config) *hooks.Runner {
	specs := cfg.HookSpecs()
	if len(specs) == 0 {
		return nil
	}
	results := make([]string, len(hooks.Results))
	for i, r := range hooks.Results {
		results[i] = string(r)
	}
	for _, h := range specs {
		d.obs.HookStarted(h.Name, results)
	}
	opts := hooks.Options{Logger: d.log, Observer: hookObserver{d.obs}, OnRun: d.events.hookRan}
	if d.hookOptions != nil {
		d.hookOptions(&opts)
	}
	return hooks.New(specs, opts)
}

// closeHooks lets r's queued and running hooks finish, within
// hookStopTimeout, then ends them.
func (d *Daemon) closeHooks(r *hooks.Runner) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), hookStopTimeout)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		d.log.Warn("hooks still running were ended", "err", err)
	}
}

// refuseWrites tells the control socket whose write requests to refuse:
// the health checks' and the hooks' processes.
func (d *Daemon) refuseWrites(pid int) bool {
	return d.isCheckProcess(pid) || d.events.hooks.Load().IsHookProcess(pid)
}

// JournalStats reports what the failover history wrote, dropped and
// failed to write, for metrics.
func (d *Daemon) JournalStats() journal.Stats { return d.journal.Stats() }

// actorConfig is what the actor of ic needs.
func actorConfig(ic config.Instance) instanceConfig {
	return instanceConfig{
		Name:         ic.Name,
		Kind:         ic.Kind,
		Interface:    ic.Interface,
		VIPs:         ic.VIPs,
		GARPCount:    ic.GARPCount,
		GARPInterval: ic.GARPInterval.Duration,
		GARPRefresh:  ic.GARPRefresh.Duration,
		GARPReply:    *ic.GARPReply,
		Checks:       ic.Checks,
		Recheck:      10 * time.Second,
		Shared:       ic.SharedVIPs,
		DrainFile:    ic.DrainFile,
	}
}

// cloudOptions are the cloud-side timings of cfg.
func (d *Daemon) cloudOptions(cfg *config.Config) cloudOptions {
	cl := cfg.Cloud
	co := cloudOptions{
		ReconcileInterval: cl.ReconcileInterval.Duration,
		ReclaimMaxBackoff: cl.ReclaimMaxBackoff.Duration,
		ConfirmTimeout:    cl.ConfirmTimeout.Duration,
	}
	if d.watcher != nil {
		co.MayReclaim = d.watcher.Check
	}
	return co
}

// newInstance builds the actor of ic with its state from disk, judged by
// restorable.
func (d *Daemon) newInstance(cfg *config.Config, ic config.Instance) (*instance, error) {
	in := d.buildInstance(cfg, ic)
	if err := d.store.open(ic.Kind, ic.Name); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	d.obs.SetState(ic.Name, StateUnknown)
	r, ok, err := d.store.load(ic.Kind, ic.Name)
	trusted, why := false, "no state on record"
	switch {
	case err != nil:
		why = "damaged state file: " + err.Error()
	case ok:
		var ka *keepalived.Identity
		if d.watcher != nil {
			if id, err := d.watcher.Identify(); err == nil {
				ka = &id
			}
		}
		trusted, why = restorable(r, d.bootID, ka, d.watcher != nil)
	}
	if trusted {
		in.restore(r)
		d.obs.SetState(ic.Name, r.State)
		d.log.Info("state restored", "vrrp_instance", ic.Name, "state", string(r.State), "generation", r.Generation)
		return in, nil
	}
	in.startAfter(generationFloor(time.Now(), r))
	if ok || err != nil {
		d.log.Warn("state on record is history, not authority; state unknown until keepalived speaks",
			"vrrp_instance", ic.Name, "recorded", string(r.State), "reason", why)
	}
	return in, nil
}

// buildInstance makes the actor of ic and its cloud side, with no state.
func (d *Daemon) buildInstance(cfg *config.Config, ic config.Instance) *instance {
	in := newInstance(actorConfig(ic), d.net, d.store, d.log, d.obs)
	in.onTransition = d.publishStatus
	in.events = d.events
	in.bootID = d.bootID
	if d.watcher != nil {
		in.kaIdentity = d.watcher.Current
		in.keepalivedAlive = d.keepalivedAlive
	}
	for _, ch := range ic.Checks {
		d.obs.CheckInstance(ic.Name, ch)
	}
	if res := ic.CloudResources(); len(res) > 0 && d.provider != nil {
		in.cloud = d.newCloudSide(cfg, in, res)
	}
	return in
}

// newCloudSide makes the cloud side of in. Its announcements go to
// whichever actor holds the instance when they are due (a reload may
// hand the cloud side on).
func (d *Daemon) newCloudSide(cfg *config.Config, in *instance, res []cloud.Resource) *cloudSide {
	name, k := in.cfg.Name, key(in.cfg.Kind, in.cfg.Name)
	c := newCloudSide(name, d.provider, res, d.cloudOptions(cfg), in.log, func() {
		if cur := d.table(); cur != nil {
			if x := cur.byKey[k]; x != nil {
				x.post(pending{input: input{kind: inRefresh}, received: time.Now(), source: "cloud-confirm"})
				return
			}
		}
		in.post(pending{input: input{kind: inRefresh}, received: time.Now(), source: "cloud-confirm"})
	}, d.obs)
	c.events = d.events
	return c
}

// close releases what New opened, newest first.
func (d *Daemon) close() {
	for i := len(d.cleanup) - 1; i >= 0; i-- {
		d.cleanup[i]()
	}
	d.cleanup = nil
}

// restorable decides whether a record from disk is authority. A state is
// only re-asserted when it was written in this boot and to the keepalived
// process that runs now: a rebooted old MASTER that starts before
// keepalived must not take the VIP and the cloud from the node that
// really is MASTER. ka is the keepalived process running now, nil if none
// is known. With the liveness watch off (watching false, pid_file "") the
// agent knows no keepalived process, and only the boot is checked.
func restorable(r record, bootID string, ka *keepalived.Identity, watching bool) (bool, string) {
	switch {
	case bootID == "" || r.BootID != bootID:
		return false, "written before this boot"
	case !watching:
		return true, ""
	case r.Keepalived == nil:
		return false, "written with no keepalived process known"
	case ka == nil:
		return false, "keepalived is not running"
	case !r.Keepalived.Same(*ka):
		return false, fmt.Sprintf("written to keepalived process %d, now %d", r.Keepalived.PID, ka.PID)
	}
	return true, ""
}

// syncOutcome logs the first failure of a streak of background syncs and
// the recovery after it.
func (d *Daemon) syncOutcome() func(path string, err error) {
	var failing atomic.Bool
	return func(path string, err error) {
		switch {
		case err != nil && !failing.Swap(true):
			d.log.Error("state record could not be made durable; retrying with the next change", "path", path, "err", err)
		case err == nil && failing.Swap(false):
			d.log.Info("state records are durable again", "path", path)
		}
	}
}

func key(kind vocab.Kind, name string) string { return string(kind) + "/" + name }

// isCheckProcess tells the control socket whether pid is one of the
// health checks' processes, whose write requests it refuses.
func (d *Daemon) isCheckProcess(pid int) bool { return d.runner().IsCheckProcess(pid) }

// Run runs the daemon until ctx is done, then applies on_stop. It returns
// an error only when it cannot start.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.close()
	fifo, err := keepalived.OpenFIFO(d.fixed.Keepalived.FIFO)
	if err != nil {
		return err
	}
	defer fifo.Close()
	// The backlog keepalived wrote while the agent was down goes into the
	// mailboxes before any actor runs, so each acts on its latest state
	// only.
	lines, err := fifo.Drain()
	if err != nil {
		return err
	}
	if len(lines) > 0 {
		d.log.Info("read keepalived backlog", "lines", len(lines))
	}
	d.handleLines(lines, "fifo")

	srv, err := control.Listen(d.fixed.Agent.Socket, d.fixed.Agent.SocketGroup, d.log)
	if err != nil {
		return err
	}
	srv.RefuseWritesFrom(d.refuseWrites)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// No reload until everything has started.
	d.reloadMu.Lock()
	d.runCtx = runCtx
	spawn := d.spawn
	// Before keepalived is told anything else: a drain that outlived a
	// restart or a reboot holds from the start.
	for _, in := range d.table().instances {
		d.applyDrainFile(in)
	}
	for _, in := range d.table().instances {
		d.startActor(in)
	}
	spawn(func() { srv.Serve(runCtx, d) })
	spawn(func() { d.readFIFO(runCtx, fifo) })
	spawn(func() { d.watchFIFO(runCtx, fifo, spawn) })
	spawn(func() { d.watchNetwork(runCtx) })
	d.startChecks(d.checks)
	if d.watcher != nil {
		spawn(func() { d.watcher.Run(runCtx, d.keepalivedLiveness) })
	}
	if d.cloudSetup != nil {
		spawn(func() { d.setUpCloud(runCtx) })
	}
	// The first reconciliation: every actor compares its interface with
	// its state once. Without a liveness watch no keepalived process can
	// be known: a restored MASTER (same boot) is confirmed by its record
	// and the empty backlog alone.
	for _, in := range d.table().instances {
		in.post(pending{input: input{kind: inAddrChange}, received: time.Now(), source: "start"})
		if d.watcher == nil {
			in.post(pending{input: input{kind: inKeepalivedSeen, sameKeepalived: true}, received: time.Now(), source: "start"})
		}
	}
	d.reloadMu.Unlock()
	if d.wdog > 0 && d.notify != nil {
		spawn(func() { d.watchdog(runCtx) })
	}
	d.isReady.Store(true)
	if d.ready != nil {
		d.ready()
	}
	d.publishStatus()
	d.log.Info("havip-agent running", "instances", len(d.table().instances), "fifo", d.fixed.Keepalived.FIFO, "socket", d.fixed.Agent.Socket)

	<-ctx.Done()
	cancel()
	// Unblock the FIFO reader.
	fifo.Close()
	// A reload under way finishes first; any later one sees stopping and
	// changes nothing. The lock is not held while waiting: a reload
	// request is answered by a goroutine waited for here.
	d.reloadMu.Lock()
	d.stopping = true
	d.reloadMu.Unlock()
	d.wg.Wait()
	for _, in := range d.table().instances {
		if in.cloud != nil {
			in.cloud.stop()
			in.cloud.wait()
		}
	}
	for _, c := range d.retired {
		c.wait()
	}
	d.onStop()
	// Last, so that they hear everything: the hooks finish what is queued
	// (bounded), then the history takes their outcomes and is closed.
	d.closeHooks(d.events.hooks.Load())
	return nil
}

// spawn runs f on a goroutine the daemon owns: Run waits for it.
func (d *Daemon) spawn(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// startActor runs an instance's actor until the daemon stops or a reload
// replaces it (stopActor).
func (d *Daemon) startActor(in *instance) {
	ctx, cancel := context.WithCancel(d.runCtx)
	done := make(chan struct{})
	in.stopRun = func() {
		cancel()
		<-done
	}
	d.spawn(func() {
		defer close(done)
		in.run(ctx)
	})
}

func (d *Daemon) onStop() {
	d.reloadMu.Lock()
	onStop := d.cfg.Agent.OnStop
	d.reloadMu.Unlock()
	if onStop != "release" {
		d.log.Info("stopped; addresses kept (on_stop = keep)")
		return
	}
	for _, in := range d.table().instances {
		for _, v := range in.cfg.VIPs {
			if err := d.net.Del(in.cfg.Interface, v); err != nil {
				d.log.Error("release failed", "vrrp_instance", in.cfg.Name, "vip", v.String(), "err", err)
			}
		}
	}
	d.log.Info("stopped; addresses released (on_stop = release)")
}
