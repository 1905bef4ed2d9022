package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/havip-agent/havip-agent/agent/vocab"
	"github.com/havip-agent/havip-agent/cloud"
)

// scriptCloud is one resource whose owner the test changes, with claims
// that may fail and land later, as a cloud applying a request its sender
// gave up on does.
type scriptCloud struct {
	mu       sync.Mutex
	node     string
	owner    string
	observes []time.Time
	claims   []string // token bases
	// claimErr, when set, is what every claim answers.
	claimErr error
	// lateBy, when set with claimErr, lands the failed claim that long
	// after it was sent.
	lateBy time.Duration
	// bindable: the resource holds no public IP and the wanted one is
	// free, until a claim made while it points here binds it.
	bindable bool
}

func (f *scriptCloud) NodeID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.node
}

func (f *scriptCloud) Observe(ctx context.Context, r cloud.Resource) (cloud.Ownership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observes = append(f.observes, time.Now())
	owned := f.owner == f.node
	return cloud.Ownership{Owned: owned, Current: f.owner, PublicIPBindable: owned && f.bindable}, nil
}

func (f *scriptCloud) Claim(ctx context.Context, r cloud.Resource, tokenBase string) (cloud.Ownership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims = append(f.claims, tokenBase)
	if f.claimErr != nil {
		if f.lateBy > 0 {
			time.AfterFunc(f.lateBy, func() { f.set(f.NodeID()) })
		}
		return cloud.Ownership{Current: f.owner}, f.claimErr
	}
	if f.owner == f.node {
		f.bindable = false
	}
	f.owner = f.node
	return cloud.Ownership{Owned: true, Current: f.owner}, nil
}

func (f *scriptCloud) set(owner string) {
	f.mu.Lock()
	f.owner = owner
	f.mu.Unlock()
}

func (f *scriptCloud) counts() (observes, claims int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.observes), len(f.claims)
}

func (f *scriptCloud) tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.claims...)
}

// ownedObserver records the last CloudOwned report per resource.
type ownedObserver struct {
	mu    sync.Mutex
	owned map[string]bool
}

func (o *ownedObserver) CloudOwned(vrrpInstance, resource string, owned bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.owned == nil {
		o.owned = map[string]bool{}
	}
	o.owned[resource] = owned
}
func (o *ownedObserver) Reclaim(vrrpInstance, resource string)    {}
func (o *ownedObserver) Conflict(vrrpInstance, resource string)   {}
func (o *ownedObserver) Phase(string, vocab.Phase, time.Duration) {}

func (o *ownedObserver) get(resource string) (owned, reported bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	owned, reported = o.owned[resource]
	return owned, reported
}

var routeRes = cloud.Resource{Kind: cloud.KindRoute, Route: &cloud.RouteSpec{Table: "rt-1", Destination: "0.0.0.0/0"}}

// newScriptSide is a cloud side whose reconcile never comes within a test:
// every read before it is a re-verify.
func newScriptSide(f *scriptCloud, interval time.Duration, obs CloudObserver, res ...cloud.Resource) *cloudSide {
	if len(res) == 0 {
		res = []cloud.Resource{routeRes}
	}
	return newCloudSide("VI_1", f, res, cloudOptions{
		ReconcileInterval: interval, ReclaimMaxBackoff: 4 * interval, ConfirmTimeout: time.Second, ConfirmEvery: 100 * time.Millisecond,
	}, discard(), nil, obs)
}

// sleep advances the bubble's clock by d and lets every goroutine settle.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// Issue 11 item 2: after a claim the resource is read again at 1 s and at
// 3 s, not only after a whole reconcile_interval.
func TestCloudReverifiesAtOneAndThreeSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-peer"}
		c := newScriptSide(f, time.Hour, nil)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), true)
		elapsed := time.Duration(0)
		for _, step := range []struct {
			at       time.Duration
			observes int
		}{
			{900 * time.Millisecond, 0},
			{1100 * time.Millisecond, 1},
			{2900 * time.Millisecond, 1},
			{3100 * time.Millisecond, 2},
			{time.Minute, 2},
		} {
			sleep(step.at - elapsed)
			elapsed = step.at
			if got, _ := f.counts(); got != step.observes {
				t.Fatalf("%d reads %v after the claim, want %d", got, step.at, step.observes)
			}
		}
	})
}

