//go:build linux

package netif

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/netns"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
)

// The TestIntegration tests run the package against the kernel, in the
// style of mdlayher/netlink's integration tests: each builds a network
// namespace of its own holding a veth pair, runs the code under test on a
// thread switched into it, and removes it in its cleanup, also when the test
// fails. They need root: without it they skip, and with HAVIP_E2E=1 the skip
// is a failure.

const (
	// testIf is the interface the code under test manages; peerIf is the
	// other end of its veth pair, where announcements arrive.
	testIf = "eth0"
	peerIf = "peer0"
	// nsShort names the test's namespace within its rig.
	nsShort = "netif"
	// eventWait bounds the wait for something the kernel reports; it is a
	// guard against hanging, not a measure of speed.
	eventWait = 10 * time.Second
)

// Addresses from the ranges tests may use: 198.18.0.0/15 for IPv4, a
// unique local prefix for IPv6, and neither outside the test's namespace.
var (
	vip4   = testPrefix("198.18.0.10/32")
	probe4 = testPrefix("198.18.0.99/32")
	vip6   = testPrefix("fd00:198:18::10/128")
	net6   = testPrefix("fd00:198:18::20/64")
)

func testPrefix(s string) netip.Prefix {
	p := netip.MustParsePrefix(s)
	if !netns.Allowed.Contains(p.Addr()) && !netip.MustParsePrefix("fd00:198:18::/64").Contains(p.Addr()) {
		panic(fmt.Sprintf("%s is outside the test ranges", s))
	}
	return p
}

// testNS is a fresh network namespace with testIf and peerIf, both up.
type testNS struct {
	t    *testing.T
	rig  *netns.Rig
	name string
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	netns.Require(t)
	r := netns.NewT(t)
	name, err := r.AddNS(nsShort)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNS{t: t, rig: r, name: name}
	// The rig turns IPv6 off in its namespaces; these tests announce IPv6
	// VIPs too.
	if _, err := r.Exec(nsShort, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"); err != nil {
		t.Fatal(err)
	}
	n.addVeth()
	return n
}

