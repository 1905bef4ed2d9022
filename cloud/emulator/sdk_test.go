package emulator

import (
	"testing"

	bcehavip "github.com/baidubce/bce-sdk-go/services/havip"
	bcevpc "github.com/baidubce/bce-sdk-go/services/vpc"
)

// The SDK's own clients (bce-sdk-go v0.9.277) see the answers the documents describe for the
// cases of issue 13 (those of the EIP and HAVIP clients are in eip_test.go and api_test.go).

// vpc.GetSubnetDetail reads a subnet (doc/VPC.md, "Query a specified subnet").
func TestSDKSubnetDetail(t *testing.T) {
	_, srv := newTest(t, Options{})
	c := vpcClient(t, srv.URL)
	res, err := c.GetSubnetDetail("sbn-1")
	if err != nil {
		t.Fatal(err)
	}
	// 198.18.0.0/24: 253 usable addresses; the seed's six instances and one HAVIP use seven.
	if s := res.Subnet; s.SubnetId != "sbn-1" || s.Cidr != "198.18.0.0/24" || s.VPCId != "vpc-1" || s.AvailableIp != 246 || s.SubnetType != "BCC" {
		t.Fatalf("GetSubnetDetail = %+v", s)
	}
	_, err = c.GetSubnetDetail("sbn-nope")
	wantServiceError(t, err, 404, "NoSuchObject")
}

// vpc.UpdateRouteRule sends routeRuleId in its body and no nexthopType; the update applies the
// documented fields and the rule keeps its type.
func TestSDKUpdateRouteRuleKeepsType(t *testing.T) {
	emu, srv := newTest(t, Options{})
	c := vpcClient(t, srv.URL)
	r, err := c.CreateRouteRule(&bcevpc.CreateRouteRuleArgs{RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0",
		DestinationAddress: "192.0.2.0/24", NexthopId: "eni-c", NexthopType: bcevpc.NEXTHOP_TYPE_ENIC})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateRouteRule(&bcevpc.UpdateRouteRuleArgs{RouteRuleId: r.RouteRuleId, SourceAddress: "0.0.0.0/0",
		DestinationAddress: "192.0.2.0/24", NexthopId: "eni-d", Description: "moved"}); err != nil {
		t.Fatal(err)
	}
	if got := stateRule(t, emu, r.RouteRuleId); got.NexthopType != "enic" || got.NexthopID != "eni-d" {
		t.Fatalf("rule %+v, want enic eni-d", got)
	}
	// An instance id under the rule's type (enic) names no ENI.
	err = c.UpdateRouteRule(&bcevpc.UpdateRouteRuleArgs{RouteRuleId: r.RouteRuleId, NexthopId: "i-d"})
	wantServiceError(t, err, 400, "RouteNexthopNotFound")
}

// A multi-line route of dedicated-line gateways, created and read with the SDK; an instance
// pair is refused. After a switch (the real request: the SDK's
// SwitchRoute drops the switchRouteHA flag) the SDK reads the standby's next hop on the
// ha:active rule, under both switch behaviours.
func TestSDKMultiLineRoutes(t *testing.T) {
	for _, behaviour := range []string{HASwitchPathType, HASwitchNextHops} {
		t.Run(behaviour, func(t *testing.T) {
			emu, srv := newTest(t, Options{})
			emu.haSwitch = behaviour
			c := vpcClient(t, srv.URL)
			_, err := c.CreateRouteRule(&bcevpc.CreateRouteRuleArgs{RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0",
				DestinationAddress: "192.0.2.0/24", NextHopList: []bcevpc.NextHop{
					{NexthopId: "i-a", NexthopType: bcevpc.NEXTHOP_TYPE_CUSTOM, PathType: "ha:active"},
					{NexthopId: "i-b", NexthopType: bcevpc.NEXTHOP_TYPE_CUSTOM, PathType: "ha:standby"}}})
			wantServiceError(t, err, 400, "InvalidParameter")
			res, err := c.CreateRouteRule(&bcevpc.CreateRouteRuleArgs{RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0",
				DestinationAddress: "192.0.2.0/24", NextHopList: []bcevpc.NextHop{
					{NexthopId: "dcgw-1", NexthopType: bcevpc.NEXTHOP_TYPE_ETGATEWAY, PathType: "ha:active"},
					{NexthopId: "dcgw-2", NexthopType: bcevpc.NEXTHOP_TYPE_ETGATEWAY, PathType: "ha:standby"}}})
			if err != nil || len(res.RouteRuleIds) != 2 {
				t.Fatalf("CreateRouteRule = %+v, %v", res, err)
			}
			active := func() (id, hop string) {
				l, err := c.GetRouteRuleDetail(&bcevpc.GetRouteRuleArgs{RouteTableId: "rt-1"})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range l.RouteRules {
					if r.DestinationAddress == "192.0.2.0/24" && r.PathType == "ha:active" {
						return r.RouteRuleId, r.NexthopId
					}
				}
				t.Fatal("no ha:active rule")
				return "", ""
			}
			id, hop := active()
			if hop != "dcgw-1" {
				t.Fatalf("active next hop %s, want dcgw-1", hop)
			}
			if r := signedDo(t, srv.URL, "PUT", "/v1/route/rule/"+id, map[string]string{"switchRouteHA": ""}, nil); r.status != 200 {
				t.Fatalf("switch got %d %s", r.status, r.body)
			}
			if _, hop := active(); hop != "dcgw-2" {
				t.Fatalf("active next hop %s after the switch, want dcgw-2", hop)
			}
		})
	}
}

// The HAVIP client attaches and detaches with the documented instance types, SERVER and ENI,
// and reads them back in bindedInstances; any other type is refused.
func TestSDKHaVipInstanceTypes(t *testing.T) {
	_, srv := newTest(t, Options{})
	c := havipClient(t, srv.URL)
	if err := c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{"eni-b"}, InstanceType: "ENI"}); err != nil {
		t.Fatal(err)
	}
	d, err := c.GetHaVipDetail("havip-seed1")
	if err != nil || len(d.BindedInstances) != 2 || d.BindedInstances[0].InstanceType != "SERVER" || d.BindedInstances[1].InstanceType != "ENI" {
		t.Fatalf("detail %+v, %v", d, err)
	}
	err = c.HaVipDetachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{"i-a"}, InstanceType: "BCC"})
	wantServiceError(t, err, 400, "InvalidParameter")
	for _, b := range d.BindedInstances {
		if err := c.HaVipDetachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{b.InstanceId}, InstanceType: b.InstanceType}); err != nil {
			t.Fatalf("detach %s %s: %v", b.InstanceType, b.InstanceId, err)
		}
	}
}
