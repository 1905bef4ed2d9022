package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/agent/vocab"
	"github.com/havip-agent/havip-agent/cloud"
)

// cloudOptions are the timings of the cloud side.
type cloudOptions struct {
	ReconcileInterval time.Duration
	ReclaimMaxBackoff time.Duration
	ConfirmTimeout    time.Duration
	// ConfirmEvery is how often an unconfirmed HAVIP gets a new
	// announcement burst and a read; 0 means one second.
	ConfirmEvery time.Duration
	// Reverify are the delays after a claim at which the resource is read
	// again, sooner than the next reconcile: a call the cloud applied after
	// its sender gave up (this node's or the one that left) shows there.
	// nil means DefaultReverify; delays not shorter than ReconcileInterval
	// are skipped, as the reconcile reads by then anyway.
	Reverify []time.Duration
	// MayReclaim, when set, is asked before the cloud is claimed again
	// after it pointed elsewhere; an error skips that reconcile. The
	// daemon checks that keepalived still runs: keepalived stopped without
	// a STOP line (seen after a reload) leaves the agent MASTER until the
	// liveness watch's dead_after, and a reclaim in that window takes the
	// cloud from the node that really took over, costing two switches.
	MayReclaim func() error
}

// ResourceStatus is the cloud side of one resource, as status shows it.
type ResourceStatus struct {
	Resource  string    `json:"resource"`
	Owned     bool      `json:"owned"`
	Current   string    `json:"current,omitempty"`
	Shape     string    `json:"shape,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Checked   time.Time `json:"checked,omitzero"`
	LastClaim time.Time `json:"last_claim,omitzero"`
	Claims    int       `json:"claims"`
	Reclaims  int       `json:"reclaims"`
	Conflicts int       `json:"conflicts"`
	// Unconfirmed counts claims the cloud accepted (200) but never showed
	// applied within confirm_timeout.
	Unconfirmed int       `json:"unconfirmed,omitempty"`
	NextReclaim time.Time `json:"next_reclaim,omitzero"`
	PublicIP    string    `json:"public_ip,omitempty"`
	// ConfirmedAfter is the last measured cloud_confirmed phase: from the MASTER notification
	// until the cloud showed this node owning the resource. No document says how fast, for
	// example, the HAVIP master follows a gratuitous ARP; this is what the operator sees.
	ConfirmedAfter time.Duration `json:"confirmed_after_ns,omitempty"`
	// PublicIPProblem says why a HAVIP does not hold its public IP.
	PublicIPProblem string `json:"public_ip_problem,omitempty"`
	Error           string `json:"error,omitempty"`
	// ErrorKind says whether the error is retried (transient) or needs an
	// operator (auth, validation, expired).
	ErrorKind vocab.ErrorKind `json:"error_kind,omitempty"`
}

// DefaultReverify are the re-verify delays when cloudOptions.Reverify is nil.
var DefaultReverify = []time.Duration{time.Second, 3 * time.Second}

// CloudObserver is told what the cloud side does (metrics).
type CloudObserver interface {
	CloudOwned(vrrpInstance, resource string, owned bool)
	Reclaim(vrrpInstance, resource string)
	Conflict(vrrpInstance, resource string)
	Phase(vrrpInstance string, phase vocab.Phase, d time.Duration)
}

// cloudSide claims an instance's resources while it is MASTER. The actor
// starts it on every MASTER transition and stops it on every other one;
// it never waits for it, so local actions are never delayed by the cloud.
type cloudSide struct {
	instance  string
	provider  cloud.Provider
	resources []cloud.Resource
	opts      cloudOptions
	log       *slog.Logger
	announce  func()
	obs       CloudObserver
	// events receives the claims, confirmations, errors and reclaims,
	// for the failover history and the hooks.
	events sink

	mu     sync.Mutex
	cancel context.CancelFunc // nil while stopped
	gen    uint64
	// epoch changes on every start and stop: a goroutine of an older one
	// no longer updates the status or the metrics.
	epoch uint64
	// gate holds a read-only start's writes back until permitWrites.
	gate *writeGate
	// attempts numbers the claims of generation gen per resource, across
	// restarts of that generation, so that no token base is used twice.
	attempts map[string]int
	status   map[string]*ResourceStatus
	wg       sync.WaitGroup
}

// writeGate holds back the mutating calls of a generation until it opens.
type writeGate struct {
	open chan struct{}
	// at is when it opened; read only after open is closed.
	at time.Time
}

func newCloudSide(instance string, p cloud.Provider, res []cloud.Resource, opts cloudOptions, log *slog.Logger, announce func(), obs CloudObserver) *cloudSide {
	if opts.ConfirmEvery == 0 {
		opts.ConfirmEvery = time.Second
	}
	if opts.Reverify == nil {
		opts.Reverify = DefaultReverify
	}
	var verify []time.Duration
	for _, d := range opts.Reverify {
		if d > 0 && d < opts.ReconcileInterval {
			verify = append(verify, d)
		}
	}
	slices.Sort(verify)
	opts.Reverify = verify
	// The node id is asked for when a token is made, not here: the
	// provider may learn it only once the cloud is set up.
	c := &cloudSide{instance: instance, provider: p, resources: res, opts: opts, log: log, announce: announce, obs: obs,
		events: nopSink{}, attempts: map[string]int{}, status: map[string]*ResourceStatus{}}
	for _, r := range res {
		c.status[r.Key()] = &ResourceStatus{Resource: r.Key()}
	}
	return c
}

// start begins the cloud side of generation gen, cancelling whatever an
// older start still does; received is when the MASTER event arrived.
// With writes it claims every resource at once. Without, it only reads
// them (status, metrics) until permitWrites(gen): a MASTER restored from
// disk must not take the cloud before keepalived confirms it.
func (c *cloudSide) start(gen uint64, received time.Time, writes bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	if gen != c.gen {
		clear(c.attempts)
	}
	c.epoch++
	c.cancel, c.gen = cancel, gen
	var gate *writeGate
	if !writes {
		gate = &writeGate{open: make(chan struct{})}
	}
	c.gate = gate
	for _, r := range c.resources {
		w := newClaimer(c, gen, c.epoch, r, received)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			w.run(ctx, gate)
		}()
	}
}

// permitWrites lets generation gen, started without writes, claim: a
// resource that points here already is left as it is, any other is
// claimed at once. It does nothing for another generation or a start
// with writes.
func (c *cloudSide) permitWrites(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.cancel == nil || c.gate == nil {
		return
	}
	c.gate.at = time.Now()
	close(c.gate.open)
	c.gate = nil
}

// stop cancels every claim: no mutating call starts after it returns. The
// resources are no longer this node's to hold, so status and metrics say
// so: a BACKUP never shows a resource as owned.
func (c *cloudSide) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.epoch++
	c.gate = nil
	for _, r := range c.resources {
		s := c.status[r.Key()]
		s.Owned, s.NextReclaim = false, time.Time{}
		if c.obs != nil {
			c.obs.CloudOwned(c.instance, r.Key(), false)
		}
	}
}

// wait waits for every claim goroutine to end (shutdown).
func (c *cloudSide) wait() { c.wg.Wait() }

func (c *cloudSide) snapshot() []ResourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ResourceStatus, 0, len(c.resources))
	for _, r := range c.resources {
		out = append(out, *c.status[r.Key()])
	}
	return out
}

// update changes a resource's status unless a later start or a stop
// superseded epoch. f runs under the lock, so what it reports cannot
// arrive after a stop's report.
func (c *cloudSide) update(epoch uint64, key string, f func(s *ResourceStatus)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return false
	}
	f(c.status[key])
	return true
}

// nextAttempt numbers a new claim of key in the current generation; 0
// means that epoch was superseded and nothing may be claimed.
func (c *cloudSide) nextAttempt(epoch uint64, key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return 0
	}
	c.attempts[key]++
	return c.attempts[key]
}

// tokenBase identifies one claim: this node, the VRRP instance, the
// transition and the attempt. Retries of one claim reuse it; a reclaim is a
// new attempt with a new token, or the cloud would answer it from its
// idempotency cache without applying it.
func (c *cloudSide) tokenBase(gen uint64, r cloud.Resource, attempt int) string {
	return fmt.Sprintf("%s/%s/%d/%s/%d", c.provider.NodeID(), c.instance, gen, r.Key(), attempt)
}

// claimer is the cloud side of one resource in one start. It carries out
// what the reclaim policy (claimPolicy.decide) says, and feeds it what the
// cloud answered.
type claimer struct {
	c        *cloudSide
	gen      uint64
	epoch    uint64
	r        cloud.Resource
	key      string
	received time.Time

	policy claimPolicy
	h      claimHistory
}

// newClaimer is the claimer of r in the start epoch of generation gen;
// received is when the MASTER event arrived, from which phases are measured.
func newClaimer(c *cloudSide, gen, epoch uint64, r cloud.Resource, received time.Time) *claimer {
	return &claimer{c: c, gen: gen, epoch: epoch, r: r, key: r.Key(), received: received,
		policy: claimPolicy{
			interval:   c.opts.ReconcileInterval,
			maxBackoff: c.opts.ReclaimMaxBackoff,
			reverify:   c.opts.Reverify,
			announces:  r.Kind == cloud.KindHAVIP && c.announce != nil,
		}}
}

// run claims r at once (or, behind a closed gate, reads it until the gate
// opens), then reconciles it every interval and at each re-verify.
func (w *claimer) run(ctx context.Context, gate *writeGate) {
	tick := time.NewTicker(w.c.opts.ReconcileInterval)
	defer tick.Stop()
	if gate != nil {
		if !w.observeUntil(ctx, gate, tick.C) {
			return
		}
		w.received = gate.at
		w.reconcile(ctx, readOpen)
	} else {
		w.execute(ctx, w.decide(heard{kind: heardStart}, time.Now()), cloud.Ownership{})
	}
	verify := time.NewTimer(time.Hour)
	verify.Stop()
	defer verify.Stop()
	for {
		var due <-chan time.Time
		if at, ok := w.h.nextVerify(); ok {
			verify.Reset(time.Until(at))
			due = verify.C
		}
		cause := readTick
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-due:
			cause = readVerify
		}
		w.reconcile(ctx, cause)
		if ctx.Err() != nil {
			return
		}
	}
}

// decide asks the policy and keeps the new history.
func (w *claimer) decide(e heard, now time.Time) claimDecision {
	d, h := w.policy.decide(w.h, e, now)
	w.h = h
	return d
}

// observeUntil reads r now and at every tick, recording what it finds and
// writing nothing, until the gate opens (true) or ctx ends (false).
func (w *claimer) observeUntil(ctx context.Context, gate *writeGate, tick <-chan time.Time) bool {
	for {
		o, err := w.c.provider.Observe(ctx, w.r)
		switch {
		case ctx.Err() != nil:
			return false
		case err != nil:
			w.readFailed(err)
		default:
			w.c.record(w.epoch, w.key, o)
		}
		select {
		case <-ctx.Done():
			return false
		case <-gate.open:
			return true
		case <-tick:
		}
	}
}

// reconcile reads r, records what it finds and does what the policy says
// of it. When the policy would claim a resource that points elsewhere, it
// first asks MayReclaim.
func (w *claimer) reconcile(ctx context.Context, cause readCause) {
	c := w.c
	o, err := c.provider.Observe(ctx, w.r)
	if ctx.Err() != nil {
		return
	}
	e := heard{cause: cause}
	switch {
	case err != nil:
		w.readFailed(err)
		e.kind = heardReadFailed
	case o.Owned:
		c.record(w.epoch, w.key, o)
		e.kind, e.bindable = heardOwned, o.PublicIPBindable
	default:
		c.record(w.epoch, w.key, o)
		e.kind = heardElsewhere
	}
	now := time.Now()
	d := w.decide(e, now)
	if d.step == stepAsk {
		if c.opts.MayReclaim != nil {
			if err := c.opts.MayReclaim(); err != nil {
				c.log.Warn("cloud points elsewhere; not claiming it back now", "resource", w.key, "current", o.Current, "reason", err)
				return
			}
		}
		d = w.decide(heard{kind: heardPermitted}, now)
	}
	w.execute(ctx, d, o)
}

// execute reports what d says and makes the claim it asks for; o is what
// the cloud last showed. A stepAsk is resolved before (see reconcile).
func (w *claimer) execute(ctx context.Context, d claimDecision, o cloud.Ownership) {
	c := w.c
	switch d.step {
	case stepNone, stepWait:
		// Nothing to send before the next reconcile or re-verify.
		if d.setNext {
			c.update(w.epoch, w.key, func(s *ResourceStatus) { s.NextReclaim = d.nextAt })
		}
	case stepClaim:
		w.claim(ctx, d)
	case stepReclaim:
		c.update(w.epoch, w.key, func(s *ResourceStatus) {
			s.Reclaims++
			if d.conflict {
				s.Conflicts++
			}
			s.NextReclaim = d.nextAt
			if c.obs != nil {
				c.obs.Reclaim(c.instance, w.key)
				if d.conflict {
					c.obs.Conflict(c.instance, w.key)
				}
			}
		})
		lvl := slog.LevelWarn
		if d.conflict {
			lvl = slog.LevelError
		}
		c.log.Log(ctx, lvl, "cloud points elsewhere; claiming again", "resource", w.key, "current", o.Current, "conflict", d.conflict, "next_reclaim_after", d.backoff)
		msg := "points at " + o.Current
		if o.Current == "" {
			msg = "points at nothing"
		}
		c.events.emit(event{kind: evReclaim, instance: c.instance, generation: w.gen, resource: w.key, message: msg})
		if d.conflict {
			c.events.emit(event{kind: evConflict, instance: c.instance, generation: w.gen, resource: w.key,
				message: msg + " again after a reclaim: another node claims it too; next reclaim after " + d.backoff.String()})
		}
		w.claim(ctx, d)
	}
}

// claim makes r point here and waits for the cloud to confirm it, then
// does what the policy says of the outcome: a claim that timed out may
// still be applied, and is read again rather than repeated blindly.
func (w *claimer) claim(ctx context.Context, d claimDecision) {
	c := w.c
	attempt := c.nextAttempt(w.epoch, w.key)
	if attempt == 0 {
		return
	}
	if d.announce {
		c.announce()
	}
	now := time.Now()
	c.update(w.epoch, w.key, func(s *ResourceStatus) { s.LastClaim = now; s.Claims++ })
	// The calls of the claim are told which transition they are for
	// (CloudCall), and the tag keeps the last one's request id.
	tag := &callTag{sink: c.events, instance: c.instance, generation: w.gen, resource: w.key}
	o, err := c.provider.Claim(withCallTag(ctx, tag), w.r, c.tokenBase(w.gen, w.r, attempt))
	if ctx.Err() != nil {
		return
	}
	var sent time.Duration
	if d.first {
		sent = time.Since(w.received)
		if c.obs != nil {
			c.obs.Phase(c.instance, vocab.PhaseCloudRequestSent, sent)
		}
	}
	last, _ := tag.lastCall()
	var e heard
	var pending *cloud.PendingError
	failed := err != nil && !errors.As(err, &pending)
	if failed {
		c.fail(w.epoch, w.key, err)
		c.events.emit(event{kind: evCloudError, instance: c.instance, generation: w.gen, resource: w.key,
			requestID: requestID(last, err), errorCode: errorCode(err), err: err.Error()})
		e = heard{kind: heardClaimFailed, mayHaveApplied: mayHaveApplied(err)}
	} else {
		c.events.emit(event{kind: evCloudClaimed, instance: c.instance, generation: w.gen, resource: w.key, requestID: last.RequestID})
		if !o.Owned {
			o = w.confirm(ctx, o)
		}
		e = heard{kind: heardClaimNotShown, accepted: cloud.IsUnconfirmed(err)}
		if o.Owned {
			e = heard{kind: heardClaimOwned}
		}
	}
	out := w.decide(e, time.Now())
	var took time.Duration
	if out.confirmed {
		took = time.Since(w.received)
	}
	// One update with what the cloud showed, so that status never shows
	// the resource owned without its confirmation time.
	apply := func(s *ResourceStatus) {
		if out.unconfirmed {
			s.Unconfirmed++
		}
		if out.setNext {
			s.NextReclaim = out.nextAt
		}
		if out.confirmed {
			s.ConfirmedAfter = took
		}
	}
	if failed {
		c.update(w.epoch, w.key, apply)
	} else {
		c.recordWith(w.epoch, w.key, o, apply)
	}
	if out.firstUnconfirmed {
		c.log.Error("the cloud accepted the change but does not show this node within confirm_timeout; not sent again before the reclaim damping allows",
			"resource", w.key, "current", o.Current, "next_try_after", out.backoff)
	}
	if out.confirmed && c.obs != nil {
		c.obs.Phase(c.instance, vocab.PhaseCloudConfirmed, took)
	}
	if out.confirmed {
		c.events.emit(event{kind: evCloudConfirmed, instance: c.instance, generation: w.gen, resource: w.key,
			cloudRequestSent: sent, cloudConfirmed: took, requestID: last.RequestID})
	}
}

// readFailed reports a failed read of the resource; the first of a streak
// is also an event for the hooks, so that an outage of the API is one
// event, not one per reconcile.
func (w *claimer) readFailed(err error) {
	c := w.c
	if c.fail(w.epoch, w.key, err) {
		c.events.emit(event{kind: evCloudError, instance: c.instance, generation: w.gen, resource: w.key,
			requestID: requestID(cloud.CallRecord{}, err), errorCode: errorCode(err), err: err.Error()})
	}
}

// errorCode is the API's error code of err, "" when the answer gave none.
func errorCode(err error) string {
	var ae *cloud.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// requestID is the request id of a failed call: the API error's, or the
// last mutating call's.
func requestID(last cloud.CallRecord, err error) string {
	var ae *cloud.APIError
	if errors.As(err, &ae) && ae.RequestID != "" {
		return ae.RequestID
	}
	return last.RequestID
}

// confirm waits for a claimed resource to point here, announcing every
// ConfirmEvery: the cloud learns a HAVIP's master from ARP, and an
// announcement lost while the attachment was in flight would otherwise
// leave it unconfirmed.
func (w *claimer) confirm(ctx context.Context, o cloud.Ownership) cloud.Ownership {
	c, r := w.c, w.r
	deadline := time.Now().Add(c.opts.ConfirmTimeout)
	t := time.NewTicker(c.opts.ConfirmEvery)
	defer t.Stop()
	for !o.Owned && time.Now().Before(deadline) {
		if r.Kind == cloud.KindHAVIP && c.announce != nil {
			c.announce()
		}
		select {
		case <-ctx.Done():
			return o
		case <-t.C:
		}
		n, err := c.provider.Observe(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				return o
			}
			w.readFailed(err)
			continue
		}
		o = n
	}
	if !o.Owned {
		c.log.Error("cloud did not confirm this node within confirm_timeout", "resource", r.Key(), "current", o.Current, "detail", o.Detail, "confirm_timeout", c.opts.ConfirmTimeout)
	}
	return o
}

// record sets what the cloud answered as the resource's status.
func (c *cloudSide) record(epoch uint64, key string, o cloud.Ownership) {
	c.recordWith(epoch, key, o, nil)
}

// recordWith is record followed by then under the same lock: a reader
// sees what then sets together with the answer.
func (c *cloudSide) recordWith(epoch uint64, key string, o cloud.Ownership, then func(s *ResourceStatus)) {
	c.update(epoch, key, func(s *ResourceStatus) {
		s.Owned, s.Current, s.Shape, s.Detail, s.Checked = o.Owned, o.Current, o.Shape, o.Detail, time.Now()
		s.Error, s.ErrorKind = "", ""
		if s.PublicIPProblem != o.PublicIPProblem && o.PublicIPProblem != "" {
			// Reported, never fixed by force: the operator decides.
			c.log.Error("HAVIP does not hold its public IP", "resource", key, "public_ip", o.PublicIP, "problem", o.PublicIPProblem)
		}
		s.PublicIP, s.PublicIPProblem = o.PublicIP, o.PublicIPProblem
		if c.obs != nil {
			c.obs.CloudOwned(c.instance, key, o.Owned)
		}
		if then != nil {
			then(s)
		}
	})
}

// fail sets a failed call as the resource's status; first reports that
// the status held no error before (the first failure of a streak).
func (c *cloudSide) fail(epoch uint64, key string, err error) (first bool) {
	kind := vocab.ErrorTransient
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// A call cut short inside the provider, not by a stop.
	case cloud.IsAuth(err):
		kind = vocab.ErrorAuth
	case cloud.IsExpired(err):
		kind = vocab.ErrorExpired
	case cloud.IsPermanent(err):
		kind = vocab.ErrorValidation
	}
	if kind == "transient" {
		c.log.Warn("cloud call failed", "resource", key, "err", err)
	} else {
		// Never retried: an operator must act.
		c.log.Error("cloud call failed and will not be retried until the next reconcile; fix the cause", "resource", key, "kind", kind, "err", err)
	}
	c.update(epoch, key, func(s *ResourceStatus) {
		first = s.Error == ""
		s.Error, s.ErrorKind, s.Checked = err.Error(), kind, time.Now()
	})
	return first
}
