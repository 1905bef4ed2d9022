package bce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
)

// Path types of the rules of a primary/standby (HA) route.
const (
	pathActive  = "ha:active"
	pathStandby = "ha:standby"
)

// maxRulePages bounds the paging through a route table, against a server that never stops.
const maxRulePages = 100

// routeState is the shape of the rules of one destination in a route table.
type routeState struct {
	shape   string
	active  vpc.RouteRule // HA: the active rule; single and havip: the rule
	standby vpc.RouteRule // HA only
}

// nextHop returns the next hop id that stands for this node in spec.
func (c *Client) nextHop(spec *cloud.RouteSpec) string {
	switch {
	case spec.NextHop != "":
		return spec.NextHop
	case spec.NextHopType == string(vpc.NEXTHOP_TYPE_ENIC) && c.opts.ENIID != "":
		return c.opts.ENIID
	default:
		return c.nodeID
	}
}

func nextHopType(spec *cloud.RouteSpec) string {
	if spec.NextHopType == "" {
		return string(vpc.NEXTHOP_TYPE_CUSTOM)
	}
	return spec.NextHopType
}

// listRules reads every rule of a table, following the pages, waiting for the limiter with
// adm; onSend is told when each request is admitted. Callers go through Client.tables, which
// shares the read.
func (c *Client) listRules(ctx context.Context, table string, adm *admission, onSend func(time.Time)) ([]vpc.RouteRule, error) {
	var rules []vpc.RouteRule
	marker := ""
	for range maxRulePages {
		var page vpc.GetRouteRuleResult
		q := map[string]string{"routeTableId": table, "maxKeys": "1000"}
		if marker != "" {
			q["marker"] = marker
		}
		if err := c.do(ctx, &apiCall{op: "route.list " + table, metric: OpRouteRuleList, method: http.MethodGet, path: "/v1/route/rule",
			query: q, result: &page, adm: adm, onSend: onSend}); err != nil {
			return nil, err
		}
		rules = append(rules, page.RouteRules...)
		if !page.IsTruncated || page.NextMarker == "" || page.NextMarker == marker {
			return rules, nil
		}
		marker = page.NextMarker
	}
	return nil, &cloud.PermanentError{Op: "route.list " + table, Reason: fmt.Sprintf("more than %d pages of rules", maxRulePages)}
}

// sameDestination compares CIDRs by value ("10.0.0.0/8" and "10.1.0.0/8" differ; an address
// without a length is a host route).
func sameDestination(a, b string) bool {
	pa, ea := parseDest(a)
	pb, eb := parseDest(b)
	if ea != nil || eb != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	return pa == pb
}

func parseDest(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// classify finds the rules of dest and decides their shape.
func classify(op string, rules []vpc.RouteRule, dest string) (routeState, error) {
	var m []vpc.RouteRule
	sources := map[string]bool{}
	for _, r := range rules {
		if sameDestination(r.DestinationAddress, dest) {
			m = append(m, r)
			sources[r.SourceAddress] = true
		}
	}
	if len(m) == 0 {
		return routeState{}, &cloud.PermanentError{Op: op, Reason: "no rule for destination " + dest}
	}
	if len(sources) > 1 {
		return routeState{}, &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("%d rules for destination %s with different source addresses; cannot tell which to move", len(m), dest)}
	}
	if len(m) == 1 {
		r := m[0]
		switch {
		case string(r.NexthopType) == string(vpc.NEXTHOP_TYPE_HAVIP):
			return routeState{shape: cloud.ShapeHAVIP, active: r}, nil
		case strings.HasPrefix(r.PathType, "ha:") || r.PathType == "ecmp":
			return routeState{}, &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("rule %s has path type %q but no partner", r.RouteRuleId, r.PathType)}
		default:
			return routeState{shape: cloud.ShapeSingle, active: r}, nil
		}
	}
	if len(m) == 2 {
		a, s := m[0], m[1]
		if a.PathType == pathStandby {
			a, s = s, a
		}
		if a.PathType == pathActive && s.PathType == pathStandby {
			return routeState{shape: cloud.ShapeHA, active: a, standby: s}, nil
		}
	}
	types := make([]string, 0, len(m))
	for _, r := range m {
		types = append(types, fmt.Sprintf("%s(%s)", r.RouteRuleId, r.PathType))
	}
	return routeState{}, &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("unsupported shape for destination %s: rules %s (want one rule or an ha:active/ha:standby pair)", dest, strings.Join(types, ", "))}
}

