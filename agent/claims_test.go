package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// fakeCloud is one resource whose owner the test can change.
type fakeCloud struct {
	mu      sync.Mutex
	owner   string
	claims  []string // token bases
	observe int
	fail    error
	// pendingReads is how many reads after a claim still show the old
	// owner (the HAVIP master is learned from ARP, later).
	pendingReads int
	lag          int
}

func (f *fakeCloud) NodeID() string { return "i-self" }

func (f *fakeCloud) Observe(ctx context.Context, r cloud.Resource) (cloud.Ownership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observe++
	if f.lag > 0 {
		f.lag--
		return cloud.Ownership{Owned: false, Current: "i-old"}, nil
	}
	return cloud.Ownership{Owned: f.owner == "i-self", Current: f.owner}, nil
}

func (f *fakeCloud) Claim(ctx context.Context, r cloud.Resource, tokenBase string) (cloud.Ownership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims = append(f.claims, tokenBase)
	if f.fail != nil {
		return cloud.Ownership{}, f.fail
	}
	if f.owner != "i-self" {
		f.owner = "i-self"
		f.lag = f.pendingReads
	}
	if f.lag > 0 {
		return cloud.Ownership{Current: "i-old"}, &cloud.PendingError{Op: "x", Reason: "pending"}
	}
	return cloud.Ownership{Owned: true, Current: "i-self"}, nil
}

func (f *fakeCloud) set(owner string) {
	f.mu.Lock()
	f.owner = owner
	f.mu.Unlock()
}

func (f *fakeCloud) claimCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.claims)
}

