package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/netif"
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
	// Cloud claims the cloud resources; nil runs local only.
	Cloud cloud.Provider
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
}

// Daemon is the agent: its instances and the inputs that feed them.
type Daemon struct {
	cfg     *config.Config
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

	instances []*instance
	byKey     map[string]*instance // kind/name

	checks    *health.Runner
	ignored   map[keepalived.Reason]*counter
	linesRead atomic.Uint64

	kaMu     sync.Mutex
	kaState  string // "", "alive", "dead"
	kaDetail string

	cleanup []func()
}

type counter struct {
	n      atomic.Uint64
	logged atomic.Bool
}

// realNetwork joins netlink addresses and the announcer.
type realNetwork struct {
	*netif.Addrs
	*netif.Announcer
}

// New prepares a daemon: it opens netlink and the state directory and
// restores the persisted state, but starts nothing.
func New(opts Options) (*Daemon, error) {
	cfg := opts.Config
	d := &Daemon{
		cfg:     cfg,
		log:     opts.Logger,
		net:     opts.Network,
		version: opts.Version,
		ready:   opts.Ready,
		notify:  opts.Notify,
		wdog:    opts.WatchdogInterval,
		obs:     opts.Observer,
		started: time.Now(),
		byKey:   map[string]*instance{},
		ignored: map[keepalived.Reason]*counter{},
	}
	for _, r := range keepalived.Reasons {
		d.ignored[r] = &counter{}
	}
	if d.obs == nil {
		d.obs = nopObserver{}
	}
	if d.net == nil {
		addrs, err := netif.NewAddrs()
		if err != nil {
			return nil, err
		}
		ann := netif.NewAnnouncer()
		d.net = realNetwork{addrs, ann}
		d.cleanup = append(d.cleanup, addrs.Close, ann.Close)
	}
	checks, err := d.newChecks()
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
	for _, ic := range cfg.Instances {
		in := newInstance(InstanceConfig{
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
		}, d.net, st, d.log, d.obs)
		in.onTransition = d.publishStatus
		d.obs.SetState(ic.Name, string(StateUnknown))
		for _, ch := range ic.Checks {
			d.obs.CheckInstance(ic.Name, ch)
		}
		r, ok, err := st.load(ic.Kind, ic.Name)
		switch {
		case err != nil:
			d.log.Warn("ignoring damaged state file; state unknown until keepalived speaks", "vrrp_instance", ic.Name, "err", err)
		case ok:
			in.restore(r)
			d.obs.SetState(ic.Name, string(r.State))
			d.log.Info("state restored", "vrrp_instance", ic.Name, "state", string(r.State), "generation", r.Generation)
		}
		if res := resourcesOf(ic); len(res) > 0 && opts.Cloud != nil {
			cl := cfg.Cloud
			co := CloudOptions{
				ReconcileInterval: cl.ReconcileInterval.Duration,
				ReclaimMaxBackoff: cl.ReclaimMaxBackoff.Duration,
				ConfirmTimeout:    cl.ConfirmTimeout.Duration,
			}
			if cfg.Keepalived.PIDFile != "" {
				co.MayReclaim = keepalived.NewWatcher(keepalived.WatchOptions{PIDFile: cfg.Keepalived.PIDFile, DeadAfter: cfg.Keepalived.DeadAfter.Duration}).Check
			}
			in.cloud = newCloudSide(ic.Name, opts.Cloud, res, co, in.log, func() {
				in.post(pending{input: input{kind: inRefresh}, received: time.Now(), source: "cloud-confirm"})
			}, d.obs)
		}
		d.instances = append(d.instances, in)
		d.byKey[key(ic.Kind, ic.Name)] = in
	}
	return d, nil
}

func key(kind, name string) string { return kind + "/" + name }

// Run runs the daemon until ctx is done, then applies on_stop. It returns
// an error only when it cannot start.
func (d *Daemon) Run(ctx context.Context) error {
	defer func() {
		for _, f := range d.cleanup {
			f()
		}
	}()
	fifo, err := keepalived.OpenFIFO(d.cfg.Keepalived.FIFO)
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

	srv, err := control.Listen(d.cfg.Agent.Socket, d.cfg.Agent.SocketGroup, d.log)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for _, in := range d.instances {
		spawn(func() { in.run(runCtx) })
	}
	spawn(func() { srv.Serve(runCtx, d) })
	spawn(func() { d.readFIFO(runCtx, fifo) })
	spawn(func() { d.watchFIFO(runCtx, fifo, spawn) })
	spawn(func() { d.watchNetwork(runCtx) })
	spawn(func() { d.runChecks(runCtx) })
	if d.cfg.Keepalived.PIDFile != "" {
		w := keepalived.NewWatcher(keepalived.WatchOptions{PIDFile: d.cfg.Keepalived.PIDFile, DeadAfter: d.cfg.Keepalived.DeadAfter.Duration})
		spawn(func() { w.Run(runCtx, d.keepalivedLiveness) })
	}
	// The first reconciliation: every actor compares its interface with
	// its state once.
	for _, in := range d.instances {
		in.post(pending{input: input{kind: inAddrChange}, received: time.Now(), source: "start"})
	}
	if d.wdog > 0 && d.notify != nil {
		spawn(func() { d.watchdog(runCtx) })
	}
	d.isReady.Store(true)
	if d.ready != nil {
		d.ready()
	}
	d.publishStatus()
	d.log.Info("havip-agent running", "instances", len(d.instances), "fifo", d.cfg.Keepalived.FIFO, "socket", d.cfg.Agent.Socket)

	<-ctx.Done()
	cancel()
	// Unblock the FIFO reader.
	fifo.Close()
	wg.Wait()
	for _, in := range d.instances {
		if in.cloud != nil {
			in.cloud.wait()
		}
	}
	d.onStop()
	return nil
}

