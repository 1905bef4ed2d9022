package e2e

import (
	"strings"
	"testing"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// TestIntegrationCloudFollowsMaster: agents and the emulator in
// namespaces, the emulator learning HAVIP masters from ARP on the bridge.
// Driving the agents' FIFOs (no keepalived here), the route and the HAVIP
// master follow the MASTER, with exactly one switch per failover.
func TestIntegrationCloudFollowsMaster(t *testing.T) {
	h := newHARig(t)
	e := startEmulator(t, h)
	n1, n2 := cloudAgent(t, h, e, "n1"), cloudAgent(t, h, e, "n2")

	// n2 becomes MASTER: the route must switch to it, the HAVIP master too.
	n1.write(`INSTANCE "VI_1" BACKUP 100`)
	n2.write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "route active next hop i-n2", func() bool { return rig.RouteHolder(emuState(t, e)) == "i-n2" })
	eventually(t, "HAVIP master i-n2", func() bool { return rig.HAVIPMaster(emuState(t, e)) == "i-n2" })
	eventually(t, "n2 status shows the cloud here", func() bool {
		st := n2.status()
		for _, c := range st.Instances[0].Cloud {
			if !c.Owned {
				return false
			}
		}
		return len(st.Instances[0].Cloud) == 2
	})
	if got := rig.Switches(emuLog(t, e)); got != 1 {
		t.Errorf("%d switches, want 1", got)
	}

	// Failover back to n1.
	n2.write(`INSTANCE "VI_1" BACKUP 100`)
	n1.write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "route active next hop i-n1", func() bool { return rig.RouteHolder(emuState(t, e)) == "i-n1" })
	eventually(t, "HAVIP master i-n1", func() bool { return rig.HAVIPMaster(emuState(t, e)) == "i-n1" })
	if got := rig.Switches(emuLog(t, e)); got != 2 {
		t.Errorf("%d switches after two failovers, want 2", got)
	}

	// No mutating call came from the node that was not MASTER: every
	// applied change after the last failover comes from n1's address.
	l := emuLog(t, e)
	for _, r := range l.Requests {
		if r.Method != "GET" && strings.HasPrefix(r.Source, "198.18.0.12") && r.Applied && r.Seq > lastSeqFrom(l, "198.18.0.11") {
			t.Errorf("n2 changed the cloud while BACKUP: %+v", r)
		}
	}
}

func lastSeqFrom(l emulator.Log, src string) uint64 {
	var s uint64
	for _, r := range l.Requests {
		if strings.HasPrefix(r.Source, src) && r.Method != "GET" {
			s = r.Seq
		}
	}
	return s
}

// TestIntegrationCloudReclaim: the backup is MASTER for a moment and moves
// the cloud, and the real MASTER is never re-notified: it wins the cloud
// back within reconcile_interval plus one attempt.
func TestIntegrationCloudReclaim(t *testing.T) {
	h := newHARig(t)
	e := startEmulator(t, h)
	n1, n2 := cloudAgent(t, h, e, "n1"), cloudAgent(t, h, e, "n2")
	n2.write(`INSTANCE "VI_1" BACKUP 100`)
	n1.write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "HAVIP master i-n1", func() bool { return rig.HAVIPMaster(emuState(t, e)) == "i-n1" })
	// The backup's blip: MASTER, then BACKUP again.
	n2.write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "route moved to i-n2 by the blip", func() bool { return rig.RouteHolder(emuState(t, e)) == "i-n2" })
	n2.write(`INSTANCE "VI_1" BACKUP 100`)
	eventually(t, "n1 reclaimed the route", func() bool { return rig.RouteHolder(emuState(t, e)) == "i-n1" })
	eventually(t, "n1 reclaimed the HAVIP master", func() bool { return rig.HAVIPMaster(emuState(t, e)) == "i-n1" })
	st := n1.status()
	reclaims := 0
	for _, c := range st.Instances[0].Cloud {
		reclaims += c.Reclaims
	}
	if reclaims == 0 {
		t.Errorf("n1 status shows no reclaim: %+v", st.Instances[0].Cloud)
	}
	if !strings.Contains(n1.logs(), "claiming again") {
		t.Error("reclaim not logged")
	}
}

func cloudAgent(t testing.TB, h *rig.HA, e *rig.Emulator, node string) *agentProc {
	t.Helper()
	body, err := h.Nodes[node].CloudConfig(e, "")
	if err != nil {
		t.Fatal(err)
	}
	return nodeAgent(t, h, node, false, body)
}

func emuState(t testing.TB, e *rig.Emulator) emulator.State {
	t.Helper()
	s, err := e.State()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func emuLog(t testing.TB, e *rig.Emulator) emulator.Log {
	t.Helper()
	l, err := e.Log()
	if err != nil {
		t.Fatal(err)
	}
	return l
}
