package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/netif"
)

// fifoCheckEvery is how often watchFIFO looks whether the FIFO's path
// still names the pipe being read.
var fifoCheckEvery = time.Second

// watchFIFO opens the FIFO again when its path was removed or recreated
// (by an operator, a package upgrade, or keepalived creating a missing
// one at start): otherwise keepalived writes into a new pipe nobody reads
// and every transition is missed. The replaced pipe is still read until
// the next replacement, for a keepalived that kept it open.
func (d *Daemon) watchFIFO(ctx context.Context, cur *keepalived.FIFO, spawn func(func())) {
	var prev *keepalived.FIFO
	defer func() {
		if prev != nil {
			prev.Close()
		}
		cur.Close()
	}()
	t := time.NewTicker(fifoCheckEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !cur.Replaced() {
			continue
		}
		nf, err := keepalived.OpenFIFO(d.fixed.Keepalived.FIFO)
		if err != nil {
			if !failing {
				d.log.Error("keepalived fifo was removed and cannot be opened again", "err", err)
			}
			failing = true
			continue
		}
		failing = false
		d.log.Warn("keepalived fifo was removed or replaced; reading the new one", "fifo", d.fixed.Keepalived.FIFO)
		if prev != nil {
			prev.Close()
		}
		prev, cur = cur, nf
		spawn(func() { d.readFIFO(ctx, nf) })
	}
}

func (d *Daemon) readFIFO(ctx context.Context, fifo *keepalived.FIFO) {
	for {
		lines, err := fifo.ReadBatch()
		d.handleLines(lines, "fifo")
		if err != nil {
			if ctx.Err() != nil || fifo.Closed() {
				return
			}
			d.log.Error("reading keepalived fifo failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func (d *Daemon) handleLines(lines []keepalived.Line, source string) {
	now := time.Now()
	for _, l := range lines {
		d.linesRead.Add(1)
		d.obs.FIFOLine()
		if l.TooLong {
			d.ignore(keepalived.ReasonTooLong, fmt.Errorf("line longer than %d bytes", keepalived.MaxLineLength), l.Data)
			continue
		}
		ev, err := keepalived.ParseLine(l.Data)
		if err != nil {
			d.ignore(keepalived.ReasonOf(err), err, l.Data)
			continue
		}
		if err := d.dispatch(ev, now, source); err != nil {
			d.ignore(keepalived.ReasonUnknownName, err, l.Data)
		}
	}
}

// dispatch routes an event to its instance.
func (d *Daemon) dispatch(ev keepalived.Event, received time.Time, source string) error {
	kind := config.KindInstance
	if ev.Kind == keepalived.KindGroup {
		kind = config.KindGroup
	}
	in, ok := d.table().byKey[key(kind, ev.Name)]
	if !ok {
		return fmt.Errorf("no configured %s named %q", kind, ev.Name)
	}
	st, transition := stateFromKeepalived(ev.State)
	if !transition {
		in.post(pending{input: input{kind: inPriority, priority: ev.Priority}, received: received, source: source})
		return nil
	}
	in.post(pending{
		input:    input{kind: inState, state: st, priority: ev.Priority, rxLowerPri: ev.State == keepalived.StateMasterRxLowerPri},
		received: received,
		source:   source,
	})
	return nil
}

// ignore counts a line that produced no event and logs the first of each
// kind, so a flood of garbage cannot flood the log.
func (d *Daemon) ignore(r keepalived.Reason, err error, line []byte) {
	c := d.ignored[r]
	c.n.Add(1)
	d.obs.FIFOIgnored(string(r))
	if c.logged.CompareAndSwap(false, true) {
		d.log.Warn("ignoring keepalived line (further lines of this kind are only counted)", "reason", string(r), "err", err, "line", clipLine(line))
	}
}

func clipLine(b []byte) string {
	const limit = 80
	if len(b) > limit {
		b = b[:limit]
	}
	return fmt.Sprintf("%q", b)
}

// Notify takes a notify request from the control socket.
func (d *Daemon) Notify(args []string) error {
	ev, err := keepalived.ParseArgs(args)
	if err != nil {
		return fmt.Errorf("notify %q: %w", args, err)
	}
	if err := d.dispatch(ev, time.Now(), "notify"); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func (d *Daemon) keepalivedLiveness(alive bool, why string) {
	d.kaMu.Lock()
	prev := d.kaState
	if alive {
		d.kaState = "alive"
	} else {
		d.kaState = "dead"
	}
	d.kaDetail = why
	d.kaMu.Unlock()
	if alive {
		if prev == "dead" {
			d.log.Info("keepalived is back; its next notifications drive the state", "detail", why)
		}
		// A MASTER restored from a record of this very keepalived
		// process is confirmed: had keepalived said anything since, it
		// would be in the FIFO's backlog, which came first.
		id, ok := d.watcher.Current()
		now := time.Now()
		for _, in := range d.table().instances {
			same := ok && in.restoredKA != nil && id.Same(*in.restoredKA)
			in.post(pending{input: input{kind: inKeepalivedSeen, sameKeepalived: same}, received: now, source: "liveness"})
		}
		return
	}
	d.log.Error("keepalived is not running: every instance is now FAULT", "detail", why)
	now := time.Now()
	for _, in := range d.table().instances {
		in.post(pending{input: input{kind: inDead}, received: now, source: "liveness"})
	}
}

func (d *Daemon) watchNetwork(ctx context.Context) {
	post := func(ins []*instance, kind inputKind) {
		now := time.Now()
		for _, in := range ins {
			in.post(pending{input: input{kind: kind}, received: now, source: "netlink"})
		}
	}
	up := map[string]bool{}
	for {
		err := d.net.Watch(ctx, func(c netif.Change) {
			if !c.Resync && !c.Addr.IsValid() {
				// The link changed: its remembered handle and sockets may
				// be stale.
				d.net.Forget(c.Interface, !c.Present)
			}
			ins, kind := routeChange(d.table(), up, c)
			post(ins, kind)
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped")
		}
		d.log.Error("netlink watch failed; restarting", "err", err)
		post(d.table().instances, inAddrChange)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// routeChange says which instances a netlink change concerns and what input
// it is for them, and updates up, each link's last carrier state (to tell a
// link that came back from one that merely changed): a resync concerns every
// instance, a link change the instances on that link, an address change the
// instances holding that address as a VIP.
func routeChange(t *table, up map[string]bool, c netif.Change) ([]*instance, inputKind) {
	switch {
	case c.Resync:
		return t.instances, inAddrChange
	case !c.Addr.IsValid():
		was, known := up[c.Interface]
		up[c.Interface] = c.Up
		if !c.Present {
			delete(up, c.Interface)
		}
		return t.onInterface(c.Interface), linkInput(was, known, c)
	default:
		return t.byVIP[c.Interface][c.Addr], inAddrChange
	}
}

// linkInput is the input a link change makes for the link's instances: a
// link whose carrier came back is a reason to announce again (neighbours
// may have flushed the VIP's entry), any other change only a reason to
// look.
func linkInput(wasUp, known bool, c netif.Change) inputKind {
	if c.Present && c.Up && known && !wasUp {
		return inLinkUp
	}
	return inAddrChange
}

// keepalivedAlive tells whether the liveness watch last saw keepalived
// running.
func (d *Daemon) keepalivedAlive() bool {
	d.kaMu.Lock()
	defer d.kaMu.Unlock()
	return d.kaState == "alive"
}
