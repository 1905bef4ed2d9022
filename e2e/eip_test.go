package e2e

import (
	"testing"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// The EIP addresses are data in the emulator's world only; nothing is
// ever sent to them.
var eipSeed = rig.Seed + `
[[eip]]
address = "198.19.1.10"

[[eip]]
address = "198.19.1.11"
instance_id = "i-n2"
`

func eipOf(s emulator.State, addr string) string {
	for _, e := range s.EIPs {
		if e.Address == addr {
			return e.InstanceID
		}
	}
	return ""
}

func havipPublicIP(s emulator.State) string {
	for _, h := range s.HaVips {
		if h.ID == "havip-rig" {
			return h.PublicIP
		}
	}
	return ""
}

// TestIntegrationPublicIPFollowsMaster: the HAVIP gets its public IP bound
// by the MASTER, and an EIP bound directly to an instance moves with the
// MASTER (unbind from the old node, bind to the new one).
func TestIntegrationPublicIPFollowsMaster(t *testing.T) {
	h := newHARig(t)
	e := startEmulatorSeed(t, h, eipSeed)
	extra := `havip_public_ip = "198.19.1.10"
[[instance.eip]]
address = "198.19.1.11"
`
	agents := map[string]*agentProc{}
	for _, name := range []string{"n1", "n2"} {
		body, err := h.Nodes[name].CloudConfig(e, extra)
		if err != nil {
			t.Fatal(err)
		}
		agents[name] = nodeAgent(t, h, name, false, body)
	}
	agents["n2"].write(`INSTANCE "VI_1" BACKUP 100`)
	agents["n1"].write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "HAVIP holds its public IP", func() bool { return havipPublicIP(emuState(t, e)) == "198.19.1.10" })
	eventually(t, "EIP moved to i-n1", func() bool { return eipOf(emuState(t, e), "198.19.1.11") == "i-n1" })

	agents["n1"].write(`INSTANCE "VI_1" BACKUP 100`)
	agents["n2"].write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "EIP moved back to i-n2", func() bool { return eipOf(emuState(t, e), "198.19.1.11") == "i-n2" })
	eventually(t, "HAVIP master i-n2", func() bool { return rig.HAVIPMaster(emuState(t, e)) == "i-n2" })
	if got := havipPublicIP(emuState(t, e)); got != "198.19.1.10" {
		t.Errorf("HAVIP public IP %q after failover", got)
	}
}
