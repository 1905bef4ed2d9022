package netif

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
)

// Announcer sends gratuitous ARP and unsolicited neighbour advertisements.
// It keeps one socket per interface and reopens it after an error (the
// interface may have been recreated).
type Announcer struct {
	mu    sync.Mutex
	ifs   map[string]*ifSockets
	dial  DialFunc
	dial6 Dial6Func
}

// DialFunc opens a link-layer socket on an interface for sending frames.
type DialFunc func(ifi *net.Interface) (net.PacketConn, error)

// Dial6Func opens an ICMPv6 socket able to send an advertisement for vip.
type Dial6Func func(ifi *net.Interface, vip netip.Addr) (NDPConn, error)

// NDPConn is the part of *ndp.Conn the announcer uses.
type NDPConn interface {
	WriteTo(m ndp.Message, dst netip.Addr) error
	Close() error
}

type ifSockets struct {
	ifi *net.Interface
	raw net.PacketConn
	v6  NDPConn
}

// NewAnnouncer returns an Announcer using raw sockets.
func NewAnnouncer() *Announcer {
	return NewAnnouncerWith(dialRaw, dialNDP)
}

// NewAnnouncerWith returns an Announcer that opens its sockets with the
// given functions, so tests can capture what is sent.
func NewAnnouncerWith(dial DialFunc, dial6 Dial6Func) *Announcer {
	return &Announcer{ifs: map[string]*ifSockets{}, dial: dial, dial6: dial6}
}

func dialRaw(ifi *net.Interface) (net.PacketConn, error) {
	// Protocol 0 receives nothing: this socket only sends, so no
	// receive buffer fills up with the segment's ARP traffic.
	return packet.Listen(ifi, packet.Raw, 0, nil)
}

type ndpConn struct{ c *ndp.Conn }

func (n ndpConn) WriteTo(m ndp.Message, dst netip.Addr) error { return n.c.WriteTo(m, nil, dst) }
func (n ndpConn) Close() error                                { return n.c.Close() }

func dialNDP(ifi *net.Interface, vip netip.Addr) (NDPConn, error) {
	// The link-local address is the usual source; a node whose link-local
	// address is still tentative sends from the VIP itself, which the
	// agent adds without duplicate address detection.
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		c, _, err = ndp.Listen(ifi, ndp.Addr(vip.String()))
	}
	if err != nil {
		return nil, err
	}
	// Only sending: block every incoming ICMPv6 type so that no receive
	// buffer fills. Best effort: a socket that still receives only wastes
	// memory.
	var f ipv6.ICMPFilter
	f.SetAll(true)
	_ = c.SetICMPFilter(&f)
	return ndpConn{c}, nil
}

// Close closes every socket.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, s := range a.ifs {
		s.close()
		delete(a.ifs, name)
	}
}

func (s *ifSockets) close() {
	if s.raw != nil {
		s.raw.Close()
	}
	if s.v6 != nil {
		s.v6.Close()
	}
}

// Prepare opens the ARP socket of an interface ahead of time, so that the
// first announcement of a failover does not pay for it.
func (a *Announcer) Prepare(ifname string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.sockets(ifname)
	if err != nil {
		return err
	}
	if s.raw == nil {
		c, err := a.dial(s.ifi)
		if err != nil {
			return err
		}
		s.raw = c
	}
	return nil
}

// Forget drops the sockets of an interface, for example when it is gone.
func (a *Announcer) Forget(ifname string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.ifs[ifname]; ok {
		s.close()
		delete(a.ifs, ifname)
	}
}

// Announce sends one announcement of vip on ifname: for IPv4 a gratuitous
// ARP request, and a gratuitous ARP reply too when reply is set (some
// switches and hosts only update on one of them); for IPv6 an unsolicited,
// overriding neighbour advertisement to all nodes.
func (a *Announcer) Announce(ifname string, vip netip.Addr, reply bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.sockets(ifname)
	if err != nil {
		return err
	}
	if vip.Is4() {
		err = s.garp(a.dial, vip, reply)
	} else {
		err = s.unsolicitedNA(a.dial6, vip)
	}
	if err != nil {
		// The next attempt starts from fresh sockets.
		s.close()
		delete(a.ifs, ifname)
		return fmt.Errorf("announce %s on %s: %w", vip, ifname, err)
	}
	return nil
}

func (a *Announcer) sockets(ifname string) (*ifSockets, error) {
	if s, ok := a.ifs[ifname]; ok {
		return s, nil
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ifname, ErrNoInterface)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s has no Ethernet address to announce", ifname)
	}
	s := &ifSockets{ifi: ifi}
	a.ifs[ifname] = s
	return s, nil
}

func (s *ifSockets) garp(dial DialFunc, vip netip.Addr, reply bool) error {
	if s.raw == nil {
		c, err := dial(s.ifi)
		if err != nil {
			return err
		}
		s.raw = c
	}
	mac := s.ifi.HardwareAddr
	frames := [][]byte{}
	b, err := GARPFrame(mac, vip, arp.OperationRequest)
	if err != nil {
		return err
	}
	frames = append(frames, b)
	if reply {
		if b, err = GARPFrame(mac, vip, arp.OperationReply); err != nil {
			return err
		}
		frames = append(frames, b)
	}
	for _, f := range frames {
		if _, err := s.raw.WriteTo(f, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
			return err
		}
	}
	return nil
}

// GARPFrame builds a broadcast Ethernet frame carrying a gratuitous ARP
// packet: sender and target protocol address are both vip. A request
// targets the broadcast hardware address, as keepalived's do; a reply
// repeats the sender's.
func GARPFrame(mac net.HardwareAddr, vip netip.Addr, op arp.Operation) ([]byte, error) {
	target := ethernet.Broadcast
	if op == arp.OperationReply {
		target = mac
	}
	p, err := arp.NewPacket(op, mac, vip, target, vip)
	if err != nil {
		return nil, err
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: pb}
	return f.MarshalBinary()
}

var allNodes = netip.MustParseAddr("ff02::1")

func (s *ifSockets) unsolicitedNA(dial Dial6Func, vip netip.Addr) error {
	if s.v6 == nil {
		c, err := dial(s.ifi, vip)
		if err != nil {
			return err
		}
		s.v6 = c
	}
	return s.v6.WriteTo(UnsolicitedNA(s.ifi.HardwareAddr, vip), allNodes)
}

// UnsolicitedNA builds the advertisement that tells every node on the link
// that vip is now at mac (RFC 4861 7.2.6: Override set, Solicited clear).
func UnsolicitedNA(mac net.HardwareAddr, vip netip.Addr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
}
