package e2e

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/chaos"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// ---- 11 late-stale ----

// Faults of scenario 11: the failover's switch applied lateDelay after it
// arrived, whether or not its sender still waits (longer than
// cloud.timeout, so the sender has given up), and every read answered
// from the state staleAge ago.
const (
	lateDelay   = 3 * time.Second
	staleAge    = 2 * time.Second
	staleWindow = 30 * time.Second
)

// scenarioLateStale: each run is one failover (alternately to n2 and back
// to n1) during which the cloud applies the new MASTER's switch late and
// serves stale reads. switchRouteHA is a toggle: a retry sent blindly
// after the late one, or a reclaim on a stale read, switches the pair back.
// After the late switch has landed and the stale window has passed the
// route is on the new MASTER after exactly one applied switch.
func scenarioLateStale(s *chaosSuite, runs int) chaos.Result {
	var r chaos.Result
	seq0 := s.lastSeq()
	perFailover := map[int]int{}
	lateGone, lateChanges, staleReads, replays := 0, 0, 0, 0
	target := "n1"
	for i := 0; i < runs; i++ {
		target = peerOf(target)
		what := fmt.Sprintf("run %d (to %s)", i+1, target)
		seq := s.lastSeq()
		s.fault(emulator.Fault{Operation: "route.rule.switch", Kind: emulator.FaultLate, Delay: emulator.Duration(lateDelay), Count: 1})
		s.fault(emulator.Fault{Operation: "*", Kind: emulator.FaultStale, Age: emulator.Duration(staleAge), Window: emulator.Duration(staleWindow)})
		start := time.Now()
		s.failTo(target)
		if _, ok := s.converge(target, start); !ok {
			r.Run(false, 0)
			r.Violate("%s: not converged on %s (holders %v, cloud on it %v)", what, target, s.h.Holders(), s.cloudOn(target))
			s.clearFaults()
			continue
		}
		// Wait for the late switch to be applied, then for whatever the
		// agents make of the reads that follow: a stale age and two
		// reconcile intervals.
		if _, ok := waitFor(convergeTimeout, func() bool { return s.lateApplied(seq) }); !ok {
			r.Violate("%s: the late switch was never applied", what)
		}
		time.Sleep(staleAge + 2*reconcileInterval)
		d, ok := s.converge(target, start)
		r.Run(ok, d)
		if !ok {
			r.Violate("%s: after the late switch, not converged on %s (route on %s)", what, target, s.activeNextHop())
			s.clearFaults()
			continue
		}
		time.Sleep(outageSettle())
		s.single(&r, target, 300*time.Millisecond, what)
		sw := s.switchesSince(seq)
		perFailover[sw]++
		if sw != 1 {
			r.Violate("%s: %d switches applied for one failover, want 1 (%s)", what, sw, s.switchTrail(seq))
		}
		if !s.cloudOn(target) {
			r.Violate("%s: the route ends on %s, not on the MASTER %s", what, s.activeNextHop(), target)
		}
		l := s.log()
		for _, q := range l.Requests {
			if q.Seq <= seq {
				continue
			}
			switch {
			case q.Fault == string(emulator.FaultLate) && q.ClientGone:
				lateGone++
			case q.Fault == string(emulator.FaultStale):
				staleReads++
			}
			if q.Replayed && q.Operation == emulator.OpRouteRuleSwitch {
				replays++
			}
		}
		for _, c := range l.Changes {
			if c.Seq > seq && c.Operation == emulator.OpRouteRuleSwitch && c.Fault == string(emulator.FaultLate) {
				lateChanges++
			}
		}
		s.clearFaults()
	}
	s.attributed(&r, seq0)
	s.baseline(&r)
	r.Figure("faults", "switch late by %s (count 1 per failover), reads %s stale for %s", lateDelay, staleAge, staleWindow)
	r.Figure("switches per failover", "%s", histogram(perFailover))
	r.Figure("late switches", "%d applied after the client left, %d of them changed the route; %d switch replays", lateGone, lateChanges, replays)
	r.Figure("stale reads served", "%d", staleReads)
	return r
}

