package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// haSuite is a full rig: emulator, both nodes with keepalived and an
// agent claiming the cloud, and a health check per node driven by a flag
// file (present = healthy).
type haSuite struct {
	t      *testing.T
	h      *rig.HA
	e      *rig.Emulator
	agents map[string]*agentProc
	flags  map[string]string
}

func newSuite(t *testing.T) *haSuite {
	h := newHARig(t)
	s := &haSuite{t: t, h: h, e: startEmulator(t, h), agents: map[string]*agentProc{}, flags: map[string]string{}}
	for _, name := range []string{"n1", "n2"} {
		s.flags[name] = filepath.Join(h.Nodes[name].Dir, "healthy")
		if err := os.WriteFile(s.flags[name], nil, 0o644); err != nil {
			t.Fatal(err)
		}
		s.startAgent(name)
		s.startKeepalived(name)
	}
	s.converged("n1")
	return s
}

func (s *haSuite) priority(name string) int {
	if name == "n1" {
		return 150
	}
	return 100
}

func (s *haSuite) trackFile(name string) string {
	return filepath.Join(s.h.Nodes[name].Dir, "track", "svc")
}

func (s *haSuite) startAgent(name string) {
	n := s.h.Nodes[name]
	body, err := n.CloudConfig(s.e, `checks = ["svc"]`)
	if err != nil {
		s.t.Fatal(err)
	}
	body = fmt.Sprintf(`[[check]]
name = "svc"
type = "exec"
command = ["/usr/bin/test", "-e", %q]
interval = "200ms"
timeout = "100ms"
rise = 1
fall = 1
initial = "healthy"
track_file = %q
`, s.flags[name], s.trackFile(name)) + body
	s.agents[name] = nodeAgent(s.t, s.h, name, true, body)
}

func (s *haSuite) startKeepalived(name string) {
	n := s.h.Nodes[name]
	startKeepalived(s.t, n, n.KeepalivedConf(s.priority(name), "",
		fmt.Sprintf("track_file svc {\n    file %q\n}", s.trackFile(name)),
		"    track_file {\n        svc weight 0\n    }"))
}

