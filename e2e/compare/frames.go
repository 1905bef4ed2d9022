package compare

import (
	"encoding/binary"
	"net"
	"net/netip"
)

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
	protoVRRP     = 112
)

// payload strips the Ethernet header (and one 802.1Q tag) and returns the
// EtherType and what follows.
func payload(frame []byte) (uint16, []byte, bool) {
	if len(frame) < 14 {
		return 0, nil, false
	}
	et, rest := binary.BigEndian.Uint16(frame[12:14]), frame[14:]
	if et == etherTypeVLAN {
		if len(rest) < 4 {
			return 0, nil, false
		}
		et, rest = binary.BigEndian.Uint16(rest[2:4]), rest[4:]
	}
	return et, rest, true
}

// VRRPSource reports the IPv4 source address of a VRRP packet (IP
// protocol 112, version 2 or 3) carried in an Ethernet frame.
func VRRPSource(frame []byte) (netip.Addr, bool) {
	et, p, ok := payload(frame)
	if !ok || et != etherTypeIPv4 || len(p) < 20 || p[0]>>4 != 4 || p[9] != protoVRRP {
		return netip.Addr{}, false
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || len(p) < ihl+8 {
		return netip.Addr{}, false
	}
	if v := p[ihl] >> 4; v != 2 && v != 3 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(p[12:16])), true
}

// GARP reports the address a gratuitous ARP announces (sender IP equal to
// target IP, request or reply) and the sender's hardware address.
func GARP(frame []byte) (netip.Addr, net.HardwareAddr, bool) {
	et, p, ok := payload(frame)
	// Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4.
	if !ok || et != etherTypeARP || len(p) < 28 || binary.BigEndian.Uint16(p[0:2]) != 1 ||
		binary.BigEndian.Uint16(p[2:4]) != etherTypeIPv4 || p[4] != 6 || p[5] != 4 {
		return netip.Addr{}, nil, false
	}
	sender, target := netip.AddrFrom4([4]byte(p[14:18])), netip.AddrFrom4([4]byte(p[24:28]))
	if sender != target || sender.IsUnspecified() {
		return netip.Addr{}, nil, false
	}
	return sender, net.HardwareAddr(append([]byte(nil), p[8:14]...)), true
}
