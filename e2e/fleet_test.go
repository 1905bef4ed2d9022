package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/netns"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// The fleet simulation's settings. make fleet runs fleetPairs pairs at each of fleetLimits;
// make test runs a small fleet at one limit, asserting only that it converges.
const (
	fleetPairs = 50
	// fleetLatency is the round trip of every API call, as on the real API.
	fleetLatency = 50 * time.Millisecond
	// fleetQuiet is how long the fleet must send nothing for its failover to be over: the
	// read-backs and re-verifies, which a throttled account holds back, have been sent.
	// fleetWindow bounds it from the failover: the next keep-warm and reconcile rounds, two
	// minutes after the last (fleetInterval), come later, so every request counted is the
	// failover's.
	fleetQuiet    = 5 * time.Second
	fleetWindow   = 100 * time.Second
	fleetInterval = "120s"
	// fleetDeadline bounds the wait for a fleet to converge.
	fleetDeadline = 3 * time.Minute
	// fleetTargetSlack is the target: converged within the mutating calls at the
	// account's limit plus this.
	fleetTargetSlack = 5 * time.Second
)

var fleetLimits = []float64{10, 20, 50}

// fleetResult is one fleet failover, as e2e/results/fleet.json holds it.
type fleetResult struct {
	Pairs      int     `json:"pairs"`
	LimitRPS   float64 `json:"limit_rps"`
	Burst      int     `json:"burst"`
	LatencyMS  float64 `json:"latency_ms"`
	Mutating   int     `json:"mutating_calls_needed"`
	TargetS    float64 `json:"target_s"`
	Converged  int     `json:"converged"`
	P50S       float64 `json:"converged_p50_s"`
	P95S       float64 `json:"converged_p95_s"`
	MaxS       float64 `json:"converged_max_s"`
	Requests   int     `json:"requests"`
	Throttled  int     `json:"throttled_429"`
	GiveUps    int     `json:"give_ups"`
	PerFailure float64 `json:"requests_per_failover"`
	// Answered counts the requests answered other than 429, AnsweredPerFailure per pair.
	Answered           int     `json:"answered"`
	AnsweredPerFailure float64 `json:"answered_per_failover"`
	// SettledS is when the fleet's last request of the failover came.
	SettledS float64 `json:"settled_s"`
	// MutatingSent counts the mutating requests the emulator answered other than 429.
	MutatingSent int `json:"mutating_sent"`
	// AfterMutating and AfterReads are the requests after the last pair converged (until the
	// tail ends): mutations there would be a claim repeated or fighting.
	AfterMutating int  `json:"mutating_after_convergence"`
	AfterReads    int  `json:"reads_after_convergence"`
	WithinTarget  bool `json:"within_target"`
}

// fleetReport is e2e/results/fleet.json.
type fleetReport struct {
	Date    string        `json:"date"`
	CPUs    int           `json:"cpus"`
	Agent   string        `json:"agent"`
	Results []fleetResult `json:"results"`
}

