package config

import "github.com/havip-agent/havip-agent/cloud"

// CloudResources lists every cloud resource of the configuration, for
// preflight checks.
func (c *Config) CloudResources() []cloud.Resource {
	var out []cloud.Resource
	for _, ic := range c.Instances {
		out = append(out, ic.CloudResources()...)
	}
	return out
}

// CloudResources lists the cloud resources that must point at the node
// while the instance is MASTER.
func (ic Instance) CloudResources() []cloud.Resource {
	var out []cloud.Resource
	if ic.HAVIP != "" {
		spec := &cloud.HAVIPSpec{ID: ic.HAVIP, Bind: cloud.BindMode(ic.HAVIPBind), PublicIP: ic.HAVIPPublicIP}
		for _, v := range ic.VIPs {
			if v.Addr().Is4() {
				spec.VIP = v.Addr()
				break
			}
		}
		out = append(out, cloud.Resource{Kind: cloud.KindHAVIP, HAVIP: spec})
	}
	for _, r := range ic.Routes {
		out = append(out, cloud.Resource{Kind: cloud.KindRoute, Route: &cloud.RouteSpec{
			Table: r.Table, Destination: r.Destination, NextHop: r.NextHop, NextHopType: r.NextHopType, Mode: cloud.RouteMode(r.Mode),
		}})
	}
	for _, e := range ic.EIPs {
		out = append(out, cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: e.Address}})
	}
	return out
}