func (d *Daemon) onStop() {
	if d.cfg.Agent.OnStop != "release" {
		d.log.Info("stopped; addresses kept (on_stop = keep)")
		return
	}
	for _, in := range d.instances {
		for _, v := range in.cfg.VIPs {
			if err := d.net.Del(in.cfg.Interface, v); err != nil {
				d.log.Error("release failed", "vrrp_instance", in.cfg.Name, "vip", v.String(), "err", err)
			}
		}
	}
	d.log.Info("stopped; addresses released (on_stop = release)")
}

// fifoCheckEvery is how often watchFIFO looks whether the FIFO's path
// still names the pipe being read.
var fifoCheckEvery = time.Second

// watchFIFO opens the FIFO again when its path was removed or recreated
// (by an operator, a package upgrade, or keepalived creating a missing
// one at start): otherwise keepalived writes into a new pipe nobody reads
// and every transition is missed. The replaced pipe is still read until
// the next replacement, for a keepalived that kept it open.
func (d *Daemon) watchFIFO(ctx context.Context, cur *keepalived.FIFO, spawn func(func())) {
	var prev *keepalived.FIFO
	defer func() {
		if prev != nil {
			prev.Close()
		}
		cur.Close()
	}()
	t := time.NewTicker(fifoCheckEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !cur.Replaced() {
			continue
		}
		nf, err := keepalived.OpenFIFO(d.cfg.Keepalived.FIFO)
		if err != nil {
			if !failing {
				d.log.Error("keepalived fifo was removed and cannot be opened again", "err", err)
			}
			failing = true
			continue
		}
		failing = false
		d.log.Warn("keepalived fifo was removed or replaced; reading the new one", "fifo", d.cfg.Keepalived.FIFO)
		if prev != nil {
			prev.Close()
		}
		prev, cur = cur, nf
		spawn(func() { d.readFIFO(ctx, nf) })
	}
}