// routeOwnership describes the state and checks it against the mode and our next hop.
func (c *Client) routeOwnership(op string, spec *cloud.RouteSpec, st routeState) (cloud.Ownership, error) {
	ours := c.nextHop(spec)
	o := cloud.Ownership{Shape: st.shape, Current: st.active.NexthopId}
	mode := spec.Mode
	if mode == "" {
		mode = cloud.RouteAuto
	}
	switch st.shape {
	case cloud.ShapeHAVIP:
		o.Owned = true
		o.Detail = fmt.Sprintf("rule %s: next hop is HAVIP %s; the route follows the HAVIP", st.active.RouteRuleId, st.active.NexthopId)
		if mode != cloud.RouteAuto {
			return o, &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("mode %s, but the rule's next hop is a HAVIP", mode)}
		}
	case cloud.ShapeHA:
		o.Owned = st.active.NexthopId == ours
		o.Detail = fmt.Sprintf("HA pair: active %s -> %s, standby %s -> %s", st.active.RouteRuleId, st.active.NexthopId,
			st.standby.RouteRuleId, st.standby.NexthopId)
		if mode == cloud.RouteUpdate {
			return o, &cloud.PermanentError{Op: op, Reason: "mode update, but the destination has a primary/standby pair: " + o.Detail}
		}
		if err := haTypeMismatch(op, spec, st); err != nil {
			return o, err
		}
		if !o.Owned && st.standby.NexthopId != ours {
			return o, &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("this node's next hop %s is not in the HA pair (%s)", ours, o.Detail)}
		}
	case cloud.ShapeSingle:
		o.Owned = st.active.NexthopId == ours
		o.Detail = fmt.Sprintf("single rule %s -> %s (%s)", st.active.RouteRuleId, st.active.NexthopId, st.active.NexthopType)
		if mode == cloud.RouteSwitch {
			return o, &cloud.PermanentError{Op: op, Reason: "mode switch, but the destination has a single-line rule: " + o.Detail}
		}
		if err := typeMismatch(op, spec, st.active); err != nil {
			return o, err
		}
	}
	return o, nil
}

// observeRoute reads the route from a read of its table sent at or after since (zero: any read
// in flight) and checks it. The read waits for the limiter with the priority ctx carries; a
// claim's and a read-back's are gathered with the other routes of the table.
func (c *Client) observeRoute(ctx context.Context, spec *cloud.RouteSpec, since time.Time) (cloud.Ownership, routeState, error) {
	op := "route " + spec.Table + " " + spec.Destination
	prio := prioBackground
	if p, ok := ctx.Value(prioKey{}).(priority); ok {
		prio = p
	}
	rules, _, err := c.tables.read(ctx, spec.Table, since, prio, prio != prioBackground)
	if err != nil {
		return cloud.Ownership{}, routeState{}, err
	}
	return c.routeState(op, spec, rules)
}

// routeState finds and checks the rule of spec among rules.
func (c *Client) routeState(op string, spec *cloud.RouteSpec, rules []vpc.RouteRule) (cloud.Ownership, routeState, error) {
	st, err := classify(op, rules, spec.Destination)
	if err != nil {
		return cloud.Ownership{}, st, err
	}
	o, err := c.routeOwnership(op, spec, st)
	return o, st, err
}

// updateRouteRuleBody is the documented body of PUT /v1/route/rule/{id} (VPC API "Update route
// rules"; vpc.UpdateRouteRuleArgs): the rule's current addresses and the new next hop. The
// documented body has no nexthopType (the API ignores one) and an optional description, which
// the agent leaves out so that the rule keeps its own.
type updateRouteRuleBody struct {
	SourceAddress      string `json:"sourceAddress"`
	DestinationAddress string `json:"destinationAddress"`
	NexthopID          string `json:"nexthopId"`
}

// typeMismatch refuses a single-line rule whose next hop type is not the configured one: the
// update cannot change a rule's type, so writing this node's id would leave a rule of the old
// type pointing at an id of another kind.
func typeMismatch(op string, spec *cloud.RouteSpec, r vpc.RouteRule) error {
	want := nextHopType(spec)
	if string(r.NexthopType) == want {
		return nil
	}
	return &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("rule %s has next hop type %q but next_hop_type is %q: the route update "+
		"(PUT /v1/route/rule/{id}) cannot change a rule's type; set next_hop_type = %q, or replace the rule by one of type %q",
		r.RouteRuleId, r.NexthopType, want, r.NexthopType, want)}
}

