package emulator

import (
	"net/netip"
	"slices"
)

type routeRuleJSON struct {
	RouteRuleID        string `json:"routeRuleId"`
	RouteTableID       string `json:"routeTableId"`
	SourceAddress      string `json:"sourceAddress"`
	DestinationAddress string `json:"destinationAddress"`
	NexthopID          string `json:"nexthopId"`
	NexthopType        string `json:"nexthopType"`
	Description        string `json:"description"`
	PathType           string `json:"pathType"`
}

func ruleView(r *routeRule) routeRuleJSON {
	return routeRuleJSON{
		RouteRuleID: r.id, RouteTableID: r.tableID, SourceAddress: r.source.String(),
		DestinationAddress: r.dest.String(), NexthopID: r.nexthopID, NexthopType: r.nexthopType,
		Description: r.description, PathType: r.pathType,
	}
}

var anyPrefix = netip.MustParsePrefix("0.0.0.0/0")

// nexthopDCGateway is the next hop type of a dedicated-line gateway, the only type the next hops
// of a multi-line (HA) route support (doc/VPC.md).
const nexthopDCGateway = "dcGateway"

// knownNexthopTypes are the next hop types the route API accepts.
var knownNexthopTypes = map[string]bool{
	"custom": true, "enic": true, "havip": true, "vpn": true, "nat": true, "dcGateway": true, "peerConn": true,
}

// checkNexthop validates a next hop: its type is supported and its id exists where the emulator
// knows that kind of resource (instances, ENIs, HAVIPs) and in the table's VPC.
func (e *Emulator) checkNexthop(t *routeTable, typ, id string) *apiError {
	if !knownNexthopTypes[typ] {
		return errf(400, "RouteNexthopTypeNotSupported", "The next hop type %q is not supported.", typ)
	}
	if id == "" {
		return invalidParam("nexthopId is required for next hop type %q.", typ)
	}
	vpcID := ""
	switch typ {
	case "custom":
		in := e.w.instances[id]
		if in == nil {
			return errf(400, "RouteNexthopNotFound", "The next hop instance %q does not exist.", id)
		}
		vpcID = in.vpcID
	case "enic":
		in := e.w.enis[id]
		if in == nil {
			return errf(400, "RouteNexthopNotFound", "The next hop ENI %q does not exist.", id)
		}
		vpcID = in.vpcID
	case "havip":
		h := e.w.havip(id)
		if h == nil {
			return errf(400, "RouteNexthopNotFound", "The next hop havip %q does not exist.", id)
		}
		vpcID = h.vpcID
	case nexthopDCGateway:
		g := e.w.dcgws[id]
		if g == nil {
			return errf(400, "RouteNexthopNotFound", "The next hop dedicated-line gateway %q does not exist.", id)
		}
		vpcID = g.vpcID
	default:
		return nil
	}
	if vpcID != t.vpcID {
		return errf(400, "RouteNexthopNotInVpc", "The next hop %q is not in the route table's VPC %s.", id, t.vpcID)
	}
	return nil
}

// checkAddresses validates a rule's source and destination for table t, ignoring the rules in skip.
func (e *Emulator) checkAddresses(t *routeTable, src, dst string, skip ...*routeRule) (netip.Prefix, netip.Prefix, *apiError) {
	sp, err := parsePrefix(src)
	if err != nil {
		return sp, sp, invalidParam("sourceAddress: %v.", err)
	}
	dp, err := parsePrefix(dst)
	if err != nil {
		return sp, dp, invalidParam("destinationAddress: %v.", err)
	}
	v := e.w.vpcs[t.vpcID]
	if sp != anyPrefix {
		inSubnet := false
		for _, s := range e.w.subnets {
			if s.vpcID == v.id && s.cidr.Bits() <= sp.Bits() && s.cidr.Contains(sp.Addr()) {
				inSubnet = true
				break
			}
		}
		if !inSubnet {
			return sp, dp, errf(400, "RouteRuleSourceNotInSubnet", "The source %s is not inside a subnet of VPC %s.", sp, v.id)
		}
	}
	if dp != anyPrefix && v.cidr != anyPrefix && dp.Overlaps(v.cidr) {
		return sp, dp, errf(400, "RouteRuleDestinationOverlapVpc", "The destination %s overlaps the VPC CIDR %s.", dp, v.cidr)
	}
	for _, r := range e.w.rules {
		if r.tableID == t.id && r.source == sp && r.dest == dp && !slices.Contains(skip, r) {
			return sp, dp, errf(400, "RouteRuleConflict", "The route table %s already has a rule from %s to %s (%s).", t.id, sp, dp, r.id)
		}
	}
	return sp, dp, nil
}

