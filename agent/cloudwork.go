package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// CloudOptions are the timings of the cloud side.
type CloudOptions struct {
	ReconcileInterval time.Duration
	ReclaimMaxBackoff time.Duration
	ConfirmTimeout    time.Duration
	// ConfirmEvery is how often an unconfirmed HAVIP gets a new
	// announcement burst and a read; 0 means one second.
	ConfirmEvery time.Duration
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
	Resource    string    `json:"resource"`
	Owned       bool      `json:"owned"`
	Current     string    `json:"current,omitempty"`
	Shape       string    `json:"shape,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	Checked     time.Time `json:"checked,omitzero"`
	LastClaim   time.Time `json:"last_claim,omitzero"`
	Claims      int       `json:"claims"`
	Reclaims    int       `json:"reclaims"`
	Conflicts   int       `json:"conflicts"`
	NextReclaim time.Time `json:"next_reclaim,omitzero"`
	PublicIP    string    `json:"public_ip,omitempty"`
	// PublicIPProblem says why a HAVIP does not hold its public IP.
	PublicIPProblem string `json:"public_ip_problem,omitempty"`
	Error           string `json:"error,omitempty"`
	// ErrorKind is "auth", "validation", "expired" or "transient".
	ErrorKind string `json:"error_kind,omitempty"`
}

// CloudObserver is told what the cloud side does (metrics).
type CloudObserver interface {
	CloudOwned(vrrpInstance, resource string, owned bool)
	Reclaim(vrrpInstance, resource string)
	Conflict(vrrpInstance, resource string)
	Phase(vrrpInstance, phase string, d time.Duration)
}

// cloudSide claims an instance's resources while it is MASTER. The actor
// starts it on every MASTER transition and stops it on every other one;
// it never waits for it, so local actions are never delayed by the cloud.
type cloudSide struct {
	instance  string
	node      string
	provider  cloud.Provider
	resources []cloud.Resource
	opts      CloudOptions
	log       *slog.Logger
	announce  func()
	obs       CloudObserver

	mu     sync.Mutex
	cancel context.CancelFunc
	gen    uint64
	status map[string]*ResourceStatus
	wg     sync.WaitGroup
}

func newCloudSide(instance string, p cloud.Provider, res []cloud.Resource, opts CloudOptions, log *slog.Logger, announce func(), obs CloudObserver) *cloudSide {
	if opts.ConfirmEvery == 0 {
		opts.ConfirmEvery = time.Second
	}
	c := &cloudSide{instance: instance, node: p.NodeID(), provider: p, resources: res, opts: opts, log: log, announce: announce, obs: obs,
		status: map[string]*ResourceStatus{}}
	for _, r := range res {
		c.status[r.Key()] = &ResourceStatus{Resource: r.Key()}
	}
	return c
}

// start begins claiming for generation gen, cancelling whatever an older
// generation still does. received is when the MASTER event arrived.
func (c *cloudSide) start(gen uint64, received time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.gen = cancel, gen
	for _, r := range c.resources {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.run(ctx, gen, r, received)
		}()
	}
}

// stop cancels every claim: no mutating call starts after it returns.
func (c *cloudSide) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
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

// update changes a resource's status unless a newer generation owns it.
func (c *cloudSide) update(gen uint64, key string, f func(s *ResourceStatus)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return false
	}
	f(c.status[key])
	return true
}

// tokenBase identifies one claim: this node, the VRRP instance, the
// transition and the attempt. Retries of one claim reuse it; a reclaim is a
// new attempt with a new token, or the cloud would answer it from its
// idempotency cache without applying it.
func (c *cloudSide) tokenBase(gen uint64, r cloud.Resource, attempt int) string {
	return fmt.Sprintf("%s/%s/%d/%s/%d", c.node, c.instance, gen, r.Key(), attempt)
}

// run claims r at once, then reconciles it every interval: a resource the
// cloud no longer points at this node is claimed again, with exponential
// damping so that two nodes that both believe they are MASTER cannot fight
// without end.
func (c *cloudSide) run(ctx context.Context, gen uint64, r cloud.Resource, received time.Time) {
	key := r.Key()
	attempt := 0
	backoff := time.Duration(0) // 0: the next reclaim is the first
	var nextAllowed, heldSince time.Time
	// held is set once the cloud pointed here after a claim: losing it
	// then is a reclaim; not having it yet is a claim still to finish.
	held := false

	claim := func() bool {
		attempt++
		if attempt > 1 && r.Kind == cloud.KindHAVIP && c.announce != nil {
			// The cloud moves a HAVIP's master when it sees this node's
			// gratuitous ARP: the transition's burst is long over by a
			// reclaim, so announce now rather than let the claim wait
			// for confirm's first announcement.
			c.announce()
		}
		now := time.Now()
		c.update(gen, key, func(s *ResourceStatus) { s.LastClaim = now; s.Claims++ })
		o, err := c.provider.Claim(ctx, r, c.tokenBase(gen, r, attempt))
		if ctx.Err() != nil {
			return false
		}
		if attempt == 1 && c.obs != nil {
			c.obs.Phase(c.instance, "cloud_request_sent", time.Since(received))
		}
		var pending *cloud.PendingError
		if err != nil && !errors.As(err, &pending) {
			c.fail(gen, key, err)
			return false
		}
		if !o.Owned {
			o = c.confirm(ctx, gen, r, o)
		}
		c.record(gen, key, o, nil)
		if o.Owned {
			held, heldSince = true, time.Now()
			if attempt == 1 && c.obs != nil {
				c.obs.Phase(c.instance, "cloud_confirmed", time.Since(received))
			}
		}
		return o.Owned
	}
	claim()

	t := time.NewTicker(c.opts.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o, err := c.provider.Observe(ctx, r)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.fail(gen, key, err)
			continue
		}
		c.record(gen, key, o, nil)
		now := time.Now()
		if o.Owned {
			held = true
			if heldSince.IsZero() {
				heldSince = now
			}
			if o.PublicIPBindable {
				// The HAVIP holds no public IP and the wanted one is
				// free: bind it (a claim with a new token, not a
				// reclaim: nobody took anything away).
				claim()
			}
			if backoff > 0 && now.Sub(heldSince) >= c.opts.ReconcileInterval {
				backoff = 0
				c.update(gen, key, func(s *ResourceStatus) { s.NextReclaim = time.Time{} })
			}
			continue
		}
		heldSince = time.Time{}
		if c.opts.MayReclaim != nil {
			if err := c.opts.MayReclaim(); err != nil {
				c.log.Warn("cloud points elsewhere; not claiming it back now", "resource", key, "current", o.Current, "reason", err)
				continue
			}
		}
		if !held {
			// The last claim failed or is unconfirmed: try again, with
			// a new token, without counting it as a reclaim.
			claim()
			continue
		}
		if now.Before(nextAllowed) {
			continue
		}
		// Every reclaim after the first is a conflict: someone keeps
		// taking the resource away.
		conflict := backoff > 0
		if backoff == 0 {
			backoff = c.opts.ReconcileInterval
		} else {
			backoff = min(2*backoff, c.opts.ReclaimMaxBackoff)
		}
		nextAllowed = now.Add(backoff)
		c.update(gen, key, func(s *ResourceStatus) {
			s.Reclaims++
			if conflict {
				s.Conflicts++
			}
			s.NextReclaim = nextAllowed
		})
		if c.obs != nil {
			c.obs.Reclaim(c.instance, key)
			if conflict {
				c.obs.Conflict(c.instance, key)
			}
		}
		lvl := slog.LevelWarn
		if conflict {
			lvl = slog.LevelError
		}
		c.log.Log(ctx, lvl, "cloud points elsewhere; claiming again", "resource", key, "current", o.Current, "conflict", conflict, "next_reclaim_after", backoff)
		claim()
	}
}

// confirm waits for a claimed resource to point here, announcing every
// ConfirmEvery: the cloud learns a HAVIP's master from ARP, and an
// announcement lost while the attachment was in flight would otherwise
// leave it unconfirmed.
func (c *cloudSide) confirm(ctx context.Context, gen uint64, r cloud.Resource, o cloud.Ownership) cloud.Ownership {
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
			c.fail(gen, r.Key(), err)
			continue
		}
		o = n
	}
	if !o.Owned {
		c.log.Error("cloud did not confirm this node within confirm_timeout", "resource", r.Key(), "current", o.Current, "detail", o.Detail, "confirm_timeout", c.opts.ConfirmTimeout)
	}
	return o
}

func (c *cloudSide) record(gen uint64, key string, o cloud.Ownership, err error) {
	if c.update(gen, key, func(s *ResourceStatus) {
		s.Owned, s.Current, s.Shape, s.Detail, s.Checked = o.Owned, o.Current, o.Shape, o.Detail, time.Now()
		s.Error, s.ErrorKind = "", ""
		if s.PublicIPProblem != o.PublicIPProblem && o.PublicIPProblem != "" {
			// Reported, never fixed by force: the operator decides.
			c.log.Error("HAVIP does not hold its public IP", "resource", key, "public_ip", o.PublicIP, "problem", o.PublicIPProblem)
		}
		s.PublicIP, s.PublicIPProblem = o.PublicIP, o.PublicIPProblem
	}) && c.obs != nil {
		c.obs.CloudOwned(c.instance, key, o.Owned)
	}
}

func (c *cloudSide) fail(gen uint64, key string, err error) {
	kind := "transient"
	switch {
	case cloud.IsAuth(err):
		kind = "auth"
	case cloud.IsExpired(err):
		kind = "expired"
	case cloud.IsPermanent(err):
		kind = "validation"
	}
	if kind == "transient" {
		c.log.Warn("cloud call failed", "resource", key, "err", err)
	} else {
		// Never retried: an operator must act.
		c.log.Error("cloud call failed and will not be retried until the next reconcile; fix the cause", "resource", key, "kind", kind, "err", err)
	}
	c.update(gen, key, func(s *ResourceStatus) { s.Error, s.ErrorKind, s.Checked = err.Error(), kind, time.Now() })
}
