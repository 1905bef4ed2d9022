package bce

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/baidubce/bce-sdk-go/services/eip"
	"github.com/baidubce/bce-sdk-go/services/havip"
	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
)

// Check is the verdict on one item of a preflight.
type Check struct {
	// Name is "instance", "credentials" or a resource key.
	Name   string
	OK     bool
	Detail string
}

// Report is the result of Preflight.
type Report struct {
	Checks []Check
	// Failover is, for each resource whose check passed, the mutating calls a failover to this
	// node sends, in the order of the resources.
	Failover []FailoverCost
	// RateLimit and RateBurst are the Client's limit (0 for none): calls beyond the burst wait.
	RateLimit float64
	RateBurst int
}

// FailoverCost is what one resource costs a failover to this node.
type FailoverCost struct {
	// Name is the resource key.
	Name string
	// Calls is the number of mutating calls.
	Calls int
	// Detail names the calls (or why there is none); Hint, when not empty, names a shape
	// that needs none.
	Detail, Hint string
}

// FailoverCalls is the number of mutating calls a failover to this node sends.
func (r Report) FailoverCalls() int {
	n := 0
	for _, f := range r.Failover {
		n += f.Calls
	}
	return n
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return true
		}
	}
	return false
}

// WriteTo renders the report, one aligned line per check ("ok" or "FAIL", name, detail), and a
// summary line.
func (r Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	failed := 0
	for _, c := range r.Checks {
		verdict := "ok"
		if !c.OK {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", verdict, c.Name, strings.ReplaceAll(c.Detail, "\n", " "))
	}
	tw.Flush()
	if failed == 0 {
		fmt.Fprintf(&b, "all %d checks passed\n", len(r.Checks))
	} else {
		fmt.Fprintf(&b, "%d of %d checks failed\n", failed, len(r.Checks))
	}
	if len(r.Failover) > 0 {
		n := r.FailoverCalls()
		scope := ""
		if failed > 0 {
			scope = " for the resources whose checks passed"
		}
		fmt.Fprintf(&b, "a failover to this node sends %d mutating call%s%s (the HAVIP attach and route writes first):\n", n, plural(n), scope)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, f := range r.Failover {
			line := f.Detail
			if f.Hint != "" {
				line += "; " + f.Hint
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", f.Name, f.Calls, strings.ReplaceAll(line, "\n", " "))
		}
		tw.Flush()
		if over := n - r.RateBurst; r.RateLimit > 0 && over > 0 {
			fmt.Fprintf(&b, "%d more than cloud.rate_burst (%d): the last wait for the limiter, up to %.1f s at cloud.rate_limit %g\n",
				over, r.RateBurst, float64(over)/r.RateLimit, r.RateLimit)
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// String returns the rendering of WriteTo.
func (r Report) String() string {
	var b strings.Builder
	_, _ = r.WriteTo(&b) // a strings.Builder does not fail
	return b.String()
}

// Preflight checks with read-only calls that the configuration can work: the credentials are
// accepted, each HAVIP exists and holds its VIP (in its subnet's range) and, when one is
// named, its public IP (a separate check, "havip/ID/public-ip"), each route table has a rule
// for the destination in a supported shape, of the configured next hop type, that this node can
// take over, each EIP exists and is bound to nothing but a node, and this node holds no other
// EIP (an instance holds at most one). Each call is tried at most twice; ctx bounds the whole check.
func (c *Client) Preflight(ctx context.Context, resources []cloud.Resource) Report {
	pc := *c
	if pc.retry.MaxAttempts == 0 || pc.retry.MaxAttempts > 2 {
		pc.retry.MaxAttempts = 2
	}
	// The copy's table reads use its retry policy.
	pc.tables = newTableReads(&pc)
	var rep Report
	self := "instance " + c.nodeID + " (" + c.opts.InstanceType + ")"
	if c.opts.ENIID != "" {
		self += ", ENI " + c.opts.ENIID
	}
	rep.Checks = append(rep.Checks, Check{Name: "instance", OK: c.nodeID != "", Detail: self})
	var checks []Check
	var authErr error
	answered := false
	for _, r := range resources {
		chs, cost, err := pc.preflightOne(ctx, r)
		if err == nil && cost != nil {
			rep.Failover = append(rep.Failover, *cost)
		}
		for i := range chs {
			chs[i].Detail = cloud.Clamp(chs[i].Detail, cloud.MaxErrorLen)
		}
		err = clampErr(err)
		if cloud.IsAuth(err) && authErr == nil {
			authErr = err
		}
		var ae *cloud.APIError
		answered = answered || err == nil || errorsAs(err, &ae)
		checks = append(checks, chs...)
	}
	creds := Check{Name: "credentials"}
	switch {
	case authErr != nil:
		creds.Detail = "rejected: " + authErr.Error()
	case answered:
		creds.OK, creds.Detail = true, "accepted by the API"
	case len(resources) == 0:
		creds.OK, creds.Detail = true, "not checked: no cloud resources configured"
	default:
		creds.Detail = "not checked: the API did not answer"
	}
	rep.Checks = append(rep.Checks, creds)
	rep.Checks = append(rep.Checks, checks...)
	if c.lim != nil {
		rep.RateLimit, rep.RateBurst = c.opts.RateLimit, c.opts.RateBurst
	}
	return rep
}

// preflightOne checks one resource: one check, two for a HAVIP with a public IP, and what a
// failover to this node costs it.
func (c *Client) preflightOne(ctx context.Context, r cloud.Resource) ([]Check, *FailoverCost, error) {
	ch := Check{Name: r.Key()}
	if err := r.Validate(); err != nil {
		ch.Detail = err.Error()
		return []Check{ch}, nil, err
	}
	var extra []Check
	var err error
	cost := &FailoverCost{Name: r.Key()}
	switch r.Kind {
	case cloud.KindHAVIP:
		var bound bool
		ch.Detail, extra, bound, err = c.preflightHAVIP(ctx, r)
		*cost = havipCost(r, bound)
	case cloud.KindRoute:
		var o cloud.Ownership
		var st routeState
		o, st, err = c.observeRoute(ctx, r.Route, time.Time{})
		ch.Detail = o.Detail + describeOwned(o)
		*cost = routeCost(r, st)
	case cloud.KindEIP:
		var o cloud.Ownership
		var m *eip.EipModel
		o, m, err = c.observeEIP(ctx, r.EIP)
		if err == nil && !o.Owned {
			err = c.eipUnclaimable(m)
		}
		if err == nil && !o.Owned {
			var other string
			if other, err = c.otherEIP(ctx, r.EIP.Address); err == nil && other != "" {
				err = heldOtherEIP("eip "+r.EIP.Address, c.nodeID, other, r.EIP.Address)
			}
		}
		ch.Detail = o.Detail + describeOwned(o)
		*cost = eipCost(r, m)
	}
	if err != nil {
		ch.Detail = err.Error()
		return append([]Check{ch}, extra...), nil, err
	}
	ch.OK = true
	return append([]Check{ch}, extra...), cost, nil
}

// havipCost is what a failover costs a HAVIP: bound nodes stay bound in attach mode, so once
// both are, the master follows the new MASTER's gratuitous ARP with no call; exclusive mode
// attaches and detaches on every failover. A public IP bound to the HAVIP follows it.
func havipCost(r cloud.Resource, bound bool) FailoverCost {
	f := FailoverCost{Name: r.Key()}
	switch {
	case bindMode(r.HAVIP) == cloud.BindExclusive:
		f.Calls, f.Detail = 2, "attach this node, then detach the other (exclusive)"
		f.Hint = "havip_bind = \"attach\" needs none once both nodes are bound"
	case bound:
		f.Detail = "this node is bound: the master follows its gratuitous ARP"
	default:
		f.Calls, f.Detail = 1, "attach this node (then none: it stays bound and the master follows its gratuitous ARP)"
	}
	if r.HAVIP.PublicIP != "" {
		f.Detail += "; its public IP follows the HAVIP"
	}
	return f
}

// routeCost is what a failover costs a route of shape st.
func routeCost(r cloud.Resource, st routeState) FailoverCost {
	f := FailoverCost{Name: r.Key()}
	const hint = "a rule whose next hop is the HAVIP needs none"
	switch st.shape {
	case cloud.ShapeHAVIP:
		f.Detail = "the next hop is the HAVIP: the route follows it"
	case cloud.ShapeHA:
		f.Calls, f.Detail = 1, "switchRouteHA on the active rule "+st.active.RouteRuleId+" (after a read: a switch is a toggle)"
		f.Hint = hint
	default:
		f.Calls, f.Detail, f.Hint = 1, "update the next hop of rule "+st.active.RouteRuleId, hint
	}
	return f
}

// eipCost is what a failover costs an EIP bound directly to the nodes: the other node holds it.
func eipCost(r cloud.Resource, m *eip.EipModel) FailoverCost {
	f := FailoverCost{Name: r.Key(), Calls: 2, Detail: "unbind it from the other node, bind it here",
		Hint: "bound to the HAVIP instead (havip_public_ip) it follows the master with none"}
	if m != nil && m.InstanceId == "" {
		f.Calls, f.Detail = 1, "bind it here (not bound now; 2 once the other node holds it: unbind, bind)"
	}
	return f
}

func describeOwned(o cloud.Ownership) string {
	if o.Owned {
		return "; points at this node"
	}
	return "; this node can claim it"
}

// preflightHAVIP checks a HAVIP and reports whether this node is bound to it.
func (c *Client) preflightHAVIP(ctx context.Context, r cloud.Resource) (string, []Check, bool, error) {
	spec := *r.HAVIP
	spec.PublicIP = "" // checked on its own below
	o, h, err := c.observeHAVIP(ctx, &spec)
	if err != nil {
		return "", nil, false, err
	}
	self, _ := c.havipSelf()
	bound := slices.ContainsFunc(h.BindedInstances, func(b havip.HaVipBindedInstance) bool { return b.InstanceId == self })
	var extra []Check
	if want := r.HAVIP.PublicIP; want != "" {
		var po cloud.Ownership
		c.havipPublicIP(ctx, r.HAVIP, h, &po)
		pc := Check{Name: r.Key() + "/public-ip", OK: po.PublicIPProblem == "" || po.PublicIPBindable}
		switch {
		case po.PublicIPProblem == "":
			pc.Detail = "holds public IP " + want
		case po.PublicIPBindable:
			pc.Detail = po.PublicIPProblem + "; the MASTER's claim binds it"
		default:
			pc.Detail = po.PublicIPProblem
		}
		extra = append(extra, pc)
	}
	detail := "holds " + h.PrivateIpAddress
	if spec.VIP.IsValid() {
		got, perr := netip.ParseAddr(h.PrivateIpAddress)
		if perr != nil || got.Unmap() != spec.VIP.Unmap() {
			return "", extra, bound, &cloud.PermanentError{Op: "havip " + spec.ID, Reason: fmt.Sprintf("holds %q, but the VIP is %s", h.PrivateIpAddress, spec.VIP)}
		}
		if h.SubnetId != "" {
			var res vpc.GetSubnetDetailResult
			serr := c.do(ctx, &apiCall{op: "subnet.get " + h.SubnetId, metric: OpSubnetDetail, method: http.MethodGet,
				path: "/v1/subnet/" + url.PathEscape(h.SubnetId), result: &res})
			p, perr := netip.ParsePrefix(res.Subnet.Cidr)
			switch {
			case serr != nil:
				detail += fmt.Sprintf(" (subnet %s not checked: %v)", h.SubnetId, serr)
			case perr != nil:
				detail += fmt.Sprintf(" (subnet %s has no readable CIDR)", h.SubnetId)
			case !p.Contains(spec.VIP):
				return "", extra, bound, &cloud.PermanentError{Op: "havip " + spec.ID, Reason: fmt.Sprintf("VIP %s is outside subnet %s (%s)", spec.VIP, h.SubnetId, p)}
			default:
				detail += fmt.Sprintf(" in subnet %s (%s)", h.SubnetId, p)
			}
		}
	}
	return detail + "; " + o.Detail + describeOwned(o), extra, bound, nil
}
