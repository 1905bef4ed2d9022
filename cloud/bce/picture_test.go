package bce

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/baidubce/bce-sdk-go/bce"
	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/cloud/emulator"
)

// failoverResources are emuSeed's HAVIP (bound to i-b) and single-line rule (to i-b), as node
// i-a claims them.
func failoverResources() []cloud.Resource {
	return []cloud.Resource{havipRes("havip-1", cloud.BindAttach), routeRes("rt-1", "10.9.0.0/16", cloud.RouteUpdate)}
}

// claimConcurrently claims rs at once, as the agent does on MASTER, and fails t unless every
// claim ends owned.
func claimConcurrently(t *testing.T, c *Client, rs []cloud.Resource) {
	t.Helper()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o, err := c.Claim(context.Background(), r, "gen-9/"+r.Key()); err != nil || !o.Owned {
				t.Errorf("Claim %s = %+v, %v", r, o, err)
			}
		}()
	}
	wg.Wait()
}

// converged finds, in the emulator's log, the request that made resource point at i-a (path
// is the request path of the resource, prefix for the route's) and counts the requests of the
// same resource that arrived after start and before it: the round trips the claim spent before
// the cloud moved.
func converged(t *testing.T, l emulator.Log, start time.Time, path, change string) (before int, at time.Time) {
	t.Helper()
	var id string
	for _, ch := range l.Changes {
		if ch.Time.After(start) && strings.Contains(ch.Message, change) {
			id, at = ch.RequestID, ch.Time
			break
		}
	}
	if id == "" {
		t.Fatalf("no change %q after the claims began", change)
	}
	for _, r := range l.Requests {
		if r.RequestID == id {
			return before, at
		}
		if r.Received.After(start) && strings.HasPrefix(r.Path, path) {
			before++
		}
	}
	t.Fatalf("no request %s", id)
	return 0, at
}

// TestFailoverRoundTrips: with a recent picture (the reads a BACKUP's keep-warm makes), a
// failover of one HAVIP and one single-line route sends the attach and the update first, with
// no read before them: the cloud points at the new MASTER within the first round trip. Without
// a picture each claim reads first, and the cloud moves in the second.
func TestFailoverRoundTrips(t *testing.T) {
	const rtt = 50 * time.Millisecond
	for _, tt := range []struct {
		name       string
		picture    bool
		wantBefore int
	}{
		{name: "picture", picture: true, wantBefore: 0},
		{name: "no picture", picture: false, wantBefore: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			emu, c, _ := newEmulatorSeed(t, "latency = \""+rtt.String()+"\"\n"+emuSeed, func(o *Options) {
				if !tt.picture {
					o.PictureMaxAge = -1
				}
			})
			c.Watch(failoverResources())
			c.warm(context.Background(), time.Minute) // a BACKUP's keep-warm round
			start := time.Now()
			claimConcurrently(t, c, failoverResources())
			l := emu.Log()
			for _, r := range []struct{ path, change string }{
				{"/v1/havip/havip-1", "master i-b -> i-a"},
				{"/v1/route/rule", "via custom i-a"},
			} {
				before, at := converged(t, l, start, r.path, r.change)
				t.Logf("%s: the cloud moved %.2f round trips after the claim began, after %d request(s) of the claim",
					r.path, float64(at.Sub(start))/float64(rtt), before)
				if before != tt.wantBefore {
					t.Errorf("%s: %d request(s) before the one that moved the cloud, want %d", r.path, before, tt.wantBefore)
				}
			}
		})
	}
}

// TestPictureNeverSwitchesBack: a picture that still shows a pair active on the peer, after
// the pair moved here, makes no switch: the claim reads first and finds it owned.
func TestPictureNeverSwitchesBack(t *testing.T) {
	emu, a, url := newEmulator(t, nil)
	res := haRes("dcgw-a", cloud.RouteSwitch)
	ctx := context.Background()
	if o, err := a.Observe(ctx, res); err != nil || o.Owned {
		t.Fatalf("Observe = %+v, %v; want the pair active on the peer", o, err)
	}
	// Another process of this node (a restart) switched it meanwhile.
	if o, err := clientFor(t, url, "i-a").Claim(ctx, res, "gen-1/route"); err != nil || !o.Owned {
		t.Fatalf("the other claim = %+v, %v", o, err)
	}
	if o, err := a.Claim(ctx, res, "gen-2/route"); err != nil || !o.Owned {
		t.Fatalf("Claim from the stale picture = %+v, %v", o, err)
	}
	if sw := emuOps(emu, emulator.OpRouteRuleSwitch); len(sw) != 1 {
		t.Fatalf("%d switches, want 1: a stale picture switched the pair back", len(sw))
	}
}

