package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// load builds the world from the seed, validating it as the API would.
func (e *Emulator) load(s *Seed) error {
	if s.Region == "" {
		return fmt.Errorf("%s: region is required", s.nameOr())
	}
	if len(s.Credentials) == 0 {
		return fmt.Errorf("%s: at least one [[credential]] is required", s.nameOr())
	}
	w := &world{
		region: s.Region, vpcs: map[string]*vpc{}, subnets: map[string]*subnet{},
		instances: map[string]*instance{}, enis: map[string]*instance{}, tables: map[string]*routeTable{},
		dcgws: map[string]*dcGateway{},
	}
	switch s.HASwitch {
	case "", HASwitchPathType:
		e.haSwitch = HASwitchPathType
	case HASwitchNextHops:
		e.haSwitch = HASwitchNextHops
	default:
		return fmt.Errorf("%s: ha_switch %q is neither %q nor %q", s.nameOr(), s.HASwitch, HASwitchPathType, HASwitchNextHops)
	}
	if s.EIPTransition != "" {
		d, err := time.ParseDuration(s.EIPTransition)
		if err != nil || d < 0 || d > maxLateDelay {
			return fmt.Errorf("%s: eip_transition %q is not a duration in [0, %s]", s.nameOr(), s.EIPTransition, maxLateDelay)
		}
		e.eipTransition = d
	}
	if err := e.loadLimits(s); err != nil {
		return err
	}
	e.w = w
	ids := map[string]string{}
	unique := func(where, id, prefix string) error {
		if id == "" {
			return fmt.Errorf("%s: id is required", where)
		}
		if !strings.HasPrefix(id, prefix) {
			return fmt.Errorf("%s: id %q must start with %q", where, id, prefix)
		}
		if prev, ok := ids[id]; ok {
			return fmt.Errorf("%s: id %q already used by %s", where, id, prev)
		}
		ids[id] = where
		return nil
	}
	for i, c := range s.Credentials {
		where := s.where("credential", i)
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return fmt.Errorf("%s: access_key_id and secret_access_key are required", where)
		}
		if _, ok := e.creds[c.AccessKeyID]; ok {
			return fmt.Errorf("%s: access key %q listed twice", where, c.AccessKeyID)
		}
		e.creds[c.AccessKeyID] = &credential{accessKeyID: c.AccessKeyID, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken}
	}
	for i, v := range s.VPCs {
		where := s.where("vpc", i)
		if err := unique(where, v.ID, "vpc-"); err != nil {
			return err
		}
		p, err := parsePrefix(v.CIDR)
		if err != nil {
			return fmt.Errorf("%s: cidr: %w", where, err)
		}
		w.vpcs[v.ID] = &vpc{id: v.ID, cidr: p}
	}
	for i, sn := range s.Subnets {
		where := s.where("subnet", i)
		if err := unique(where, sn.ID, "sbn-"); err != nil {
			return err
		}
		v := w.vpcs[sn.VPCID]
		if v == nil {
			return fmt.Errorf("%s: vpc_id %q does not exist", where, sn.VPCID)
		}
		p, err := parsePrefix(sn.CIDR)
		if err != nil {
			return fmt.Errorf("%s: cidr: %w", where, err)
		}
		if p.Bits() < v.cidr.Bits() || !v.cidr.Contains(p.Addr()) {
			return fmt.Errorf("%s: cidr %s is not inside vpc %s (%s)", where, p, v.id, v.cidr)
		}
		for _, o := range w.subnets {
			if o.vpcID == v.id && o.cidr.Overlaps(p) {
				return fmt.Errorf("%s: cidr %s overlaps subnet %s (%s)", where, p, o.id, o.cidr)
			}
		}
		w.subnets[sn.ID] = &subnet{id: sn.ID, vpcID: v.id, cidr: p}
	}
	for i, in := range s.Instances {
		where := s.where("instance", i)
		if err := unique(where, in.ID, "i-"); err != nil {
			return err
		}
		if err := unique(where, in.ENIID, "eni-"); err != nil {
			return fmt.Errorf("eni_id: %w", err)
		}
		sn := w.subnets[in.SubnetID]
		if sn == nil {
			return fmt.Errorf("%s: subnet_id %q does not exist", where, in.SubnetID)
		}
		a, err := parseAddr4(in.PrivateIP)
		if err != nil {
			return fmt.Errorf("%s: private_ip: %w", where, err)
		}
		if !sn.cidr.Contains(a) {
			return fmt.Errorf("%s: private_ip %s is not inside subnet %s (%s)", where, a, sn.id, sn.cidr)
		}
		if w.ipInUse(a) {
			return fmt.Errorf("%s: private_ip %s is already used", where, a)
		}
		x := &instance{id: in.ID, eniID: in.ENIID, subnetID: sn.id, vpcID: sn.vpcID, ip: a, role: in.Role}
		w.instances[x.id] = x
		w.enis[x.eniID] = x
	}
	for i, t := range s.RouteTables {
		where := s.where("route_table", i)
		if err := unique(where, t.ID, "rt-"); err != nil {
			return err
		}
		v := w.vpcs[t.VPCID]
		if v == nil {
			return fmt.Errorf("%s: vpc_id %q does not exist", where, t.VPCID)
		}
		w.tables[t.ID] = &routeTable{id: t.ID, vpcID: v.id}
		v.tables = append(v.tables, t.ID)
	}
	for i, g := range s.DCGateways {
		where := s.where("dc_gateway", i)
		if err := unique(where, g.ID, "dcgw-"); err != nil {
			return err
		}
		if w.vpcs[g.VPCID] == nil {
			return fmt.Errorf("%s: vpc_id %q does not exist", where, g.VPCID)
		}
		w.dcgws[g.ID] = &dcGateway{id: g.ID, vpcID: g.VPCID}
	}
	for _, v := range s.VPCs {
		// Every VPC has a route table in the real cloud; make one when the seed has none.
		if x := w.vpcs[v.ID]; len(x.tables) == 0 {
			id := "rt-" + strings.TrimPrefix(v.ID, "vpc-")
			w.tables[id] = &routeTable{id: id, vpcID: v.ID}
			x.tables = append(x.tables, id)
		}
	}
	boot := &call{op: "seed", r: &http.Request{}}
	for i, h := range s.HaVips {
		where := s.where("havip", i)
		if err := unique(where, h.ID, "havip-"); err != nil {
			return err
		}
		name := h.Name
		if name == "" {
			name = h.ID
		}
		x, aerr := e.createHaVipLocked(boot, h.ID, h.SubnetID, name, h.Description, h.PrivateIP)
		if aerr != nil {
			return fmt.Errorf("%s: %s", where, aerr.Message)
		}
		if len(h.Instances) > 0 {
			insts, aerr := e.resolveBindings(x, haVipInstanceReq{InstanceIDs: h.Instances, InstanceType: "SERVER"})
			if aerr == nil {
				aerr = e.attachLocked(boot, x, "SERVER", h.Instances, insts)
			}
			if aerr != nil {
				return fmt.Errorf("%s: instances: %s", where, aerr.Message)
			}
		}
	}
	for i, r := range s.RouteRules {
		where := s.where("route_rule", i)
		if err := unique(where, r.ID, "rr-"); err != nil {
			return err
		}
		req := createRuleReq{RouteTableID: r.RouteTableID, SourceAddress: r.Source, DestinationAddress: r.Destination,
			NexthopType: r.NextHopType, NexthopID: r.NextHopID, Description: r.Description}
		if r.StandbyID != "" || r.StandbyNextHopID != "" {
			if err := unique(where, r.StandbyID, "rr-"); err != nil {
				return fmt.Errorf("standby_id: %w", err)
			}
			req.NexthopID = ""
			req.NextHopList = []nextHopJSON{
				{NexthopID: r.NextHopID, NexthopType: r.NextHopType, PathType: pathHAActive},
				{NexthopID: r.StandbyNextHopID, NexthopType: r.NextHopType, PathType: pathHAStandby},
			}
		}
		if _, aerr := e.createRuleLocked(boot, req, r.ID, r.StandbyID); aerr != nil {
			return fmt.Errorf("%s: %s", where, aerr.Message)
		}
	}
	seen := map[string]bool{}
	for i, p := range s.EIPs {
		where := s.where("eip", i)
		a, err := parseAddr4(p.Address)
		if err != nil {
			return fmt.Errorf("%s: address: %w", where, err)
		}
		if seen[a.String()] {
			return fmt.Errorf("%s: address %s listed twice", where, a)
		}
		seen[a.String()] = true
		x := &eip{address: a.String(), id: e.newIDLocked("ip"), name: p.Name, created: time.Unix(0, 0)}
		if x.name == "" {
			x.name = "eip-" + a.String()
		}
		w.eips = append(w.eips, x)
		if p.InstanceID != "" {
			if aerr := e.bindEIPLocked(boot, x, "BCC", p.InstanceID, 0); aerr != nil {
				return fmt.Errorf("%s: instance_id: %s", where, aerr.Message)
			}
		}
	}
	return nil
}

func (s *Seed) nameOr() string {
	if s.name == "" {
		return "seed"
	}
	return s.name
}
