package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/agent/netif"
)

// fakeNet is an in-memory Network that records every operation.
type fakeNet struct {
	mu      sync.Mutex
	addrs   map[string]map[netip.Prefix]bool
	ops     []string
	missing map[string]bool
	onOp    func(op string)
	// failAdds fails that many adds; failAnnounce fails every
	// announcement.
	failAdds     int
	failLists    int
	failDels     int
	failAnnounce bool
	// changes feeds Watch; forgotten lists the Forget calls.
	changes   chan netif.Change
	forgotten []string
}

func newFakeNet(ifaces ...string) *fakeNet {
	f := &fakeNet{addrs: map[string]map[netip.Prefix]bool{}, missing: map[string]bool{}, changes: make(chan netif.Change, 16)}
	for _, i := range ifaces {
		f.addrs[i] = map[netip.Prefix]bool{}
	}
	return f
}

func (f *fakeNet) record(op string) {
	f.ops = append(f.ops, op)
	if f.onOp != nil {
		f.onOp(op)
	}
}

func (f *fakeNet) Add(ifname string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addrs[ifname] == nil {
		return fmt.Errorf("%s: %w", ifname, netif.ErrNoInterface)
	}
	if f.failAdds > 0 {
		f.failAdds--
		f.record("add failed " + p.String())
		return errors.New("netlink: file exists (injected)")
	}
	f.addrs[ifname][p] = true
	f.record("add " + p.String())
	return nil
}

func (f *fakeNet) Del(ifname string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failDels > 0 {
		f.failDels--
		f.record("del failed " + p.String())
		return errors.New("netlink: no buffer space (injected)")
	}
	if f.addrs[ifname] != nil {
		delete(f.addrs[ifname], p)
	}
	f.record("del " + p.String())
	return nil
}

func (f *fakeNet) List(ifname string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failLists > 0 {
		f.failLists--
		return nil, errors.New("netlink: no buffer space (injected)")
	}
	if f.addrs[ifname] == nil {
		return nil, fmt.Errorf("%s: %w", ifname, netif.ErrNoInterface)
	}
	var out []netip.Prefix
	for p := range f.addrs[ifname] {
		out = append(out, p)
	}
	return out, nil
}

func (f *fakeNet) Announce(ifname string, vip netip.Addr, reply bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAnnounce {
		f.record("announce failed " + vip.String())
		return errors.New("sendto: no buffer space (injected)")
	}
	f.record("announce " + vip.String())
	return nil
}

// external changes the interface behind the agent's back.
func (f *fakeNet) Prepare(string) error { return nil }

func (f *fakeNet) Forget(ifname string, gone bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, fmt.Sprintf("%s gone=%t", ifname, gone))
}

// Watch delivers what tests send on f.changes, as netlink would.
func (f *fakeNet) Watch(ctx context.Context, fn func(netif.Change)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-f.changes:
			fn(c)
		}
	}
}

func (f *fakeNet) external(ifname string, p netip.Prefix, present bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if present {
		f.addrs[ifname][p] = true
	} else {
		delete(f.addrs[ifname], p)
	}
}

func (f *fakeNet) has(ifname string, p netip.Prefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[ifname][p]
}

func (f *fakeNet) opsCopy() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

func (f *fakeNet) count(op string) int {
	n := 0
	for _, o := range f.opsCopy() {
		if o == op {
			n++
		}
	}
	return n
}

// eventually polls cond for up to 5 s: generous, because CI machines are
// loaded; correctness, not speed, is asserted.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}
