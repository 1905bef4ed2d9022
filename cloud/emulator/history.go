package emulator

import (
	"slices"
	"time"
)

// pastWorld is the state as it was until a change replaced it.
type pastWorld struct {
	// until is when the change that ended this state was applied (machine clock).
	until time.Time
	w     *world
}

// rememberLocked keeps before, the state a change just replaced, for stale reads. The history
// is bounded by maxHistory entries and by maxStaleAge.
func (e *Emulator) rememberLocked(before *world) {
	now := e.opts.Now()
	e.history = append(e.history, pastWorld{until: now, w: before})
	drop := max(0, len(e.history)-maxHistory)
	for drop < len(e.history) && now.Sub(e.history[drop].until) > maxStaleAge {
		drop++
	}
	if drop > 0 {
		e.history = slices.Delete(e.history, 0, drop)
	}
}

// staleWorldLocked answers the state a stale fault serves: the state before the last Mutations
// changes, or the state as it was Age ago. Beyond the kept history it is the oldest state kept.
func (e *Emulator) staleWorldLocked(f *Fault) *world {
	if len(e.history) == 0 {
		return e.w
	}
	if f.Mutations > 0 {
		return e.history[max(0, len(e.history)-f.Mutations)].w
	}
	at := e.opts.Now().Add(-time.Duration(f.Age))
	for _, p := range e.history {
		if p.until.After(at) {
			return p.w
		}
	}
	return e.w
}

// clone answers a deep copy of the world: a stale read runs the ordinary handlers on it.
func (w *world) clone() *world {
	n := &world{
		region: w.region, seq: w.seq,
		vpcs:      make(map[string]*vpc, len(w.vpcs)),
		subnets:   make(map[string]*subnet, len(w.subnets)),
		instances: make(map[string]*instance, len(w.instances)),
		enis:      make(map[string]*instance, len(w.enis)),
		tables:    make(map[string]*routeTable, len(w.tables)),
		dcgws:     w.dcgws, // never changed after the seed
		rules:     make([]*routeRule, 0, len(w.rules)),
		havips:    make([]*haVip, 0, len(w.havips)),
		eips:      make([]*eip, 0, len(w.eips)),
	}
	for k, v := range w.vpcs {
		cp := *v
		cp.tables = slices.Clone(v.tables)
		n.vpcs[k] = &cp
	}
	for k, s := range w.subnets {
		cp := *s
		n.subnets[k] = &cp
	}
	// Instances are shared by the id and ENI maps and by HAVIP bindings: one copy each.
	copies := make(map[*instance]*instance, len(w.instances))
	inst := func(in *instance) *instance {
		if in == nil {
			return nil
		}
		if cp, ok := copies[in]; ok {
			return cp
		}
		cp := *in
		cp.mac = slices.Clone(in.mac)
		copies[in] = &cp
		return &cp
	}
	for k, in := range w.instances {
		n.instances[k] = inst(in)
	}
	for k, in := range w.enis {
		n.enis[k] = inst(in)
	}
	for k, t := range w.tables {
		cp := *t
		n.tables[k] = &cp
	}
	for _, r := range w.rules {
		cp := *r
		n.rules = append(n.rules, &cp)
	}
	for _, h := range w.havips {
		cp := *h
		cp.announcer = slices.Clone(h.announcer)
		cp.bound = make([]binding, len(h.bound))
		for i, b := range h.bound {
			b.inst = inst(b.inst)
			cp.bound[i] = b
		}
		n.havips = append(n.havips, &cp)
	}
	for _, p := range w.eips {
		cp := *p
		n.eips = append(n.eips, &cp)
	}
	return n
}
