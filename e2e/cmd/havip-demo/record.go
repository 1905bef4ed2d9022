package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/e2e/rig"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// Recording rates: the VIP's presence is dumped every sampleEvery on each
// node, the agents are asked every statusEvery, the client pings every
// pingEvery.
const (
	sampleEvery = time.Millisecond
	statusEvery = 25 * time.Millisecond
	pingEvery   = 10 * time.Millisecond
)

// recorder keeps what the demo sees while it runs: the VIP on each node
// (netlink events and dumps in each namespace), the client's pings and
// their replies (captured on the client's eth0), gratuitous ARPs on the
// switch and the agents' transitions. It records for the few seconds the
// demo runs, so its slices stay small.
type recorder struct {
	h        *rig.HA
	nodes    []nodeInfo
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	captures []*rig.Capture
	// handles are closed once the samplers that use them have ended.
	handles []*netlink.Handle
	ping    *pinger

	mu     sync.Mutex
	vip    map[string][]presence
	echoes []echo
	garps  []garp
	agent  []agentEvent
}

// startRecorder starts every probe and the client's ping.
func startRecorder(h *rig.HA, nodes []nodeInfo) (*recorder, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{h: h, nodes: nodes, cancel: cancel, vip: map[string][]presence{}}
	vip, client := netip.MustParseAddr(rig.VIP), netip.MustParseAddr(rig.ClientIP)
	for _, c := range []struct{ ns, ifname string }{{"sw", "br0"}, {"client", "eth0"}} {
		capt, err := rig.StartCapture(h.NS.Name(c.ns), c.ifname)
		if err != nil {
			r.stop()
			return nil, err
		}
		r.captures = append(r.captures, capt)
		onSwitch := c.ns == "sw"
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for f := range capt.Frames() {
				fi := parseFrame(f.Data, vip, client)
				r.mu.Lock()
				switch {
				case fi.kind == frameGARP && onSwitch:
					r.garps = append(r.garps, garp{f.At, fi.src})
				case fi.kind == frameEchoRequest && !onSwitch:
					r.echoes = append(r.echoes, echo{At: f.At, Seq: fi.seq})
				case fi.kind == frameEchoReply && !onSwitch:
					r.echoes = append(r.echoes, echo{At: f.At, Seq: fi.seq, Reply: true, MAC: fi.src})
				}
				r.mu.Unlock()
			}
		}()
	}
	for _, n := range nodes {
		hd, link, err := linkIn(h.NS.Name(n.Name), "eth0")
		if err != nil {
			r.stop()
			return nil, err
		}
		r.handles = append(r.handles, hd)
		r.wg.Add(2)
		go func() { defer r.wg.Done(); r.sampleVIP(ctx, n.Name, hd, link, vip) }()
		go func() { defer r.wg.Done(); r.pollAgent(ctx, n.Name) }()
	}
	p, err := startPinger(h.NS.Name("client"), vip)
	if err != nil {
		r.stop()
		return nil, err
	}
	r.ping = p
	return r, nil
}

// linkIn opens a netlink handle in the named namespace and finds ifname.
func linkIn(nsName, ifname string) (*netlink.Handle, netlink.Link, error) {
	ns, err := vnetns.GetFromName(nsName)
	if err != nil {
		return nil, nil, fmt.Errorf("namespace %s: %w", nsName, err)
	}
	defer ns.Close()
	hd, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, nil, fmt.Errorf("netlink in %s: %w", nsName, err)
	}
	l, err := hd.LinkByName(ifname)
	if err != nil {
		hd.Close()
		return nil, nil, fmt.Errorf("%s in %s: %w", ifname, nsName, err)
	}
	return hd, l, nil
}

