package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/netif"
	"github.com/havip-agent/havip-agent/agent/vocab"
)

// instanceConfig is what one actor needs to know of its instance.
type instanceConfig struct {
	Name         string
	Kind         vocab.Kind
	Interface    string
	VIPs         []netip.Prefix
	GARPCount    int
	GARPInterval time.Duration
	GARPRefresh  time.Duration
	GARPReply    bool
	// Checks are the names of the health checks shown with the instance.
	Checks []string
	// Recheck is how often the actor compares the interface with its
	// state even without events (they can be lost); 0 disables.
	Recheck time.Duration
	// Shared: keepalived manages the VIPs too (shared_vips).
	Shared bool
	// Settle is how long address changes of a shared instance settle
	// before the actor acts on them; 0 means sharedSettle.
	Settle time.Duration
	// DrainFile is the instance's drain_file (the daemon's, for drains;
	// the actor does not use it).
	DrainFile string
}

// sharedSettle is how long a shared instance lets address changes settle:
// keepalived writes its state line right after it changes the addresses,
// well within this.
const sharedSettle = 50 * time.Millisecond

// Transition is the record of one state change with its phase timings,
// measured from the moment the event was received.
type Transition struct {
	From       State     `json:"from"`
	To         State     `json:"to"`
	Generation uint64    `json:"generation"`
	Source     string    `json:"source"`
	Received   time.Time `json:"received"`
	// VIPsDone is when every VIP was present (MASTER) or absent.
	VIPsDone time.Duration `json:"vips_done_ns"`
	// FirstAnnouncement is when the first announcement was sent (MASTER).
	FirstAnnouncement time.Duration `json:"first_announcement_ns,omitempty"`
	Errors            []string      `json:"errors,omitempty"`
}

// pending is an input waiting in the mailbox.
type pending struct {
	input
	received time.Time
	source   string
}

type instance struct {
	cfg   instanceConfig
	net   Network
	store *store
	log   *slog.Logger

	mu    sync.Mutex
	queue []pending
	wake  chan struct{}

	// Owned by the actor goroutine.
	cur      State
	gen      uint64
	since    time.Time
	priority int
	// term is what belongs to the state since the latest transition,
	// which replaces it whole.
	term    term
	burst   *time.Timer
	refresh *time.Timer
	// missingIf: the interface was found missing; when it appears, its
	// VIPs are announced.
	missingIf bool
	// netRetry retries a failed netlink operation (add, list, remove),
	// after the backoff kept in the term.
	netRetry *time.Timer
	// settle fires when a shared instance's address changes have
	// settled; settling says it is armed.
	settle   *time.Timer
	settling bool
	// restoredKA is the keepalived process of the record a MASTER was
	// restored from; set before the actor runs, read-only after.
	restoredKA *keepalived.Identity
	// bootID and kaIdentity stamp each record with the boot and the
	// keepalived process it was written under.
	bootID     string
	kaIdentity func() (keepalived.Identity, bool)
	// keepalivedAlive tells whether the liveness watch sees keepalived
	// running now; nil without a watch.
	keepalivedAlive func() bool

	snapMu sync.Mutex
	snap   instanceSnapshot

	// cloud is nil when the instance has no cloud resources.
	cloud *cloudSide
	obs   Observer
	// pingC lets the watchdog prove that the actor loop still turns.
	pingC chan chan struct{}
	// onTransition is told every state change (systemd STATUS).
	onTransition func()
	// events receives each transition, after the local actions, for the
	// failover history and the hooks.
	events sink
	// stopRun stops the actor loop and waits for it (set by the daemon).
	stopRun func()
	// forward, once set, receives what is posted to this instance: a
	// reload replaced it.
	forward *instance
	// handover: this actor continues the state of one a reload replaced
	// (takeOver); handoverCloud: with a new cloud side.
	handover, handoverCloud bool
}

type instanceSnapshot struct {
	state    State
	since    time.Time
	gen      uint64
	priority int
	last     *Transition
	errText  string
}

