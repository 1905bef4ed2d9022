package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/chaos"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// Processes ended under the agent's feet: the agent killed or restarted,
// keepalived restarted or reloaded.

func TestIntegrationChaosAgentKilled(t *testing.T)  { ciChaos(t, "agent-killed") }
func TestIntegrationChaosAgentRestart(t *testing.T) { ciChaos(t, "agent-restart") }
func TestIntegrationChaosKeepalived(t *testing.T)   { ciChaos(t, "keepalived-restart") }

// ---- 2 agent-killed ----

// scenarioAgentKilled: the new MASTER's agent is SIGKILLed at each point
// of a failover to n2 and restarted 1 s later (systemd Restart=on-failure,
// RestartSec=1). The points: before the VIP is added (killed before the
// MASTER notification), after the VIP before the cloud call (killed as the
// VIP appears, while the switch is held 2 s by a latency fault; the kill
// closes the connection so it never lands), during the call (killed
// 500 ms into that 2 s hold), after the call (killed once the cloud
// points at n2).
func scenarioAgentKilled(t *testing.T, runs int) chaos.Result {
	s := newChaosSuite(t)
	var r chaos.Result
	seq0 := s.lastSeq()
	watch := watchVIP(t, s.h, "n2")
	nh := handleIn(t, s.h.NS.Name("n2"))
	vip := netip.MustParseAddr(rig.VIP)
	hasVIP := func() bool { ok, _ := hasAddr(nh, "eth0", vip); return ok }
	dups := 0
	points := []string{"before the VIP", "after the VIP, before the call", "during the call", "after the call"}
	for i := 0; i < runs; i++ {
		for _, point := range points {
			what := fmt.Sprintf("run %d %s", i+1, point)
			seq := s.lastSeq()
			start := time.Now()
			switch point {
			case "before the VIP":
				s.agents["n2"].Proc.Kill()
				s.past["n2"] = append(s.past["n2"], s.agents["n2"].Proc.Output())
				s.failTo("n2")
				time.Sleep(time.Second)
				must(t, s.agents["n2"].Agent.Start)
			case "after the VIP, before the call", "during the call":
				s.fault(emulator.Fault{Operation: "route.rule.switch", Kind: emulator.FaultLatency, Delay: emulator.Duration(2 * time.Second), Count: 1})
				s.failTo("n2")
				if _, ok := waitFor(convergeTimeout, hasVIP); !ok {
					r.Violate("%s: the VIP never came", what)
				}
				if point == "during the call" {
					time.Sleep(500 * time.Millisecond)
				}
				s.restartAgent("n2", true, time.Second)
			case "after the call":
				s.failTo("n2")
				waitFor(convergeTimeout, func() bool { return s.cloudOn("n2") })
				s.restartAgent("n2", true, time.Second)
			}
			// Arm once the VIP is (back) on the new MASTER: from then on it
			// must never be missing.
			waitFor(convergeTimeout, hasVIP)
			watch.arm(true)
			d, ok := s.converge("n2", start)
			r.Run(ok, d)
			if !ok {
				r.Violate("%s: not converged on n2 (holders %v, cloud on n2 %v)", what, s.h.Holders(), s.cloudOn("n2"))
			}
			time.Sleep(settleTime)
			watch.arm(false)
			if sw := s.switchesSince(seq); sw != 1 {
				dups += max(0, sw-1)
				r.Violate("%s: %d switches for one failover", what, sw)
			}
			s.single(&r, "n2", 300*time.Millisecond, what)
			s.clearFaults()
			// Back to n1, unmeasured.
			s.failTo("n1")
			if _, ok := s.converge("n1", time.Now()); !ok {
				r.Violate("%s: failback to n1 did not converge", what)
				return r
			}
		}
	}
	s.attributed(&r, seq0)
	absent, samples := watch.counts()
	if absent > 0 {
		r.Violate("VIP missing on the MASTER in %d of %d samples after it first appeared", absent, samples)
	}
	r.Figure("converged share", "%d/%d", r.Converged, r.Runs)
	r.Figure("VIP absent on MASTER", "%d/%d samples", absent, samples)
	r.Figure("duplicate switches", "%d", dups)
	return r
}

// ---- 3 agent-restart ----

