package emulator

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// maxHaVipInstances is the real API's limit of instances bound to one HAVIP.
const maxHaVipInstances = 5

// page cuts one page out of items using marker (the id of the first item) and maxKeys.
func page[T any](items []T, id func(T) string, q url.Values) (out []T, marker, next string, truncated bool, maxKeys int, err *apiError) {
	maxKeys = 1000
	if s := q.Get("maxKeys"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > 1000 {
			return nil, "", "", false, 0, invalidParam("maxKeys %q must be an integer in [1, 1000].", s)
		}
		maxKeys = n
	}
	marker = q.Get("marker")
	start := 0
	if marker != "" {
		start = -1
		for i, it := range items {
			if id(it) == marker {
				start = i
				break
			}
		}
		if start < 0 {
			return nil, "", "", false, 0, invalidParam("marker %q does not exist.", marker)
		}
	}
	end := min(start+maxKeys, len(items))
	out = items[start:end]
	if end < len(items) {
		truncated, next = true, id(items[end])
	}
	return out, marker, next, truncated, maxKeys, nil
}

type haVipBindedJSON struct {
	InstanceID   string `json:"instanceId"`
	InstanceType string `json:"instanceType"`
	Master       bool   `json:"master"`
}

type haVipJSON struct {
	HaVipID          string            `json:"haVipId"`
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	VpcID            string            `json:"vpcId"`
	SubnetID         string            `json:"subnetId"`
	Status           string            `json:"status"`
	PrivateIPAddress string            `json:"privateIpAddress"`
	PublicIPAddress  string            `json:"publicIpAddress,omitempty"`
	BindedInstances  []haVipBindedJSON `json:"bindedInstances,omitempty"`
	CreatedTime      string            `json:"createdTime"`
}

func haVipView(h *haVip, withBindings bool) haVipJSON {
	v := haVipJSON{
		HaVipID: h.id, Name: h.name, Description: h.description, VpcID: h.vpcID, SubnetID: h.subnetID,
		Status: h.status(), PrivateIPAddress: h.ip.String(), PublicIPAddress: h.publicIP,
		CreatedTime: h.created.UTC().Format(time.RFC3339),
	}
	if withBindings {
		m := h.masterBinding()
		for i := range h.bound {
			b := &h.bound[i]
			v.BindedInstances = append(v.BindedInstances, haVipBindedJSON{
				InstanceID: b.instanceID, InstanceType: b.instanceType, Master: b == m,
			})
		}
	}
	return v
}