type nextHopJSON struct {
	NexthopID   string `json:"nexthopId"`
	NexthopType string `json:"nexthopType"`
	PathType    string `json:"pathType"`
}

type createRuleReq struct {
	RouteTableID       string        `json:"routeTableId"`
	SourceAddress      string        `json:"sourceAddress"`
	DestinationAddress string        `json:"destinationAddress"`
	NexthopID          string        `json:"nexthopId"`
	NexthopType        string        `json:"nexthopType"`
	NextHopList        []nextHopJSON `json:"nextHopList"`
	Description        string        `json:"description"`
	IPVersion          string        `json:"ipVersion"`
}

// createRuleLocked validates and creates a single rule or an HA pair; ids may be preset (seed).
func (e *Emulator) createRuleLocked(c *call, req createRuleReq, ids ...string) ([]*routeRule, *apiError) {
	if req.RouteTableID == "" {
		return nil, invalidParam("routeTableId is required.")
	}
	t := e.w.tables[req.RouteTableID]
	if t == nil {
		return nil, notFound("route table", req.RouteTableID)
	}
	if req.IPVersion != "" && req.IPVersion != "4" {
		return nil, invalidParam("ipVersion %q is not supported.", req.IPVersion)
	}
	if len(req.Description) > 200 {
		return nil, invalidParam("description is longer than 200 characters.")
	}
	sp, dp, err := e.checkAddresses(t, req.SourceAddress, req.DestinationAddress)
	if err != nil {
		return nil, err
	}
	id := func(i int) string {
		if i < len(ids) && ids[i] != "" {
			return ids[i]
		}
		return e.newIDLocked("rr")
	}
	if len(req.NextHopList) == 0 {
		if err := e.checkNexthop(t, req.NexthopType, req.NexthopID); err != nil {
			return nil, err
		}
		r := &routeRule{id: id(0), tableID: t.id, source: sp, dest: dp, nexthopID: req.NexthopID,
			nexthopType: req.NexthopType, description: req.Description, pathType: pathNormal}
		e.w.rules = append(e.w.rules, r)
		c.change(r.id, "", r.nexthopID, "route %s created %s -> %s via %s %s", r.id, sp, dp, r.nexthopType, r.nexthopID)
		return []*routeRule{r}, nil
	}
	if req.NexthopID != "" {
		return nil, invalidParam("nexthopId and nextHopList are mutually exclusive.")
	}
	if len(req.NextHopList) != 2 {
		return nil, invalidParam("an HA route needs exactly two next hops (ha:active and ha:standby), got %d.", len(req.NextHopList))
	}
	var active, standby *nextHopJSON
	for i := range req.NextHopList {
		nh := &req.NextHopList[i]
		switch nh.PathType {
		case pathHAActive:
			if active != nil {
				return nil, invalidParam("nextHopList has two ha:active entries.")
			}
			active = nh
		case pathHAStandby:
			if standby != nil {
				return nil, invalidParam("nextHopList has two ha:standby entries.")
			}
			standby = nh
		default:
			return nil, invalidParam("pathType %q must be ha:active or ha:standby.", nh.PathType)
		}
		if req.NexthopType != "" && req.NexthopType != nh.NexthopType {
			return nil, invalidParam("nexthopType %q disagrees with nextHopList type %q.", req.NexthopType, nh.NexthopType)
		}
		if nh.NexthopType != nexthopDCGateway {
			return nil, invalidParam("nextHopList: next hop type %q is not supported; the next hops of a multi-line route must be dedicated-line gateways (%s).", nh.NexthopType, nexthopDCGateway)
		}
		if err := e.checkNexthop(t, nh.NexthopType, nh.NexthopID); err != nil {
			return nil, err
		}
	}
	if active.NexthopID == standby.NexthopID {
		return nil, invalidParam("the active and standby next hops must differ.")
	}
	a := &routeRule{id: id(0), tableID: t.id, source: sp, dest: dp, nexthopID: active.NexthopID,
		nexthopType: active.NexthopType, description: req.Description, pathType: pathHAActive}
	s := &routeRule{id: id(1), tableID: t.id, source: sp, dest: dp, nexthopID: standby.NexthopID,
		nexthopType: standby.NexthopType, description: req.Description, pathType: pathHAStandby}
	a.partnerID, s.partnerID = s.id, a.id
	e.w.rules = append(e.w.rules, a, s)
	c.change(a.id, "", a.nexthopID, "route %s/%s created %s -> %s active %s standby %s", a.id, s.id, sp, dp, a.nexthopID, s.nexthopID)
	return []*routeRule{a, s}, nil
}