// converged waits until master holds everything, then checks the
// invariants.
func (s *haSuite) converged(master string) {
	s.t.Helper()
	id := "i-" + master
	eventually(s.t, "VIP on "+master+" only", func() bool { return sameNodes(s.h.Holders(), master) })
	eventually(s.t, "cloud points at "+master, func() bool {
		st := emuState(s.t, s.e)
		return rig.RouteHolder(st) == id && rig.HAVIPMaster(st) == id
	})
	eventually(s.t, "client reaches the VIP at "+master+"'s MAC", func() bool {
		_, err := s.h.NS.Exec("client", "ping", "-c", "1", "-W", "1", rig.VIP)
		return err == nil && s.h.ClientNeighbor() == s.h.MAC(master)
	})
	// Sampled, not assumed: the VIP stays on exactly one node.
	for i := 0; i < 20; i++ {
		if got := s.h.Holders(); !sameNodes(got, master) {
			s.t.Fatalf("sample %d: VIP on %v, want only %s", i, got, master)
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.noMutationWhileNotMaster()
}

var transitionRe = regexp.MustCompile(`^time=(\S+) level=\S+ msg=transition vrrp_instance=VI_1 from=(\S+) to=(\S+)`)

// masterIntervals reads an agent's transitions from its log.
func masterIntervals(log string) [][2]time.Time {
	var out [][2]time.Time
	var since time.Time
	for _, l := range strings.Split(log, "\n") {
		m := transitionRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		if m[3] == "MASTER" {
			since = at
		} else if !since.IsZero() {
			out = append(out, [2]time.Time{since, at})
			since = time.Time{}
		}
	}
	if !since.IsZero() {
		out = append(out, [2]time.Time{since, time.Now().Add(time.Hour)})
	}
	return out
}

// noMutationWhileNotMaster checks the emulator's log against the agents'
// transition logs: every mutating call came from a node that was MASTER
// at the time. The log has millisecond times and a request sent just
// before a transition may arrive just after it, hence the grace.
func (s *haSuite) noMutationWhileNotMaster() {
	s.t.Helper()
	const grace = 100 * time.Millisecond
	l := emuLog(s.t, s.e)
	intervals := map[string][][2]time.Time{}
	for name, a := range s.agents {
		intervals[s.h.Nodes[name].IP] = append(intervals[s.h.Nodes[name].IP], masterIntervals(a.logs())...)
	}
	for _, r := range l.Requests {
		if r.Method == "GET" || !strings.HasPrefix(r.Operation, "havip") && !strings.HasPrefix(r.Operation, "route") {
			continue
		}
		ip := r.Source
		if i := strings.LastIndexByte(ip, ':'); i >= 0 {
			ip = ip[:i]
		}
		ok := false
		for _, iv := range intervals[ip] {
			if !r.Time.Before(iv[0].Add(-grace)) && !r.Time.After(iv[1].Add(grace)) {
				ok = true
			}
		}
		if !ok {
			s.t.Errorf("mutating call %s %s from %s at %s while that node was not MASTER", r.Method, r.Operation, ip, r.Time.Format(time.RFC3339Nano))
		}
	}
}

func (s *haSuite) switches() int { return rig.Switches(emuLog(s.t, s.e)) }

func TestIntegrationFailoverSuite(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(s *haSuite)
	}{
		{"sigkill master keepalived", func(s *haSuite) {
			s.h.Nodes["n1"].Keepalived.Kill()
			s.converged("n2")
		}},
		{"sigkill master keepalived and its vrrp process at once", func(s *haSuite) {
			// A crash: no priority-0 advertisement, nothing written to
			// the FIFO. n2 takes over after the master-down interval and
			// only the liveness watch takes the VIP off n1.
			b, err := os.ReadFile(s.h.Nodes["n1"].VRRPPid())
			if err != nil {
				t.Fatal(err)
			}
			var pid int
			_, _ = fmt.Sscan(string(b), &pid)
			s.h.Nodes["n1"].Keepalived.Signal(syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
			s.converged("n2")
			if !strings.Contains(s.agents["n1"].logs(), "keepalived is not running") {
				t.Error("n1's agent did not report keepalived's death")
			}
		}},
		{"graceful stop", func(s *haSuite) {
			s.h.Nodes["n1"].Keepalived.Stop(syscall.SIGTERM)
			s.converged("n2")
		}},
		{"preemption back", func(s *haSuite) {
			s.h.Nodes["n1"].Keepalived.Stop(syscall.SIGTERM)
			s.converged("n2")
			before := s.switches()
			s.startKeepalived("n1")
			s.converged("n1")
			if got := s.switches() - before; got != 1 {
				t.Errorf("%d switches for the failback, want 1", got)
			}
		}},
		{"master link down", func(s *haSuite) {
			if _, err := s.h.NS.IP("n1", "link", "set", "eth0", "down"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "VIP on n2", func() bool { return s.h.HasVIP("n2") })
			eventually(t, "VIP off n1", func() bool { return !s.h.HasVIP("n1") })
			st := emuState(t, s.e)
			eventually(t, "cloud on n2", func() bool {
				st = emuState(t, s.e)
				return rig.RouteHolder(st) == "i-n2" && rig.HAVIPMaster(st) == "i-n2"
			})
			if _, err := s.h.NS.IP("n1", "link", "set", "eth0", "up"); err != nil {
				t.Fatal(err)
			}
			// n1 has the higher priority and preempts once its link is back.
			s.converged("n1")
		}},
		// The MASTER's health check failing: TestIntegrationHealthMovesMaster.
		{"both agents restarted at once", func(s *haSuite) {
			before := len(mutations(emuLog(t, s.e)))
			s.agents["n1"].kill()
			s.agents["n2"].kill()
			s.agents["n1"].start()
			s.agents["n2"].start()
			s.converged("n1")
			time.Sleep(1500 * time.Millisecond) // a reconcile interval
			if got := len(mutations(emuLog(t, s.e))) - before; got != 0 {
				t.Errorf("%d mutating calls after restarting both agents, want 0", got)
			}
		}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			s := newSuite(t)
			start := s.switches()
			tc.run(s)
			if s.switches()-start > 2 {
				t.Errorf("%d switches in one scenario", s.switches()-start)
			}
		})
	}
}

func mutations(l emulator.Log) []emulator.RequestRecord {
	var out []emulator.RequestRecord
	for _, r := range l.Requests {
		if r.Method != "GET" && r.Applied {
			out = append(out, r)
		}
	}
	return out
}
