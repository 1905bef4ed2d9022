package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
)

// havipID is the rig's HAVIP (rig.Seed).
const havipID = "havip-rig"

// maxReplyRuns caps the ping reply runs a timeline lists; a client
// flapping between nodes would otherwise fill the screen.
const maxReplyRuns = 6

// nodeInfo is what the timeline needs to name a node.
type nodeInfo struct {
	Name, MAC, IP, Instance string
	// Gateway is the node's dedicated-line gateway, its next hop in the route pair.
	Gateway string
}

// presence is one sample at which a node's VIP appeared or went away.
type presence struct {
	At      time.Time
	Present bool
}

// echo is one captured ping: the client's request or the reply, with
// the Ethernet source of the reply (the node that answered).
type echo struct {
	At    time.Time
	Seq   uint16
	Reply bool
	MAC   string
}

// garp is a gratuitous ARP for the VIP seen on the switch.
type garp struct {
	At  time.Time
	MAC string
}

// agentEvent is a state change an agent made (its last_transition).
type agentEvent struct {
	Node       string
	To         string
	Source     string
	Received   time.Time
	Generation uint64
}

// snapshot is everything recorded so far.
type snapshot struct {
	Nodes []nodeInfo
	// VIP holds, per node, the samples at which the VIP's presence
	// changed; the first is the state when sampling began.
	VIP    map[string][]presence
	Echoes []echo
	GARPs  []garp
	Agent  []agentEvent
	Cloud  emulator.Log
}

// phase is one fault (or recovery) to explain: from Start (the fault)
// to End, the MASTER moving from Old to New.
type phase struct {
	Fault      string
	Start, End time.Time
	Old, New   string
}

// event is one line of a timeline, At after the fault.
type event struct {
	At   time.Duration
	Text string
}

// window is a span after the fault.
type window struct{ From, To time.Duration }

// mark is a moment after the fault, if it happened.
type mark struct {
	At time.Duration
	OK bool
}

// result is a phase explained: its events in time order and the figures
// the summary gives.
type result struct {
	Events []event
	// Served is the first ping reply from the new MASTER: the
	// failover's end as the client sees it.
	Served mark
	// Cloud is when both the route and the HAVIP pointed at New.
	Cloud mark
	// Lost counts the pings between the last reply before the fault and
	// Served that got no reply.
	Lost int
	// Both are the windows in which the VIP was on two nodes.
	Both []window
}

