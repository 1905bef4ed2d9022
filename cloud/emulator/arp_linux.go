//go:build linux

package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// LearnARP listens (read-only, never sends) to ARP on the named interface until ctx is done and
// feeds every request and reply to ObserveARP. It needs CAP_NET_RAW.
func (e *Emulator) LearnARP(ctx context.Context, iface string) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("learn arp: %w", err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return fmt.Errorf("learn arp on %s: %w", iface, err)
	}
	defer conn.Close()
	go func() {
		<-ctx.Done()
		_ = conn.SetReadDeadline(time.Now())
	}()
	buf := make([]byte, ifi.MTU+64)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("learn arp on %s: %w", iface, err)
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(buf[:n]); err != nil || f.EtherType != ethernet.EtherTypeARP {
			continue
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			continue
		}
		if p.Operation != arp.OperationRequest && p.Operation != arp.OperationReply {
			continue
		}
		e.ObserveARP(p.SenderHardwareAddr, p.SenderIP)
	}
}