func (d *Daemon) readFIFO(ctx context.Context, fifo *keepalived.FIFO) {
	for {
		lines, err := fifo.ReadBatch()
		d.handleLines(lines, "fifo")
		if err != nil {
			if ctx.Err() != nil || fifo.Closed() {
				return
			}
			d.log.Error("reading keepalived fifo failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func (d *Daemon) handleLines(lines []keepalived.Line, source string) {
	now := time.Now()
	for _, l := range lines {
		d.linesRead.Add(1)
		d.obs.FIFOLine()
		if l.TooLong {
			d.ignore(keepalived.ReasonTooLong, fmt.Errorf("line longer than %d bytes", keepalived.MaxLineLength), l.Data)
			continue
		}
		ev, err := keepalived.ParseLine(l.Data)
		if err != nil {
			d.ignore(keepalived.ReasonOf(err), err, l.Data)
			continue
		}
		if err := d.dispatch(ev, now, source); err != nil {
			d.ignore(keepalived.ReasonUnknownName, err, l.Data)
		}
	}
}

// dispatch routes an event to its instance.
func (d *Daemon) dispatch(ev keepalived.Event, received time.Time, source string) error {
	kind := config.KindInstance
	if ev.Kind == keepalived.KindGroup {
		kind = config.KindGroup
	}
	in, ok := d.byKey[key(kind, ev.Name)]
	if !ok {
		return fmt.Errorf("no configured %s named %q", kind, ev.Name)
	}
	st, transition := stateFromKeepalived(ev.State)
	if !transition {
		in.setPriority(ev.Priority)
		return nil
	}
	in.post(pending{
		input:    input{kind: inState, state: st, rxLowerPri: ev.State == keepalived.StateMasterRxLowerPri},
		received: received,
		priority: ev.Priority,
		source:   source,
	})
	return nil
}

// ignore counts a line that produced no event and logs the first of each
// kind, so a flood of garbage cannot flood the log.
func (d *Daemon) ignore(r keepalived.Reason, err error, line []byte) {
	c := d.ignored[r]
	c.n.Add(1)
	d.obs.FIFOIgnored(string(r))
	if c.logged.CompareAndSwap(false, true) {
		d.log.Warn("ignoring keepalived line (further lines of this kind are only counted)", "reason", string(r), "err", err, "line", clipLine(line))
	}
}

func clipLine(b []byte) string {
	const max = 80
	if len(b) > max {
		b = b[:max]
	}
	return fmt.Sprintf("%q", b)
}

// Notify takes a notify request from the control socket.
func (d *Daemon) Notify(args []string) error {
	ev, err := keepalived.ParseArgs(args)
	if err != nil {
		return fmt.Errorf("notify %q: %w", args, err)
	}
	if err := d.dispatch(ev, time.Now(), "notify"); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func (d *Daemon) keepalivedLiveness(alive bool, why string) {
	d.kaMu.Lock()
	prev := d.kaState
	if alive {
		d.kaState = "alive"
	} else {
		d.kaState = "dead"
	}
	d.kaDetail = why
	d.kaMu.Unlock()
	if alive {
		if prev == "dead" {
			d.log.Info("keepalived is back; its next notifications drive the state", "detail", why)
		}
		return
	}
	d.log.Error("keepalived is not running: every instance is now FAULT", "detail", why, "dead_after", d.cfg.Keepalived.DeadAfter.Duration)
	now := time.Now()
	for _, in := range d.instances {
		in.post(pending{input: input{kind: inDead}, received: now, source: "liveness"})
	}
}

func (d *Daemon) watchNetwork(ctx context.Context) {
	vips := map[string]map[netip.Addr][]*instance{}
	for _, in := range d.instances {
		m := vips[in.cfg.Interface]
		if m == nil {
			m = map[netip.Addr][]*instance{}
			vips[in.cfg.Interface] = m
		}
		for _, v := range in.cfg.VIPs {
			m[v.Addr()] = append(m[v.Addr()], in)
		}
	}
	notify := func(ins []*instance) {
		now := time.Now()
		for _, in := range ins {
			in.post(pending{input: input{kind: inAddrChange}, received: now, source: "netlink"})
		}
	}
	for {
		err := netif.Watch(ctx, func(c netif.Change) {
			switch {
			case c.Resync:
				notify(d.instances)
			case !c.Addr.IsValid():
				// A link appeared or went: its instances look again.
				var ins []*instance
				for _, in := range d.instances {
					if in.cfg.Interface == c.Interface {
						ins = append(ins, in)
					}
				}
				if a, ok := d.net.(realNetwork); ok {
					// The link changed: its remembered handle and
					// sockets may be stale.
					a.Addrs.Forget(c.Interface)
					if !c.Present {
						a.Announcer.Forget(c.Interface)
					}
				}
				notify(ins)
			default:
				notify(vips[c.Interface][c.Addr])
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped")
		}
		d.log.Error("netlink watch failed; restarting", "err", err)
		notify(d.instances)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// Resources lists every cloud resource of the configuration, for
// preflight checks.
func Resources(cfg *config.Config) []cloud.Resource {
	var out []cloud.Resource
	for _, ic := range cfg.Instances {
		out = append(out, resourcesOf(ic)...)
	}
	return out
}

// resourcesOf lists the cloud resources that must point at the node while
// the instance is MASTER.
func resourcesOf(ic config.Instance) []cloud.Resource {
	var out []cloud.Resource
	if ic.HAVIP != "" {
		spec := &cloud.HAVIPSpec{ID: ic.HAVIP, Bind: cloud.BindMode(ic.HAVIPBind), PublicIP: ic.HAVIPPublicIP}
		for _, v := range ic.VIPs {
			if v.Addr().Is4() {
				spec.VIP = v.Addr()
				break
			}
		}
		out = append(out, cloud.Resource{Kind: cloud.KindHAVIP, HAVIP: spec})
	}
	for _, r := range ic.Routes {
		out = append(out, cloud.Resource{Kind: cloud.KindRoute, Route: &cloud.RouteSpec{
			Table: r.Table, Destination: r.Destination, NextHop: r.NextHop, NextHopType: r.NextHopType, Mode: cloud.RouteMode(r.Mode),
		}})
	}
	for _, e := range ic.EIPs {
		out = append(out, cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: e.Address}})
	}
	return out
}

// Ready reports whether the daemon runs: configuration loaded, FIFO open,
// every part started and the first reconciliation queued (/readyz).
func (d *Daemon) Ready() bool { return d.isReady.Load() }

// publishStatus sends systemd a one-line summary of every instance.
func (d *Daemon) publishStatus() {
	if d.notify == nil || !d.isReady.Load() {
		return
	}
	parts := make([]string, len(d.instances))
	for i, in := range d.instances {
		parts[i] = in.cfg.Name + " " + string(in.snapshot().state)
	}
	d.notify("STATUS=" + strings.Join(parts, ", "))
}

// watchdog pings systemd only while every actor loop answers: a wedged
// loop stops the pings and systemd restarts the agent.
func (d *Daemon) watchdog(ctx context.Context) {
	t := time.NewTicker(d.wdog / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		alive := true
		for _, in := range d.instances {
			reply := make(chan struct{})
			select {
			case in.pingC <- reply:
				<-reply
			case <-time.After(d.wdog / 3):
				alive = false
			case <-ctx.Done():
				return
			}
			if !alive {
				d.log.Error("actor loop does not answer; withholding the watchdog ping", "vrrp_instance", in.cfg.Name)
				break
			}
		}
		if alive {
			d.notify("WATCHDOG=1")
		}
	}
}