// explain turns the records of a phase into its timeline.
func explain(p phase, s snapshot) result {
	var r result
	rel := func(t time.Time) time.Duration { return t.Sub(p.Start) }
	in := func(t time.Time) bool { return !t.Before(p.Start) && !t.After(p.End) }
	add := func(t time.Time, format string, args ...any) {
		r.Events = append(r.Events, event{rel(t), fmt.Sprintf(format, args...)})
	}
	byMAC, byInst, byIP := map[string]string{}, map[string]string{}, map[string]nodeInfo{}
	nodes := map[string]nodeInfo{}
	for _, n := range s.Nodes {
		byMAC[n.MAC], byInst[n.Instance], byIP[n.IP], nodes[n.Name] = n.Name, n.Name, n, n
		if n.Gateway != "" {
			byInst[n.Gateway] = n.Name
		}
	}
	instName := func(id string) string {
		if n, ok := byInst[id]; ok {
			return n
		}
		if id == "" {
			return "none"
		}
		return id
	}
	add(p.Start, "%s", p.Fault)

	// The agents' view: what keepalived told them, or what they saw.
	for _, a := range s.Agent {
		if (a.Node == p.Old || a.Node == p.New) && in(a.Received) {
			add(a.Received, "%s: agent goes %s (%s)", a.Node, a.To, sourceText(a.Source))
		}
	}

	// The VIP on each node, and when it was on both.
	held := map[string][]window{}
	for _, name := range []string{p.Old, p.New} {
		held[name] = holding(s.VIP[name], p)
		for _, pr := range s.VIP[name] {
			if pr.At.After(p.Start) && !pr.At.After(p.End) {
				if pr.Present {
					add(pr.At, "VIP on %s", name)
				} else {
					add(pr.At, "VIP gone from %s", name)
				}
			}
		}
	}
	r.Both = overlap(held[p.Old], held[p.New])
	for _, w := range r.Both {
		r.Events = append(r.Events, event{w.From, fmt.Sprintf("VIP on two nodes (%s and %s) for %s", p.Old, p.New, ms(w.To-w.From))})
	}

	newMAC := nodes[p.New].MAC
	for _, g := range s.GARPs {
		if in(g.At) && g.MAC == newMAC {
			add(g.At, "%s's first gratuitous ARP on the wire", p.New)
			break
		}
	}

	// The new MASTER's first cloud request, and its first write when
	// that came later. The emulator logs a request when it answers.
	sawFirst := false
	for _, q := range s.Cloud.Requests {
		if !in(q.Time) || byIP[q.Source].Name != p.New {
			continue
		}
		if !sawFirst {
			add(q.Time, "%s's first cloud request (%s)", p.New, q.Operation)
			sawFirst = true
			if mutating(q) {
				break
			}
			continue
		}
		if mutating(q) {
			add(q.Time, "%s's first cloud write (%s)", p.New, q.Operation)
			break
		}
	}
	var route, havip time.Time
	for _, c := range s.Cloud.Changes {
		if !in(c.Time) {
			continue
		}
		switch {
		case c.Operation == emulator.OpRouteRuleSwitch:
			add(c.Time, "cloud: route switched %s -> %s", instName(c.Before), instName(c.After))
			if byInst[c.After] == p.New {
				route = c.Time
			}
		case c.Resource == havipID && strings.Contains(c.Message, " master "):
			how := ""
			if c.Operation == "arp" {
				how = " (learned from ARP)"
			}
			add(c.Time, "cloud: HAVIP master %s -> %s%s", instName(c.Before), instName(c.After), how)
			if byInst[c.After] == p.New {
				havip = c.Time
			}
		}
	}
	if !route.IsZero() && !havip.IsZero() {
		last := route
		if havip.After(last) {
			last = havip
		}
		r.Cloud = mark{rel(last), true}
	}

	// Ping replies, by the node that sent them, in runs.
	type run struct {
		node        string
		first, last time.Time
		firstSeq    uint16
		n           int
	}
	var runs []run
	var before *echo
	for i, e := range s.Echoes {
		if e.Reply && e.At.Before(p.Start) {
			before = &s.Echoes[i]
		}
	}
	if before != nil {
		node := byMAC[before.MAC]
		if node == "" {
			node = before.MAC
		}
		add(before.At, "last ping reply before the fault, from %s", node)
	}
	for _, e := range s.Echoes {
		if !e.Reply || !in(e.At) {
			continue
		}
		node := byMAC[e.MAC]
		if node == "" {
			node = e.MAC
		}
		if len(runs) > 0 && runs[len(runs)-1].node == node {
			runs[len(runs)-1].last, runs[len(runs)-1].n = e.At, runs[len(runs)-1].n+1
			continue
		}
		runs = append(runs, run{node, e.At, e.At, e.Seq, 1})
	}
	served, servedSeq := false, uint16(0)
	for i, ru := range runs {
		if i == maxReplyRuns {
			add(ru.first, "… %d more runs of ping replies", len(runs)-i)
			break
		}
		switch {
		case ru.node == p.New && !served:
			served, servedSeq = true, ru.firstSeq
			r.Served = mark{rel(ru.first), true}
			add(ru.first, "first ping reply from %s: the client is served by the new MASTER", p.New)
		case ru.node == p.Old && p.Old != p.New:
			add(ru.first, "%s from %s (it still holds the VIP), the last at %s", replies(ru.n), p.Old, signedMS(rel(ru.last)))
		default:
			add(ru.first, "%s from %s", replies(ru.n), ru.node)
		}
	}
	r.Lost = lost(s.Echoes, p.Start, servedSeq, r.Served.OK)
	slices.SortStableFunc(r.Events, func(a, b event) int { return int(a.At - b.At) })
	return r
}