func newInstance(cfg instanceConfig, net Network, st *store, log *slog.Logger, obs Observer) *instance {
	if obs == nil {
		obs = nopObserver{}
	}
	in := &instance{
		obs:      obs,
		pingC:    make(chan chan struct{}),
		cfg:      cfg,
		net:      net,
		store:    st,
		log:      log.With("vrrp_instance", cfg.Name),
		wake:     make(chan struct{}, 1),
		cur:      StateUnknown,
		priority: -1,
		burst:    stoppedTimer(),
		refresh:  stoppedTimer(),
		netRetry: stoppedTimer(),
		settle:   stoppedTimer(),
		events:   nopSink{},
	}
	if in.cfg.Settle == 0 {
		in.cfg.Settle = sharedSettle
	}
	in.publish()
	return in
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// restore sets the state found on disk, before run; no action is taken
// here: run re-asserts a MASTER without ever removing an address.
func (in *instance) restore(r record) {
	in.cur, in.gen, in.since, in.restoredKA = r.State, r.Generation, r.Since, r.Keepalived
	in.publish()
}

// startAfter sets the generation an instance with no trusted record
// continues from; its state stays unknown.
func (in *instance) startAfter(gen uint64) {
	in.gen = gen
	in.publish()
}

// post queues an input without blocking. A state (or keepalived's death)
// replaces any state still queued: only the latest matters, which is how a
// backlog of transitions collapses to its last one.
func (in *instance) post(p pending) {
	in.mu.Lock()
	if in.forward != nil {
		fw := in.forward
		in.mu.Unlock()
		fw.post(p)
		return
	}
	switch p.kind {
	case inState, inDead:
		q := in.queue[:0]
		for _, x := range in.queue {
			if x.kind != inState && x.kind != inDead {
				q = append(q, x)
			}
		}
		in.queue = append(q, p)
	default:
		// Every other kind is a level, not an edge: one queued is
		// enough, and the latest priority is the one that counts. The
		// queue therefore holds at most one input of each kind.
		for i, x := range in.queue {
			if x.kind == p.kind {
				if p.kind == inPriority {
					in.queue[i] = p
				}
				in.mu.Unlock()
				return
			}
		}
		in.queue = append(in.queue, p)
	}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

func (in *instance) take() []pending {
	in.mu.Lock()
	defer in.mu.Unlock()
	q := in.queue
	in.queue = nil
	return q
}

// run is the actor loop. It returns when ctx is done, with every timer
// stopped.
func (in *instance) run(ctx context.Context) {
	defer in.burst.Stop()
	defer in.refresh.Stop()
	defer in.netRetry.Stop()
	defer in.settle.Stop()
	// Best effort: an interface that does not exist yet is prepared on
	// first use.
	_ = in.net.Prepare(in.cfg.Interface)
	in.execute(pending{received: time.Now()}, in.cur, decideStart(startup{
		state: in.cur, queued: in.hasQueuedState(),
		handover: in.handover, newCloud: in.handoverCloud, cloudReadOnly: in.term.cloudReadOnly,
	}))
	in.publish()
	var recheck <-chan time.Time
	if in.cfg.Recheck > 0 {
		t := time.NewTicker(in.cfg.Recheck)
		defer t.Stop()
		recheck = t.C
	}
	for {
		select {
		case <-ctx.Done():
			// The cloud side is the daemon's to stop: a reload may
			// hand it to the next actor.
			return
		case <-in.wake:
			for _, p := range in.take() {
				in.apply(p)
			}
		case <-in.burst.C:
			in.announceAll()
		case <-in.netRetry.C:
			in.apply(pending{input: input{kind: inNetRetry}, received: time.Now()})
		case <-in.settle.C:
			in.settling = false
			in.apply(pending{input: input{kind: inSettled}, received: time.Now()})
		case <-in.refresh.C:
			in.apply(pending{input: input{kind: inRefresh}, received: time.Now()})
		case <-recheck:
			in.apply(pending{input: input{kind: inAddrChange}, received: time.Now()})
		case reply := <-in.pingC:
			close(reply)
		}
	}
}

func (in *instance) hasQueuedState() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, p := range in.queue {
		if p.kind == inState || p.kind == inDead {
			return true
		}
	}
	return false
}

// apply decides what an input means and carries it out.
func (in *instance) apply(p pending) {
	p.shared, p.cloudReadOnly = in.cfg.Shared, in.term.cloudReadOnly
	if p.kind == inDead && in.keepalivedAlive != nil {
		p.keepalivedBack = in.keepalivedAlive()
	}
	next, acts := decide(in.cur, p.input)
	in.execute(p, next, acts)
	in.publish()
}

// execute carries out a plan of decide's, in order; next is the state
// actBeginTerm moves to.
func (in *instance) execute(p pending, next State, acts []action) {
	// added: an actEnsurePresent of this plan added an address.
	added := false
	for _, a := range acts {
		switch a {
		case actPriority:
			in.priority = p.priority
		case actBeginTerm:
			in.gen++
			in.term = term{trans: &Transition{From: in.cur, To: next, Generation: in.gen, Source: p.source, Received: p.received}}
			in.cur, in.since = next, p.received
			in.publish()
		case actPersist:
			if err := in.store.save(in.record()); err != nil {
				in.fail("persist", err)
			}
		case actAddAll:
			failed := false
			for _, v := range in.cfg.VIPs {
				if err := in.net.Add(in.cfg.Interface, v); err != nil {
					in.netFailed("add", v.String(), err)
					failed = true
				}
			}
			if !failed {
				in.netSucceeded()
			}
			in.markVIPs(p.received)
			in.addedVIPs()
		case actEnsurePresent:
			added = in.ensurePresent()
			in.markVIPs(p.received)
		case actSettleLater:
			// The first change of a burst arms the timer; later ones
			// ride on it.
			if !in.settling {
				in.settling = true
				in.settle.Reset(in.cfg.Settle)
			}
		case actBurst:
			in.startBurst()
		case actBurstIfAdded:
			if added {
				in.startBurst()
			}
		case actStopAnnouncing:
			in.burst.Stop()
			in.refresh.Stop()
			in.netRetry.Stop()
		case actRemoveAll:
			in.removeAll()
			in.markVIPs(p.received)
		case actCloudStart:
			in.term.cloudReadOnly = false
			if in.cloud != nil {
				in.cloud.start(in.gen, p.received, true)
			}
		case actCloudObserve:
			in.term.cloudReadOnly = true
			if in.cloud != nil {
				in.cloud.start(in.gen, p.received, false)
			}
		case actCloudPermit:
			in.term.cloudReadOnly = false
			in.log.Info("keepalived confirmed the restored MASTER (a MASTER line, or the same process still running after the backlog); the cloud may now be claimed")
			if in.cloud != nil {
				in.cloud.permitWrites(in.gen)
			}
		case actCloudStop:
			in.term.cloudReadOnly = false
			if in.cloud != nil {
				in.cloud.stop()
			}
		case actReport:
			in.reportVIPs()
		case actLog:
			in.logTransition(in.term.trans)
		case actSync:
			in.store.requestSync(in.cfg.Kind, in.cfg.Name)
		case actPhaseVIPs:
			if t := in.term.trans; t != nil && t.VIPsDone > 0 {
				in.obs.Phase(in.cfg.Name, vocab.PhaseVIPsPresent, t.VIPsDone)
			}
		case actNotify:
			in.obs.SetState(in.cfg.Name, in.cur)
			in.obs.Transition(in.cfg.Name, in.cur, in.since)
			if in.onTransition != nil {
				in.onTransition()
			}
			// Last of the plan: the history and the hooks hear of the
			// transition once everything local is done.
			if t := in.term.trans; t != nil {
				in.events.emit(transitionEvent(in.cfg.Name, t))
			}
		}
	}
}

// reportVIPs tells the observer which VIPs the interface holds: what the
// kernel says, not what the state implies.
func (in *instance) reportVIPs() {
	have, err := in.net.List(in.cfg.Interface)
	if err != nil && !errors.Is(err, netif.ErrNoInterface) {
		return
	}
	present := make(map[netip.Addr]bool, len(have))
	for _, p := range have {
		present[p.Addr()] = true
	}
	for _, v := range in.cfg.VIPs {
		in.obs.VIPPresent(in.cfg.Name, v.String(), present[v.Addr()])
	}
}

// Bounds of the backoff between retries of a failed netlink operation.
const (
	netRetryMin = 2 * time.Millisecond
	netRetryMax = time.Second
	// netLogEvery spaces the log lines of a streak of failures.
	netLogEvery = 10 * time.Second
)

// netFailed reports a failed netlink operation (add, list, remove) and
// schedules a retry: a MASTER without its VIP drops traffic, and a node
// that left MASTER but still holds it shares it with the new one, so the
// next try comes within milliseconds.
func (in *instance) netFailed(op, what string, err error) {
	if errors.Is(err, netif.ErrNoInterface) {
		in.fail(op, err)
		return
	}
	in.term.netFailures++
	now := time.Now()
	if in.term.netFailures == 1 || now.Sub(in.term.netLogged) >= netLogEvery {
		in.term.netLogged = now
		in.fail(op, fmt.Errorf("%s (attempt %d; retrying): %w", what, in.term.netFailures, err))
	} else {
		in.setError(op, err)
	}
	if in.term.netDelay == 0 {
		in.term.netDelay = netRetryMin
	} else {
		in.term.netDelay = min(2*in.term.netDelay, netRetryMax)
	}
	in.netRetry.Reset(in.term.netDelay)
}

// netSucceeded ends a streak of failed netlink operations.
func (in *instance) netSucceeded() {
	if in.term.netFailures > 0 {
		in.log.Info("addresses in order after failed attempts", "failed_attempts", in.term.netFailures, "interface", in.cfg.Interface, "state", string(in.cur))
	}
	in.term.netDelay, in.term.netFailures = 0, 0
	in.netRetry.Stop()
}

func (in *instance) markVIPs(received time.Time) {
	if t := in.term.trans; t != nil && t.VIPsDone == 0 {
		t.VIPsDone = time.Since(received)
	}
}

// addedVIPs records that the VIPs are on the interface and sends the
// IPv6 announcements the burst held back until then.
func (in *instance) addedVIPs() {
	in.term.vipsAdded = true
	if !in.term.v6Owed {
		return
	}
	in.term.v6Owed = false
	n := 0
	for _, v := range in.cfg.VIPs {
		if !v.Addr().Is6() {
			continue
		}
		if err := in.net.Announce(in.cfg.Interface, v.Addr(), in.cfg.GARPReply); err != nil {
			in.fail("announce", err)
			continue
		}
		n++
	}
	in.announcedNow(n)
}

// ensurePresent reads the interface and adds the VIPs it lacks; added
// says whether it added one, or found the interface that was missing.
func (in *instance) ensurePresent() (added bool) {
	have, err := in.net.List(in.cfg.Interface)
	if err != nil {
		in.netFailed("list", in.cfg.Interface, err)
		return false
	}
	present := map[netip.Addr]bool{}
	for _, p := range have {
		present[p.Addr()] = true
	}
	failed := false
	for _, v := range in.cfg.VIPs {
		if present[v.Addr()] {
			continue
		}
		if err := in.net.Add(in.cfg.Interface, v); err != nil {
			in.netFailed("add", v.String(), err)
			failed = true
			continue
		}
		added = true
		in.log.Info("VIP restored", "vip", v.String(), "interface", in.cfg.Interface)
	}
	if !failed {
		in.netSucceeded()
	}
	if in.missingIf {
		in.missingIf = false
		added = true
	}
	in.addedVIPs()
	return added
}

func (in *instance) removeAll() {
	have, err := in.net.List(in.cfg.Interface)
	if errors.Is(err, netif.ErrNoInterface) {
		return
	}
	if err != nil {
		// Cannot read: remove blindly, which is idempotent.
		have = in.cfg.VIPs
	}
	present := map[netip.Addr]bool{}
	for _, p := range have {
		present[p.Addr()] = true
	}
	failed := false
	defer func() {
		if !failed {
			in.netSucceeded()
		}
	}()
	for _, v := range in.cfg.VIPs {
		if !present[v.Addr()] {
			continue
		}
		if err := in.net.Del(in.cfg.Interface, v); err != nil {
			in.netFailed("remove", v.String(), err)
			failed = true
			continue
		}
		// The removals of the transition itself are in its log line;
		// later ones undo someone else's add and are logged each.
		if t := in.term.trans; t == nil || t.VIPsDone != 0 {
			in.log.Info("VIP removed", "vip", v.String(), "interface", in.cfg.Interface, "state", string(in.cur))
		}
	}
}

func (in *instance) startBurst() {
	in.term.burstLeft = in.cfg.GARPCount
	in.burst.Stop()
	in.announceAll()
	if in.cfg.GARPRefresh > 0 {
		in.refresh.Reset(in.cfg.GARPRefresh)
	}
}

// announceAll sends one announcement of every VIP and schedules the next
// of the burst.
func (in *instance) announceAll() {
	if in.term.burstLeft <= 0 {
		return
	}
	in.term.burstLeft--
	n := 0
	for _, v := range in.cfg.VIPs {
		if v.Addr().Is6() && !in.term.vipsAdded {
			in.term.v6Owed = true
			continue
		}
		if err := in.net.Announce(in.cfg.Interface, v.Addr(), in.cfg.GARPReply); err != nil {
			in.fail("announce", err)
			continue
		}
		n++
	}
	if in.term.burstLeft > 0 {
		in.burst.Reset(in.cfg.GARPInterval)
	}
	in.announcedNow(n)
}

// announcedNow counts n announcements just sent and, for the first of a
// MASTER term, records the phase.
func (in *instance) announcedNow(n int) {
	if n == 0 {
		return
	}
	in.obs.Announcements(in.cfg.Name, n)
	if t := in.term.trans; t != nil && !in.term.announced {
		in.term.announced = true
		t.FirstAnnouncement = time.Since(t.Received)
		in.obs.Phase(in.cfg.Name, vocab.PhaseFirstAnnouncement, t.FirstAnnouncement)
	}
}

func (in *instance) logTransition(t *Transition) {
	if t == nil {
		return
	}
	attrs := []any{"from", string(t.From), "to", string(t.To), "generation", t.Generation, "source", t.Source,
		"vips_done", t.VIPsDone}
	if t.To == StateMaster {
		attrs = append(attrs, string(vocab.PhaseFirstAnnouncement), t.FirstAnnouncement)
	}
	if len(t.Errors) > 0 {
		attrs = append(attrs, "errors", t.Errors)
	}
	in.log.Info("transition", attrs...)
}

func (in *instance) fail(op string, err error) {
	if errors.Is(err, netif.ErrNoInterface) {
		if !in.missingIf {
			in.missingIf = true
			in.log.Warn("interface does not exist yet; acting when it appears", "interface", in.cfg.Interface)
		}
		return
	}
	in.log.Error(op+" failed", "err", err)
	in.setError(op, err)
}

// setError records an error in the transition and in the status without
// logging it.
func (in *instance) setError(op string, err error) {
	if t := in.term.trans; t != nil && len(t.Errors) < 8 {
		t.Errors = append(t.Errors, op+": "+err.Error())
	}
	in.snapMu.Lock()
	in.snap.errText = op + ": " + err.Error()
	in.snapMu.Unlock()
}

func (in *instance) record() record {
	r := record{Kind: in.cfg.Kind, Name: in.cfg.Name, State: in.cur, Generation: in.gen, Since: in.since, BootID: in.bootID}
	if in.kaIdentity != nil {
		if id, ok := in.kaIdentity(); ok {
			r.Keepalived = &id
		}
	}
	return r
}

func (in *instance) publish() {
	in.snapMu.Lock()
	defer in.snapMu.Unlock()
	in.snap.state, in.snap.since, in.snap.gen = in.cur, in.since, in.gen
	if in.priority >= 0 {
		in.snap.priority = in.priority
	}
	if in.term.trans != nil {
		t := *in.term.trans
		in.snap.last = &t
	}
}

func (in *instance) snapshot() instanceSnapshot {
	in.snapMu.Lock()
	defer in.snapMu.Unlock()
	s := in.snap
	return s
}