// TestIntegrationFleet: N pairs of agents in one account, each pair with its own HAVIP (attach
// mode, bound to its MASTER) and its own single-line route, driven through their FIFOs in one
// network namespace with the emulator on its loopback. Every MASTER fails at once: BACKUP
// goes to each MASTER's FIFO and MASTER to each BACKUP's, with the account's rate limit in
// force. Every pair must converge on its new MASTER, and none may give up. make test runs four
// pairs at 20 requests/s; HAVIP_FLEET=1 (make fleet) runs fifty at 10, 20 and 50 requests/s
// and writes e2e/results/fleet.json and fleet.md (HAVIP_FLEET_N changes the pairs;
// HAVIP_FLEET_AGENT runs another build of the agent, without the keys it may not know, and
// writes fleet-before.json and .md instead).
func TestIntegrationFleet(t *testing.T) {
	netns.Require(t)
	full := os.Getenv("HAVIP_FLEET") == "1"
	pairs, limits := 4, []float64{20}
	if full {
		pairs, limits = fleetPairs, fleetLimits
	}
	if s := os.Getenv("HAVIP_FLEET_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > fleetPairs {
			t.Fatalf("HAVIP_FLEET_N=%q: want 1 to %d", s, fleetPairs)
		}
		pairs = n
	}
	bin, name, current := binary(t, "havip-agent"), "this build", true
	if b := os.Getenv("HAVIP_FLEET_AGENT"); b != "" {
		bin, name, current = b, filepath.Base(b), false
	}
	rep := fleetReport{Date: time.Now().UTC().Format("2006-01-02"), CPUs: runtime.NumCPU(), Agent: name}
	for _, limit := range limits {
		t.Run(fmt.Sprintf("%gps", limit), func(t *testing.T) {
			res := runFleet(t, bin, current, pairs, limit)
			t.Logf("%d pairs at %g req/s: converged %d, p50 %.2fs p95 %.2fs max %.2fs (target %.1fs), %d requests (%.1f per failover, %.1f answered), %d throttled, %d give-ups, after convergence %d mutating and %d reads, the last at %.1fs",
				res.Pairs, res.LimitRPS, res.Converged, res.P50S, res.P95S, res.MaxS, res.TargetS, res.Requests, res.PerFailure, res.AnsweredPerFailure,
				res.Throttled, res.GiveUps, res.AfterMutating, res.AfterReads, res.SettledS)
			if res.Converged != pairs {
				t.Errorf("%d of %d pairs converged", res.Converged, pairs)
			}
			if res.GiveUps != 0 {
				t.Errorf("%d claims gave up", res.GiveUps)
			}
			if res.AfterMutating != 0 && current {
				t.Errorf("%d mutating requests after the fleet converged", res.AfterMutating)
			}
			rep.Results = append(rep.Results, res)
		})
	}
	if full && len(rep.Results) == len(limits) {
		base := "fleet"
		if !current {
			base = "fleet-before"
		}
		writeFleetReport(t, rep, base)
	}
}

// fleetPair names the resources and agents of pair p.
type fleetPair struct {
	name, a, b, havip, rule, table string
	vip                            string
}

func newFleetPair(p int) fleetPair {
	n := fmt.Sprintf("p%02d", p)
	return fleetPair{name: n, a: "i-" + n + "a", b: "i-" + n + "b", havip: "havip-" + n, rule: "rr-" + n, table: "rt-" + n,
		vip: fmt.Sprintf("198.18.0.%d", 150+p)}
}

// fleetSeed is one account with every pair: the HAVIP bound to the pair's MASTER (a) only and a
// single-line rule to it, each pair in a route table of its own.
func fleetSeed(ps []fleetPair) emulator.Seed {
	b := emulator.NewSeedBuilder("fleet", "ak-fleet", "sk-fleet-secret")
	for i, p := range ps {
		b.Instance(p.name+"a", fmt.Sprintf("198.18.0.%d", 10+2*i)).
			Instance(p.name+"b", fmt.Sprintf("198.18.0.%d", 11+2*i)).
			RouteTable(p.table).
			RouteRule(emulator.SeedRouteRule{ID: p.rule, RouteTableID: p.table, Destination: fmt.Sprintf("198.19.%d.0/24", i),
				NextHopType: "custom", NextHopID: p.a}).
			HAVIP(p.havip, p.vip, p.name, p.a)
	}
	return b.Seed()
}

