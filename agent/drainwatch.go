package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// drainWatch is what the drain of one instance has seen so far: it waits
// until the node has left MASTER and the cloud points at another node.
// Its step is pure: the daemon feeds it what it looks at and prints what
// it says.
type drainWatch struct {
	name  string
	start time.Time
	// resources are the instance's cloud resources by key, in order; none
	// without a cloud side.
	resources []cloud.Resource

	// steppedDown: the node was seen out of MASTER (or was not MASTER);
	// looked: it was looked at once.
	steppedDown, looked bool
	// peer is the node the cloud shows as the HAVIP's master, once seen.
	peer string
	// moved holds the resources seen pointing elsewhere (or following the
	// HAVIP), with where they point.
	moved map[string]string
	// last is the latest answer for each resource, for a drain that gives
	// up: what did not move, and why.
	last map[string]drainRead
	done bool
}

// drainSight is one look at an instance during its drain: its state now
// and, when the cloud was read, what each resource showed.
type drainSight struct {
	at    time.Time
	state State
	// reads are the cloud's answers, one per resource, or nil when the
	// cloud was not read this time.
	reads []drainRead
}

// drainRead is what one read-only look at a resource answered.
type drainRead struct {
	key string
	o   cloud.Ownership
	err error
}

func newDrainWatch(name string, start time.Time, res []cloud.Resource) *drainWatch {
	return &drainWatch{name: name, start: start, resources: res, moved: map[string]string{}, last: map[string]drainRead{}}
}

// wantsCloud reports whether the next look should read the cloud: only
// once the node stepped down, as before that the cloud still points here.
func (w *drainWatch) wantsCloud() bool {
	return w.steppedDown && !w.done && len(w.resources) > 0
}

// step takes one look and returns the timeline lines it adds; w.done says
// whether the drain of the instance is complete.
func (w *drainWatch) step(s drainSight) []string {
	if w.done {
		return nil
	}
	var lines []string
	say := func(format string, args ...any) {
		lines = append(lines, fmt.Sprintf("%7s  %s  %s", "+"+fmtElapsed(s.at.Sub(w.start)), w.name, fmt.Sprintf(format, args...)))
	}
	switch {
	case !w.looked && s.state != StateMaster:
		w.steppedDown = true
		say("was not MASTER (%s): nothing to step down", s.state)
	case !w.steppedDown && s.state != StateMaster:
		w.steppedDown = true
		say("left MASTER: now %s", s.state)
	}
	w.looked = true
	for _, r := range s.reads {
		w.last[r.key] = r
		if _, ok := w.moved[r.key]; ok || r.err != nil {
			continue
		}
		kind := resourceKind(r.key)
		switch {
		case r.o.Shape == cloud.ShapeHAVIP:
			w.moved[r.key] = "the HAVIP"
			say("%s follows the HAVIP (its next hop is the HAVIP)", r.key)
		case !r.o.Owned && r.o.Current != "":
			if kind == string(cloud.KindHAVIP) && w.peer == "" {
				w.peer = r.o.Current
				say("the cloud sees peer %s as MASTER (%s)", r.o.Current, r.key)
			}
			w.moved[r.key] = r.o.Current
			say("%s moved to %s", r.key, r.o.Current)
		}
	}
	if w.steppedDown && len(w.moved) == len(w.resources) {
		w.done = true
		if len(w.resources) == 0 {
			say("drained: left MASTER (no cloud resources, so whether a peer took over is not checked)")
		} else {
			say("drained: left MASTER and the cloud points elsewhere")
		}
	}
	return lines
}

// stuck says what kept the drain from completing, for a drain that gives
// up: still MASTER, or each resource that did not move and what it showed.
func (w *drainWatch) stuck() string {
	if !w.steppedDown {
		return "this node is still MASTER (does keepalived watch the drain_file with weight 0? havip-agent config check -keepalived tells)"
	}
	var parts []string
	for _, r := range w.resources {
		k := r.Key()
		if _, ok := w.moved[k]; ok {
			continue
		}
		rd, read := w.last[k]
		switch {
		case !read:
			parts = append(parts, k+" not read yet")
		case rd.err != nil:
			parts = append(parts, k+" could not be read: "+rd.err.Error())
		case rd.o.Owned:
			parts = append(parts, k+" still points at this node")
		default:
			parts = append(parts, k+" points at nothing")
		}
	}
	return "no other node took over: " + strings.Join(parts, "; ")
}

// summary says where the resources went, for the history: ": havip/x
// at i-2, route/y at dcgw-2".
func (w *drainWatch) summary() string {
	var parts []string
	for _, r := range w.resources {
		if to, ok := w.moved[r.Key()]; ok {
			parts = append(parts, r.Key()+" at "+to)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// fmtElapsed shows a drain's elapsed time: 0.35s, 12.40s, 1m5s.
func fmtElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