// ip runs "ip ARGS" in the namespace.
func (n *testNS) ip(args ...string) string {
	n.t.Helper()
	out, err := n.rig.IP(nsShort, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// addVeth creates the veth pair inside the namespace: nothing is created
// in, or moved out of, the host's namespace. Indexes, when given, are the
// ifindexes of testIf and peerIf.
func (n *testNS) addVeth(index ...int) {
	n.t.Helper()
	args := []string{"link", "add", testIf}
	if len(index) == 2 {
		args = append(args, "index", strconv.Itoa(index[0]))
	}
	args = append(args, "type", "veth", "peer", "name", peerIf)
	if len(index) == 2 {
		args = append(args, "index", strconv.Itoa(index[1]))
	}
	n.ip(args...)
	n.ip("link", "set", testIf, "up")
	n.ip("link", "set", peerIf, "up")
}

// do runs f on an OS thread switched into the namespace: sockets and
// netlink handles opened there stay in it. The thread is switched back
// before it is unlocked; if that fails the goroutine ends with its thread
// locked, so the runtime discards it rather than hand a thread in the
// test's namespace to other goroutines. Switching back matters: the thread
// may be the process's main one, whose namespace "ip netns pids" reports,
// and the rig's teardown kills every process it lists.
func (n *testNS) do(f func() error) error {
	return <-n.start(f)
}

// start is do in the background: the result arrives on the channel.
func (n *testNS) start(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		h, err := vnetns.GetFromName(n.name)
		if err != nil {
			done <- err
			return
		}
		defer h.Close()
		if err := vnetns.Set(h); err != nil {
			done <- fmt.Errorf("enter namespace %s: %w", n.name, err)
			return
		}
		err = f()
		if vnetns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return done
}

// addrs returns an Addrs whose netlink handle lives in the namespace.
func (n *testNS) addrs() *Addrs {
	n.t.Helper()
	var a *Addrs
	if err := n.do(func() (err error) { a, err = NewAddrs(); return err }); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(a.Close)
	return a
}

// ipLink is what "ip -j link show" tells of a link.
type ipLink struct {
	Index    int    `json:"ifindex"`
	Address  string `json:"address"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Tentative bool   `json:"tentative"`
	} `json:"addr_info"`
}

func (n *testNS) show(what, ifname string) ipLink {
	n.t.Helper()
	var links []ipLink
	if err := json.Unmarshal([]byte(n.ip("-j", what, "show", "dev", ifname)), &links); err != nil || len(links) != 1 {
		n.t.Fatalf("ip %s show dev %s: %d links, %v", what, ifname, len(links), err)
	}
	return links[0]
}

// kernelAddrs lists the addresses on ifname as iproute2 sees them, apart
// from the code under test; tentative ones are marked with a "?" suffix.
func (n *testNS) kernelAddrs(ifname string) []string {
	n.t.Helper()
	var out []string
	for _, a := range n.show("addr", ifname).AddrInfo {
		s := a.Local + "/" + strconv.Itoa(a.PrefixLen)
		if a.Tentative {
			s += "?"
		}
		out = append(out, s)
	}
	return out
}

func (n *testNS) mac(ifname string) net.HardwareAddr {
	n.t.Helper()
	mac, err := net.ParseMAC(n.show("link", ifname).Address)
	if err != nil {
		n.t.Fatal(err)
	}
	return mac
}

// listen opens a packet socket on ifname in the namespace receiving frames
// of the given EtherType.
func (n *testNS) listen(ifname string, et ethernet.EtherType) *packet.Conn {
	n.t.Helper()
	var c *packet.Conn
	err := n.do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, int(et), nil)
		return err
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// TestIntegrationAddrs: Add, List and Del of IPv4 and IPv6 addresses
// against the kernel. Adding an address already present succeeds and
// leaves one copy; an IPv6 VIP is usable at once (no duplicate address
// detection); removing an address that is not there is no error.
func TestIntegrationAddrs(t *testing.T) {
	n := newTestNS(t)
	a := n.addrs()
	prefixes := []netip.Prefix{vip4, vip6, net6}
	for _, p := range prefixes {
		for range 2 {
			if err := a.Add(testIf, p); err != nil {
				t.Fatalf("Add %s: %v", p, err)
			}
		}
	}
	got, err := a.List(testIf)
	if err != nil {
		t.Fatal(err)
	}
	kernel := n.kernelAddrs(testIf)
	for _, p := range prefixes {
		if c := count(got, p); c != 1 {
			t.Errorf("List: %s %d times, want once: %v", p, c, got)
		}
		if !slices.Contains(kernel, p.String()) {
			t.Errorf("the kernel lists %v, want %s there and not tentative", kernel, p)
		}
	}
	for _, p := range prefixes {
		if err := a.Del(testIf, p); err != nil {
			t.Fatalf("Del %s: %v", p, err)
		}
		if err := a.Del(testIf, p); err != nil {
			t.Errorf("Del %s again: %v, want nil", p, err)
		}
	}
	if got, err = a.List(testIf); err != nil {
		t.Fatal(err)
	}
	kernel = n.kernelAddrs(testIf)
	for _, p := range prefixes {
		if count(got, p) != 0 || slices.Contains(kernel, p.String()) {
			t.Errorf("%s still there after Del: List %v, kernel %v", p, got, kernel)
		}
	}
}

func count(ps []netip.Prefix, p netip.Prefix) int {
	c := 0
	for _, q := range ps {
		if q == p {
			c++
		}
	}
	return c
}

// TestIntegrationNoInterface: a missing interface is ErrNoInterface for
// Add, List, Prepare and Announce, and no error for Del.
func TestIntegrationNoInterface(t *testing.T) {
	n := newTestNS(t)
	a := n.addrs()
	const missing = "nosuch0"
	if err := a.Add(missing, vip4); !errors.Is(err, ErrNoInterface) {
		t.Errorf("Add: %v, want ErrNoInterface", err)
	}
	if _, err := a.List(missing); !errors.Is(err, ErrNoInterface) {
		t.Errorf("List: %v, want ErrNoInterface", err)
	}
	if err := a.Del(missing, vip4); err != nil {
		t.Errorf("Del: %v, want nil", err)
	}
	ann := NewAnnouncer()
	defer ann.Close()
	var prepErr, annErr error
	if err := n.do(func() error {
		prepErr = ann.Prepare(missing)
		annErr = ann.Announce(missing, vip4.Addr(), true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(prepErr, ErrNoInterface) {
		t.Errorf("Prepare: %v, want ErrNoInterface", prepErr)
	}
	if !errors.Is(annErr, ErrNoInterface) {
		t.Errorf("Announce: %v, want ErrNoInterface", annErr)
	}
}

// TestIntegrationForget: the interface is deleted and created again with
// the same name and a new ifindex. Without Forget, an operation that finds
// the remembered link gone looks it up again; after Forget, even the old
// ifindex now belonging to another link (the peer) does not mislead Addrs,
// and the Announcer announces from the new link's address.
func TestIntegrationForget(t *testing.T) {
	n := newTestNS(t)
	a := n.addrs()
	ann := NewAnnouncer()
	defer ann.Close()
	if err := a.Add(testIf, vip4); err != nil {
		t.Fatal(err)
	}
	if err := n.do(func() error { return ann.Prepare(testIf) }); err != nil {
		t.Fatal(err)
	}
	first := n.show("link", testIf).Index

	n.ip("link", "del", testIf)
	n.addVeth()
	second := n.show("link", testIf).Index
	if second == first {
		t.Fatalf("the recreated %s kept ifindex %d", testIf, first)
	}
	if err := a.Add(testIf, vip4); err != nil {
		t.Fatalf("Add on the recreated link, remembered link stale: %v", err)
	}
	if kernel := n.kernelAddrs(testIf); !slices.Contains(kernel, vip4.String()) {
		t.Errorf("after Add the kernel lists %v on the recreated %s", kernel, testIf)
	}

	// Recreated again, the peer now holding the ifindex remembered for
	// testIf.
	n.ip("link", "del", testIf)
	n.addVeth(second+10, second)
	a.Forget(testIf)
	ann.Forget(testIf)
	if got, err := a.List(testIf); err != nil || count(got, vip4) != 0 {
		t.Errorf("List after Forget: %v, %v; want the new link's addresses, without %s", got, err, vip4)
	}
	if err := a.Add(testIf, vip4); err != nil {
		t.Fatalf("Add after Forget: %v", err)
	}
	if kernel := n.kernelAddrs(testIf); !slices.Contains(kernel, vip4.String()) {
		t.Errorf("after Forget and Add the kernel lists %v on %s", kernel, testIf)
	}
	if kernel := n.kernelAddrs(peerIf); slices.Contains(kernel, vip4.String()) {
		t.Errorf("%s went to %s, which now has the old ifindex of %s", vip4, peerIf, testIf)
	}
	c := n.listen(peerIf, ethernet.EtherTypeARP)
	if err := n.do(func() error { return ann.Announce(testIf, vip4.Addr(), false) }); err != nil {
		t.Fatalf("Announce after Forget: %v", err)
	}
	readGARP(t, c, n.mac(testIf), vip4.Addr(), arp.OperationRequest)
}

// TestIntegrationWatch: Watch reports an address added and removed, the
// link going down and up, the carrier lost and back when the peer goes down
// and up, and the link's removal.
func TestIntegrationWatch(t *testing.T) {
	n := newTestNS(t)
	changes := make(chan Change, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := n.start(func() error {
		return Watch(ctx, func(c Change) {
			select {
			case changes <- c:
			default:
				// A full channel only loses events the test then
				// waits for in vain, and says so.
			}
		})
	})
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})

	// Watch gives no sign that it has subscribed: toggle a probe address
	// until its change is seen.
	subscribed := false
	for range 20 {
		n.ip("addr", "add", probe4.String(), "dev", testIf)
		if waitFor(changes, time.Second/2, func(c Change) bool { return c.Addr == probe4.Addr() && c.Present }) {
			subscribed = true
			break
		}
		n.ip("addr", "del", probe4.String(), "dev", testIf)
	}
	if !subscribed {
		t.Fatal("Watch reported no address change")
	}

	steps := []struct {
		name string
		do   []string
		want Change
	}{
		{"IPv4 address added", []string{"addr", "add", vip4.String(), "dev", testIf}, Change{Interface: testIf, Addr: vip4.Addr(), Present: true}},
		{"IPv4 address removed", []string{"addr", "del", vip4.String(), "dev", testIf}, Change{Interface: testIf, Addr: vip4.Addr()}},
		{"IPv6 address added", []string{"addr", "add", vip6.String(), "dev", testIf, "nodad"}, Change{Interface: testIf, Addr: vip6.Addr(), Present: true}},
		{"link down", []string{"link", "set", testIf, "down"}, Change{Interface: testIf, Present: true}},
		{"link up", []string{"link", "set", testIf, "up"}, Change{Interface: testIf, Present: true, Up: true}},
		{"carrier lost", []string{"link", "set", peerIf, "down"}, Change{Interface: testIf, Present: true}},
		{"carrier back", []string{"link", "set", peerIf, "up"}, Change{Interface: testIf, Present: true, Up: true}},
		{"link removed", []string{"link", "del", testIf}, Change{Interface: testIf}},
	}
	for _, s := range steps {
		n.ip(s.do...)
		if !waitFor(changes, eventWait, func(c Change) bool { return c == s.want }) {
			t.Fatalf("%s: no change %+v reported", s.name, s.want)
		}
	}
}

// waitFor reads changes until one satisfies ok, or d passes.
func waitFor(changes <-chan Change, d time.Duration, ok func(Change) bool) bool {
	timeout := time.After(d)
	for {
		select {
		case c := <-changes:
			if ok(c) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// TestIntegrationAnnounce: the gratuitous ARP request and reply for an
// IPv4 VIP, and the unsolicited neighbour advertisement for an IPv6 VIP,
// arrive at the other end of the veth pair as RFC 5227 and RFC 4861 7.2.6
// describe them.
func TestIntegrationAnnounce(t *testing.T) {
	n := newTestNS(t)
	a := n.addrs()
	mac := n.mac(testIf)
	// As the daemon does: the VIPs are on the interface before they are
	// announced.
	for _, p := range []netip.Prefix{vip4, vip6} {
		if err := a.Add(testIf, p); err != nil {
			t.Fatal(err)
		}
	}
	ann := NewAnnouncer()
	defer ann.Close()
	arpc := n.listen(peerIf, ethernet.EtherTypeARP)
	v6c := n.listen(peerIf, ethernet.EtherTypeIPv6)
	if err := n.do(func() error {
		if err := ann.Prepare(testIf); err != nil {
			return fmt.Errorf("Prepare: %w", err)
		}
		if err := ann.Announce(testIf, vip4.Addr(), true); err != nil {
			return err
		}
		return ann.Announce(testIf, vip6.Addr(), false)
	}); err != nil {
		t.Fatal(err)
	}
	readGARP(t, arpc, mac, vip4.Addr(), arp.OperationRequest, arp.OperationReply)
	readNA(t, v6c, mac, vip6.Addr())
}

// readGARP reads ARP frames from c until it has seen a gratuitous ARP for
// vip from mac with each of ops, and checks each.
func readGARP(t *testing.T, c *packet.Conn, mac net.HardwareAddr, vip netip.Addr, ops ...arp.Operation) {
	t.Helper()
	seen := map[arp.Operation]bool{}
	readFrames(t, c, func(f *ethernet.Frame) bool {
		var p arp.Packet
		if f.EtherType != ethernet.EtherTypeARP || p.UnmarshalBinary(f.Payload) != nil || p.SenderIP != vip {
			return false
		}
		wantTarget := ethernet.Broadcast
		if p.Operation == arp.OperationReply {
			wantTarget = mac
		}
		if !bytes.Equal(f.Destination, ethernet.Broadcast) || !bytes.Equal(f.Source, mac) ||
			!bytes.Equal(p.SenderHardwareAddr, mac) || p.TargetIP != vip || !bytes.Equal(p.TargetHardwareAddr, wantTarget) {
			t.Errorf("gratuitous ARP %v: frame %s -> %s, packet %+v; want from %s", p.Operation, f.Source, f.Destination, p, mac)
		}
		seen[p.Operation] = true
		for _, op := range ops {
			if !seen[op] {
				return false
			}
		}
		return true
	}, fmt.Sprintf("gratuitous ARP %v for %s", ops, vip))
}

// readNA reads IPv6 frames from c until it sees the neighbour
// advertisement for vip, and checks it: to all nodes, hop limit 255,
// Override set, Solicited clear, mac as the target's link-layer address.
func readNA(t *testing.T, c *packet.Conn, mac net.HardwareAddr, vip netip.Addr) {
	t.Helper()
	readFrames(t, c, func(f *ethernet.Frame) bool {
		h, err := ipv6.ParseHeader(f.Payload)
		if err != nil || h.NextHeader != ndpProtocol || len(f.Payload) < ipv6.HeaderLen+h.PayloadLen {
			return false
		}
		m, err := ndp.ParseMessage(f.Payload[ipv6.HeaderLen : ipv6.HeaderLen+h.PayloadLen])
		if err != nil {
			return false
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok || na.TargetAddress != vip {
			return false
		}
		if !h.Dst.Equal(net.IPv6linklocalallnodes) || h.HopLimit != 255 || !bytes.Equal(f.Source, mac) {
			t.Errorf("advertisement sent %s -> %s (from %s), hop limit %d; want to %s, hop limit 255, from %s", h.Src, h.Dst, f.Source, h.HopLimit, net.IPv6linklocalallnodes, mac)
		}
		var lla net.HardwareAddr
		for _, o := range na.Options {
			if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target {
				lla = l.Addr
			}
		}
		if !na.Override || na.Solicited || na.Router || !bytes.Equal(lla, mac) {
			t.Errorf("advertisement %+v, target link-layer address %s; want Override, not Solicited, %s", na, lla, mac)
		}
		return true
	}, "neighbour advertisement for "+vip.String())
}

// ndpProtocol is ICMPv6, the protocol that carries neighbour discovery.
const ndpProtocol = 58

// readFrames reads Ethernet frames from c until done accepts one, failing
// the test when none does within eventWait.
func readFrames(t *testing.T, c *packet.Conn, done func(*ethernet.Frame) bool, what string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(eventWait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	for {
		k, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for the %s: %v", what, err)
		}
		var f ethernet.Frame
		if f.UnmarshalBinary(buf[:k]) != nil {
			continue
		}
		if done(&f) {
			return
		}
	}
}
