package bce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/baidubce/bce-sdk-go/services/havip"

	"github.com/havip-agent/havip-agent/cloud"
)

// self returns the HAVIP instance id and type that stand for this node.
func (c *Client) havipSelf() (id, typ string) {
	if c.opts.ENIID != "" {
		return c.opts.ENIID, "ENI"
	}
	return c.nodeID, "SERVER"
}

func (c *Client) getHAVIP(ctx context.Context, id string) (*havip.HaVip, error) {
	var h havip.HaVip
	err := c.do(ctx, &apiCall{op: "havip.get " + id, method: http.MethodGet,
		path: "/v1/havip/" + url.PathEscape(id), result: &h})
	if err != nil {
		return nil, err
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
	return c.havipOwnership(spec, h), h, nil
}

// claimHAVIP attaches this node if it is not bound and, in exclusive mode, detaches every other
// bound instance (after attaching, so that the HAVIP is never left without an instance).
func (c *Client) claimHAVIP(ctx context.Context, spec *cloud.HAVIPSpec, tokenBase string) (cloud.Ownership, error) {
	o, h, err := c.observeHAVIP(ctx, spec)
	if err != nil || o.Owned {
		return o, err
	}
	self, selfType := c.havipSelf()
	path := "/v1/havip/" + url.PathEscape(spec.ID)
	var would []string
	if !slices.ContainsFunc(h.BindedInstances, func(b havip.HaVipBindedInstance) bool { return b.InstanceId == self }) {
		err := c.do(ctx, &apiCall{op: "havip.attach " + spec.ID, method: http.MethodPut, path: path,
			query: map[string]string{"attach": "", "clientToken": cloud.Token(tokenBase, "havip.attach/"+self)},
			body:  havip.HaVipInstanceArgs{InstanceIds: []string{self}, InstanceType: selfType}})
		if isDryRun(err) {
			would = append(would, "attach "+self)
		} else if err != nil {
			return o, err
		}
	}
	if bindMode(spec) == cloud.BindExclusive {
		byType := map[string][]string{}
		for _, b := range h.BindedInstances {
			if b.InstanceId != self {
				byType[b.InstanceType] = append(byType[b.InstanceType], b.InstanceId)
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
			err := c.do(ctx, &apiCall{op: "havip.detach " + spec.ID, method: http.MethodPut, path: path,
				query: map[string]string{"detach": "", "clientToken": cloud.Token(tokenBase, "havip.detach/"+t+"/"+strings.Join(ids, ","))},
				body:  havip.HaVipInstanceArgs{InstanceIds: ids, InstanceType: t}})
			if isDryRun(err) {
				would = append(would, "detach "+strings.Join(ids, ","))
			} else if err != nil {
				return o, err
			}
		}
	}
	if c.opts.DryRun {
		o.Detail += "; dry-run: would " + strings.Join(would, ", then ")
		return o, nil
	}
	return c.confirmed(ctx, "havip.confirm "+spec.ID, func(ctx context.Context) (cloud.Ownership, error) {
		o, _, err := c.observeHAVIP(ctx, spec)
		if err == nil && !o.Owned {
			o.Detail = fmt.Sprintf("%s (this node is %s; the master moves when the cloud sees its gratuitous ARP)", o.Detail, self)
		}
		return o, err
	})
}