// lateApplied reports whether a late request after seq has been applied
// (its record is written when it is).
func (s *chaosSuite) lateApplied(seq uint64) bool {
	for _, q := range s.log().Requests {
		if q.Seq > seq && q.Fault == string(emulator.FaultLate) {
			return true
		}
	}
	return false
}

func (s *chaosSuite) activeNextHop() string {
	st, err := s.e.State()
	if err != nil {
		return "?"
	}
	return rig.RouteHolder(st)
}

// switchTrail lists the switches after seq: when, from whom, late or not.
func (s *chaosSuite) switchTrail(seq uint64) string {
	var out []string
	for _, c := range s.log().Changes {
		if c.Seq > seq && c.Operation == emulator.OpRouteRuleSwitch {
			out = append(out, fmt.Sprintf("%s %s→%s from %s %s", c.Time.Format("15:04:05.000"), c.Before, c.After, c.Source, c.Fault))
		}
	}
	return fmt.Sprint(out)
}

// ---- 14 blackhole ----

// blackholes are how long the new MASTER cannot reach the cloud, by run.
var blackholes = []time.Duration{4 * time.Second, 8 * time.Second, 15 * time.Second}

// The agent's retry policy (cmd/havip-agent): the defaults of
// cloud.RetryPolicy with at most 5 attempts per call.
const agentMaxAttempts = 5

// maxBackoff is the longest wait the agent's retry policy makes before
// one of its attempts: the upper end of the jitter of the last retry.
func maxBackoff() time.Duration {
	p := cloud.RetryPolicy{Timeout: cloudTimeout, Rand: func() float64 { return 1 }}
	return p.Backoff(agentMaxAttempts-2, nil)
}

// recoveryBound is how soon after a blackhole is lifted the cloud points
// at the MASTER: the attempt in flight ends within cloud.timeout; the
// next comes after at most the longest backoff or, when the call had
// used up its attempts, at the next reconcile; the claim's own round
// trips take milliseconds. The margin absorbs the harness polling a
// loaded machine.
func recoveryBound() time.Duration {
	return cloudTimeout + max(maxBackoff(), reconcileInterval) + time.Second
}

// deadPoolBound is how soon a new MASTER whose dead pooled connections
// number n claims the cloud: each dead connection costs at most one
// attempt (its timeout, then a backoff) before a new one is dialled.
func deadPoolBound(n int) time.Duration {
	return time.Duration(n)*(cloudTimeout+maxBackoff()) + reconcileInterval + time.Second
}

