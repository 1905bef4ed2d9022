package bce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/baidubce/bce-sdk-go/services/eip"

	"github.com/havip-agent/havip-agent/cloud"
)

// eipSettling lists the EIP statuses of an operation in progress: a bind or unbind sent now
// would be refused (only an "available" EIP can be bound). The EIP documents list binding and
// unbinding among the statuses and say the bind is done in the background.
var eipSettling = map[string]bool{"creating": true, "binding": true, "unbinding": true, "updating": true}

// eipMovable lists the instance types an EIP may be taken from: the peer node, bare metal or
// not, or its ENI. An EIP on a HAVIP, a load balancer, a VPN or a NAT gateway is not the peer's.
var eipMovable = map[string]bool{"BCC": true, "BBC": true, "DCC": true, "ENI": true}

// movableEIP reports whether the EIP may be taken from its holder: a node (an instance type
// above), or, when the answer names no type (the documents list none for a HAVIP), a holder
// whose id has the form of an instance or an ENI ("i-", "eni-").
func movableEIP(m *eip.EipModel) bool {
	if m.InstanceType != "" {
		return eipMovable[strings.ToUpper(m.InstanceType)]
	}
	return strings.HasPrefix(m.InstanceId, "i-") || strings.HasPrefix(m.InstanceId, "eni-")
}

func (c *Client) getEIP(ctx context.Context, address string) (*eip.EipModel, error) {
	var res eip.ListEipResult
	op := "eip.get " + address
	at := time.Now()
	if err := c.do(ctx, &apiCall{op: op, metric: OpEIPList, method: http.MethodGet, eip: true, path: "/v1/eip",
		query: map[string]string{"eip": address}, result: &res}); err != nil {
		return nil, err
	}
	c.pic.noteEIP(address, at)
	for i := range res.EipList {
		if res.EipList[i].Eip == address {
			return &res.EipList[i], nil
		}
	}
	return nil, &cloud.PermanentError{Op: op, Reason: "no such EIP"}
}

// eipSelf reports whether id stands for this node: its instance or, when configured, its ENI.
func (c *Client) eipSelf(id string) bool {
	return id != "" && (id == c.nodeID || (c.opts.ENIID != "" && id == c.opts.ENIID))
}