// scenarioAgentRestart: the MASTER's agent restarted runs times,
// alternately SIGTERM (systemctl restart) and SIGKILL (crash, restarted
// after 1 s): the VIP never leaves and no mutating call is made. A run
// converges when the new process reports MASTER with the cloud owned.
func scenarioAgentRestart(t *testing.T, runs int) chaos.Result {
	s := newChaosSuite(t)
	var r chaos.Result
	time.Sleep(settleTime)
	seq := s.lastSeq()
	watch := watchVIP(t, s.h, "n1")
	watch.arm(true)
	for i := 0; i < runs; i++ {
		kill := i%2 == 1
		pause := time.Duration(0)
		if kill {
			pause = time.Second
		}
		start := time.Now()
		s.restartAgent("n1", kill, pause)
		_, ok := waitFor(convergeTimeout, func() bool {
			st, err := s.agents["n1"].Status()
			if err != nil || len(st.Instances) == 0 || st.Instances[0].State != "MASTER" {
				return false
			}
			cs := cloudStatus(st)
			for _, c := range cs {
				if !c.Owned {
					return false
				}
			}
			return len(cs) == 2
		})
		r.Run(ok, time.Since(start))
		if !ok {
			r.Violate("restart %d: the agent did not come back as MASTER owning the cloud", i+1)
		}
	}
	time.Sleep(settleTime)
	watch.arm(false)
	absent, samples := watch.counts()
	if absent > 0 {
		r.Violate("VIP missing in %d of %d samples across the restarts", absent, samples)
	}
	var muts int
	for _, q := range s.requestsSince(seq, "") {
		if isMutation(q) {
			muts++
			r.Violate("mutating call %s from %s after a restart", q.Operation, q.Source)
		}
	}
	s.single(&r, "n1", 300*time.Millisecond, "after the restarts")
	r.Figure("restarts", "%d (SIGTERM and SIGKILL alternately)", runs)
	r.Figure("VIP gap", "%d/%d samples", absent, samples)
	r.Figure("mutating calls", "%d", muts)
	return r
}

// ---- 4 keepalived-restart ----

// scenarioKeepalived: keepalived reloaded (SIGHUP) on both nodes,
// restarted on the backup, restarted on the MASTER, and restarted on the
// MASTER with its FIFO removed (keepalived creates a new one). Each step
// is a run; reloads and the backup's restart must not switch, a MASTER
// restart switches exactly twice (away and back).
func scenarioKeepalived(t *testing.T, runs int) chaos.Result {
	s := newChaosSuite(t)
	var r chaos.Result
	seq0 := s.lastSeq()
	type step struct {
		name     string
		do       func()
		switches int
	}
	restartMaster := func(removeFIFO bool) func() {
		return func() {
			s.failTo("n2")
			if _, ok := s.converge("n2", time.Now()); !ok {
				r.Violate("keepalived restart: n2 did not take over")
			}
			if removeFIFO {
				os.Remove(s.h.Nodes["n1"].FIFOPath())
			}
			s.failTo("n1")
		}
	}
	steps := []step{
		{"SIGHUP master", func() { s.h.Nodes["n1"].Keepalived.Signal(syscall.SIGHUP) }, 0},
		{"SIGHUP backup", func() { s.h.Nodes["n2"].Keepalived.Signal(syscall.SIGHUP) }, 0},
		{"restart backup", func() {
			s.h.Nodes["n2"].Keepalived.Stop(syscall.SIGTERM)
			time.Sleep(time.Second)
			s.startKeepalived("n2")
		}, 0},
		{"restart master", restartMaster(false), 2},
		{"restart master, FIFO recreated", restartMaster(true), 2},
		// After the FIFO was recreated the agent must still hear
		// keepalived: one more failover and back.
		{"failover after the FIFO was recreated", restartMaster(false), 2},
	}
	for i := 0; i < runs; i++ {
		for _, st := range steps {
			what := fmt.Sprintf("run %d %s", i+1, st.name)
			seq := s.lastSeq()
			start := time.Now()
			st.do()
			time.Sleep(3 * time.Second) // a reload's or restart's notifications arrive
			d, ok := s.converge("n1", start)
			r.Run(ok, d)
			if !ok {
				r.Violate("%s: not converged on n1 (holders %v)", what, s.h.Holders())
				continue
			}
			time.Sleep(settleTime)
			if sw := s.switchesSince(seq); sw != st.switches {
				r.Violate("%s: %d switches, want %d", what, sw, st.switches)
			}
			s.single(&r, "n1", 300*time.Millisecond, what)
		}
	}
	s.attributed(&r, seq0)
	for _, n := range []string{"n1", "n2"} {
		if s.crashed(n) {
			r.Violate("%s agent crashed", n)
		}
	}
	// Every stop, also the one right after a reload, must be heard as a
	// STOP line: the liveness watch is for crashes and comes dead_after
	// late, long enough for a reconcile to take the cloud back once.
	logs := s.agents["n1"].logs()
	// The watch also reports keepalived's exit after a STOP line
	// (STOP→FAULT, harmless); a stop it noticed in place of the line is
	// a MASTER that goes to FAULT.
	missed := regexp.MustCompile(`from=MASTER to=FAULT [^\n]*source=liveness`)
	stops := strings.Count(logs, "to=STOP") + len(missed.FindAllString(logs, -1))
	if n := len(missed.FindAllString(logs, -1)); n > 0 {
		r.Violate("%d of %d MASTER stops were noticed by the liveness watch, not by a STOP line", n, stops)
	}
	r.Figure("steps", "%d per run (reload ×2, backup restart, master restart, FIFO recreated, failover after)", len(steps))
	r.Figure("MASTER stops heard as STOP lines", "%d/%d", strings.Count(logs, "to=STOP"), stops)
	return r
}