// Issue 11 item 2: a late switch from the node that left takes the route
// back; the re-verify finds it within a second and claims again, under the
// reclaim damping.
func TestCloudReverifyFindsALateTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-peer"}
		interval := 10 * time.Second
		c := newScriptSide(f, interval, nil)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), true)
		sleep(500 * time.Millisecond)
		f.set("i-peer") // the late switch lands
		sleep(time.Second)
		if _, claims := f.counts(); claims != 2 {
			t.Fatalf("%d claims 1.5 s after a late takeover, want 2 (reclaimed at the re-verify)", claims)
		}
		if s := c.snapshot()[0]; !s.Owned || s.Reclaims != 1 || s.Conflicts != 0 {
			t.Fatalf("status %+v, want owned after one reclaim and no conflict", s)
		}
		// Taken again: the re-verifies after the reclaim see it, but
		// the damping holds the next reclaim until reconcile_interval
		// after the first.
		f.set("i-peer")
		sleep(8 * time.Second) // 9.5 s
		if _, claims := f.counts(); claims != 2 {
			t.Fatalf("%d claims within the backoff, want 2", claims)
		}
		sleep(11 * time.Second) // 20.5 s: the tick at 20 s may reclaim
		if _, claims := f.counts(); claims != 3 {
			t.Fatalf("%d claims after the backoff, want 3", claims)
		}
		if s := c.snapshot()[0]; s.Reclaims != 2 || s.Conflicts != 1 {
			t.Errorf("status %+v, want 2 reclaims, 1 conflict", s)
		}
	})
}

// Issue 11 item 2: a claim that timed out or was cut short may still be
// applied; its next step is a read at the re-verify, never a repeat of the
// claim, and it is a transient error, not one an operator must fix.
func TestCloudFailedClaimIsReadNotRepeated(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"timeout", &cloud.TransportError{Operation: "route.switch", Err: context.DeadlineExceeded}},
		{"cancelled inside the provider", fmt.Errorf("route.switch: %w", context.Canceled)},
		{"server error", &cloud.APIError{StatusCode: 500, Code: "InternalError"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &scriptCloud{node: "i-self", owner: "i-peer", claimErr: c.err, lateBy: 2 * time.Second}
				cs := newScriptSide(f, time.Hour, nil)
				defer func() { cs.stop(); cs.wait() }()
				cs.start(1, time.Now(), true)
				synctest.Wait()
				if s := cs.snapshot()[0]; s.ErrorKind != "transient" {
					t.Errorf("error kind %q for %v, want transient", s.ErrorKind, c.err)
				}
				sleep(1100 * time.Millisecond)
				if obs, claims := f.counts(); obs != 1 || claims != 1 {
					t.Fatalf("%d reads, %d claims 1.1 s after a failed claim, want 1 read and no second claim", obs, claims)
				}
				sleep(2 * time.Second) // 3.1 s: the claim landed at 2 s
				if s := cs.snapshot()[0]; !s.Owned {
					t.Fatalf("status %+v: the late claim was not seen", s)
				}
				if _, claims := f.counts(); claims != 1 {
					t.Errorf("%d claims, want 1", claims)
				}
			})
		})
	}
	t.Run("refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &scriptCloud{node: "i-self", owner: "i-peer", claimErr: &cloud.APIError{StatusCode: 403, Code: cloud.CodeAccessDenied}}
			cs := newScriptSide(f, time.Hour, nil)
			defer func() { cs.stop(); cs.wait() }()
			cs.start(1, time.Now(), true)
			sleep(5 * time.Second)
			// Nothing was applied: no reason to read before the reconcile.
			if obs, claims := f.counts(); obs != 0 || claims != 1 {
				t.Errorf("%d reads, %d claims after a refused claim, want 0 and 1", obs, claims)
			}
		})
	})
}

