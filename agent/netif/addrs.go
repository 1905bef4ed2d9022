package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoInterface is returned when the named interface does not exist.
var ErrNoInterface = errors.New("no such interface")

// Addrs manages addresses through one netlink handle. It remembers
// links by name, saving a netlink round trip per operation on the failover
// path; Forget drops a link that changed (the daemon calls it on link
// events), and an operation that finds the link gone looks it up again.
type Addrs struct {
	h     *netlink.Handle
	mu    sync.Mutex
	links map[string]netlink.Link
}

// NewAddrs opens a netlink handle in the current network namespace.
func NewAddrs() (*Addrs, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Addrs{h: h, links: map[string]netlink.Link{}}, nil
}

// Close releases the netlink handle.
func (a *Addrs) Close() { a.h.Close() }

// Forget drops what is remembered of ifname.
func (a *Addrs) Forget(ifname string) {
	a.mu.Lock()
	delete(a.links, ifname)
	a.mu.Unlock()
}

func (a *Addrs) link(ifname string) (netlink.Link, error) {
	a.mu.Lock()
	l, ok := a.links[ifname]
	a.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := a.h.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%s: %w", ifname, ErrNoInterface)
		}
		return nil, fmt.Errorf("%s: %w", ifname, err)
	}
	a.mu.Lock()
	a.links[ifname] = l
	a.mu.Unlock()
	return l, nil
}

// retry runs op on the remembered link and, if the kernel no longer knows
// that link (it was deleted and perhaps recreated), once more on a fresh
// lookup.
func (a *Addrs) retry(ifname string, op func(netlink.Link) error) error {
	l, err := a.link(ifname)
	if err != nil {
		return err
	}
	err = op(l)
	if errors.Is(err, unix.ENODEV) {
		a.Forget(ifname)
		if l, err = a.link(ifname); err != nil {
			return err
		}
		err = op(l)
	}
	return err
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
	err := a.retry(ifname, func(l netlink.Link) error { return a.h.AddrReplace(l, toAddr(p)) })
	if err != nil && !errors.Is(err, ErrNoInterface) {
		return fmt.Errorf("add %s to %s: %w", p, ifname, err)
	}
	return err
}

// Del removes p from the interface; an address that is not there, or an
// interface that is gone, is not an error.
func (a *Addrs) Del(ifname string, p netip.Prefix) error {
	err := a.retry(ifname, func(l netlink.Link) error { return a.h.AddrDel(l, toAddr(p)) })
	if err == nil || errors.Is(err, ErrNoInterface) || errors.Is(err, unix.EADDRNOTAVAIL) {
		return nil
	}
	return fmt.Errorf("remove %s from %s: %w", p, ifname, err)
}

// List returns the addresses on the interface.
func (a *Addrs) List(ifname string) ([]netip.Prefix, error) {
	var as []netlink.Addr
	err := a.retry(ifname, func(l netlink.Link) error {
		var err error
		as, err = a.h.AddrList(l, netlink.FAMILY_ALL)
		return err
	})
	if errors.Is(err, ErrNoInterface) {
		return nil, err
	}
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