// fleetAgentConfig is one agent's configuration: reads at a low rate while the fleet waits (a
// reconcile and a keep-warm round every fleetInterval, which a fleet of this size sharing a
// quota needs), the route updated on failover.
func fleetAgentConfig(dir, iface, url, creds, id string, p fleetPair, i int, current bool) string {
	limits := ""
	if current {
		limits = "keep_warm = \"" + fleetInterval + "\"\n"
	}
	return rig.AgentBase(dir, "info", "") + fmt.Sprintf(`
[metrics]
listen = ""

[cloud]
provider = "bce"
region = "bj"
endpoint = %[1]q
eip_endpoint = %[1]q
metadata_endpoint = %[1]q
credentials = %[2]q
instance_id = %[3]q
reconcile_interval = %[10]q
reclaim_max_backoff = "240s"
%[4]s
[[instance]]
name = "VI_1"
interface = %[5]q
vips = ["%[6]s/24"]
garp_count = 1
havip = %[7]q

[[instance.route]]
table = %[8]q
destination = "198.19.%[9]d.0/24"
`, url, creds, id, limits, iface, p.vip, p.havip, p.table, i, fleetInterval)
}

// runFleet builds a fleet of pairs, fails every MASTER at once under the account's limit and
// measures it.
func runFleet(t *testing.T, bin string, current bool, pairs int, limit float64) fleetResult {
	r := netns.NewT(t)
	if _, err := r.AddNS("fleet"); err != nil {
		t.Fatal(err)
	}
	ps := make([]fleetPair, pairs)
	var batch strings.Builder
	for i := range ps {
		// The kernel may lack dummy links: each pair's nodes get the two ends of a veth.
		ps[i] = newFleetPair(i)
		n := ps[i].name
		fmt.Fprintf(&batch, "link add d%sa type veth peer name d%sb\nlink set d%sa up\nlink set d%sb up\n", n, n, n, n)
	}
	batchFile := filepath.Join(t.TempDir(), "links")
	if err := os.WriteFile(batchFile, []byte(batch.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.IP("fleet", "-batch", batchFile); err != nil {
		t.Fatal(err)
	}

	emu, err := emulator.New(fleetSeed(ps), emulator.Options{Latency: fleetLatency, MaxLogEntries: 1 << 20}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	if err := rig.InNamespace(r.Name("fleet"), func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- emu.Serve(ctx, l) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("emulator: %v", err)
		}
	})
	url := "http://" + l.Addr().String()

	type node struct {
		agent *rig.Agent
		pair  int
		id    string
	}
	var nodes []*node
	for i, p := range ps {
		for _, id := range []string{p.a, p.b} {
			dir := t.TempDir()
			creds := filepath.Join(dir, "credentials.toml")
			if err := os.WriteFile(creds, []byte("access_key_id = \"ak-fleet\"\nsecret_access_key = \"sk-fleet-secret\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := rig.NewAgent(r, "fleet", dir, bin, fleetAgentConfig(dir, "d"+strings.TrimPrefix(id, "i-"), url, creds, id, p, i, current), nil)
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, &node{agent: a, pair: i, id: id})
		}
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n.agent.Proc != nil {
				wg.Add(1)
				go func() { defer wg.Done(); n.agent.Proc.Stop(os.Interrupt) }()
			}
		}
		wg.Wait()
		if t.Failed() {
			for _, n := range nodes {
				if n.agent.Proc != nil && strings.Contains(n.agent.Proc.Output(), "level=ERROR") {
					t.Logf("--- agent %s:\n%s", n.id, n.agent.Proc.Output())
				}
			}
		}
	})
	each(t, nodes, func(n *node) error { return n.agent.Start() })
	// The MASTERs claim (what they find is theirs already), the BACKUPs wait.
	each(t, nodes, func(n *node) error {
		if n.id == ps[n.pair].a {
			return n.agent.Write(`INSTANCE "VI_1" MASTER 100`)
		}
		return n.agent.Write(`INSTANCE "VI_1" BACKUP 100`)
	})
	// Quiet: every agent made its first reads (the keep-warm's are spread over five seconds),
	// and nothing was sent for a second.
	time.Sleep(6 * time.Second)
	quiet(t, emu, time.Second, 30*time.Second)

	// The account's quota, its bucket full as after a quiet while.
	if err := emu.SetRateLimit(limit, 0); err != nil {
		t.Fatal(err)
	}
	_, burst, _ := emu.RateLimit()
	outputs := make([]int, len(nodes))
	for i, n := range nodes {
		outputs[i] = len(n.agent.Proc.Output())
	}
	seq := lastSeq(emu)
	start := time.Now()
	each(t, nodes, func(n *node) error {
		if n.id == ps[n.pair].a {
			return n.agent.Write(`INSTANCE "VI_1" BACKUP 100`)
		}
		return n.agent.Write(`INSTANCE "VI_1" MASTER 100`)
	})
	deadline := time.Now().Add(fleetDeadline)
	for !allConverged(emu.State(), ps) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !quietBy(emu, fleetQuiet, start.Add(fleetWindow)) {
		t.Logf("the fleet still sent requests %v after the failover", fleetWindow)
	}

	res := fleetResult{Pairs: pairs, LimitRPS: limit, Burst: burst, LatencyMS: float64(fleetLatency.Milliseconds()), Mutating: 2 * pairs}
	res.TargetS = (float64(res.Mutating)/limit + fleetTargetSlack.Seconds())
	lg := emu.Log()
	var times []time.Duration
	last := start
	state := emu.State()
	for _, p := range ps {
		d, ok := pairConverged(lg, state, p, seq, start)
		if !ok {
			continue
		}
		times = append(times, d)
		if at := start.Add(d); at.After(last) {
			last = at
		}
	}
	res.Converged = len(times)
	slices.Sort(times)
	if len(times) > 0 {
		res.P50S = quantile(times, 0.5).Seconds()
		res.P95S = quantile(times, 0.95).Seconds()
		res.MaxS = times[len(times)-1].Seconds()
	}
	for _, rq := range lg.Requests {
		if rq.Seq <= seq || !strings.HasPrefix(rq.Path, "/v1/") {
			continue
		}
		res.Requests++
		if d := rq.Time.Sub(start).Seconds(); d > res.SettledS {
			res.SettledS = d
		}
		mutating := rq.Method != http.MethodGet
		switch {
		case rq.Status == http.StatusTooManyRequests:
			res.Throttled++
		case mutating:
			res.MutatingSent++
		}
		if rq.Received.After(last) {
			if mutating {
				res.AfterMutating++
			} else {
				res.AfterReads++
			}
		}
	}
	res.PerFailure = float64(res.Requests) / float64(pairs)
	res.Answered = res.Requests - res.Throttled
	res.AnsweredPerFailure = float64(res.Answered) / float64(pairs)
	if os.Getenv("HAVIP_FLEET_DEBUG") != "" {
		logTimeline(t, lg, seq, start)
	}
	for i, n := range nodes {
		res.GiveUps += strings.Count(n.agent.Proc.Output()[outputs[i]:], "giving up")
	}
	res.WithinTarget = res.Converged == pairs && res.MaxS <= res.TargetS && res.GiveUps == 0
	return res
}

