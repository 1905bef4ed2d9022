package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/chaos"
)

// The cloud API's chaos: faulty answers during failovers, and a skewed
// clock against the request signature.

func TestIntegrationChaosCloudFaults(t *testing.T) { ciChaos(t, "cloud-faults") }
func TestIntegrationChaosClockSkew(t *testing.T)   { ciChaos(t, "clock-skew") }

// ---- 1 cloud-faults ----

// scenarioCloudFaults: the emulator fails a share of the requests while
// mastership moves back and forth; each run is one failover, with a 5 s
// stall of its first switch request.
func scenarioCloudFaults(t *testing.T, runs int) chaos.Result {
	s := newChaosSuite(t)
	var r chaos.Result
	seq0 := s.lastSeq()
	for _, f := range []emulator.Fault{
		{Operation: "route.*", Kind: emulator.FaultError, Status: 500, Probability: 0.08},
		{Operation: "havip.*", Kind: emulator.FaultError, Status: 500, Probability: 0.08},
		{Operation: "*", Kind: emulator.FaultError, Status: 503, Probability: 0.05},
		{Operation: "*", Kind: emulator.FaultError, Status: 429, RetryAfter: 1, Probability: 0.05},
		{Operation: "*", Kind: emulator.FaultDrop, Probability: 0.05},
		{Operation: "route.rule.switch", Kind: emulator.FaultLost, Probability: 0.3},
		{Operation: "havip.attach", Kind: emulator.FaultLost, Probability: 0.3},
	} {
		s.fault(f)
	}
	perFailover := map[int]int{}
	target := "n1"
	for i := 0; i < runs; i++ {
		target = peerOf(target)
		seq := s.lastSeq()
		s.fault(emulator.Fault{Operation: "route.rule.switch", Kind: emulator.FaultLatency, Delay: emulator.Duration(5 * time.Second), Count: 1})
		start := time.Now()
		s.failTo(target)
		d, ok := s.converge(target, start)
		r.Run(ok, d)
		if !ok {
			r.Violate("run %d: not converged on %s in %s (holders %v)", i+1, target, convergeTimeout, s.h.Holders())
			continue
		}
		time.Sleep(settleTime) // stray retries land now, if they would
		sw := s.switchesSince(seq)
		perFailover[sw]++
		if sw != 1 {
			r.Violate("run %d: %d switches applied for one failover", i+1, sw)
		}
		s.single(&r, target, 500*time.Millisecond, fmt.Sprintf("run %d", i+1))
	}
	faults := map[string]int{}
	for _, q := range s.requestsSince(seq0, "") {
		if q.Fault != "" {
			faults[q.Fault]++
		}
	}
	s.attributed(&r, seq0)
	s.clearFaults()
	r.Figure("converged share", "%d/%d", r.Converged, r.Runs)
	r.Figure("switches per failover", "%s", histogram(perFailover))
	r.Figure("faults fired", "%s", histogram(faults))
	return r
}

// ---- 9 clock-skew ----

// scenarioClockSkew: the emulator's clock offset by ±10 minutes: failovers
// still work. Offset by 2 hours (past the signature's 30 minute
// expiration): status, log and metric say RequestExpired and the request
// rate stays bounded by the reconcile interval.
func scenarioClockSkew(t *testing.T, runs int) chaos.Result {
	s := newChaosSuite(t)
	var r chaos.Result
	setClock := func(d time.Duration) {
		if err := s.e.Admin("/_emulator/clock", map[string]string{"offset": d.String()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < runs; i++ {
		for _, off := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
			setClock(off)
			for _, target := range []string{"n2", "n1"} {
				seq := s.lastSeq()
				start := time.Now()
				s.failTo(target)
				d, ok := s.converge(target, start)
				r.Run(ok, d)
				if !ok {
					r.Violate("offset %s: failover to %s did not converge", off, target)
					continue
				}
				time.Sleep(settleTime)
				if sw := s.switchesSince(seq); sw != 1 {
					r.Violate("offset %s: %d switches for one failover", off, sw)
				}
			}
		}
	}
	// Beyond the expiration.
	setClock(2 * time.Hour)
	_, expired := waitFor(30*time.Second, func() bool {
		for _, c := range cloudStatus(s.agents["n1"].status()) {
			if c.ErrorKind == "expired" {
				return true
			}
		}
		return false
	})
	if !expired {
		r.Violate("status does not show error_kind expired: %+v", cloudStatus(s.agents["n1"].status()))
	}
	window := 10 * time.Second
	seq := s.lastSeq()
	time.Sleep(window)
	n := len(s.requestsSince(seq, "n1"))
	rate := float64(n) / window.Seconds()
	// Two resources observed once per reconcile interval, each observation
	// retried a few times at most: more is hammering.
	if limit := 2 * 4 / reconcileInterval.Seconds(); rate > limit {
		r.Violate("%.1f requests/s while expired, limit %.1f", rate, limit)
	}
	logged := strings.Contains(s.agents["n1"].logs(), "RequestExpired")
	if !logged {
		r.Violate("RequestExpired not in the agent's log")
	}
	m, merr := s.metric("n1", "havip_agent_cloud_requests_total", `code="RequestExpired"`)
	if merr != nil || m == 0 {
		r.Violate("no havip_agent_cloud_requests_total{code=\"RequestExpired\"}: %v", merr)
	}
	setClock(0)
	start := time.Now()
	_, cleared := waitFor(convergeTimeout, func() bool {
		for _, c := range cloudStatus(s.agents["n1"].status()) {
			if c.Error != "" || !c.Owned {
				return false
			}
		}
		return s.settledOn("n1")
	})
	r.Run(cleared, time.Since(start))
	if !cleared {
		r.Violate("errors did not clear after the clock was fixed")
	}
	r.Figure("±10 min", "failovers %d/%d converged", r.Converged-btoi(cleared), r.Runs-1)
	r.Figure("+2 h", "status expired %v, logged %v, metric %v, %.1f requests/s", expired, logged, m, rate)
	return r
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