// haTypeMismatch refuses a primary/standby pair that this node's next hop cannot be part of.
// The next hops of a multi-line route are dedicated-line gateways only (bce-sdk-go doc/VPC.md), so
// a node configured with an instance or ENI next hop needs another shape, which the error names.
func haTypeMismatch(op string, spec *cloud.RouteSpec, st routeState) error {
	want := nextHopType(spec)
	if want != string(vpc.NEXTHOP_TYPE_ETGATEWAY) {
		return &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("the destination has a primary/standby pair (%s -> %s, %s -> %s), "+
			"but next_hop_type is %q: primary/standby routes take only dedicated-line gateways (dcGateway), so set next_hop_type = \"dcGateway\" "+
			"and next_hop to this node's gateway, or, for an instance next hop, use a single-line rule (mode update) or a rule whose next hop is the HAVIP",
			st.active.RouteRuleId, st.active.NexthopId, st.standby.RouteRuleId, st.standby.NexthopId, want)}
	}
	for _, r := range []vpc.RouteRule{st.active, st.standby} {
		if string(r.NexthopType) != want {
			return &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("rule %s of the primary/standby pair has next hop type %q, not %q",
				r.RouteRuleId, r.NexthopType, want)}
		}
	}
	return nil
}

// claimRoute switches an HA pair whose active next hop is not ours (switchRouteHA on the active
// rule), updates a single-line rule's next hop, and leaves a HAVIP-shaped rule alone. A
// single-line rule whose recent picture points elsewhere is updated at once, without a read
// first, and read back; a pair is always read first, by a read sent after the claim began.
func (c *Client) claimRoute(ctx context.Context, spec *cloud.RouteSpec, tokenBase string) (cloud.Ownership, error) {
	began := time.Now()
	if o, done, err := c.updateFromPicture(ctx, spec, tokenBase); done {
		return o, err
	}
	o, st, err := c.observeRoute(withPriority(ctx, prioClaimRead), spec, began)
	if err != nil || o.Owned {
		return o, err
	}
	switch st.shape {
	case cloud.ShapeHA:
		return c.switchRoute(ctx, spec, tokenBase, o, st)
	case cloud.ShapeSingle:
		r := st.active
		if r.SourceAddress == "" || r.DestinationAddress == "" {
			return o, &cloud.PermanentError{Op: "route.update " + r.RouteRuleId, Reason: "the rule read back has no source or destination address"}
		}
		call := c.updateCall(spec, r, tokenBase)
		// Setting the next hop is idempotent and carries its clientToken: retried as is.
		if err := c.do(ctx, call); isDryRun(err) {
			o.Detail += fmt.Sprintf("; dry-run: would %s %s?%s", call.method, call.path, call.queryString())
			return o, nil
		} else if err != nil {
			return o, err
		}
		return accepted(c.confirmRoute(ctx, spec))
	default:
		return o, nil
	}
}

// updateCall is the next-hop update of single-line rule r to this node. Its token names the
// rule and the next hop, so the update sent from a picture and one sent after a read are the
// same request, applied once.
func (c *Client) updateCall(spec *cloud.RouteSpec, r vpc.RouteRule, tokenBase string) *apiCall {
	ours := c.nextHop(spec)
	return &apiCall{op: "route.update " + r.RouteRuleId, metric: OpRouteRuleUpdate, method: http.MethodPut, path: "/v1/route/rule/" + url.PathEscape(r.RouteRuleId),
		query: map[string]string{"clientToken": cloud.Token(tokenBase, "route.update/"+r.RouteRuleId+"/"+ours)},
		body:  updateRouteRuleBody{SourceAddress: r.SourceAddress, DestinationAddress: r.DestinationAddress, NexthopID: ours},
		table: spec.Table}
}