// Issue 11 item 1: a MASTER restored from disk reads the cloud and writes
// nothing until keepalived confirms it.
func TestCloudReadOnlyStartWaitsForPermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-peer"}
		c := newScriptSide(f, 10*time.Second, nil)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), false)
		synctest.Wait()
		if obs, claims := f.counts(); obs != 1 || claims != 0 {
			t.Fatalf("%d reads, %d claims at a read-only start, want 1 and 0", obs, claims)
		}
		sleep(time.Minute)
		if obs, claims := f.counts(); obs < 6 || claims != 0 {
			t.Fatalf("%d reads, %d claims in a minute read-only, want a read per reconcile and no claim", obs, claims)
		}
		if s := c.snapshot()[0]; s.Owned || s.Current != "i-peer" || s.Claims != 0 {
			t.Errorf("status %+v, want the peer's, unclaimed", s)
		}
		c.permitWrites(2) // another generation's permission
		synctest.Wait()
		if _, claims := f.counts(); claims != 0 {
			t.Fatalf("claimed on another generation's permission")
		}
		c.permitWrites(1)
		synctest.Wait()
		if got := f.tokens(); len(got) != 1 || got[0] != "i-self/VI_1/1/route/rt-1/0.0.0.0/0/1" {
			t.Fatalf("claims %q after permission, want one, attempt 1", got)
		}
		if s := c.snapshot()[0]; !s.Owned {
			t.Errorf("status %+v, want owned", s)
		}
		c.permitWrites(1) // twice is harmless
	})
}

// Issue 11 item 1: permission for a resource that still points here writes
// nothing; and a read-only start stopped before permission never writes.
func TestCloudReadOnlyStartOwnedOrStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-self"}
		c := newScriptSide(f, 10*time.Second, nil)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), false)
		synctest.Wait()
		if s := c.snapshot()[0]; !s.Owned {
			t.Fatalf("status %+v, want owned (the cloud still points here)", s)
		}
		c.permitWrites(1)
		sleep(time.Minute)
		if _, claims := f.counts(); claims != 0 {
			t.Errorf("%d claims for a resource that points here", claims)
		}
		// Lost after the permission: a reclaim, as for any MASTER.
		f.set("i-peer")
		sleep(10*time.Second + 500*time.Millisecond)
		if s := c.snapshot()[0]; !s.Owned || s.Reclaims != 1 {
			t.Errorf("status %+v, want reclaimed once", s)
		}
		c.stop()
		c.wait()

		g := &scriptCloud{node: "i-self", owner: "i-peer"}
		d := newScriptSide(g, 10*time.Second, nil)
		defer func() { d.stop(); d.wait() }()
		d.start(1, time.Now(), false)
		sleep(15 * time.Second)
		d.stop()
		d.permitWrites(1)
		sleep(time.Minute)
		if _, claims := g.counts(); claims != 0 {
			t.Errorf("%d claims from a read-only start stopped before permission", claims)
		}
		d.wait()
	})
}

// Issue 11 item 14: leaving MASTER reports every resource as not owned, so
// a BACKUP never shows cloud_owned 1.
func TestCloudStopReportsNotOwned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-peer"}
		obs := &ownedObserver{}
		eip := cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "198.18.0.200"}}
		c := newScriptSide(f, 10*time.Second, obs, routeRes, eip)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), true)
		synctest.Wait()
		for _, r := range []cloud.Resource{routeRes, eip} {
			if owned, _ := obs.get(r.Key()); !owned {
				t.Fatalf("%s not reported owned after the claim", r.Key())
			}
		}
		c.stop()
		for _, r := range []cloud.Resource{routeRes, eip} {
			if owned, reported := obs.get(r.Key()); owned || !reported {
				t.Errorf("%s: owned %v reported %v after stop, want reported not owned", r.Key(), owned, reported)
			}
		}
		for _, s := range c.snapshot() {
			if s.Owned {
				t.Errorf("status %+v after stop, want not owned", s)
			}
		}
		c.wait()
		// Nothing the stopped goroutines still did reports otherwise.
		sleep(time.Minute)
		if owned, _ := obs.get(routeRes.Key()); owned {
			t.Error("reported owned after stop")
		}
	})
}

