package bce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/baidubce/bce-sdk-go/services/havip"

	"github.com/havip-agent/havip-agent/cloud"
)

// self returns the HAVIP instance id and type that stand for this node.
func (c *Client) havipSelf() (id, typ string) {
	if c.opts.ENIID != "" {
		return c.opts.ENIID, havipENI
	}
	return c.nodeID, havipServer
}

func (c *Client) getHAVIP(ctx context.Context, id string) (*havip.HaVip, error) {
	var h havip.HaVip
	at := time.Now()
	err := c.do(ctx, &apiCall{op: "havip.get " + id, metric: OpHAVIPDetail, method: http.MethodGet,
		path: "/v1/havip/" + url.PathEscape(id), result: &h})
	if err != nil {
		return nil, err
	}
	if h.HaVipId == id {
		c.pic.noteHAVIP(&h, at)
	}
	return &h, nil
}

// havipOwnership says whether the HAVIP points at this node: this node is bound and no other
// bound instance is the master (and, in exclusive mode, no other instance is bound).
func (c *Client) havipOwnership(spec *cloud.HAVIPSpec, h *havip.HaVip) cloud.Ownership {
	self, _ := c.havipSelf()
	var bound bool
	var master string
	var list []string
	for _, b := range h.BindedInstances {
		s := b.InstanceId
		if b.Master {
			s += " (master)"
			if master == "" {
				master = b.InstanceId
			}
		}
		list = append(list, s)
		bound = bound || b.InstanceId == self
	}
	o := cloud.Ownership{Shape: string(bindMode(spec)), Current: master}
	if o.Current == "" && len(h.BindedInstances) == 1 {
		o.Current = h.BindedInstances[0].InstanceId
	}
	others := len(h.BindedInstances) - 1
	if !bound {
		others++
	}
	o.Owned = bound && (master == "" || master == self) && (bindMode(spec) != cloud.BindExclusive || others == 0)
	if len(list) == 0 {
		o.Detail = "no instance bound"
	} else {
		o.Detail = "bound: " + strings.Join(list, ", ")
	}
	return o
}

// HAVIP attach and detach instance types (HAVIP API, HaVipInstanceArgs): an instance, or an
// ENI.
const (
	havipServer = "SERVER"
	havipENI    = "ENI"
)

// detachType is the documented instanceType that detaches b: ENI for an ENI binding (the detail
// answer says ENI, in any case, or the id is an ENI's, "eni-"), SERVER for any other. The detail
// answer's own string is not sent as it is: it may not be one the detach accepts.
func detachType(b havip.HaVipBindedInstance) string {
	if strings.EqualFold(b.InstanceType, havipENI) || (!strings.EqualFold(b.InstanceType, havipServer) && strings.HasPrefix(b.InstanceId, "eni-")) {
		return havipENI
	}
	return havipServer
}

func bindMode(spec *cloud.HAVIPSpec) cloud.BindMode {
	if spec.Bind == "" {
		return cloud.BindAttach
	}
	return spec.Bind
}

func (c *Client) observeHAVIP(ctx context.Context, spec *cloud.HAVIPSpec) (cloud.Ownership, *havip.HaVip, error) {
	h, err := c.getHAVIP(ctx, spec.ID)
	if err != nil {
		return cloud.Ownership{}, nil, err
	}
	o := c.havipOwnership(spec, h)
	c.havipPublicIP(ctx, spec, h, &o)
	return o, h, nil
}

// havipPublicIP fills in the public IP fields of o when spec names a public IP. When the HAVIP
// holds none it reads the EIP too (only then, so a healthy HAVIP costs no extra call), to tell
// whether a claim could bind it. It never fails: a failed EIP read leaves the bind to be tried.
func (c *Client) havipPublicIP(ctx context.Context, spec *cloud.HAVIPSpec, h *havip.HaVip, o *cloud.Ownership) {
	want := spec.PublicIP
	if want == "" {
		return
	}
	o.PublicIP = h.PublicIpAddress
	switch {
	case h.PublicIpAddress == want:
		o.Detail += "; public IP " + want
		return
	case h.PublicIpAddress != "":
		o.PublicIPProblem = fmt.Sprintf("HAVIP %s holds public IP %s, not %s; left alone (unbind it by hand to have %s bound)",
			spec.ID, h.PublicIpAddress, want, want)
	default:
		o.PublicIPProblem = fmt.Sprintf("HAVIP %s holds no public IP, want %s", spec.ID, want)
		m, err := c.getEIP(ctx, want)
		switch {
		case err != nil:
			o.PublicIPProblem += fmt.Sprintf(" (EIP not read: %v)", err)
			o.PublicIPBindable = !cloud.IsPermanent(err)
		case m.InstanceId != "":
			o.PublicIPProblem += fmt.Sprintf(", but EIP %s is bound to %s %s; not taken from there", want, m.InstanceType, m.InstanceId)
		default:
			o.PublicIPBindable = true
		}
	}
	o.Detail += "; public IP problem: " + o.PublicIPProblem
}

