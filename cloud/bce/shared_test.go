package bce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
)

// manyRoutes fills table rt-1 of f with n routes of this node: HA pairs active on the peer's
// gateway, or single-line rules pointing at the peer.
func manyRoutes(f *fakeBCE, n int, ha bool) []cloud.Resource {
	var rs []cloud.Resource
	for i := range n {
		dest := fmt.Sprintf("10.%d.0.0/16", i)
		if ha {
			f.rules = append(f.rules,
				vpc.RouteRule{RouteRuleId: fmt.Sprintf("rr-a%d", i), RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: dest,
					NexthopType: "dcGateway", NexthopId: gwOther, PathType: "ha:active"},
				vpc.RouteRule{RouteRuleId: fmt.Sprintf("rr-b%d", i), RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: dest,
					NexthopType: "dcGateway", NexthopId: gwSelf, PathType: "ha:standby"})
			r := routeRes("rt-1", dest, cloud.RouteSwitch)
			r.Route.NextHop, r.Route.NextHopType = gwSelf, "dcGateway"
			rs = append(rs, r)
			continue
		}
		f.rules = append(f.rules, vpc.RouteRule{RouteRuleId: fmt.Sprintf("rr-s%d", i), RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0",
			DestinationAddress: dest, NexthopType: "custom", NexthopId: "i-other"})
		rs = append(rs, routeRes("rt-1", dest, cloud.RouteUpdate))
	}
	return rs
}

// claimAll claims every resource concurrently and fails t unless each ends owned.
func claimAll(t *testing.T, c *Client, rs []cloud.Resource) {
	t.Helper()
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o, err := c.Claim(context.Background(), r, fmt.Sprintf("gen-1/%d", i)); err != nil || !o.Owned {
				t.Errorf("Claim %s = %+v, %v", r, o, err)
			}
		}()
	}
	wg.Wait()
}

// readsBeforeWrites counts the route list requests before the first mutation.
func readsBeforeWrites(f *fakeBCE) (reads, writes int) {
	for _, r := range f.requests() {
		switch {
		case r.Method != http.MethodGet:
			writes++
		case writes == 0 && r.Path == "/v1/route/rule":
			reads++
		}
	}
	return reads, writes
}

// TestTableReadShared: the routes of one table claimed together share one read of the table
// (one request per page) before their writes, for HA pairs (which always read first) and for
// single-line rules without a picture.
func TestTableReadShared(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ha      bool
		pageLen int
		want    int
	}{
		{name: "32 HA pairs", ha: true, pageLen: 1000, want: 1},
		{name: "32 single-line rules", pageLen: 1000, want: 1},
		{name: "32 HA pairs, four pages", ha: true, pageLen: 16, want: 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBCE(t)
			f.pageLen = tt.pageLen
			rs := manyRoutes(f, 32, tt.ha)
			c, _ := f.client(t, func(o *Options) { o.RateLimit = -1 })
			// Long enough for every goroutine to start on a loaded machine: the test is about
			// the sharing, not the moment.
			c.tables.gather = 200 * time.Millisecond
			claimAll(t, c, rs)
			if reads, writes := readsBeforeWrites(f); reads != tt.want || writes != 32 {
				t.Errorf("%d list requests before the writes and %d writes, want %d and 32", reads, writes, tt.want)
			}
		})
	}
}

// slowLists delays the answers of route list requests, after the server answered, while on is
// set: a read in flight whose answer shows the table as it was when it was sent.
type slowLists struct {
	base http.RoundTripper
	mu   sync.Mutex
	on   time.Duration
	sent chan struct{}
}

func (s *slowLists) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	s.mu.Lock()
	d := s.on
	s.mu.Unlock()
	if err == nil && r.Method == http.MethodGet && r.URL.Path == "/v1/route/rule" && d > 0 {
		s.sent <- struct{}{}
		time.Sleep(d)
	}
	return resp, err
}

func (s *slowLists) set(d time.Duration) {
	s.mu.Lock()
	s.on = d
	s.mu.Unlock()
}

