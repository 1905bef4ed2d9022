package bce

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baidubce/bce-sdk-go/services/eip"
	"github.com/baidubce/bce-sdk-go/services/havip"
	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenFile(t, filepath.Join("testdata", name+".golden"), got)
}

// goldenFile compares got with the file at p (rewritten with -update).
func goldenFile(t *testing.T, p, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs:\n--- got\n%s--- want\n%s", p, got, want)
	}
}

func TestPreflight(t *testing.T) {
	f := newFakeBCE(t)
	f.subnets["sbn-1"] = "10.0.0.0/24"
	f.havips["havip-ok"] = &havip.HaVip{HaVipId: "havip-ok", SubnetId: "sbn-1", PrivateIpAddress: "10.0.0.100",
		BindedInstances: []havip.HaVipBindedInstance{{InstanceId: "i-self", InstanceType: "SERVER", Master: true}}}
	f.havips["havip-wrongip"] = &havip.HaVip{HaVipId: "havip-wrongip", SubnetId: "sbn-1", PrivateIpAddress: "10.0.0.101"}
	f.rules = append(haPair(gwOther, gwSelf), vpc.RouteRule{RouteRuleId: "rr-s", RouteTableId: "rt-2", SourceAddress: "0.0.0.0/0",
		DestinationAddress: "10.8.0.0/16", NexthopType: "custom", NexthopId: "i-other"})
	f.eips["1.2.3.4"] = &eip.EipModel{Eip: "1.2.3.4", Status: "binded", InstanceType: "BCC", InstanceId: "i-other"}
	f.eips["1.2.3.5"] = &eip.EipModel{Eip: "1.2.3.5", Status: "available"}
	f.eips["1.2.3.6"] = &eip.EipModel{Eip: "1.2.3.6", Status: "binded", InstanceType: "HAVIP", InstanceId: "havip-x"}
	c, _ := f.client(t, nil)
	vip := netip.MustParseAddr("10.0.0.100")
	rs := []cloud.Resource{
		{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-ok", VIP: vip}},
		{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-wrongip", VIP: vip}},
		{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-missing"}},
		haRes(gwSelf, cloud.RouteAuto),
		routeRes("rt-2", "10.8.0.0/16", cloud.RouteSwitch),
		routeRes("rt-2", "10.9.0.0/16", cloud.RouteAuto),
		{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "1.2.3.4"}},
		{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "1.2.3.6"}},
		{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-ok", PublicIP: "1.2.3.5"}},
		{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: "havip-ok", PublicIP: "1.2.3.6"}},
	}
	rep := c.Preflight(context.Background(), rs)
	if !rep.Failed() {
		t.Fatal("Failed() = false")
	}
	if n := len(f.mutations()); n != 0 {
		t.Fatalf("preflight sent %d mutating requests", n)
	}
	golden(t, "preflight", rep.String())

	ok := c.Preflight(context.Background(), rs[:1])
	if ok.Failed() {
		t.Fatalf("Failed() = true:\n%s", ok)
	}
	golden(t, "preflight_ok", ok.String())
}

func TestPreflightBadCredentials(t *testing.T) {
	f := newFakeBCE(t)
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	c, _ := f.client(t, nil)
	f.mu.Lock()
	f.keys = map[string]string{} // the key is unknown now
	f.mu.Unlock()
	rep := c.Preflight(context.Background(), []cloud.Resource{havipRes("havip-1", "")})
	golden(t, "preflight_badcreds", rep.String())
}

// config check -cloud's preflight against the emulator: the HAVIP's VIP is checked against its
// subnet (GET /v1/subnet/{id}), a route of another next hop type and an EIP on a node that
// holds another are reported.
func TestPreflightEmulator(t *testing.T) {
	emu, _, url := newEmulator(t, nil)
	c := clientFor(t, url, "i-b") // i-b holds 198.19.0.10
	hv := havipPublicRes("havip-1", "198.19.0.30")
	hv.HAVIP.VIP = netip.MustParseAddr("198.18.0.100")
	typed := routeRes("rt-1", "10.9.0.0/16", cloud.RouteUpdate)
	typed.Route.NextHopType = "enic"
	rep := c.Preflight(context.Background(), []cloud.Resource{hv, haRes("dcgw-b", cloud.RouteSwitch), typed,
		eipRes("198.19.0.10"), eipRes("198.19.0.20")})
	golden(t, "preflight_emulator", rep.String())
	if n := len(emuOps(emu, "subnet.detail")); n != 1 {
		t.Fatalf("%d subnet reads, want 1", n)
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" || r.Status != 200 {
			t.Errorf("preflight request %s %s?%s: status %d (a preflight only reads, and every read is served)", r.Method, r.Path, r.Query, r.Status)
		}
	}
}