// Issue 11 item 7: the provider may learn the node id after the cloud
// side was built; tokens carry the id known when they are made.
func TestCloudTokenUsesTheNodeIDKnownWhenClaiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{owner: "i-peer"} // no node id yet
		c := newScriptSide(f, 10*time.Second, nil)
		defer func() { c.stop(); c.wait() }()
		f.mu.Lock()
		f.node = "i-late"
		f.mu.Unlock()
		c.start(1, time.Now(), true)
		synctest.Wait()
		if got := f.tokens(); len(got) != 1 || !strings.HasPrefix(got[0], "i-late/") {
			t.Errorf("token bases %q, want one starting with the node id i-late", got)
		}
	})
}

// A generation started again (a reload hands the cloud side on) continues
// its attempts: a token base used once is never used again, or the cloud
// would answer the new claim from its idempotency cache.
func TestCloudRestartOfAGenerationUsesNewTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-peer"}
		c := newScriptSide(f, 10*time.Second, nil)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), true)
		synctest.Wait()
		f.set("i-peer")
		c.start(1, time.Now(), true)
		synctest.Wait()
		got := f.tokens()
		if len(got) != 2 || got[0] == got[1] {
			t.Errorf("token bases %q, want two different ones", got)
		}
		c.start(2, time.Now(), true)
		synctest.Wait()
		if got := f.tokens(); len(got) != 3 || !strings.HasSuffix(got[2], "/2/route/rt-1/0.0.0.0/0/1") {
			t.Errorf("token bases %q, want a new generation to start at attempt 1", got)
		}
	})
}

// Issue 13, item 5: a change the cloud answered 200 to but never shows is
// not sent again at every reconcile: the next try waits for the reclaim
// damping, and it is reported.
func TestCloudUnconfirmedClaimIsDamped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-peer",
			claimErr: &cloud.PendingError{Op: "route.switch", Reason: "read-back shows i-peer", Accepted: true}}
		c := newCloudSide("VI_1", f, []cloud.Resource{routeRes}, cloudOptions{
			ReconcileInterval: 10 * time.Second, ReclaimMaxBackoff: 40 * time.Second, ConfirmTimeout: time.Second, ConfirmEvery: 100 * time.Millisecond,
		}, discard(), nil, nil)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), true)
		// Reconciles at 10, 20, 30, ... s: undamped, a claim at each.
		sleep(65 * time.Second)
		if _, claims := f.counts(); claims > 4 {
			t.Errorf("%d claims in 65 s with reconcile every 10 s: the unconfirmed change was not damped", claims)
		}
		if s := c.snapshot()[0]; s.Unconfirmed == 0 {
			t.Errorf("not reported: %+v", s)
		}
	})
}

// A HAVIP that points here but holds no public IP, with the wanted one
// free, gets it bound by a claim with a new token: not a reclaim, as
// nobody took anything away.
func TestCloudBindsAFreePublicIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &scriptCloud{node: "i-self", owner: "i-peer", bindable: true}
		c := newScriptSide(f, 10*time.Second, nil)
		defer func() { c.stop(); c.wait() }()
		c.start(1, time.Now(), true)
		synctest.Wait()
		if _, claims := f.counts(); claims != 1 {
			t.Fatalf("%d claims at the start, want 1", claims)
		}
		sleep(time.Second) // the first re-verify sees the public IP free
		if got := f.tokens(); len(got) != 2 || got[0] == got[1] {
			t.Fatalf("token bases %q, want two different ones", got)
		}
		sleep(time.Minute)
		if _, claims := f.counts(); claims != 2 {
			t.Errorf("%d claims, want 2: the bound public IP is not claimed again", claims)
		}
		if s := c.snapshot()[0]; !s.Owned || s.Claims != 2 || s.Reclaims != 0 || s.Conflicts != 0 {
			t.Errorf("status %+v, want owned after 2 claims and no reclaim", s)
		}
	})
}