// TestTableReadNeverOlderThanTheClaim: a claim never joins a read sent before it began, so a
// switch is decided on a read of its own; an Observe may join a read in flight; and no caller
// after a mutation of the table gets a read sent before it.
func TestTableReadNeverOlderThanTheClaim(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	slow := &slowLists{base: http.DefaultTransport, sent: make(chan struct{}, 10)}
	c, _ := f.client(t, func(o *Options) { o.HTTPClient = &http.Client{Transport: slow}; o.RateLimit = -1 })
	ctx := context.Background()
	res := haRes(gwSelf, cloud.RouteSwitch)

	slow.set(300 * time.Millisecond)
	observed := make(chan cloud.Ownership, 2)
	go func() { o, _ := c.Observe(ctx, res); observed <- o }()
	<-slow.sent // the observe's read has its (old) answer and is held on the way back
	slow.set(0)
	go func() { o, _ := c.Observe(ctx, res); observed <- o }() // joins the read in flight
	time.Sleep(20 * time.Millisecond)
	o, err := c.Claim(ctx, res, tokenBase)
	if err != nil || !o.Owned {
		t.Fatalf("Claim = %+v, %v", o, err)
	}
	for range 2 {
		if o := <-observed; o.Owned {
			t.Errorf("an observe joined after the claim's switch: %+v", o)
		}
	}
	lines := requestLines(f)
	if want := []string{listRules, listRules, switchRA, listRules}; fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("requests %q, want %q: the observes share one read, the claim reads on its own, then switches and reads back", lines, want)
	}

	// A read sent before a mutation of its table serves nobody after the mutation.
	f.mu.Lock()
	f.rules = haPair(gwOther, gwSelf)
	f.mu.Unlock()
	slow.set(300 * time.Millisecond)
	go func() { o, _ := c.Observe(ctx, res); observed <- o }()
	<-slow.sent
	slow.set(0)
	c.tables.wrote("rt-1", time.Now()) // as a switch or update sent now does
	if o, err := c.Observe(ctx, res); err != nil || o.Current != gwOther {
		t.Fatalf("Observe after the mutation = %+v, %v", o, err)
	}
	<-observed
	if n := strings.Count(strings.Join(requestLines(f), " "), listRules); n != 5 {
		t.Errorf("%d list requests in all, want 5: the observe after the mutation read again", n)
	}
}

// queued is the number of calls waiting for c's limiter.
func queued(c *Client) int {
	c.lim.mu.Lock()
	defer c.lim.mu.Unlock()
	return c.lim.queue.Len()
}

// TestLimiterOrdersTheClient: when the Client's limit makes calls wait, a claim's attach goes
// before an Observe that was waiting first.
func TestLimiterOrdersTheClient(t *testing.T) {
	emu, c, _ := newEmulator(t, func(o *Options) { o.RateLimit, o.RateBurst = 2, 1 })
	ctx := context.Background()
	if _, err := c.Observe(ctx, havipRes("havip-1", cloud.BindAttach)); err != nil { // the picture; the token
		t.Fatal(err)
	}
	observed := make(chan error, 1)
	go func() { _, err := c.Observe(ctx, routeRes("rt-1", "10.9.0.0/16", cloud.RouteAuto)); observed <- err }()
	for queued(c) != 1 {
		time.Sleep(time.Millisecond)
	}
	claimed := make(chan error, 1)
	go func() { _, err := c.Claim(ctx, havipRes("havip-1", cloud.BindAttach), tokenBase); claimed <- err }()
	for queued(c) != 2 {
		time.Sleep(time.Millisecond)
	}
	if err := <-claimed; err != nil {
		t.Fatal(err)
	}
	if err := <-observed; err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range emu.Requests() {
		ops = append(ops, r.Operation)
	}
	// The claim's read-back outranks the observe too.
	if want := "havip.detail havip.attach havip.detail route.rule.list"; strings.Join(ops, " ") != want {
		t.Errorf("requests %v, want %s: the attach and its read-back before the observe that waited longer", ops, want)
	}
}
