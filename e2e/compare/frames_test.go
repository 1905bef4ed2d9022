package compare

import (
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	// A VRRPv2 advertisement, 198.18.0.12 -> 198.18.0.11 (unicast).
	vrrpFrame = "020000000001 020000000002 0800" +
		"4500002800000000ff70" + "0000" + "c612000c" + "c612000b" +
		"2133fe0100010000" + "0000000000000000"
	// A gratuitous ARP request for 198.18.0.100 from 02:00:00:00:00:02.
	garpFrame = "ffffffffffff 020000000002 0806" +
		"0001080006040001" + "020000000002" + "c6120064" + "000000000000" + "c6120064"
	// An ordinary ARP request: who has 198.18.0.1, tell 198.18.0.11.
	arpFrame = "ffffffffffff 020000000001 0806" +
		"0001080006040001" + "020000000001" + "c612000b" + "000000000000" + "c6120001"
	// A TCP segment.
	tcpFrame = "020000000001 020000000002 0800" +
		"4500002800000000" + "4006" + "0000" + "c612000c" + "c6120001" + "0000000000000000000000005000000000000000"
)

func TestVRRPSource(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame string
		want  netip.Addr
		ok    bool
	}{
		{"advertisement", vrrpFrame, netip.MustParseAddr("198.18.0.12"), true},
		{"garp", garpFrame, netip.Addr{}, false},
		{"tcp", tcpFrame, netip.Addr{}, false},
		{"truncated", vrrpFrame[:40], netip.Addr{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := VRRPSource(mustHex(t, tc.frame))
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestGARP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		frame   string
		wantIP  netip.Addr
		wantMAC string
		ok      bool
	}{
		{"gratuitous", garpFrame, netip.MustParseAddr("198.18.0.100"), "02:00:00:00:00:02", true},
		{"ordinary request", arpFrame, netip.Addr{}, "", false},
		{"vrrp", vrrpFrame, netip.Addr{}, "", false},
		{"truncated", garpFrame[:60], netip.Addr{}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, mac, ok := GARP(mustHex(t, tc.frame))
			gotMAC := ""
			if mac != nil {
				gotMAC = net.HardwareAddr(mac).String()
			}
			if ip != tc.wantIP || gotMAC != tc.wantMAC || ok != tc.ok {
				t.Errorf("got %v, %q, %v; want %v, %q, %v", ip, gotMAC, ok, tc.wantIP, tc.wantMAC, tc.ok)
			}
		})
	}
}

func FuzzFrames(f *testing.F) {
	for _, s := range []string{vrrpFrame, garpFrame, arpFrame, tcpFrame} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if ip, ok := VRRPSource(frame); ok && !ip.Is4() {
			t.Errorf("VRRP source %v is not IPv4", ip)
		}
		if ip, mac, ok := GARP(frame); ok && (!ip.Is4() || len(mac) != 6) {
			t.Errorf("GARP %v %v", ip, mac)
		}
	})
}