func validName(s string) bool {
	if s == "" || len(s) > 65 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// createHaVipLocked validates and creates a HAVIP (used by the API and the seed).
func (e *Emulator) createHaVipLocked(c *call, id, subnetID, name, desc, ip string) (*haVip, *apiError) {
	w := e.w
	if subnetID == "" {
		return nil, invalidParam("subnetId is required.")
	}
	s, ok := w.subnets[subnetID]
	if !ok {
		return nil, notFound("subnet", subnetID)
	}
	if !validName(name) {
		return nil, invalidParam("name %q must be 1 to 65 printable characters.", name)
	}
	if len(desc) > 200 {
		return nil, invalidParam("description is longer than 200 characters.")
	}
	var addr netip.Addr
	if ip == "" {
		a, ok := w.allocateIP(s)
		if !ok {
			return nil, errf(400, "SubnetIpNotEnough", "The subnet %s has no free address.", s.id)
		}
		addr = a
	} else {
		a, err := parseAddr4(ip)
		if err != nil {
			return nil, invalidParam("privateIpAddress: %v.", err)
		}
		first := s.cidr.Masked().Addr()
		if !s.cidr.Contains(a) || a == first || a == first.Next() || !s.cidr.Contains(a.Next()) {
			return nil, errf(400, "HaVipPrivateIpNotInSubnet", "The address %s is not a usable address of subnet %s (%s).", a, s.id, s.cidr)
		}
		if w.ipInUse(a) {
			return nil, errf(400, "HaVipPrivateIpInUse", "The address %s is already in use.", a)
		}
		addr = a
	}
	if id == "" {
		id = e.newIDLocked("havip")
	}
	h := &haVip{id: id, name: name, description: desc, subnetID: s.id, vpcID: s.vpcID, ip: addr, created: e.nowLocked()}
	w.havips = append(w.havips, h)
	c.change(h.id, "", "available", "havip %s created at %s in %s", h.id, addr, s.id)
	return h, nil
}

func (e *Emulator) haVipCreate(c *call) answer {
	var req struct {
		SubnetID         string `json:"subnetId"`
		Name             string `json:"name"`
		PrivateIPAddress string `json:"privateIpAddress"`
		Description      string `json:"description"`
	}
	if err := decodeBody(c.body, &req); err != nil {
		return answer{err: err}
	}
	h, err := e.createHaVipLocked(c, "", req.SubnetID, req.Name, req.Description, req.PrivateIPAddress)
	if err != nil {
		return answer{err: err}
	}
	return okJSON(map[string]string{"haVipId": h.id})
}

func (e *Emulator) haVipList(c *call) answer {
	q := c.r.URL.Query()
	var items []*haVip
	vpcID := q.Get("vpcId")
	for _, h := range e.w.havips {
		if vpcID == "" || h.vpcID == vpcID {
			items = append(items, h)
		}
	}
	pg, marker, next, trunc, maxKeys, err := page(items, func(h *haVip) string { return h.id }, q)
	if err != nil {
		return answer{err: err}
	}
	out := make([]haVipJSON, 0, len(pg))
	for _, h := range pg {
		out = append(out, haVipView(h, false))
	}
	return okJSON(map[string]any{"haVips": out, "marker": marker, "isTruncated": trunc, "nextMarker": next, "maxKeys": maxKeys})
}

func (e *Emulator) haVipDetail(c *call) answer {
	id := pathID(c)
	h := e.w.havip(id)
	if h == nil {
		return answer{err: notFound("havip", id)}
	}
	return okJSON(haVipView(h, true))
}

func (e *Emulator) haVipUpdate(c *call) answer {
	id := pathID(c)
	var req struct {
		Name        string  `json:"name"`
		Description *string `json:"description"`
	}
	if err := decodeBody(c.body, &req); err != nil {
		return answer{err: err}
	}
	h := e.w.havip(id)
	if h == nil {
		return answer{err: notFound("havip", id)}
	}
	if !validName(req.Name) {
		return answer{err: invalidParam("name %q must be 1 to 65 printable characters.", req.Name)}
	}
	if req.Description != nil && len(*req.Description) > 200 {
		return answer{err: invalidParam("description is longer than 200 characters.")}
	}
	before := h.name
	h.name = req.Name
	if req.Description != nil {
		h.description = *req.Description
	}
	c.change(h.id, before, h.name, "havip %s renamed %q -> %q", h.id, before, h.name)
	return okEmpty()
}

func (e *Emulator) haVipDelete(c *call) answer {
	id := pathID(c)
	h := e.w.havip(id)
	if h == nil {
		return answer{err: notFound("havip", id)}
	}
	if len(h.bound) > 0 {
		return answer{err: errf(400, "HaVipHasBindedInstance", "The havip %s still has bound instances; detach them first.", id)}
	}
	if h.publicIP != "" {
		return answer{err: errf(400, "HaVipHasBindedPublicIp", "The havip %s still has public IP %s; unbind it first.", id, h.publicIP)}
	}
	e.w.havips = slices.DeleteFunc(e.w.havips, func(x *haVip) bool { return x == h })
	c.change(h.id, h.status(), "deleted", "havip %s deleted", h.id)
	return okEmpty()
}

type haVipInstanceReq struct {
	InstanceIDs  []string `json:"instanceIds"`
	InstanceType string   `json:"instanceType"`
}

// resolveBindings checks an attach/detach request: 1..5 distinct ids of the given type.
func (e *Emulator) resolveBindings(h *haVip, req haVipInstanceReq) ([]*instance, *apiError) {
	if req.InstanceType != "SERVER" && req.InstanceType != "ENI" {
		return nil, invalidParam("instanceType %q must be SERVER or ENI.", req.InstanceType)
	}
	if len(req.InstanceIDs) == 0 || len(req.InstanceIDs) > maxHaVipInstances {
		return nil, invalidParam("instanceIds must hold 1 to %d ids.", maxHaVipInstances)
	}
	seen := map[string]bool{}
	var out []*instance
	for _, id := range req.InstanceIDs {
		if seen[id] {
			return nil, invalidParam("instanceIds lists %q twice.", id)
		}
		seen[id] = true
		var in *instance
		if req.InstanceType == "SERVER" {
			in = e.w.instances[id]
		} else {
			in = e.w.enis[id]
		}
		if in == nil {
			return nil, errf(404, "InstanceNotFound", "The %s instance %q does not exist.", req.InstanceType, id)
		}
		out = append(out, in)
	}
	return out, nil
}

// masterChangeLocked logs a change of h's master (derived from bindings and ARP).
func masterChange(h *haVip) (string, string, bool) {
	newMaster := ""
	if b := h.masterBinding(); b != nil {
		newMaster = b.inst.id
	}
	old := h.master
	h.master = newMaster
	return old, newMaster, old != newMaster
}

func (e *Emulator) attachLocked(c *call, h *haVip, typ string, ids []string, insts []*instance) *apiError {
	if len(h.bound)+len(insts) > maxHaVipInstances {
		return errf(400, "HaVipInstanceLimitExceeded", "A havip can have at most %d bound instances (has %d).", maxHaVipInstances, len(h.bound))
	}
	for i, in := range insts {
		if in.vpcID != h.vpcID {
			return errf(400, "HaVipInstanceNotInSameVpc", "The instance %q is in %s, not in the havip's VPC %s.", ids[i], in.vpcID, h.vpcID)
		}
		for _, b := range h.bound {
			if b.inst == in {
				return errf(400, "HaVipInstanceAlreadyBinded", "The instance %q is already bound to havip %s.", ids[i], h.id)
			}
		}
	}
	before := h.status()
	for i, in := range insts {
		e.w.seq++
		h.bound = append(h.bound, binding{instanceID: ids[i], instanceType: typ, inst: in, seq: e.w.seq})
		c.change(h.id, before, h.status(), "havip %s attach %s %s", h.id, typ, ids[i])
	}
	if old, nw, ok := masterChange(h); ok {
		c.change(h.id, old, nw, "havip %s master %s -> %s", h.id, orNone(old), orNone(nw))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// bindingRequest reads an attach or detach request: the HAVIP of the path
// and the instances of the body.
func (e *Emulator) bindingRequest(c *call) (*haVip, haVipInstanceReq, []*instance, *apiError) {
	id := pathID(c)
	var req haVipInstanceReq
	if err := decodeBody(c.body, &req); err != nil {
		return nil, req, nil, err
	}
	h := e.w.havip(id)
	if h == nil {
		return nil, req, nil, notFound("havip", id)
	}
	insts, err := e.resolveBindings(h, req)
	return h, req, insts, err
}

func (e *Emulator) haVipAttach(c *call) answer {
	h, req, insts, err := e.bindingRequest(c)
	if err != nil {
		return answer{err: err}
	}
	if err := e.attachLocked(c, h, req.InstanceType, req.InstanceIDs, insts); err != nil {
		return answer{err: err}
	}
	return okEmpty()
}

func (e *Emulator) haVipDetach(c *call) answer {
	h, req, insts, err := e.bindingRequest(c)
	if err != nil {
		return answer{err: err}
	}
	for i, in := range insts {
		if !slices.ContainsFunc(h.bound, func(b binding) bool { return b.inst == in }) {
			return answer{err: errf(400, "HaVipInstanceNotBinded", "The instance %q is not bound to havip %s.", req.InstanceIDs[i], h.id)}
		}
	}
	before := h.status()
	for i, in := range insts {
		h.bound = slices.DeleteFunc(h.bound, func(b binding) bool { return b.inst == in })
		c.change(h.id, before, h.status(), "havip %s detach %s %s", h.id, req.InstanceType, req.InstanceIDs[i])
	}
	if old, nw, ok := masterChange(h); ok {
		c.change(h.id, old, nw, "havip %s master %s -> %s", h.id, orNone(old), orNone(nw))
	}
	return okEmpty()
}

func (e *Emulator) haVipBindPublicIP(c *call) answer {
	id := pathID(c)
	var req struct {
		PublicIPAddress string `json:"publicIpAddress"`
	}
	if err := decodeBody(c.body, &req); err != nil {
		return answer{err: err}
	}
	h := e.w.havip(id)
	if h == nil {
		return answer{err: notFound("havip", id)}
	}
	if req.PublicIPAddress == "" {
		return answer{err: invalidParam("publicIpAddress is required.")}
	}
	ep := e.w.eip(req.PublicIPAddress)
	if ep == nil {
		return answer{err: notFound("eip", req.PublicIPAddress)}
	}
	if h.publicIP != "" {
		return answer{err: errf(400, "HaVipPublicIpAlreadyBinded", "The havip %s already has public IP %s.", h.id, h.publicIP)}
	}
	if ep.instanceID != "" {
		return answer{err: errf(400, "EipAlreadyBinded", "The eip %s is bound to %s %s.", ep.address, ep.instanceType, ep.instanceID)}
	}
	h.publicIP = ep.address
	ep.instanceType, ep.instanceID = eipHolderHAVIP, h.id
	c.change(h.id, "", ep.address, "havip %s bind public ip %s", h.id, ep.address)
	return okEmpty()
}

func (e *Emulator) haVipUnbindPublicIP(c *call) answer {
	id := pathID(c)
	h := e.w.havip(id)
	if h == nil {
		return answer{err: notFound("havip", id)}
	}
	if h.publicIP == "" {
		return answer{err: errf(400, "HaVipPublicIpNotBinded", "The havip %s has no public IP.", h.id)}
	}
	if ep := e.w.eip(h.publicIP); ep != nil {
		ep.instanceType, ep.instanceID = "", ""
	}
	before := h.publicIP
	h.publicIP = ""
	c.change(h.id, before, "", "havip %s unbind public ip %s", h.id, before)
	return okEmpty()
}
