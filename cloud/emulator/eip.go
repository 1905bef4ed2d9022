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

func (e *Emulator) eipView(p *eip) eipJSON {
	return eipJSON{
		Name: p.name, Eip: p.address, EipID: p.id, Status: p.status(), EipInstanceType: "normal",
		InstanceType: p.instanceType, InstanceID: p.instanceID, BandwidthInMbps: 100,
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
		if v := q.Get("instanceType"); v != "" && p.instanceType != v {
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

// bindEIPLocked binds p to a resource after checking it exists (used by the API and the seed).
func (e *Emulator) bindEIPLocked(c *call, p *eip, typ, id string) *apiError {
	if p.instanceID != "" {
		return errf(400, "EipAlreadyBinded", "The eip %s is bound to %s %s; unbind it first.", p.address, p.instanceType, p.instanceID)
	}
	if id == "" {
		return invalidParam("instanceId is required.")
	}
	switch typ {
	case "BCC", "BBC":
		if e.w.instances[id] == nil {
			return errf(404, "InstanceNotFound", "The instance %q does not exist.", id)
		}
	case "ENI":
		if e.w.enis[id] == nil {
			return errf(404, "InstanceNotFound", "The ENI %q does not exist.", id)
		}
	case "HAVIP":
		h := e.w.havip(id)
		if h == nil {
			return notFound("havip", id)
		}
		if h.publicIP != "" {
			return errf(400, "HaVipPublicIpAlreadyBinded", "The havip %s already has public IP %s.", h.id, h.publicIP)
		}
		h.publicIP = p.address
	default:
		return invalidParam("instanceType %q must be one of BCC, BBC, ENI, HAVIP.", typ)
	}
	p.instanceType, p.instanceID = typ, id
	c.change(p.address, "", id, "eip %s bind %s %s", p.address, typ, id)
	return nil
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
	if err := e.bindEIPLocked(c, p, req.InstanceType, req.InstanceID); err != nil {
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
	if p.instanceID == "" {
		return answer{err: errf(400, "EipNotBinded", "The eip %s is not bound.", addr)}
	}
	if p.instanceType == "HAVIP" {
		if h := e.w.havip(p.instanceID); h != nil {
			h.publicIP = ""
		}
	}
	before := p.instanceID
	p.instanceType, p.instanceID = "", ""
	c.change(p.address, before, "", "eip %s unbind %s", p.address, before)
	return okEmpty()
}