// updateFromPicture updates a single-line rule from the table's recent picture, with no read
// first, when the picture shows it in shape and pointing elsewhere, then reads it back; done
// reports that it did. An update that fails (the rule replaced, a refusal, no answer) leaves
// the claim to the read and the write after it, whose same token makes a lost but applied
// update a replay.
func (c *Client) updateFromPicture(ctx context.Context, spec *cloud.RouteSpec, tokenBase string) (o cloud.Ownership, done bool, err error) {
	if c.opts.DryRun {
		return o, false, nil
	}
	rules, ok := c.pic.rules(spec.Table, c.opts.PictureMaxAge)
	if !ok {
		return o, false, nil
	}
	o, st, err := c.routeState("route "+spec.Table+" "+spec.Destination, spec, rules)
	if err != nil || o.Owned || st.shape != cloud.ShapeSingle || st.active.SourceAddress == "" || st.active.DestinationAddress == "" {
		return o, false, nil
	}
	if err := c.do(ctx, c.updateCall(spec, st.active, tokenBase)); err != nil {
		if ctx.Err() != nil {
			return o, true, err
		}
		c.logger.Info("the update sent from the picture failed; reading the rule", "table", spec.Table, "destination", spec.Destination, "err", err)
		return o, false, nil
	}
	o, err = accepted(c.confirmRoute(ctx, spec))
	return o, true, err
}

// switchCall is the switchRouteHA of the active rule of st.
func switchCall(table string, st routeState, tokenBase string) *apiCall {
	// Built here because vpc.SwitchRoute (v0.9.277) drops the switchRouteHA flag:
	// WithQueryParamFilter skips empty values.
	id := st.active.RouteRuleId
	return &apiCall{op: "route.switch " + id, metric: OpRouteRuleSwitch, method: http.MethodPut, path: "/v1/route/rule/" + url.PathEscape(id),
		query: map[string]string{"switchRouteHA": "", "clientToken": cloud.Token(tokenBase, "route.switch/"+id)},
		table: table}
}

// switchRoute makes this node's rule of an HA pair the active one. switchRouteHA is a toggle:
// an attempt that failed may still have been applied (its answer lost, its timeout reached, a
// 5xx after the change), and sending it again would switch the pair back. So the switch is sent
// at most once per read: before any retry the rules are read again, and a pair already active
// on this node ends the claim. The retry policy's MaxAttempts bounds the sends. After a switch
// that succeeded, the pair is only read back: a read that still shows the old next hop (a stale
// read, or another node's switch) ends in a PendingError for the caller to verify later, never
// in a second switch.
func (c *Client) switchRoute(ctx context.Context, spec *cloud.RouteSpec, tokenBase string, o cloud.Ownership, st routeState) (cloud.Ownership, error) {
	call := switchCall(spec.Table, st, tokenBase)
	if err := c.announce(call); isDryRun(err) {
		o.Detail += fmt.Sprintf("; dry-run: would %s %s?%s", call.method, call.path, call.queryString())
		return o, nil
	}
	recheck := func(ctx context.Context) (bool, error) {
		var err error
		o, st, err = c.observeRoute(withPriority(ctx, prioClaimRead), spec, time.Now())
		if err != nil || o.Owned {
			return o.Owned, err
		}
		if st.shape != cloud.ShapeHA {
			return false, &cloud.PendingError{Op: call.op, Reason: "the rule changed shape during the claim: " + o.Detail}
		}
		call = switchCall(spec.Table, st, tokenBase)
		return false, c.announce(call)
	}
	err := c.policy(ctx, call).DoRechecked(ctx, call.op, func(ctx context.Context) error {
		return c.send(ctx, call)
	}, recheck)
	if err != nil {
		return o, err
	}
	if o.Owned {
		// The read before a retry found the earlier switch applied: that read is the
		// confirmation.
		return o, nil
	}
	return accepted(c.confirmRoute(ctx, spec))
}

// accepted marks the PendingError of a read-back after a mutation the API answered with
// success: the cloud accepted it but does not show it.
func accepted(o cloud.Ownership, err error) (cloud.Ownership, error) {
	var pe *cloud.PendingError
	if errors.As(err, &pe) {
		return o, &cloud.PendingError{Op: pe.Op, Accepted: true,
			Reason: "the API accepted the change but reading the route back does not show this node's next hop active: " + pe.Reason}
	}
	return o, err
}

// confirmRoute reads the route back after a mutation until it points at this node, each time
// from a read sent after the mutation was answered.
func (c *Client) confirmRoute(ctx context.Context, spec *cloud.RouteSpec) (cloud.Ownership, error) {
	ctx = withPriority(ctx, prioConfirm)
	return c.confirmed(ctx, "route.confirm "+spec.Table+" "+spec.Destination, func(ctx context.Context) (cloud.Ownership, error) {
		o, _, err := c.observeRoute(ctx, spec, time.Now())
		return o, err
	})
}