// emulatorPort is the port the emulator listens on.
func (s *chaosSuite) emulatorPort() int {
	s.t.Helper()
	u, err := url.Parse(s.e.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// scenarioBlackhole: each run has two failovers. First n2 takes over
// while its packets to the cloud are dropped (no answer, no refusal) for
// a while: the VIP and the announcements move at once, the cloud follows
// within recoveryBound of the blackhole's end, with one switch. Then n1,
// whose pooled keep-alive connections to the cloud died silently while it
// was BACKUP (their packets dropped, new connections let through), takes
// back over: its claim waits out the dead connections, within
// deadPoolBound.
func scenarioBlackhole(s *chaosSuite, runs int) chaos.Result {
	var r chaos.Result
	seq0 := s.lastSeq()
	port := s.emulatorPort()
	arps := s.watchARP()
	defer arps.close()
	var local, announce, afterLift, deadPool []time.Duration
	var pooled []int
	for i := 0; i < runs; i++ {
		hole := blackholes[i%len(blackholes)]
		what := fmt.Sprintf("run %d blackhole %s", i+1, hole)
		seq := s.lastSeq()
		undo, err := s.h.Blackhole("n2", port)
		if err != nil {
			s.t.Fatal(err)
		}
		start := time.Now()
		s.failTo("n2")
		d, ok := waitFor(convergeTimeout, func() bool { return sameNodes(s.h.Holders(), "n2") })
		if !ok {
			r.Violate("%s: the VIP did not move to n2 alone (holders %v)", what, s.h.Holders())
		}
		local = append(local, d)
		is, _ := s.waitState("n2", agent.StateMaster, convergeTimeout)
		if at, ok := arps.first(s.mac("n2"), start); ok && !masterLine(is).IsZero() {
			announce = append(announce, at.Sub(masterLine(is)))
		}
		time.Sleep(time.Until(start.Add(hole)))
		if nh := s.activeNextHop(); nh == "i-n2" {
			r.Violate("%s: the route moved to n2 while it could not reach the cloud", what)
		}
		if err := undo(); err != nil {
			s.t.Fatal(err)
		}
		d, ok = waitFor(convergeTimeout, func() bool { return s.cloudOn("n2") })
		r.Run(ok, time.Since(start))
		switch {
		case !ok:
			r.Violate("%s: the cloud did not follow n2 after the blackhole", what)
		case d > recoveryBound():
			r.Violate("%s: the cloud followed n2 %s after the blackhole, bound %s", what, d.Round(time.Millisecond), recoveryBound())
		}
		afterLift = append(afterLift, d)
		time.Sleep(outageSettle())
		s.single(&r, "n2", 300*time.Millisecond, what)
		if sw := s.switchesSince(seq); sw != 1 {
			r.Violate("%s: %d switches, want 1", what, sw)
		}

		// n1's pooled connections die silently; n1 takes back over.
		what = fmt.Sprintf("run %d dead pooled connections", i+1)
		conns, err := rig.Connections(s.agents["n1"].AgentPID(), rig.SwitchIP, port)
		if err != nil {
			s.t.Fatal(err)
		}
		pooled = append(pooled, len(conns))
		if len(conns) == 0 {
			r.Violate("%s: n1 has no pooled connection to the cloud; the case did not run", what)
		}
		undo, err = s.h.Blackhole("n1", port, conns...)
		if err != nil {
			s.t.Fatal(err)
		}
		seq = s.lastSeq()
		start = time.Now()
		s.failTo("n1")
		is, _ = s.waitState("n1", agent.StateMaster, convergeTimeout)
		_, ok = waitFor(convergeTimeout, func() bool { return s.settledOn("n1") })
		settled := time.Now()
		r.Run(ok, settled.Sub(start))
		if line := masterLine(is); ok && !line.IsZero() {
			d := settled.Sub(line)
			deadPool = append(deadPool, d)
			if b := deadPoolBound(len(conns)); d > b {
				r.Violate("%s: the cloud followed n1 %s after its MASTER line, bound %s for %d dead connections", what, d.Round(time.Millisecond), b, len(conns))
			}
		}
		if !ok {
			r.Violate("%s: not converged on n1 (holders %v, cloud on n1 %v)", what, s.h.Holders(), s.cloudOn("n1"))
		}
		if err := undo(); err != nil {
			s.t.Fatal(err)
		}
		time.Sleep(outageSettle())
		s.single(&r, "n1", 300*time.Millisecond, what)
		if sw := s.switchesSince(seq); sw != 1 {
			r.Violate("%s: %d switches, want 1", what, sw)
		}
	}
	s.attributed(&r, seq0)
	s.baseline(&r)
	r.Figure("blackholes", "%v", blackholes[:min(runs, len(blackholes))])
	r.Figure("VIP on the new MASTER alone, from the trigger", "%s", quantiles(local))
	r.Figure("first announcement after the MASTER line", "%s", quantiles(announce))
	r.Figure("cloud after the blackhole was lifted", "%s (bound %s)", quantiles(afterLift), recoveryBound())
	r.Figure("cloud after the MASTER line, dead pooled connections", "%s (dead connections %v, bound %s for 1)", quantiles(deadPool), pooled, deadPoolBound(1))
	return r
}