// each runs f for every node, eight at a time, and fails t on the first error.
func each[N any](t *testing.T, nodes []N, f func(N) error) {
	t.Helper()
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(nodes))
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- f(n)
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	if err := errors.Join(all...); err != nil {
		t.Fatal(err)
	}
}

// quietBy waits until the emulator has logged no request for d, and reports whether that
// came before deadline.
func quietBy(emu *emulator.Emulator, d time.Duration, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		rs := emu.Requests()
		if len(rs) == 0 || time.Since(rs[len(rs)-1].Time) >= d {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// quiet waits until the emulator has logged no request for d, at most limit.
func quiet(t *testing.T, emu *emulator.Emulator, d, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		rs := emu.Requests()
		if len(rs) == 0 || time.Since(rs[len(rs)-1].Time) >= d {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the fleet did not quieten within %v", limit)
}

func lastSeq(emu *emulator.Emulator) uint64 {
	l := emu.Log()
	var s uint64
	if n := len(l.Requests); n > 0 {
		s = l.Requests[n-1].Seq
	}
	if n := len(l.Changes); n > 0 && l.Changes[n-1].Seq > s {
		s = l.Changes[n-1].Seq
	}
	return s
}

// allConverged reports whether every pair's HAVIP master and route point at its b now.
func allConverged(s emulator.State, ps []fleetPair) bool {
	for _, p := range ps {
		if !pointsAt(s, p, p.b) {
			return false
		}
	}
	return true
}

func pointsAt(s emulator.State, p fleetPair, id string) bool {
	master, hop := "", ""
	for _, h := range s.HaVips {
		if h.ID == p.havip {
			master = h.Master
		}
	}
	for _, r := range s.RouteRules {
		if r.ID == p.rule {
			hop = r.NexthopID
		}
	}
	return master == id && hop == id
}

// pairConverged is how long after start pair p's resources last changed, provided they point
// at its new MASTER now.
func pairConverged(l emulator.Log, s emulator.State, p fleetPair, seq uint64, start time.Time) (time.Duration, bool) {
	if !pointsAt(s, p, p.b) {
		return 0, false
	}
	var at time.Time
	for _, c := range l.Changes {
		if c.Seq > seq && (c.Resource == p.havip || c.Resource == p.rule) && c.Time.After(at) {
			at = c.Time
		}
	}
	if at.IsZero() {
		return 0, false
	}
	return at.Sub(start), true
}

// quantile is the q-quantile of sorted ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// writeFleetReport writes e2e/results/NAME.json and NAME.md.
func writeFleetReport(t *testing.T, rep fleetReport, name string) {
	t.Helper()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("results", name+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	writeFleetTable(&md, rep)
	if err := os.WriteFile(filepath.Join("results", name+".md"), []byte(md.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFleetTable renders the report as the README's table.
func writeFleetTable(w io.Writer, rep fleetReport) {
	fmt.Fprintf(w, "Fleet failover, %s, %d vCPU, %s: %d pairs, each a HAVIP (attach) and a single-line route; every MASTER fails at once; API round trip %.0f ms.\n\n",
		rep.Date, rep.CPUs, rep.Agent, rep.Results[0].Pairs, rep.Results[0].LatencyMS)
	fmt.Fprintln(w, "| limit (req/s) | converged | p50 | p95 | max | target | requests (429s) | per failover (answered) | give-ups | after convergence: mutating, reads | last request |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "| %g (burst %d) | %d/%d | %.2f s | %.2f s | %.2f s | %.1f s | %d (%d) | %.1f (%.1f) | %d | %d, %d | %.1f s |\n",
			r.LimitRPS, r.Burst, r.Converged, r.Pairs, r.P50S, r.P95S, r.MaxS, r.TargetS, r.Requests, r.Throttled, r.PerFailure, r.AnsweredPerFailure,
			r.GiveUps, r.AfterMutating, r.AfterReads, r.SettledS)
	}
}

// logTimeline logs, per half second after start, the requests the emulator answered: mutating
// and reads, taken and throttled.
func logTimeline(t *testing.T, l emulator.Log, seq uint64, start time.Time) {
	t.Helper()
	type bucket struct{ writes, reads, thrW, thrR int }
	var bs []bucket
	for _, r := range l.Requests {
		if r.Seq <= seq || !strings.HasPrefix(r.Path, "/v1/") {
			continue
		}
		i := int(r.Received.Sub(start) / (500 * time.Millisecond))
		for len(bs) <= i {
			bs = append(bs, bucket{})
		}
		b := &bs[i]
		switch w := r.Method != http.MethodGet; {
		case r.Status == http.StatusTooManyRequests && w:
			b.thrW++
		case r.Status == http.StatusTooManyRequests:
			b.thrR++
		case w:
			b.writes++
		default:
			b.reads++
		}
	}
	for i, b := range bs {
		t.Logf("%5.1fs  writes %3d  reads %3d  throttled writes %3d  reads %3d", float64(i)/2, b.writes, b.reads, b.thrW, b.thrR)
	}
}
