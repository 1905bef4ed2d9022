package config

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/havip-agent/havip-agent/cloud"
)

// The cloud resources of an instance: the HAVIP with its first IPv4 VIP, each route and each EIP.
func TestCloudResources(t *testing.T) {
	ic := Instance{
		VIPs:  []netip.Prefix{netip.MustParsePrefix("fd00::1/64"), netip.MustParsePrefix("198.18.0.100/24")},
		HAVIP: "havip-1", HAVIPBind: "exclusive", HAVIPPublicIP: "198.19.0.10",
		Routes: []Route{{Table: "rt-1", Destination: "0.0.0.0/0", NextHop: "dcgw-a", NextHopType: "dcGateway", Mode: "switch"}},
		EIPs:   []EIP{{Address: "198.19.0.20"}},
	}
	want := []cloud.Resource{
		{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-1", Bind: cloud.BindExclusive, PublicIP: "198.19.0.10", VIP: netip.MustParseAddr("198.18.0.100")}},
		{Kind: cloud.KindRoute, Route: &cloud.RouteSpec{Table: "rt-1", Destination: "0.0.0.0/0", NextHop: "dcgw-a", NextHopType: "dcGateway", Mode: cloud.RouteSwitch}},
		{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "198.19.0.20"}},
	}
	if got := ic.CloudResources(); !reflect.DeepEqual(got, want) {
		t.Errorf("CloudResources() = %+v, want %+v", got, want)
	}
	c := &Config{Instances: []Instance{{Name: "local"}, ic}}
	if got := c.CloudResources(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config.CloudResources() = %+v, want %+v", got, want)
	}
}
