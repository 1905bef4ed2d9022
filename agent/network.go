package agent

import (
	"context"
	"net/netip"

	"github.com/havip-agent/havip-agent/agent/netif"
)

// Network is everything the daemon needs from the node's network stack: the
// addresses of an interface, announcements, and the stream of changes. The
// daemon uses netlink and raw sockets (netNetwork); tests use a fake, so that
// no daemon test touches the host's interfaces or subscribes to its netlink.
type Network interface {
	Add(ifname string, p netip.Prefix) error
	Del(ifname string, p netip.Prefix) error
	List(ifname string) ([]netip.Prefix, error)
	Announce(ifname string, vip netip.Addr, reply bool) error
	// Prepare opens what announcing on ifname needs ahead of the first
	// failover; an error is not fatal (the interface may not exist yet).
	Prepare(ifname string) error
	// Forget drops what is remembered of ifname after its link changed:
	// the handle, and the sockets too when the link is gone.
	Forget(ifname string, gone bool)
	// Watch calls fn for every change until ctx is done or the stream
	// fails; a Resync change means events may have been lost.
	Watch(ctx context.Context, fn func(netif.Change)) error
}

// netNetwork is the Network of the host: netlink addresses and the
// announcer's sockets.
type netNetwork struct {
	*netif.Addrs
	*netif.Announcer
}

func (n netNetwork) Forget(ifname string, gone bool) {
	n.Addrs.Forget(ifname)
	if gone {
		n.Announcer.Forget(ifname)
	}
}

func (n netNetwork) Watch(ctx context.Context, fn func(netif.Change)) error {
	return netif.Watch(ctx, fn)
}
