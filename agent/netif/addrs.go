package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoInterface is returned when the named interface does not exist.
var ErrNoInterface = errors.New("no such interface")

// Addrs manages addresses through one netlink handle.
type Addrs struct {
	h *netlink.Handle
}

// NewAddrs opens a netlink handle in the current network namespace.
func NewAddrs() (*Addrs, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Addrs{h: h}, nil
}

// Close releases the netlink handle.
func (a *Addrs) Close() { a.h.Close() }

func (a *Addrs) link(ifname string) (netlink.Link, error) {
	l, err := a.h.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%s: %w", ifname, ErrNoInterface)
		}
		return nil, fmt.Errorf("%s: %w", ifname, err)
	}
	return l, nil
}

func toAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		// A VIP must be usable at once: duplicate address detection
		// would hold it tentative for a second or more, and the peer
		// that owned it a moment ago is exactly the duplicate it would
		// find.
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// Add puts p on the interface. An address that is already there is left
// as it is (replace semantics), so a VIP that keepalived also manages does
// no harm.
func (a *Addrs) Add(ifname string, p netip.Prefix) error {
	l, err := a.link(ifname)
	if err != nil {
		return err
	}
	if err := a.h.AddrReplace(l, toAddr(p)); err != nil {
		return fmt.Errorf("add %s to %s: %w", p, ifname, err)
	}
	return nil
}

// Del removes p from the interface; an address that is not there, or an
// interface that is gone, is not an error.
func (a *Addrs) Del(ifname string, p netip.Prefix) error {
	l, err := a.link(ifname)
	if errors.Is(err, ErrNoInterface) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.h.AddrDel(l, toAddr(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", p, ifname, err)
	}
	return nil
}

// List returns the addresses on the interface.
func (a *Addrs) List(ifname string) ([]netip.Prefix, error) {
	l, err := a.link(ifname)
	if err != nil {
		return nil, err
	}
	as, err := a.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", ifname, err)
	}
	out := make([]netip.Prefix, 0, len(as))
	for _, x := range as {
		if p, ok := prefixOf(x.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}