func (e *Emulator) routeRuleCreate(c *call) answer {
	var req createRuleReq
	if err := decodeBody(c.body, &req); err != nil {
		return answer{err: err}
	}
	rules, err := e.createRuleLocked(c, req)
	if err != nil {
		return answer{err: err}
	}
	if len(rules) == 1 {
		return okJSON(map[string]string{"routeRuleId": rules[0].id})
	}
	return okJSON(map[string][]string{"routeRuleIds": {rules[0].id, rules[1].id}})
}

// tableFor resolves the routeTableId / vpcId query of the table and rule reads.
func (e *Emulator) tableFor(c *call) (*routeTable, *apiError) {
	q := c.r.URL.Query()
	tid, vid := q.Get("routeTableId"), q.Get("vpcId")
	switch {
	case tid != "":
		t := e.w.tables[tid]
		if t == nil {
			return nil, notFound("route table", tid)
		}
		if vid != "" && t.vpcID != vid {
			return nil, invalidParam("route table %s is not in VPC %s.", tid, vid)
		}
		return t, nil
	case vid != "":
		v := e.w.vpcs[vid]
		if v == nil {
			return nil, notFound("vpc", vid)
		}
		if len(v.tables) == 0 {
			return nil, notFound("route table of vpc", vid)
		}
		return e.w.tables[v.tables[0]], nil
	}
	return nil, invalidParam("routeTableId and vpcId cannot both be empty.")
}

func (e *Emulator) routeTableGet(c *call) answer {
	t, err := e.tableFor(c)
	if err != nil {
		return answer{err: err}
	}
	v := e.w.vpcs[t.vpcID]
	rules := []routeRuleJSON{}
	for _, r := range e.w.rules {
		if r.tableID == t.id {
			rules = append(rules, ruleView(r))
		}
	}
	// The system route of the VPC CIDR, as the real API lists it (no id, type sys).
	rules = append(rules, routeRuleJSON{RouteTableID: t.id, SourceAddress: "0.0.0.0/0",
		DestinationAddress: v.cidr.String(), NexthopType: "sys", PathType: pathNormal})
	return okJSON(map[string]any{"routeTableId": t.id, "vpcId": t.vpcID, "name": "default", "routeRules": rules})
}

func (e *Emulator) routeRuleList(c *call) answer {
	t, err := e.tableFor(c)
	if err != nil {
		return answer{err: err}
	}
	var items []*routeRule
	for _, r := range e.w.rules {
		if r.tableID == t.id {
			items = append(items, r)
		}
	}
	pg, marker, next, trunc, maxKeys, err := page(items, func(r *routeRule) string { return r.id }, c.r.URL.Query())
	if err != nil {
		return answer{err: err}
	}
	out := make([]routeRuleJSON, 0, len(pg))
	for _, r := range pg {
		out = append(out, ruleView(r))
	}
	return okJSON(map[string]any{"routeRules": out, "marker": marker, "isTruncated": trunc, "nextMarker": next, "maxKeys": maxKeys})
}

