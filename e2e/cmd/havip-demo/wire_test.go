package main

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

var (
	testVIP    = netip.MustParseAddr("198.18.0.100")
	testClient = netip.MustParseAddr("198.18.0.50")
	testMAC    = []byte{0x02, 0, 0, 0, 0, 0x12}
)

// ether is an Ethernet frame from testMAC with payload.
func ether(etherType uint16, payload []byte) []byte {
	b := append(make([]byte, 6), testMAC...)
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// arpFrame is an ARP packet for Ethernet and IPv4.
func arpFrame(op uint16, spa, tpa netip.Addr) []byte {
	p := []byte{0, 1, 8, 0, 6, 4}
	p = binary.BigEndian.AppendUint16(p, op)
	p = append(p, testMAC...)
	p = append(p, spa.AsSlice()...)
	p = append(p, make([]byte, 6)...)
	p = append(p, tpa.AsSlice()...)
	return ether(etherTypeARP, p)
}

// icmpFrame is an IPv4 packet from src to dst carrying an echo message.
func icmpFrame(typ byte, src, dst netip.Addr, seq uint16) []byte {
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, ipProtoICMP, 0, 0}
	ip = append(ip, src.AsSlice()...)
	ip = append(ip, dst.AsSlice()...)
	icmp := echoRequest(7, seq)
	icmp[0] = typ
	return ether(etherTypeIPv4, append(ip, icmp...))
}

func TestParseFrame(t *testing.T) {
	other := netip.MustParseAddr("198.18.0.12")
	mac := "02:00:00:00:00:12"
	tests := []struct {
		name  string
		frame []byte
		want  frameInfo
	}{
		{"gratuitous request", arpFrame(1, testVIP, testVIP), frameInfo{kind: frameGARP, src: mac}},
		{"gratuitous reply", arpFrame(2, testVIP, testVIP), frameInfo{kind: frameGARP, src: mac}},
		{"ARP for the VIP", arpFrame(1, testClient, testVIP), frameInfo{}},
		{"gratuitous for another address", arpFrame(1, other, other), frameInfo{}},
		{"short ARP", arpFrame(1, testVIP, testVIP)[:40], frameInfo{}},
		{"echo request", icmpFrame(icmpEchoReq, testClient, testVIP, 9), frameInfo{kind: frameEchoRequest, src: mac, seq: 9}},
		{"echo reply", icmpFrame(icmpEchoReply, testVIP, testClient, 9), frameInfo{kind: frameEchoReply, src: mac, seq: 9}},
		{"reply from another address", icmpFrame(icmpEchoReply, other, testClient, 9), frameInfo{}},
		{"request the wrong way", icmpFrame(icmpEchoReq, testVIP, testClient, 9), frameInfo{}},
		{"short ICMP", icmpFrame(icmpEchoReply, testVIP, testClient, 9)[:14+20+4], frameInfo{}},
		{"IPv6 version", func() []byte {
			f := icmpFrame(icmpEchoReply, testVIP, testClient, 9)
			f[14] = 0x65
			return f
		}(), frameInfo{}},
		{"runt", []byte{1, 2, 3}, frameInfo{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseFrame(tc.frame, testVIP, testClient); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEchoRequestChecksum(t *testing.T) {
	for _, seq := range []uint16{0, 1, 0xffff} {
		b := echoRequest(0x1234, seq)
		if got := checksum(b); got != 0 {
			t.Errorf("seq %d: checksum over the packet = %#x, want 0", seq, got)
		}
		if got := binary.BigEndian.Uint16(b[6:8]); got != seq {
			t.Errorf("seq field = %d, want %d", got, seq)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(arpFrame(1, testVIP, testVIP))
	f.Add(icmpFrame(icmpEchoReply, testVIP, testClient, 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fi := parseFrame(b, testVIP, testClient)
		if fi.kind != frameOther && len(b) < etherHeaderLen+arpLen {
			t.Fatalf("a %d-byte frame parsed as %v", len(b), fi.kind)
		}
	})
}
