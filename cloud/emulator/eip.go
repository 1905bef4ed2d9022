package emulator

import "time"

type eipJSON struct {
	Name            string   `json:"name"`
	Eip             string   `json:"eip"`
	EipID           string   `json:"eipId"`
	Status          string   `json:"status"`
	EipInstanceType string   `json:"eipInstanceType"`
	InstanceType    string   `json:"instanceType"`
	InstanceID      string   `json:"instanceId"`
	ShareGroupID    string   `json:"shareGroupId"`
	ClusterID       string   `json:"clusterId"`
	BandwidthInMbps int      `json:"bandwidthInMbps"`
	PaymentTiming   string   `json:"paymentTiming"`
	BillingMethod   string   `json:"billingMethod"`
	CreateTime      string   `json:"createTime"`
	ExpireTime      string   `json:"expireTime"`
	Region          string   `json:"region"`
	RouteType       string   `json:"routeType"`
	Tags            []string `json:"tags"`
	DeleteProtect   bool     `json:"deleteProtect"`
}

// eipHolderHAVIP is the emulator's own mark of an EIP bound to a HAVIP (by the HAVIP API). The
// EIP documents list the instance types BCC, BLB, VPN and NAT and none for a HAVIP, so answers
// show such an EIP with its HAVIP id and an empty instanceType.
const eipHolderHAVIP = "HAVIP"

// EIP statuses (EIP API, Appendix: EipStatus).
const (
	eipAvailable = "available"
	eipBinded    = "binded"
	eipBinding   = "binding"
	eipUnbinding = "unbinding"
)

// shownType is the instanceType an answer shows for p.
func (p *eip) shownType() string {
	if p.instanceType == eipHolderHAVIP {
		return ""
	}
	return p.instanceType
}

func (e *Emulator) eipView(p *eip) eipJSON {
	return eipJSON{
		Name: p.name, Eip: p.address, EipID: p.id, Status: p.status(), EipInstanceType: "normal",
		InstanceType: p.shownType(), InstanceID: p.instanceID, BandwidthInMbps: 100,
		PaymentTiming: "Postpaid", BillingMethod: "ByTraffic", CreateTime: p.created.UTC().Format(time.RFC3339),
		Region: e.w.region, RouteType: "BGP", Tags: []string{},
	}
}

func (e *Emulator) eipList(c *call) answer {
	q := c.r.URL.Query()
	var items []*eip
	for _, p := range e.w.eips {
		if v := q.Get("eip"); v != "" && p.address != v {
			continue
		}
		if v := q.Get("instanceType"); v != "" && p.shownType() != v {
			continue
		}
		if v := q.Get("instanceId"); v != "" && p.instanceID != v {
			continue
		}
		if v := q.Get("status"); v != "" && p.status() != v {
			continue
		}
		items = append(items, p)
	}
	pg, marker, next, trunc, maxKeys, err := page(items, func(p *eip) string { return p.id }, q)
	if err != nil {
		return answer{err: err}
	}
	out := make([]eipJSON, 0, len(pg))
	for _, p := range pg {
		out = append(out, e.eipView(p))
	}
	return okJSON(map[string]any{"eipList": out, "marker": marker, "isTruncated": trunc, "nextMarker": next, "maxKeys": maxKeys})
}

// eipHeldBy answers the EIP bound (or being bound) to the node in, by its instance or its ENI,
// other than except; nil if none.
func (w *world) eipHeldBy(in *instance, except *eip) *eip {
	for _, p := range w.eips {
		if p != except && p.instanceType != eipHolderHAVIP && p.instanceID != "" && (p.instanceID == in.id || p.instanceID == in.eniID) {
			return p
		}
	}
	return nil
}

// notAvailable refuses an operation on an EIP whose bind or unbind is still in progress: only
// an available EIP can be bound, and only a bound one unbound (EIP API, Bind and Unbind EIP).
func notAvailable(p *eip) *apiError {
	return errf(400, "EipStatusNotAvailable", "The eip %s is %s; wait until the operation has finished.", p.address, p.status())
}

