package bce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/baidubce/bce-sdk-go/services/eip"

	"github.com/havip-agent/havip-agent/cloud"
)

func (c *Client) getEIP(ctx context.Context, address string) (*eip.EipModel, error) {
	var res eip.ListEipResult
	op := "eip.get " + address
	if err := c.do(ctx, &apiCall{op: op, method: http.MethodGet, eip: true, path: "/v1/eip",
		query: map[string]string{"eip": address}, result: &res}); err != nil {
		return nil, err
	}
	for i := range res.EipList {
		if res.EipList[i].Eip == address {
			return &res.EipList[i], nil
		}
	}
	return nil, &cloud.PermanentError{Op: op, Reason: "no such EIP"}
}

func (c *Client) eipOwnership(m *eip.EipModel) cloud.Ownership {
	o := cloud.Ownership{Owned: m.InstanceId == c.nodeID, Current: m.InstanceId, Shape: "instance"}
	if m.InstanceId == "" {
		o.Detail = fmt.Sprintf("EIP %s is not bound (status %s)", m.Eip, m.Status)
	} else {
		o.Detail = fmt.Sprintf("EIP %s is bound to %s %s (status %s)", m.Eip, m.InstanceType, m.InstanceId, m.Status)
	}
	return o
}

func (c *Client) observeEIP(ctx context.Context, spec *cloud.EIPSpec) (cloud.Ownership, *eip.EipModel, error) {
	m, err := c.getEIP(ctx, spec.Address)
	if err != nil {
		return cloud.Ownership{}, nil, err
	}
	return c.eipOwnership(m), m, nil
}

// claimEIP unbinds the EIP from another instance, waits until it is free, binds it to this node
// and reads it back.
func (c *Client) claimEIP(ctx context.Context, spec *cloud.EIPSpec, tokenBase string) (cloud.Ownership, error) {
	o, m, err := c.observeEIP(ctx, spec)
	if err != nil || o.Owned {
		return o, err
	}
	path := "/v1/eip/" + url.PathEscape(spec.Address)
	var would string
	if m.InstanceId != "" {
		err := c.do(ctx, &apiCall{op: "eip.unbind " + spec.Address, method: http.MethodPut, eip: true, path: path,
			query: map[string]string{"unbind": "", "clientToken": cloud.Token(tokenBase, "eip.unbind/"+m.InstanceId)}})
		if isDryRun(err) {
			would = "unbind from " + m.InstanceId + ", then "
		} else if err != nil {
			return o, err
		} else if err := c.waitEIPFree(ctx, spec); err != nil {
			return o, err
		}
	}
	err = c.do(ctx, &apiCall{op: "eip.bind " + spec.Address, method: http.MethodPut, eip: true, path: path,
		query: map[string]string{"bind": "", "clientToken": cloud.Token(tokenBase, "eip.bind/"+c.nodeID)},
		body:  eip.BindEipArgs{InstanceType: c.opts.InstanceType, InstanceId: c.nodeID}})
	if isDryRun(err) {
		o.Detail += "; dry-run: would " + would + "bind to " + c.nodeID
		return o, nil
	} else if err != nil {
		return o, err
	}
	return c.confirmed(ctx, "eip.confirm "+spec.Address, func(ctx context.Context) (cloud.Ownership, error) {
		o, _, err := c.observeEIP(ctx, spec)
		return o, err
	})
}

// waitEIPFree reads the EIP back until no instance holds it: binding an EIP that is still being
// unbound fails.
func (c *Client) waitEIPFree(ctx context.Context, spec *cloud.EIPSpec) error {
	return c.confirm.Do(ctx, "eip.unbound "+spec.Address, func(context.Context) error {
		m, err := c.getEIP(ctx, spec.Address)
		if err != nil {
			return err
		}
		if m.InstanceId != "" && m.InstanceId != c.nodeID {
			return &cloud.PendingError{Op: "eip.unbound " + spec.Address, Reason: "still bound to " + m.InstanceId}
		}
		return nil
	})
}