// eipOwnership says whether the EIP points at this node: bound to it and settled (an EIP still
// binding carries no traffic yet).
func (c *Client) eipOwnership(m *eip.EipModel) cloud.Ownership {
	o := cloud.Ownership{Owned: c.eipSelf(m.InstanceId) && !eipSettling[m.Status], Current: m.InstanceId, Shape: "instance"}
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

// claimEIP moves the EIP to this node: it checks that this node holds no other EIP (an
// instance holds at most one), unbinds it from the instance that holds it, waits until it is
// free, binds it to this node (instanceType Options.InstanceType) and reads it back until the
// bind has finished. Each step has its own clientToken, so that a retried step is applied at
// most once, and a claim interrupted between the steps (unbind applied, bind failed) is
// completed by the next claim, which finds the EIP free and only binds. A bind refused because
// the EIP was still being unbound (a read that lagged) is sent once more after the unbind has
// finished.
func (c *Client) claimEIP(ctx context.Context, spec *cloud.EIPSpec, tokenBase string) (cloud.Ownership, error) {
	o, m, err := c.observeEIP(ctx, spec)
	if err != nil || o.Owned {
		return o, err
	}
	op := "eip.claim " + spec.Address
	if eipSettling[m.Status] {
		return o, &cloud.PendingError{Op: op, Reason: fmt.Sprintf("EIP is %s; waiting for that to finish (%s)", m.Status, o.Detail)}
	}
	if err := c.eipUnclaimable(m); err != nil {
		return o, err
	}
	if other, err := c.otherEIP(ctx, spec.Address); err != nil {
		return o, err
	} else if other != "" {
		return o, heldOtherEIP(op, c.nodeID, other, spec.Address)
	}
	path := "/v1/eip/" + url.PathEscape(spec.Address)
	var would string
	if m.InstanceId != "" {
		err := c.do(ctx, &apiCall{op: "eip.unbind " + spec.Address, metric: OpEIPUnbind, method: http.MethodPut, eip: true, path: path,
			query: map[string]string{"unbind": "", "clientToken": cloud.Token(tokenBase, "eip.unbind/"+m.InstanceId)}})
		if isDryRun(err) {
			would = "unbind from " + m.InstanceId + ", then "
		} else if err != nil {
			return o, err
		} else if m, err = c.waitEIPFree(ctx, spec); err != nil {
			return o, err
		}
	}
	if !c.eipSelf(m.InstanceId) {
		bind := func(action string) error {
			return c.do(ctx, &apiCall{op: "eip.bind " + spec.Address, metric: OpEIPBind, method: http.MethodPut, eip: true, path: path,
				query: map[string]string{"bind": "", "clientToken": cloud.Token(tokenBase, action)},
				body:  eip.BindEipArgs{InstanceType: c.opts.InstanceType, InstanceId: c.nodeID}})
		}
		err = bind("eip.bind/" + c.nodeID)
		if isDryRun(err) {
			o.Detail += "; dry-run: would " + would + "bind to " + c.opts.InstanceType + " " + c.nodeID
			return o, nil
		}
		var ae *cloud.APIError
		if errors.As(err, &ae) && !cloud.IsAuth(err) {
			// Refused: if only because an unbind was still in progress, wait for it and
			// send the bind again, under a token of its own (the refused one applied
			// nothing).
			if n, rerr := c.getEIP(ctx, spec.Address); rerr == nil && eipSettling[n.Status] && !c.eipSelf(n.InstanceId) {
				free, werr := c.waitEIPFree(ctx, spec)
				switch {
				case werr != nil:
					return o, werr
				case c.eipSelf(free.InstanceId):
					err = nil // bound here meanwhile: the read-back below confirms it
				default:
					err = bind("eip.bind/" + c.nodeID + "/after-" + n.Status)
				}
			}
		}
		if err != nil {
			return o, err
		}
	}
	return c.confirmed(ctx, "eip.confirm "+spec.Address, func(ctx context.Context) (cloud.Ownership, error) {
		o, _, err := c.observeEIP(ctx, spec)
		return o, err
	})
}

// otherEIP returns an EIP other than want that is bound (or being bound) to this node, "" if
// none: GET /v1/eip?instanceType&instanceId lists the EIPs of one instance.
func (c *Client) otherEIP(ctx context.Context, want string) (string, error) {
	var res eip.ListEipResult
	if err := c.do(ctx, &apiCall{op: "eip.list " + c.nodeID, metric: OpEIPList, method: http.MethodGet, eip: true, path: "/v1/eip",
		query: map[string]string{"instanceType": c.opts.InstanceType, "instanceId": c.nodeID}, result: &res}); err != nil {
		return "", err
	}
	for _, m := range res.EipList {
		if m.Eip != want && m.Eip != "" && c.eipSelf(m.InstanceId) {
			return m.Eip, nil
		}
	}
	return "", nil
}

// heldOtherEIP is the error of a node that already holds another EIP: the bind would be
// refused, and unbinding the wanted EIP from its node first would leave it bound nowhere.
func heldOtherEIP(op, node, other, want string) error {
	return &cloud.PermanentError{Op: op, Reason: fmt.Sprintf("this node (%s) already holds EIP %s; an instance holds at most one EIP "+
		"(the EIP bind refuses an instance that holds one), so %s cannot be bound here: unbind %s or remove it from the configuration",
		node, other, want, other)}
}

// eipUnclaimable returns a PermanentError when the EIP is bound to something that is not a
// node (a HAVIP, a load balancer, a NAT gateway): the agent moves EIPs between nodes only.
func (c *Client) eipUnclaimable(m *eip.EipModel) error {
	if m.InstanceId == "" || c.eipSelf(m.InstanceId) || movableEIP(m) {
		return nil
	}
	holder := m.InstanceId
	if m.InstanceType != "" {
		holder = m.InstanceType + " " + m.InstanceId
	}
	reason := fmt.Sprintf("EIP is bound to %s, not to a node; it is not taken from there", holder)
	if strings.EqualFold(m.InstanceType, "HAVIP") || strings.HasPrefix(m.InstanceId, "havip-") {
		reason += " (an EIP on a HAVIP follows the HAVIP's master by itself: configure it as havip_public_ip instead)"
	}
	return &cloud.PermanentError{Op: "eip " + m.Eip, Reason: reason}
}

// waitEIPFree reads the EIP back until no instance holds it and no operation is in progress:
// binding an EIP that is still being unbound fails. It returns the EIP as last read (which
// may, by a race, already be bound to this node).
func (c *Client) waitEIPFree(ctx context.Context, spec *cloud.EIPSpec) (*eip.EipModel, error) {
	ctx = withPriority(ctx, prioConfirm)
	op := "eip.unbound " + spec.Address
	var last *eip.EipModel
	err := c.confirm.Do(ctx, op, func(context.Context) error {
		m, err := c.getEIP(ctx, spec.Address)
		if err != nil {
			return err
		}
		last = m
		switch {
		case c.eipSelf(m.InstanceId):
			return nil
		case m.InstanceId != "":
			return &cloud.PendingError{Op: op, Reason: "still bound to " + m.InstanceId}
		case eipSettling[m.Status]:
			return &cloud.PendingError{Op: op, Reason: "status " + m.Status}
		}
		return nil
	})
	return last, err
}
