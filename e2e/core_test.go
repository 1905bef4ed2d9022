package e2e

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/netns"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// coreRig is two hosts on one link: the node running the agent and a
// peer that watches what it announces.
type coreRig struct {
	rig        *netns.Rig
	node, peer string
}

func newCoreRig(t testing.TB) coreRig {
	t.Helper()
	netns.Require(t)
	r := netns.NewT(t)
	c := coreRig{rig: r, node: "node", peer: "peer"}
	must(t, func() error { _, err := r.AddNS(c.node); return err })
	must(t, func() error { _, err := r.AddNS(c.peer); return err })
	must(t, func() error { return r.Veth(c.node, "eth0", c.peer, "eth0") })
	must(t, func() error { return r.Addr(c.node, "eth0", "198.18.0.1/24") })
	must(t, func() error { return r.Addr(c.peer, "eth0", "198.18.0.2/24") })
	// The peer learns from gratuitous ARP, as a VPC's HAVIP does.
	must(t, func() error {
		_, err := r.Exec(c.peer, "sysctl", "-qw", "net.ipv4.conf.all.arp_accept=1", "net.ipv4.conf.eth0.arp_accept=1")
		return err
	})
	return c
}

const coreInstance = `[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
garp_count = 3
garp_interval = "50ms"
`

var vip = netip.MustParseAddr("198.18.0.100")

func TestIntegrationCoreTransitions(t *testing.T) {
	c := newCoreRig(t)
	a := newAgent(t, c.rig, c.node, coreInstance)
	a.start()
	h := handleIn(t, c.rig.Name(c.node))
	present := func() bool { ok, _ := hasAddr(h, "eth0", vip); return ok }

	a.write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "VIP present after MASTER", present)
	mac, err := c.rig.IP(c.node, "-br", "link", "show", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	nodeMAC := strings.Fields(mac)[2]
	eventually(t, "peer's neighbour entry for the VIP at the node's MAC", func() bool {
		out, _ := c.rig.IP(c.peer, "neigh", "show", vip.String())
		return strings.Contains(out, nodeMAC)
	})

	// Someone flushes the VIP: it is put back and announced again.
	if _, err := c.rig.IP(c.node, "addr", "del", "198.18.0.100/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "VIP restored after external delete", present)
	// The log line may arrive a moment after the address.
	eventually(t, "restore logged", func() bool { return strings.Contains(a.logs(), "VIP restored") })

	for _, st := range []string{"BACKUP", "FAULT", "STOP", "DELETED"} {
		a.write(`INSTANCE "VI_1" MASTER 100`)
		eventually(t, "VIP present", present)
		a.write(`INSTANCE "VI_1" ` + st + ` 100`)
		eventually(t, "VIP absent after "+st, func() bool { return !present() })
	}
	// While BACKUP, a VIP that appears is removed.
	a.write(`INSTANCE "VI_1" BACKUP 100`)
	if _, err := c.rig.IP(c.node, "addr", "add", "198.18.0.100/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stray VIP removed while BACKUP", func() bool { return !present() })
}

func TestIntegrationCoreSupersede(t *testing.T) {
	c := newCoreRig(t)
	a := newAgent(t, c.rig, c.node, strings.Replace(coreInstance, `garp_count = 3`, `garp_count = 50`, 1))
	a.start()
	capture := arpCapture(t, c.rig.Name(c.peer), "eth0")
	h := handleIn(t, c.rig.Name(c.node))
	a.write(`INSTANCE "VI_1" MASTER 100`)
	time.Sleep(time.Millisecond)
	a.write(`INSTANCE "VI_1" BACKUP 100`)
	eventually(t, "VIP absent", func() bool { ok, _ := hasAddr(h, "eth0", vip); return !ok })
	// Give a leftover burst every chance to show itself.
	time.Sleep(300 * time.Millisecond)
	_ = capture.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1500)
	late := 0
	for {
		n, _, err := capture.ReadFrom(buf)
		if err != nil {
			break
		}
		if isGARP(buf[:n], vip) {
			late++
		}
	}
	// Frames queued before BACKUP may still be read; what matters is that
	// no burst continues: 50 announcements 50 ms apart would show here.
	if late > 4 {
		t.Errorf("%d announcements read after BACKUP", late)
	}
}

func isGARP(frame []byte, addr netip.Addr) bool {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return false
	}
	return p.SenderIP == addr && p.TargetIP == addr
}

func TestIntegrationCoreKillRestartKeepsVIP(t *testing.T) {
	c := newCoreRig(t)
	a := newAgent(t, c.rig, c.node, coreInstance)
	a.start()
	h := handleIn(t, c.rig.Name(c.node))
	a.write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "VIP present", func() bool { ok, _ := hasAddr(h, "eth0", vip); return ok })

	var samples, absent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ok, err := hasAddr(h, "eth0", vip)
			samples.Add(1)
			if err != nil || !ok {
				absent.Add(1)
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
	for i := 0; i < 3; i++ {
		a.kill()
		a.start()
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	<-done
	if absent.Load() != 0 || samples.Load() < 100 {
		t.Errorf("VIP absent in %d of %d samples across SIGKILL and restart", absent.Load(), samples.Load())
	}
	if !strings.Contains(a.logs(), "state restored") {
		t.Errorf("restart did not restore the state:\n%s", a.logs())
	}
}

func TestIntegrationCoreNoStateDoesNothing(t *testing.T) {
	c := newCoreRig(t)
	if _, err := c.rig.IP(c.node, "addr", "add", "198.18.0.100/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, c.rig, c.node, coreInstance)
	a.start()
	h := handleIn(t, c.rig.Name(c.node))
	time.Sleep(300 * time.Millisecond)
	if ok, _ := hasAddr(h, "eth0", vip); !ok {
		t.Fatal("a fresh agent with no state and no backlog removed a VIP")
	}
}