// config check -cloud explains a route whose shape cannot carry the configured next hop: an
// instance next hop on a primary/standby pair, which takes dedicated-line gateways only.
func TestPreflightInstanceNextHopOnHAPair(t *testing.T) {
	_, c, _ := newEmulator(t, nil)
	rep := c.Preflight(context.Background(), []cloud.Resource{routeRes("rt-1", "0.0.0.0/0", cloud.RouteAuto)})
	got := rep.String()
	for _, want := range []string{"FAIL  route/rt-1/0.0.0.0/0", "take only dedicated-line gateways (dcGateway)", "single-line rule (mode update)", "next hop is the HAVIP"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

// TestFailoverCost: what config check -cloud says a failover to this node sends, per shape, and
// the shapes that need no call.
func TestFailoverCost(t *testing.T) {
	hv := func(mode cloud.BindMode, public string) cloud.Resource {
		r := havipRes("havip-1", mode)
		r.HAVIP.PublicIP = public
		return r
	}
	rt := routeRes("rt-1", "10.0.0.0/8", cloud.RouteAuto)
	rule := vpc.RouteRule{RouteRuleId: "rr-1"}
	tests := []struct {
		name      string
		got       FailoverCost
		wantCalls int
		wantHint  bool
	}{
		{name: "havip attach, bound", got: havipCost(hv(cloud.BindAttach, ""), true), wantCalls: 0},
		{name: "havip attach, not bound yet", got: havipCost(hv(cloud.BindAttach, ""), false), wantCalls: 1},
		{name: "havip exclusive", got: havipCost(hv(cloud.BindExclusive, ""), true), wantCalls: 2, wantHint: true},
		{name: "havip public IP", got: havipCost(hv(cloud.BindAttach, "198.19.0.1"), true), wantCalls: 0},
		{name: "route next hop the HAVIP", got: routeCost(rt, routeState{shape: cloud.ShapeHAVIP, active: rule}), wantCalls: 0},
		{name: "single-line route", got: routeCost(rt, routeState{shape: cloud.ShapeSingle, active: rule}), wantCalls: 1, wantHint: true},
		{name: "HA pair", got: routeCost(rt, routeState{shape: cloud.ShapeHA, active: rule}), wantCalls: 1, wantHint: true},
		{name: "EIP on the other node", got: eipCost(eipRes("198.19.0.10"), &eip.EipModel{InstanceId: "i-b"}), wantCalls: 2, wantHint: true},
		{name: "EIP free", got: eipCost(eipRes("198.19.0.10"), &eip.EipModel{}), wantCalls: 1, wantHint: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Calls != tt.wantCalls || (tt.got.Hint != "") != tt.wantHint || tt.got.Detail == "" {
				t.Errorf("cost %+v, want %d calls, a hint %v", tt.got, tt.wantCalls, tt.wantHint)
			}
		})
	}
	rep := Report{Failover: []FailoverCost{havipCost(hv(cloud.BindAttach, ""), true), routeCost(rt, routeState{shape: cloud.ShapeSingle, active: rule}),
		eipCost(eipRes("198.19.0.10"), &eip.EipModel{InstanceId: "i-b"})}}
	if n := rep.FailoverCalls(); n != 3 {
		t.Errorf("FailoverCalls = %d, want 3", n)
	}
	golden(t, "failover_cost", rep.String())
	// More calls than the limiter's burst: the report says the last wait, and how long.
	rep.RateLimit, rep.RateBurst = 4, 2
	if got, want := rep.String(), "1 more than cloud.rate_burst (2): the last wait for the limiter, up to 0.2 s at cloud.rate_limit 4\n"; !strings.HasSuffix(got, want) {
		t.Errorf("report ends %q, want %q", got[max(0, len(got)-len(want)):], want)
	}
}
