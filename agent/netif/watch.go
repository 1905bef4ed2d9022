package netif

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Change is one address or link change seen on the system.
type Change struct {
	// Interface is the name of the interface concerned.
	Interface string
	// Addr is the address added or removed; invalid for link changes.
	Addr netip.Addr
	// Present tells whether the address (or the link) now exists.
	Present bool
	// Up tells, for a link change, whether the link is up with a carrier
	// (IFF_UP and IFF_LOWER_UP).
	Up bool
	// Resync is set when events may have been lost (the kernel's buffer
	// overflowed): consumers must re-read everything they care about.
	Resync bool
}

// Watch reports address and link changes until ctx is done. fn is called
// from Watch's goroutines and must not block. Watch returns when ctx is done
// or the subscription fails to start.
func Watch(ctx context.Context, fn func(Change)) error {
	addrCh := make(chan netlink.AddrUpdate, 256)
	linkCh := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	var errMu sync.Mutex
	lost := false
	onErr := func(error) {
		errMu.Lock()
		lost = true
		errMu.Unlock()
	}
	if err := netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr, ReceiveBufferSize: 1 << 20}); err != nil {
		return fmt.Errorf("subscribe to address events: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(linkCh, done, netlink.LinkSubscribeOptions{ErrorCallback: onErr, ReceiveBufferSize: 1 << 20}); err != nil {
		return fmt.Errorf("subscribe to link events: %w", err)
	}
	names := map[int]string{}
	nameOf := func(index int) string {
		if n, ok := names[index]; ok {
			return n
		}
		l, err := netlink.LinkByIndex(index)
		if err != nil {
			return ""
		}
		names[index] = l.Attrs().Name
		return names[index]
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-addrCh:
			if !ok {
				return fmt.Errorf("address event subscription closed")
			}
			p, ok := prefixOf(&u.LinkAddress)
			if !ok {
				continue
			}
			fn(Change{Interface: nameOf(u.LinkIndex), Addr: p.Addr(), Present: u.NewAddr})
		case u, ok := <-linkCh:
			if !ok {
				return fmt.Errorf("link event subscription closed")
			}
			a := u.Attrs()
			present := u.Header.Type == unix.RTM_NEWLINK
			if present {
				names[a.Index] = a.Name
			} else {
				delete(names, a.Index)
			}
			up := present && a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
			fn(Change{Interface: a.Name, Present: present, Up: up})
		}
		errMu.Lock()
		resync := lost
		lost = false
		errMu.Unlock()
		if resync {
			fn(Change{Resync: true})
		}
	}
}