var havipRes = cloud.Resource{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-1"}}

func newTestCloud(f *fakeCloud, interval, maxBackoff time.Duration, announce func()) *cloudSide {
	return newCloudSide("VI_1", f, []cloud.Resource{havipRes}, cloudOptions{
		ReconcileInterval: interval, ReclaimMaxBackoff: maxBackoff, ConfirmTimeout: time.Second, ConfirmEvery: 5 * time.Millisecond,
	}, discard(), announce, nil)
}

func TestCloudClaimsOnceAndConfirmsWithAnnouncements(t *testing.T) {
	f := &fakeCloud{owner: "i-peer", pendingReads: 3}
	var mu sync.Mutex
	announced := 0
	c := newTestCloud(f, time.Hour, time.Hour, func() { mu.Lock(); announced++; mu.Unlock() })
	c.start(1, time.Now(), true)
	defer c.stop()
	if !eventually(func() bool { s := c.snapshot()[0]; return s.Owned }) {
		t.Fatalf("not confirmed: %+v", c.snapshot())
	}
	mu.Lock()
	defer mu.Unlock()
	if announced < 1 {
		t.Error("no announcement while the HAVIP master was unconfirmed")
	}
	if n := f.claimCount(); n != 1 {
		t.Errorf("%d claims, want 1", n)
	}
	if got := f.claims[0]; got != "i-self/VI_1/1/havip/havip-1/1" {
		t.Errorf("token base %q", got)
	}
	// Status shows how long the cloud took to show it: the last cloud_confirmed phase.
	if d := c.snapshot()[0].ConfirmedAfter; d <= 0 {
		t.Errorf("ConfirmedAfter = %v, want the measured confirmation time", d)
	}
}

func TestCloudReclaimDampingAndConflicts(t *testing.T) {
	f := &fakeCloud{owner: "i-peer"}
	interval := 10 * time.Millisecond
	c := newTestCloud(f, interval, 40*time.Millisecond, nil)
	c.start(1, time.Now(), true)
	defer c.stop()
	if !eventually(func() bool { return c.snapshot()[0].Owned }) {
		t.Fatal("not owned")
	}
	// The peer keeps taking the resource away for 400 ms.
	stop := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(stop) {
		f.set("i-peer")
		time.Sleep(time.Millisecond)
	}
	claims := f.claimCount()
	// Without damping there would be one reclaim per interval (~40);
	// with backoff capped at 40 ms, about 400/40 + a few.
	if claims > 20 {
		t.Errorf("%d claims in 400 ms: damping does not hold", claims)
	}
	s := c.snapshot()[0]
	if s.Reclaims < 2 || s.Conflicts != s.Reclaims-1 {
		t.Errorf("reclaims %d conflicts %d, want conflicts = reclaims-1 >= 1", s.Reclaims, s.Conflicts)
	}
	// The peer steps down: this node wins the cloud back within
	// max backoff + interval (generous bound for loaded machines).
	if !eventually(func() bool { return c.snapshot()[0].Owned }) {
		t.Fatal("cloud not won back after the peer stepped down")
	}
	// Each claim has its own token.
	seen := map[string]bool{}
	for _, tok := range f.claims {
		if seen[tok] {
			t.Errorf("token base %q reused by a reclaim", tok)
		}
		seen[tok] = true
	}
}

func TestCloudStopMeansNoMoreClaims(t *testing.T) {
	f := &fakeCloud{owner: "i-peer"}
	c := newTestCloud(f, 5*time.Millisecond, 5*time.Millisecond, nil)
	c.start(1, time.Now(), true)
	if !eventually(func() bool { return c.snapshot()[0].Owned }) {
		t.Fatal("not owned")
	}
	c.stop()
	c.wait()
	n := f.claimCount()
	f.set("i-peer")
	time.Sleep(50 * time.Millisecond)
	if f.claimCount() != n {
		t.Error("claimed after stop")
	}
}

func TestCloudPermanentErrorReported(t *testing.T) {
	f := &fakeCloud{owner: "i-peer", fail: &cloud.APIError{StatusCode: 403, Code: "AccessDenied", Message: "no"}}
	c := newTestCloud(f, time.Hour, time.Hour, nil)
	c.start(1, time.Now(), true)
	defer c.stop()
	if !eventually(func() bool { return c.snapshot()[0].Error != "" }) {
		t.Fatal("error not reported")
	}
	if s := c.snapshot()[0]; s.ErrorKind != "auth" || !strings.Contains(s.Error, "AccessDenied") {
		t.Errorf("status %+v", s)
	}
}

// Regression (issue 7, scenario 4): keepalived stopped after a reload
// wrote no STOP line; before the liveness watch declared it dead the agent
// took the cloud back from the node that had taken over (two extra
// switches). A reclaim now first asks MayReclaim.
func TestCloudNoReclaimWhileKeepalivedGone(t *testing.T) {
	f := &fakeCloud{owner: "i-peer"}
	var mu sync.Mutex
	var gone error
	c := newCloudSide("VI_1", f, []cloud.Resource{havipRes}, cloudOptions{
		ReconcileInterval: 5 * time.Millisecond, ReclaimMaxBackoff: 5 * time.Millisecond, ConfirmTimeout: time.Second, ConfirmEvery: 5 * time.Millisecond,
		MayReclaim: func() error { mu.Lock(); defer mu.Unlock(); return gone },
	}, discard(), nil, nil)
	c.start(1, time.Now(), true)
	defer c.stop()
	if !eventually(func() bool { return c.snapshot()[0].Owned }) {
		t.Fatal("not owned")
	}
	mu.Lock()
	gone = errors.New("keepalived process 42 is gone")
	mu.Unlock()
	n := f.claimCount()
	f.set("i-peer")
	time.Sleep(100 * time.Millisecond)
	if got := f.claimCount(); got != n {
		t.Errorf("%d claims while keepalived was gone, want 0", got-n)
	}
	mu.Lock()
	gone = nil
	mu.Unlock()
	if !eventually(func() bool { return c.snapshot()[0].Owned }) {
		t.Error("not reclaimed once keepalived was back")
	}
}

// A reclaim of a HAVIP announces before it claims: the cloud learns the
// master from ARP, and the transition's burst is long over.
func TestCloudReclaimOfHAVIPAnnouncesFirst(t *testing.T) {
	f := &fakeCloud{owner: "i-self"}
	var mu sync.Mutex
	var claimsBefore []int // claims made when each announcement went out
	c := newTestCloud(f, 10*time.Millisecond, time.Hour, func() {
		n := f.claimCount()
		mu.Lock()
		claimsBefore = append(claimsBefore, n)
		mu.Unlock()
	})
	c.start(1, time.Now(), true)
	defer c.stop()
	if !eventually(func() bool { return c.snapshot()[0].Owned }) {
		t.Fatal("not owned")
	}
	mu.Lock()
	got := len(claimsBefore)
	mu.Unlock()
	if got != 0 {
		t.Fatalf("%d announcements before any reclaim, want 0 (the transition's burst does that)", got)
	}
	f.set("i-peer")
	if !eventually(func() bool { return f.claimCount() == 2 && c.snapshot()[0].Owned }) {
		t.Fatalf("not reclaimed: %+v", c.snapshot())
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1}; !slices.Equal(claimsBefore, want) {
		t.Errorf("claims made at each announcement %v, want %v (one, before the reclaim)", claimsBefore, want)
	}
}
