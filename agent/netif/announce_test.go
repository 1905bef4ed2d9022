package netif

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

var mac = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}

func TestGARPFrame(t *testing.T) {
	vip := netip.MustParseAddr("198.18.0.100")
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		b, err := GARPFrame(mac, vip, op)
		if err != nil {
			t.Fatal(err)
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Destination, ethernet.Broadcast) || !bytes.Equal(f.Source, mac) || f.EtherType != ethernet.EtherTypeARP {
			t.Errorf("%v: ethernet header %+v", op, f)
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			t.Fatal(err)
		}
		wantTarget := ethernet.Broadcast
		if op == arp.OperationReply {
			wantTarget = mac
		}
		if p.Operation != op || p.SenderIP != vip || p.TargetIP != vip || !bytes.Equal(p.SenderHardwareAddr, mac) || !bytes.Equal(p.TargetHardwareAddr, wantTarget) {
			t.Errorf("%v: packet %+v", op, p)
		}
	}
}

func TestUnsolicitedNA(t *testing.T) {
	vip := netip.MustParseAddr("2001:db8::100")
	na := UnsolicitedNA(mac, vip)
	b, err := ndp.MarshalMessage(na)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*ndp.NeighborAdvertisement)
	if !got.Override || got.Solicited || got.Router || got.TargetAddress != vip {
		t.Errorf("flags/target: %+v", got)
	}
	lla, ok := got.Options[0].(*ndp.LinkLayerAddress)
	if !ok || lla.Direction != ndp.Target || !bytes.Equal(lla.Addr, mac) {
		t.Errorf("option: %+v", got.Options)
	}
}

type capture struct {
	net.PacketConn
	frames [][]byte
}

func (c *capture) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.frames = append(c.frames, append([]byte(nil), b...))
	return len(b), nil
}
func (c *capture) Close() error { return nil }

type ndpCapture struct{ msgs []ndp.Message }

func (c *ndpCapture) WriteTo(m ndp.Message, dst netip.Addr) error {
	c.msgs = append(c.msgs, m)
	return nil
}
func (c *ndpCapture) Close() error { return nil }

func TestAnnouncerUsesSockets(t *testing.T) {
	lo, err := net.InterfaceByIndex(1)
	if err != nil {
		t.Skip("no loopback")
	}
	// Loopback has no Ethernet address: the announcer must refuse it.
	a := NewAnnouncerWith(func(*net.Interface) (net.PacketConn, error) { return &capture{}, nil },
		func(*net.Interface, netip.Addr) (NDPConn, error) { return &ndpCapture{}, nil })
	if err := a.Announce(lo.Name, netip.MustParseAddr("198.18.0.1"), true); err == nil {
		t.Error("announce on an interface without an Ethernet address succeeded")
	}
	// An interface that does not exist.
	if err := a.Announce("nonexistent0", netip.MustParseAddr("198.18.0.1"), true); err == nil {
		t.Error("announce on a missing interface succeeded")
	}
}

func TestAnnouncerFrames(t *testing.T) {
	raw := &capture{}
	v6 := &ndpCapture{}
	a := NewAnnouncerWith(func(*net.Interface) (net.PacketConn, error) { return raw, nil },
		func(*net.Interface, netip.Addr) (NDPConn, error) { return v6, nil })
	// Inject a fake interface so no real one is needed.
	a.ifs["fake0"] = &ifSockets{ifi: &net.Interface{Name: "fake0", HardwareAddr: mac}}
	if err := a.Announce("fake0", netip.MustParseAddr("198.18.0.100"), true); err != nil {
		t.Fatal(err)
	}
	if err := a.Announce("fake0", netip.MustParseAddr("198.18.0.100"), false); err != nil {
		t.Fatal(err)
	}
	if err := a.Announce("fake0", netip.MustParseAddr("2001:db8::1"), false); err != nil {
		t.Fatal(err)
	}
	if got := len(raw.frames); got != 3 {
		t.Errorf("got %d ARP frames, want 3 (request+reply, then request only)", got)
	}
	if got := len(v6.msgs); got != 1 {
		t.Errorf("got %d advertisements, want 1", got)
	}
}