// bindHAVIPPublicIP binds spec.PublicIP to the HAVIP (the documented HaVipBindPublicIp call).
func (c *Client) bindHAVIPPublicIP(ctx context.Context, spec *cloud.HAVIPSpec, tokenBase string) error {
	return c.do(ctx, &apiCall{op: "havip.bindPublicIp " + spec.ID, metric: OpHAVIPBindPublicIP, method: http.MethodPut,
		path:  "/v1/havip/" + url.PathEscape(spec.ID),
		query: map[string]string{"bindPublicIp": "", "clientToken": cloud.Token(tokenBase, "havip.bindPublicIp/"+spec.PublicIP)},
		body:  havip.HaVipBindPublicIpArgs{PublicIpAddress: spec.PublicIP}})
}

// claimHAVIP attaches this node if it is not bound and, in exclusive mode, detaches every other
// bound instance (after attaching, so that the HAVIP is never left without an instance). When
// the spec names a public IP that the HAVIP does not hold and that is free, it binds it too;
// that part never fails the claim: its problems are reported in the ownership's public IP
// fields and logged.
func (c *Client) claimHAVIP(ctx context.Context, spec *cloud.HAVIPSpec, tokenBase string) (cloud.Ownership, error) {
	attached := c.attachFromPicture(ctx, spec, tokenBase)
	if err := ctx.Err(); err != nil {
		return cloud.Ownership{}, fmt.Errorf("havip.attach %s: %w", spec.ID, err)
	}
	rctx := ctx
	if attached {
		rctx = withPriority(ctx, prioConfirm)
	}
	o, h, err := c.observeHAVIP(rctx, spec)
	if err != nil || (o.Owned && !o.PublicIPBindable) {
		c.logPublicIPProblem(o)
		return o, err
	}
	self, _ := c.havipSelf()
	path := "/v1/havip/" + url.PathEscape(spec.ID)
	var would []string
	if !attached && !o.Owned && !slices.ContainsFunc(h.BindedInstances, func(b havip.HaVipBindedInstance) bool { return b.InstanceId == self }) {
		err := c.do(ctx, c.attachCall(spec, tokenBase))
		if isDryRun(err) {
			would = append(would, "attach "+self)
		} else if err != nil {
			return o, err
		}
	}
	if !o.Owned && bindMode(spec) == cloud.BindExclusive {
		byType := map[string][]string{}
		for _, b := range h.BindedInstances {
			if b.InstanceId != self {
				t := detachType(b)
				byType[t] = append(byType[t], b.InstanceId)
			}
		}
		types := make([]string, 0, len(byType))
		for t := range byType {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			ids := byType[t]
			sort.Strings(ids)
			err := c.do(ctx, &apiCall{op: "havip.detach " + spec.ID, metric: OpHAVIPDetach, method: http.MethodPut, path: path,
				query: map[string]string{"detach": "", "clientToken": cloud.Token(tokenBase, "havip.detach/"+t+"/"+strings.Join(ids, ","))},
				body:  havip.HaVipInstanceArgs{InstanceIds: ids, InstanceType: t}})
			if isDryRun(err) {
				would = append(would, "detach "+strings.Join(ids, ","))
			} else if err != nil {
				return o, err
			}
		}
	}
	// The public IP is bound before the master is confirmed: the confirmation may wait for
	// the cloud to see this node's gratuitous ARP, and the binding does not depend on it.
	var bindErr error
	bound := false
	if o.PublicIPBindable {
		bindErr = c.bindHAVIPPublicIP(ctx, spec, tokenBase)
		switch {
		case isDryRun(bindErr):
			would = append(would, "bind public IP "+spec.PublicIP)
			bindErr = nil
		case bindErr == nil:
			bound = true
		}
	}
	if c.opts.DryRun {
		if len(would) == 0 {
			o.Detail += "; dry-run: nothing to send (this node is bound; the master moves when the cloud sees its gratuitous ARP)"
		} else {
			o.Detail += "; dry-run: would " + strings.Join(would, ", then ")
		}
		return o, nil
	}
	// When only the public IP was missing, the read-back below is confirmPublicIP's.
	if !o.Owned {
		o, err = c.confirmed(ctx, "havip.confirm "+spec.ID, func(ctx context.Context) (cloud.Ownership, error) {
			o, _, err := c.observeHAVIP(ctx, spec)
			if err == nil && !o.Owned {
				o.Detail = fmt.Sprintf("%s (this node is %s; the master moves when the cloud sees its gratuitous ARP)", o.Detail, self)
			}
			return o, err
		})
	}
	if err == nil && bound && o.PublicIP != spec.PublicIP {
		o = c.confirmPublicIP(ctx, spec, o)
	}
	if bindErr != nil && o.PublicIP != spec.PublicIP {
		o.PublicIPProblem = fmt.Sprintf("binding public IP %s to HAVIP %s failed: %v", spec.PublicIP, spec.ID, bindErr)
		o.PublicIPBindable = !cloud.IsPermanent(bindErr)
	}
	c.logPublicIPProblem(o)
	return o, err
}