// sampleVIP follows the VIP on a node two ways: netlink address events
// (precise, but a full socket drops them) and a dump every sampleEvery
// (certain, but up to an interval late).
func (r *recorder) sampleVIP(ctx context.Context, node string, hd *netlink.Handle, link netlink.Link, vip netip.Addr) {
	updates := make(chan netlink.AddrUpdate, 1024)
	done := make(chan struct{})
	defer close(done)
	if ns, err := vnetns.GetFromName(r.h.NS.Name(node)); err == nil {
		err = netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{Namespace: &ns, ReceiveBufferSize: 1 << 20})
		ns.Close()
		if err != nil {
			updates = nil
		}
	}
	ifindex := link.Attrs().Index
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			if ip, ok := netip.AddrFromSlice(u.LinkAddress.IP); ok && ip.Unmap() == vip && u.LinkIndex == ifindex {
				r.seeEvent(node, u.NewAddr, time.Now())
			}
		case <-tick.C:
			start := time.Now()
			as, err := hd.AddrList(link, netlink.FAMILY_V4)
			if err != nil {
				continue
			}
			present := slices.ContainsFunc(as, func(a netlink.Addr) bool {
				ip, ok := netip.AddrFromSlice(a.IP)
				return ok && ip.Unmap() == vip
			})
			r.seeDump(node, present, start, time.Now())
		}
	}
}

// seeEvent records an address event received at at: an upper bound on
// when the change happened. A dump may have recorded the same change
// already, later; the earlier time wins.
func (r *recorder) seeEvent(node string, present bool, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vip[node] = seen(r.vip[node], present, at)
}

// seeDump records a dump that ran from start to end. Its state held at
// some moment in between, so a change it shows happened before end; a
// change recorded after start is newer than the dump, which then says
// nothing.
func (r *recorder) seeDump(node string, present bool, start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.vip[node]
	if n := len(s); n > 0 && s[n-1].Present != present && !s[n-1].At.Before(start) {
		return
	}
	r.vip[node] = seen(s, present, end)
}

// seen adds a sample to a node's changes: a new change when the state
// differs from the last, else an earlier time for the last change.
func seen(s []presence, present bool, at time.Time) []presence {
	n := len(s)
	if n == 0 || s[n-1].Present != present {
		return append(s, presence{at, present})
	}
	if at.Before(s[n-1].At) && (n == 1 || at.After(s[n-2].At)) {
		s[n-1].At = at
	}
	return s
}

// pollAgent keeps each new last_transition of the node's agent.
func (r *recorder) pollAgent(ctx context.Context, node string) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a := r.h.Nodes[node].Agent
		if a == nil {
			continue
		}
		st, err := a.Status()
		if err != nil || len(st.Instances) == 0 || st.Instances[0].Last == nil {
			continue
		}
		l := st.Instances[0].Last
		ev := agentEvent{Node: node, To: string(l.To), Source: l.Source, Received: l.Received, Generation: l.Generation}
		r.mu.Lock()
		if !slices.Contains(r.agent, ev) {
			r.agent = append(r.agent, ev)
		}
		r.mu.Unlock()
	}
}

// holds reports whether the latest sample shows the VIP on node.
func (r *recorder) holds(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.vip[node]
	return len(s) > 0 && s[len(s)-1].Present
}

// servedBy reports whether node answered a ping after t.
func (r *recorder) servedBy(mac string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.echoes) - 1; i >= 0 && r.echoes[i].At.After(t); i-- {
		if r.echoes[i].Reply && r.echoes[i].MAC == mac {
			return true
		}
	}
	return false
}

// snapshot copies what was recorded, with the cloud's log.
func (r *recorder) snapshot(e *rig.Emulator) (snapshot, error) {
	l, err := e.Log()
	if err != nil {
		return snapshot{}, fmt.Errorf("emulator log: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	vip := map[string][]presence{}
	for k, v := range r.vip {
		vip[k] = slices.Clone(v)
	}
	echoes := slices.Clone(r.echoes)
	// Two captures' readers append in their own order; the timeline
	// wants time order.
	slices.SortStableFunc(echoes, func(a, b echo) int { return a.At.Compare(b.At) })
	return snapshot{Nodes: r.nodes, VIP: vip, Echoes: echoes, GARPs: slices.Clone(r.garps), Agent: slices.Clone(r.agent), Cloud: l}, nil
}

// dropped is the number of frames the captures lost.
func (r *recorder) dropped() uint64 {
	var n uint64
	for _, c := range r.captures {
		n += c.Dropped()
	}
	return n
}

// stop ends the ping and every probe.
func (r *recorder) stop() {
	if r.ping != nil {
		r.ping.close()
	}
	r.cancel()
	for _, c := range r.captures {
		c.Close()
	}
	r.wg.Wait()
	for _, hd := range r.handles {
		hd.Close()
	}
}
