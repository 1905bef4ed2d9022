package main

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// frameKind is what a captured frame means to the demo.
type frameKind int

// The frames the demo looks for; everything else is frameOther.
const (
	frameOther       frameKind = iota
	frameGARP                  // a gratuitous ARP for the VIP
	frameEchoRequest           // the client's ping to the VIP
	frameEchoReply             // the VIP's answer to the client
)

// Ethernet, ARP, IPv4 and ICMP constants the parser needs.
const (
	etherHeaderLen = 14
	etherTypeIPv4  = 0x0800
	etherTypeARP   = 0x0806
	arpLen         = 28
	ipProtoICMP    = 1
	icmpEchoReply  = 0
	icmpEchoReq    = 8
	icmpHeaderLen  = 8
)

// frameInfo is a parsed frame: its kind, the Ethernet source and, for
// pings, the ICMP sequence number.
type frameInfo struct {
	kind frameKind
	src  string
	seq  uint16
}

// parseFrame classifies an Ethernet frame: a gratuitous ARP whose sender
// and target are vip, or an ICMP echo request from client to vip, or the
// reply from vip to client. Short or malformed frames are frameOther.
func parseFrame(b []byte, vip, client netip.Addr) frameInfo {
	if len(b) < etherHeaderLen {
		return frameInfo{}
	}
	src := net.HardwareAddr(b[6:12]).String()
	payload := b[etherHeaderLen:]
	switch binary.BigEndian.Uint16(b[12:14]) {
	case etherTypeARP:
		if len(payload) < arpLen {
			return frameInfo{}
		}
		// Ethernet and IPv4 only: hardware type 1, protocol IPv4, sizes 6 and 4.
		if binary.BigEndian.Uint16(payload[0:2]) != 1 || binary.BigEndian.Uint16(payload[2:4]) != etherTypeIPv4 || payload[4] != 6 || payload[5] != 4 {
			return frameInfo{}
		}
		spa := netip.AddrFrom4([4]byte(payload[14:18]))
		tpa := netip.AddrFrom4([4]byte(payload[24:28]))
		if spa == vip && tpa == vip {
			return frameInfo{kind: frameGARP, src: src}
		}
	case etherTypeIPv4:
		if len(payload) < 20 || payload[0]>>4 != 4 {
			return frameInfo{}
		}
		ihl := int(payload[0]&0x0f) * 4
		if ihl < 20 || len(payload) < ihl+icmpHeaderLen || payload[9] != ipProtoICMP {
			return frameInfo{}
		}
		from := netip.AddrFrom4([4]byte(payload[12:16]))
		to := netip.AddrFrom4([4]byte(payload[16:20]))
		icmp := payload[ihl:]
		seq := binary.BigEndian.Uint16(icmp[6:8])
		switch {
		case icmp[0] == icmpEchoReq && from == client && to == vip:
			return frameInfo{kind: frameEchoRequest, src: src, seq: seq}
		case icmp[0] == icmpEchoReply && from == vip && to == client:
			return frameInfo{kind: frameEchoReply, src: src, seq: seq}
		}
	}
	return frameInfo{}
}

// echoRequest is an ICMP echo request with id and seq and a checksum.
func echoRequest(id, seq uint16) []byte {
	b := make([]byte, icmpHeaderLen+16)
	b[0] = icmpEchoReq
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	copy(b[icmpHeaderLen:], "havip-demo-ping!")
	binary.BigEndian.PutUint16(b[2:4], checksum(b))
	return b
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