// lost counts the pings without a reply from the last one answered
// before the fault to served, the first the new MASTER answered: ping
// numbers every request it tries, also those the client's kernel drops
// for want of a neighbour, which never reach the wire.
func lost(echoes []echo, start time.Time, served uint16, ok bool) int {
	if !ok {
		return 0
	}
	replied := map[uint16]bool{}
	last, haveLast := uint16(0), false
	for _, e := range echoes {
		if !e.Reply {
			continue
		}
		replied[e.Seq] = true
		if e.At.Before(start) {
			last, haveLast = e.Seq, true
		}
	}
	// A gap of half the sequence space is a wrap or a restart of ping.
	if !haveLast || served-last > 1<<15 {
		return 0
	}
	n := 0
	for s := last + 1; s != served; s++ {
		if !replied[s] {
			n++
		}
	}
	return n
}

// holding is the windows, clipped to the phase, in which samples show
// the VIP present.
func holding(samples []presence, p phase) []window {
	var out []window
	present, since := false, p.Start
	for _, s := range samples {
		if s.At.After(p.End) {
			break
		}
		at := s.At
		if at.Before(p.Start) {
			at = p.Start
		}
		if s.Present && !present {
			since = at
		}
		if !s.Present && present && at.After(since) {
			out = append(out, window{since.Sub(p.Start), at.Sub(p.Start)})
		}
		present = s.Present
	}
	if present {
		out = append(out, window{since.Sub(p.Start), p.End.Sub(p.Start)})
	}
	return out
}

// overlap is the windows in both a and b (each sorted, disjoint).
func overlap(a, b []window) []window {
	var out []window
	for i, j := 0, 0; i < len(a) && j < len(b); {
		from, to := max(a[i].From, b[j].From), min(a[i].To, b[j].To)
		if from < to {
			out = append(out, window{from, to})
		}
		if a[i].To < b[j].To {
			i++
		} else {
			j++
		}
	}
	return out
}

// mutating reports whether a cloud request asked for a change.
func mutating(q emulator.RequestRecord) bool { return q.Method != "GET" && q.Method != "HEAD" }

// sourceText says in words where an agent's transition came from.
func sourceText(source string) string {
	switch source {
	case "fifo":
		return "keepalived's FIFO"
	case "liveness":
		return "keepalived's process gone"
	case "netlink":
		return "address change"
	}
	return source
}

// replies counts ping replies in words.
func replies(n int) string {
	if n == 1 {
		return "1 ping reply"
	}
	return fmt.Sprintf("%d ping replies", n)
}

// ms renders a duration as milliseconds with one decimal, or in
// microseconds when that would round it to nothing.
func ms(d time.Duration) string {
	if d < 50*time.Microsecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// signedMS renders a moment after the fault.
func signedMS(d time.Duration) string {
	return fmt.Sprintf("%+.1f ms", float64(d)/float64(time.Millisecond))
}

// render writes a fault's timeline and its summary.
func render(w io.Writer, p phase, r result) {
	for _, e := range r.Events {
		fmt.Fprintf(w, "  %10s  %s\n", signedMS(e.At), e.Text)
	}
	fmt.Fprintf(w, "  => %s\n", summary(p, r))
}

// summary is a phase in one line: when the client was served by the new
// MASTER, how many pings it lost, when the cloud followed, and the VIP on
// two nodes.
func summary(p phase, r result) string {
	var b strings.Builder
	if r.Served.OK {
		fmt.Fprintf(&b, "client served by %s after %s (%d pings lost)", p.New, ms(r.Served.At), r.Lost)
	} else {
		fmt.Fprintf(&b, "client not served by %s", p.New)
	}
	if r.Cloud.OK {
		fmt.Fprintf(&b, "; cloud on %s after %s", p.New, ms(r.Cloud.At))
	} else {
		fmt.Fprintf(&b, "; cloud not on %s", p.New)
	}
	if len(r.Both) == 0 {
		b.WriteString("; VIP never on two nodes")
	} else {
		var total time.Duration
		for _, w := range r.Both {
			total += w.To - w.From
		}
		fmt.Fprintf(&b, "; VIP on two nodes for %s", ms(total))
	}
	return b.String()
}