// bindEIPLocked binds p to an instance after checking it exists and holds no EIP (used by the
// API and the seed). With a delay the EIP is "binding" until then.
func (e *Emulator) bindEIPLocked(c *call, p *eip, typ, id string, delay time.Duration) *apiError {
	if p.transition != "" {
		return notAvailable(p)
	}
	if p.instanceID != "" {
		return errf(400, "EipAlreadyBinded", "The eip %s is bound to %s %s; unbind it first.", p.address, p.shownType(), p.instanceID)
	}
	if id == "" {
		return invalidParam("instanceId is required.")
	}
	var in *instance
	switch typ {
	case "BCC", "BBC":
		in = e.w.instances[id]
	case "ENI":
		in = e.w.enis[id]
	default:
		return invalidParam("instanceType %q must be one of BCC, BBC, ENI.", typ)
	}
	if in == nil {
		return errf(404, "InstanceNotFound", "The %s instance %q does not exist.", typ, id)
	}
	// The instance bound to must hold no EIP (EIP API, Bind EIP); its ENI is the same holder.
	if o := e.w.eipHeldBy(in, p); o != nil {
		return errf(400, "InstanceAlreadyBindedEip", "The instance %s already holds eip %s (on %s); an instance can hold one eip.", in.id, o.address, o.instanceID)
	}
	p.instanceType, p.instanceID = typ, id
	if delay > 0 {
		p.transition, p.settleAt = eipBinding, e.opts.Now().Add(delay)
	}
	c.change(p.address, "", id, "eip %s bind %s %s", p.address, typ, id)
	return nil
}

// eipDelay is how long a bind or unbind of the call stays in progress: a transition fault's
// delay, else the seed's eip_transition.
func (e *Emulator) eipDelay(c *call) time.Duration {
	if c.fault != nil && c.fault.Kind == FaultTransition {
		return time.Duration(c.fault.Delay)
	}
	return e.eipTransition
}

func (e *Emulator) eipBind(c *call) answer {
	addr := pathID(c)
	var req struct {
		InstanceType string `json:"instanceType"`
		InstanceID   string `json:"instanceId"`
		InstanceIP   string `json:"instanceIp"`
	}
	if err := decodeBody(c.body, &req); err != nil {
		return answer{err: err}
	}
	p := e.w.eip(addr)
	if p == nil {
		return answer{err: notFound("eip", addr)}
	}
	if err := e.bindEIPLocked(c, p, req.InstanceType, req.InstanceID, e.eipDelay(c)); err != nil {
		return answer{err: err}
	}
	return okEmpty()
}

func (e *Emulator) eipUnbind(c *call) answer {
	addr := pathID(c)
	p := e.w.eip(addr)
	if p == nil {
		return answer{err: notFound("eip", addr)}
	}
	if p.transition != "" {
		return answer{err: notAvailable(p)}
	}
	if p.instanceID == "" {
		return answer{err: errf(400, "EipNotBinded", "The eip %s is not bound.", addr)}
	}
	before := p.instanceID
	if d := e.eipDelay(c); d > 0 && p.instanceType != eipHolderHAVIP {
		// Still shown bound to its instance until the unbind has finished.
		p.transition, p.settleAt = eipUnbinding, e.opts.Now().Add(d)
		c.change(p.address, before, before, "eip %s unbinding %s", p.address, before)
		return okEmpty()
	}
	if p.instanceType == eipHolderHAVIP {
		if h := e.w.havip(p.instanceID); h != nil {
			h.publicIP = ""
		}
	}
	p.instanceType, p.instanceID = "", ""
	c.change(p.address, before, "", "eip %s unbind %s", p.address, before)
	return okEmpty()
}

// settleLocked finishes the EIP binds and unbinds whose time has come, logging each.
func (e *Emulator) settleLocked() {
	now := e.opts.Now()
	var chs []ChangeRecord
	for _, p := range e.w.eips {
		if p.transition == "" || now.Before(p.settleAt) {
			continue
		}
		if len(chs) == 0 {
			// The state before the first change, for stale reads.
			e.rememberLocked(e.w.clone())
		}
		c := &call{}
		switch p.transition {
		case eipBinding:
			c.change(p.address, p.instanceID, p.instanceID, "eip %s bound to %s %s", p.address, p.instanceType, p.instanceID)
		case eipUnbinding:
			c.change(p.address, p.instanceID, "", "eip %s unbound from %s", p.address, p.instanceID)
			p.instanceType, p.instanceID = "", ""
		}
		p.transition, p.settleAt = "", time.Time{}
		chs = append(chs, c.changes...)
	}
	if len(chs) > 0 {
		e.logChangesLocked(OpEIPSettle, chs)
	}
}