// TestPictureRuleReplaced: a single-line rule replaced since the picture (a new rule id) makes
// the update from the picture fail; the claim then reads and updates the new rule.
func TestPictureRuleReplaced(t *testing.T) {
	seed, err := emulator.ParseSeed(strings.NewReader(emuSeed), "seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(seed, emulator.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	c := clientFor(t, srv.URL, "i-a")
	res := routeRes("rt-1", "10.9.0.0/16", cloud.RouteUpdate)
	ctx := context.Background()
	if _, err := c.Observe(ctx, res); err != nil {
		t.Fatal(err)
	}
	// The operator replaces the rule (the agent never creates or deletes rules).
	v, err := vpc.NewClient("ak-test", "sk-test", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	v.Config.Retry = sdk.NewNoRetryPolicy()
	if err := v.DeleteRouteRule("rr-s", ""); err != nil {
		t.Fatal(err)
	}
	nr, err := v.CreateRouteRule(&vpc.CreateRouteRuleArgs{RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "10.9.0.0/16",
		NexthopId: "i-b", NexthopType: vpc.NEXTHOP_TYPE_CUSTOM})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Claim(ctx, res, tokenBase)
	if err != nil || !o.Owned {
		t.Fatalf("Claim = %+v, %v", o, err)
	}
	var updates []string
	for _, r := range emuOps(emu, emulator.OpRouteRuleUpdate) {
		updates = append(updates, r.Path+" "+strconv.Itoa(r.Status))
	}
	if want := "[/v1/route/rule/rr-s 404 /v1/route/rule/" + nr.RouteRuleId + " 200]"; "["+strings.Join(updates, " ")+"]" != want {
		t.Fatalf("updates %v, want %s", updates, want)
	}
}

// countingServer serves the emulator and counts the connections clients open, closing those
// idle for idle as a real API front end does.
func countingServer(t *testing.T, emu *emulator.Emulator, idle time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(emu.Handler())
	srv.Config.IdleTimeout = idle
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// TestKeepWarmConnections: while a node waits (BACKUP), its keep-warm reads keep connections
// open although the server closes those idle for longer than the keep-warm interval, so that a
// failover's claim finds one warm. Without them, every claim opens a new connection (a TCP and,
// on the real API, a TLS handshake).
func TestKeepWarmConnections(t *testing.T) {
	if testing.Short() {
		// It depends on the server's idle timeout firing and the keep-warm reads not:
		// under the race detector's slowdown (make test runs -race with -short) the margins
		// do not hold. The full run has it.
		t.Skip("timing-dependent; runs without -short")
	}
	const serverIdle = time.Second
	for _, tt := range []struct {
		name      string
		keepWarm  time.Duration
		wantFresh bool
	}{
		{name: "keep-warm", keepWarm: 100 * time.Millisecond},
		{name: "none", keepWarm: -1, wantFresh: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seed, err := emulator.ParseSeed(strings.NewReader(emuSeed), "seed.toml")
			if err != nil {
				t.Fatal(err)
			}
			emu, err := emulator.New(seed, emulator.Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			srv, conns := countingServer(t, emu, serverIdle)
			creds, _ := NewCredentials("ak-test", "sk-test", "")
			c, err := New(context.Background(), Options{Region: "bj", Endpoint: srv.URL, EIPEndpoint: srv.URL, InstanceID: "i-a",
				KeepWarm: tt.keepWarm, PictureMaxAge: time.Minute}, StaticCredentials(creds), nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Watch(failoverResources())
			c.warm(context.Background(), time.Minute) // the picture, either way
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); c.KeepWarm(ctx) }()
			time.Sleep(2 * serverIdle) // BACKUP for a while
			// The keep-warm reads stop before the failover, so that none of them competes
			// with it for a connection.
			cancel()
			<-done
			before := conns.Load()
			claimConcurrently(t, c, failoverResources())
			// Concurrent keep-warm reads may share one connection, so the pool is sure to
			// hold one warm connection, not one per claim: with them, at least one of the
			// concurrent claims rides a warm connection; without, the failover opens new ones.
			fresh := conns.Load() - before
			if tt.wantFresh && fresh == 0 {
				t.Errorf("the failover opened no connection; want new ones (none kept warm)")
			}
			if !tt.wantFresh && fresh >= int64(len(failoverResources())) {
				t.Errorf("the failover opened %d connection(s); want at least one claim on a warm connection", fresh)
			}
		})
	}
}

// The transport keeps idle connections longer than the keep-warm interval and its jitter.
func TestIdleConnTimeout(t *testing.T) {
	for _, every := range []time.Duration{-1, time.Second, DefaultKeepWarm, 2 * time.Minute} {
		if got := idleConnTimeout(every); got <= every+every/10 || got < 90*time.Second {
			t.Errorf("idleConnTimeout(%v) = %v", every, got)
		}
	}
}