// routeRuleUpdate applies the documented update body (sourceAddress, destinationAddress,
// nexthopId, description). Any other field, nexthopType and routeRuleId included, is ignored
// as the real API ignores fields it does not know: the rule keeps its type, and the new next
// hop must be of that type.
func (e *Emulator) routeRuleUpdate(c *call) answer {
	id := pathID(c)
	var req struct {
		SourceAddress      string  `json:"sourceAddress"`
		DestinationAddress string  `json:"destinationAddress"`
		NexthopID          string  `json:"nexthopId"`
		Description        *string `json:"description"`
	}
	if err := decodeBody(c.body, &req); err != nil {
		return answer{err: err}
	}
	r := e.w.rule(id)
	if r == nil {
		return answer{err: notFound("route rule", id)}
	}
	if r.pathType != pathNormal {
		return answer{err: errf(400, "RouteRuleNotSingleLine", "The route rule %s is part of an HA route (%s); only single-line rules can be updated.", id, r.pathType)}
	}
	t := e.w.tables[r.tableID]
	src, dst := req.SourceAddress, req.DestinationAddress
	if src == "" {
		src = r.source.String()
	}
	if dst == "" {
		dst = r.dest.String()
	}
	sp, dp, err := e.checkAddresses(t, src, dst, r)
	if err != nil {
		return answer{err: err}
	}
	nh := r.nexthopID
	if req.NexthopID != "" {
		nh = req.NexthopID
	}
	if err := e.checkNexthop(t, r.nexthopType, nh); err != nil {
		return answer{err: err}
	}
	if req.Description != nil && len(*req.Description) > 200 {
		return answer{err: invalidParam("description is longer than 200 characters.")}
	}
	before := r.nexthopID
	r.source, r.dest, r.nexthopID = sp, dp, nh
	if req.Description != nil {
		r.description = *req.Description
	}
	c.change(r.id, before, r.nexthopID, "route %s updated %s -> %s via %s %s (was %s)", r.id, sp, dp, r.nexthopType, nh, before)
	return okEmpty()
}

func (e *Emulator) routeRuleSwitch(c *call) answer {
	id := pathID(c)
	r := e.w.rule(id)
	if r == nil {
		return answer{err: notFound("route rule", id)}
	}
	if r.pathType != pathHAActive {
		return answer{err: errf(400, "RouteRuleNotHaActive", "The route rule %s is not the active rule of an HA route (pathType %s).", id, r.pathType)}
	}
	s := e.w.rule(r.partnerID)
	if s == nil {
		return answer{err: errf(500, "InternalError", "HA partner of %s is missing.", id)}
	}
	from, to := r.nexthopID, s.nexthopID
	if e.haSwitch == HASwitchNextHops {
		// The rules keep their roles; their next hops swap.
		r.nexthopID, s.nexthopID = s.nexthopID, r.nexthopID
		r.nexthopType, s.nexthopType = s.nexthopType, r.nexthopType
	} else {
		// The two rules keep their next hops; the active and standby roles swap.
		r.pathType, s.pathType = pathHAStandby, pathHAActive
	}
	c.change(r.id, from, to, "route %s/%s %s active %s -> %s", r.id, s.id, r.dest, from, to)
	return okEmpty()
}

func (e *Emulator) routeRuleDelete(c *call) answer {
	id := pathID(c)
	r := e.w.rule(id)
	if r == nil {
		return answer{err: notFound("route rule", id)}
	}
	// An HA route is one multi-line route: deleting either rule deletes both.
	gone := []string{r.id}
	if r.partnerID != "" {
		gone = append(gone, r.partnerID)
	}
	e.w.rules = slices.DeleteFunc(e.w.rules, func(x *routeRule) bool { return slices.Contains(gone, x.id) })
	for _, g := range gone {
		c.change(g, "", "deleted", "route %s deleted", g)
	}
	return okEmpty()
}