// attachCall attaches this node to the HAVIP of spec.
func (c *Client) attachCall(spec *cloud.HAVIPSpec, tokenBase string) *apiCall {
	self, selfType := c.havipSelf()
	return &apiCall{op: "havip.attach " + spec.ID, metric: OpHAVIPAttach, method: http.MethodPut, path: "/v1/havip/" + url.PathEscape(spec.ID),
		query: map[string]string{"attach": "", "clientToken": cloud.Token(tokenBase, "havip.attach/"+self)},
		body:  havip.HaVipInstanceArgs{InstanceIds: []string{self}, InstanceType: selfType}}
}

// attachFromPicture attaches this node at once, with no read first, when the HAVIP's recent
// picture shows it not bound, and reports whether the attach was answered with success. The
// claim's read comes after it either way. An attach that fails (this node bound meanwhile, the
// HAVIP full or gone, no answer) leaves it to that read and the attach after it, under the
// same token.
func (c *Client) attachFromPicture(ctx context.Context, spec *cloud.HAVIPSpec, tokenBase string) bool {
	if c.opts.DryRun {
		return false
	}
	h, ok := c.pic.havip(spec.ID, c.opts.PictureMaxAge)
	self, _ := c.havipSelf()
	if !ok || slices.ContainsFunc(h.BindedInstances, func(b havip.HaVipBindedInstance) bool { return b.InstanceId == self }) {
		return false
	}
	if err := c.do(ctx, c.attachCall(spec, tokenBase)); err != nil {
		if ctx.Err() == nil {
			c.logger.Info("the attach sent from the picture failed; reading the HAVIP", "havip", spec.ID, "err", err)
		}
		return false
	}
	return true
}

// confirmPublicIP reads the HAVIP back until it shows the public IP just bound, within the
// confirm policy; it reports (never returns) a failure, since the master claim succeeded.
func (c *Client) confirmPublicIP(ctx context.Context, spec *cloud.HAVIPSpec, o cloud.Ownership) cloud.Ownership {
	op := "havip.confirmPublicIp " + spec.ID
	err := c.confirm.Do(ctx, op, func(context.Context) error {
		n, _, err := c.observeHAVIP(ctx, spec)
		if err != nil {
			if cloud.IsPermanent(err) {
				return err
			}
			return &cloud.PendingError{Op: op, Reason: err.Error()}
		}
		o = n
		if o.PublicIP != spec.PublicIP {
			return &cloud.PendingError{Op: op, Reason: "public IP not shown yet"}
		}
		return nil
	})
	if err != nil && o.PublicIP != spec.PublicIP {
		o.PublicIPProblem = fmt.Sprintf("public IP %s was bound to HAVIP %s but is not shown: %v", spec.PublicIP, spec.ID, err)
	}
	return o
}

// logPublicIPProblem logs a public IP problem that a claim leaves behind: an operator must act.
func (c *Client) logPublicIPProblem(o cloud.Ownership) {
	if o.PublicIPProblem != "" {
		c.logger.Error("HAVIP public IP is not as configured", "problem", cloud.Clamp(o.PublicIPProblem, cloud.MaxErrorLen), "owned", o.Owned)
	}
}
