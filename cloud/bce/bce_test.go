package bce

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/services/eip"
	"github.com/baidubce/bce-sdk-go/services/havip"
	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
)

const (
	testSecret = "SKsecretSECRETsecret0123456789ab"
	testToken  = "STStokenTOKENtoken"
	tokenBase  = "gen-1/res"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogBuffer() (*logBuffer, *slog.Logger) {
	lb := &logBuffer{}
	return lb, slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// wantReq is the exact request a test expects.
type wantReq struct{ method, path, query, body string }

func checkMutations(t *testing.T, f *fakeBCE, want []wantReq) {
	t.Helper()
	got := f.mutations()
	if len(got) != len(want) {
		t.Fatalf("got %d mutating requests, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Method != w.method || g.Path != w.path || canonQuery(g.RawQuery) != canonQuery(w.query) || strings.TrimSpace(g.Body) != w.body {
			t.Errorf("request %d:\n got %s %s?%s body %q\nwant %s %s?%s body %q", i, g.Method, g.Path, g.RawQuery, g.Body, w.method, w.path, w.query, w.body)
		}
	}
}

// canonQuery sorts the parts of a raw query, keeping bare flags bare.
func canonQuery(q string) string {
	parts := strings.Split(q, "&")
	slicesSort(parts)
	return strings.Join(parts, "&")
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func havipRes(id string, mode cloud.BindMode) cloud.Resource {
	return cloud.Resource{Kind: cloud.KindHAVIP, HAVIP: &cloud.HAVIPSpec{ID: id, Bind: mode}}
}

func routeRes(table, dest string, mode cloud.RouteMode) cloud.Resource {
	return cloud.Resource{Kind: cloud.KindRoute, Route: &cloud.RouteSpec{Table: table, Destination: dest, Mode: mode}}
}

// gwSelf and gwOther are the dedicated-line gateways of this node and of its peer: the next hops
// of the fake's primary/standby pairs, the only type such pairs take.
const gwSelf, gwOther = "dcgw-self", "dcgw-other"

// haRes is the route of the HA pair at 0.0.0.0/0 in rt-1, claimed for gateway gw.
func haRes(gw string, mode cloud.RouteMode) cloud.Resource {
	r := routeRes("rt-1", "0.0.0.0/0", mode)
	r.Route.NextHop, r.Route.NextHopType = gw, string(vpc.NEXTHOP_TYPE_ETGATEWAY)
	return r
}

func TestHAVIPAttach(t *testing.T) {
	f := newFakeBCE(t)
	f.masterOnAttach = true
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1", PrivateIpAddress: "10.0.0.100",
		BindedInstances: []havip.HaVipBindedInstance{{InstanceId: "i-other", InstanceType: "SERVER", Master: true}}}
	c, _ := f.client(t, nil)
	ctx := context.Background()
	o, err := c.Observe(ctx, havipRes("havip-1", cloud.BindAttach))
	if err != nil || o.Owned || o.Current != "i-other" {
		t.Fatalf("Observe = %+v, %v; want not owned, current i-other", o, err)
	}
	o, err = c.Claim(ctx, havipRes("havip-1", cloud.BindAttach), tokenBase)
	if err != nil || !o.Owned || o.Current != "i-self" {
		t.Fatalf("Claim = %+v, %v; want owned", o, err)
	}
	checkMutations(t, f, []wantReq{{"PUT", "/v1/havip/havip-1", "attach&clientToken=" + cloud.Token(tokenBase, "havip.attach/i-self"),
		`{"instanceIds":["i-self"],"instanceType":"SERVER"}`}})
	// Claiming again changes nothing.
	if _, err := c.Claim(ctx, havipRes("havip-1", cloud.BindAttach), "gen-2/res"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mutations()); n != 1 {
		t.Fatalf("a claim of an owned HAVIP sent %d mutations in all, want 1", n)
	}
}

func TestHAVIPAttachWaitsForMaster(t *testing.T) {
	f := newFakeBCE(t)
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1",
		BindedInstances: []havip.HaVipBindedInstance{{InstanceId: "i-other", InstanceType: "SERVER", Master: true}}}
	c, _ := f.client(t, func(o *Options) { o.ConfirmAttempts = 2 })
	o, err := c.Claim(context.Background(), havipRes("havip-1", cloud.BindAttach), tokenBase)
	var pe *cloud.PendingError
	if !errors.As(err, &pe) || o.Owned || !cloud.IsRetryable(err) {
		t.Fatalf("Claim = %+v, %v; want a retryable PendingError", o, err)
	}
	if !strings.Contains(err.Error(), "gratuitous ARP") {
		t.Fatalf("error %q should explain the master move", err)
	}
}

func TestHAVIPExclusiveENI(t *testing.T) {
	f := newFakeBCE(t)
	f.masterOnAttach = true
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1", BindedInstances: []havip.HaVipBindedInstance{
		{InstanceId: "eni-b", InstanceType: "ENI", Master: true}, {InstanceId: "eni-a", InstanceType: "ENI"}}}
	c, _ := f.client(t, func(o *Options) { o.ENIID = "eni-self" })
	o, err := c.Claim(context.Background(), havipRes("havip-1", cloud.BindExclusive), tokenBase)
	if err != nil || !o.Owned || o.Current != "eni-self" {
		t.Fatalf("Claim = %+v, %v; want owned by eni-self", o, err)
	}
	checkMutations(t, f, []wantReq{
		{"PUT", "/v1/havip/havip-1", "attach&clientToken=" + cloud.Token(tokenBase, "havip.attach/eni-self"), `{"instanceIds":["eni-self"],"instanceType":"ENI"}`},
		{"PUT", "/v1/havip/havip-1", "detach&clientToken=" + cloud.Token(tokenBase, "havip.detach/ENI/eni-a,eni-b"), `{"instanceIds":["eni-a","eni-b"],"instanceType":"ENI"}`},
	})
}

// Detach says the documented instanceType (SERVER or ENI), whatever string the detail answer
// held for the binding.
func TestHAVIPDetachDocumentedTypes(t *testing.T) {
	f := newFakeBCE(t)
	f.masterOnAttach = true
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1", BindedInstances: []havip.HaVipBindedInstance{
		{InstanceId: "i-b", InstanceType: "BCC", Master: true}, {InstanceId: "i-c", InstanceType: "server"},
		{InstanceId: "eni-d", InstanceType: "eni"}, {InstanceId: "eni-e", InstanceType: ""}}}
	c, _ := f.client(t, nil)
	if o, err := c.Claim(context.Background(), havipRes("havip-1", cloud.BindExclusive), tokenBase); err != nil || !o.Owned {
		t.Fatalf("Claim = %+v, %v", o, err)
	}
	checkMutations(t, f, []wantReq{
		{"PUT", "/v1/havip/havip-1", "attach&clientToken=" + cloud.Token(tokenBase, "havip.attach/i-self"), `{"instanceIds":["i-self"],"instanceType":"SERVER"}`},
		{"PUT", "/v1/havip/havip-1", "detach&clientToken=" + cloud.Token(tokenBase, "havip.detach/ENI/eni-d,eni-e"), `{"instanceIds":["eni-d","eni-e"],"instanceType":"ENI"}`},
		{"PUT", "/v1/havip/havip-1", "detach&clientToken=" + cloud.Token(tokenBase, "havip.detach/SERVER/i-b,i-c"), `{"instanceIds":["i-b","i-c"],"instanceType":"SERVER"}`},
	})
}

func haPair(activeHop, standbyHop string) []vpc.RouteRule {
	return []vpc.RouteRule{
		{RouteRuleId: "rr-x", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "192.168.0.0/16", NexthopType: "custom", NexthopId: "i-z"},
		{RouteRuleId: "rr-a", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "0.0.0.0/0", NexthopType: "dcGateway", NexthopId: activeHop, PathType: "ha:active"},
		{RouteRuleId: "rr-b", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "0.0.0.0/0", NexthopType: "dcGateway", NexthopId: standbyHop, PathType: "ha:standby"},
	}
}

func TestRouteSwitch(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.pageLen = 1 // exercise paging
	c, _ := f.client(t, nil)
	o, err := c.Claim(context.Background(), haRes(gwSelf, cloud.RouteAuto), tokenBase)
	if err != nil || !o.Owned || o.Shape != cloud.ShapeHA || o.Current != gwSelf {
		t.Fatalf("Claim = %+v, %v; want owned HA pair", o, err)
	}
	checkMutations(t, f, []wantReq{{"PUT", "/v1/route/rule/rr-a", "switchRouteHA&clientToken=" + cloud.Token(tokenBase, "route.switch/rr-a"), ""}})
	var sawMarker bool
	for _, r := range f.requests() {
		if r.Method == "GET" {
			if r.Query.Get("routeTableId") != "rt-1" || r.Query.Get("maxKeys") != "1000" {
				t.Errorf("list query %q", r.RawQuery)
			}
			sawMarker = sawMarker || r.Query.Get("marker") != ""
		}
	}
	if !sawMarker {
		t.Error("the pages after the first were not requested with a marker")
	}
}

// requestLines is "METHOD path" of each request to the fake, for comparing sequences.
func requestLines(f *fakeBCE) []string {
	var l []string
	for _, r := range f.requests() {
		l = append(l, r.Method+" "+r.Path)
	}
	return l
}

const (
	listRules = "GET /v1/route/rule"
	switchRA  = "PUT /v1/route/rule/rr-a"
	switchRB  = "PUT /v1/route/rule/rr-b"
)

// A switch that the cloud applied but whose answer never came back is not sent again: the read
// before the retry finds the pair active on this node. (A second switchRouteHA would toggle the
// pair back if the cloud did not dedupe its clientToken.)
func TestRouteSwitchOnceWhenAnswerLost(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.addFault("switchRouteHA", fault{times: 1, apply: true, hang: true})
	c, _ := f.client(t, func(o *Options) { o.Timeout = 300 * time.Millisecond })
	o, err := c.Claim(context.Background(), haRes(gwSelf, cloud.RouteSwitch), tokenBase)
	if err != nil || !o.Owned || o.Current != gwSelf {
		t.Fatalf("Claim = %+v, %v; want owned", o, err)
	}
	if got, want := requestLines(f), []string{listRules, switchRA, listRules}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if n := f.applied["route.switch"]; n != 1 {
		t.Fatalf("the switch was applied %d times, want 1", n)
	}
}

// A switch answered 5xx without being applied is sent again, once, after a read that shows
// the pair still active on the other node.
func TestRouteSwitchRereadsAfter5xx(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.addFault("switchRouteHA", fault{times: 1, status: 503, code: "ServiceUnavailable"})
	c, _ := f.client(t, nil)
	o, err := c.Claim(context.Background(), haRes(gwSelf, ""), tokenBase)
	if err != nil || !o.Owned {
		t.Fatalf("Claim = %+v, %v; want owned", o, err)
	}
	if got, want := requestLines(f), []string{listRules, switchRA, listRules, switchRA, listRules}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if n := f.applied["route.switch"]; n != 1 {
		t.Fatalf("the switch was applied %d times, want 1", n)
	}
}

// A read-back after a successful switch that still shows the old next hop (a stale read) ends
// the claim as pending, without a second switch; a later read sees the switch.
func TestRouteSwitchStaleReadBack(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.staleAfterSwitch = 100
	c, _ := f.client(t, nil)
	o, err := c.Claim(context.Background(), haRes(gwSelf, ""), tokenBase)
	var pe *cloud.PendingError
	if !errors.As(err, &pe) || !cloud.IsRetryable(err) || o.Owned {
		t.Fatalf("Claim = %+v, %v; want a pending error", o, err)
	}
	if !cloud.IsUnconfirmed(err) {
		t.Fatalf("err = %v; want it marked as accepted but unconfirmed", err)
	}
	if m := f.mutations(); len(m) != 1 {
		t.Fatalf("%d switches sent, want 1: %v", len(m), m)
	}
	f.mu.Lock()
	f.stale = 0
	f.mu.Unlock()
	if o, err := c.Claim(context.Background(), haRes(gwSelf, ""), tokenBase); err != nil || !o.Owned {
		t.Fatalf("Claim after the read caught up = %+v, %v; want owned", o, err)
	}
	if m := f.mutations(); len(m) != 1 || f.applied["route.switch"] != 1 {
		t.Fatalf("%d switches sent, %d applied; want 1", len(m), f.applied["route.switch"])
	}
}

// When the read before a retry finds another rule active, the retry switches that rule, under
// its own token.
func TestRouteSwitchRereadFollowsThePair(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.addFault("switchRouteHA", fault{times: 1, status: 500, code: "InternalError"})
	c, _ := f.client(t, nil)
	calls := 0
	c.retry.OnRetry = func(string, int, error, time.Duration) {
		calls++
		// Meanwhile the pair was rebuilt with rr-b as its active rule, still on the other
		// node.
		f.mu.Lock()
		f.rules[1].PathType, f.rules[2].PathType = "ha:standby", "ha:active"
		f.rules[1].NexthopId, f.rules[2].NexthopId = gwSelf, gwOther
		f.mu.Unlock()
	}
	o, err := c.Claim(context.Background(), haRes(gwSelf, ""), tokenBase)
	if err != nil || !o.Owned || calls != 1 {
		t.Fatalf("Claim = %+v, %v (%d retries); want owned after one retry", o, err, calls)
	}
	if got, want := requestLines(f), []string{listRules, switchRA, listRules, switchRB, listRules}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	m := f.mutations()
	if m[1].Query.Get("clientToken") != cloud.Token(tokenBase, "route.switch/rr-b") {
		t.Fatalf("the retry carries token %q, want the one of rr-b", m[1].Query.Get("clientToken"))
	}
}

// MaxAttempts bounds the sends of a switch that keeps failing; every retry is read first.
func TestRouteSwitchBounded(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.addFault("switchRouteHA", fault{times: 100, status: 500, code: "InternalError"})
	c, _ := f.client(t, func(o *Options) { o.MaxAttempts = 3 })
	_, err := c.Claim(context.Background(), haRes(gwSelf, ""), tokenBase)
	if err == nil || !cloud.IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if got, want := requestLines(f), []string{listRules, switchRA, listRules, switchRA, listRules, switchRA}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

func TestRouteUpdate(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = []vpc.RouteRule{{RouteRuleId: "rr-1", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "10.9.0.0/16",
		NexthopType: "custom", NexthopId: "i-other", Description: "keep me"}}
	c, _ := f.client(t, nil)
	o, err := c.Claim(context.Background(), routeRes("rt-1", "10.9.0.0/16", cloud.RouteUpdate), tokenBase)
	if err != nil || !o.Owned || o.Shape != cloud.ShapeSingle {
		t.Fatalf("Claim = %+v, %v; want owned single rule", o, err)
	}
	checkMutations(t, f, []wantReq{{"PUT", "/v1/route/rule/rr-1", "clientToken=" + cloud.Token(tokenBase, "route.update/rr-1/i-self"),
		`{"sourceAddress":"0.0.0.0/0","destinationAddress":"10.9.0.0/16","nexthopId":"i-self"}`}})
}

// A single-line rule of another type than the configured one is an error, never a write: the
// update cannot change the type.
func TestRouteUpdateTypeMismatch(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = []vpc.RouteRule{{RouteRuleId: "rr-1", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "10.9.0.0/16",
		NexthopType: "enic", NexthopId: "eni-other"}}
	c, _ := f.client(t, nil)
	r := routeRes("rt-1", "10.9.0.0/16", cloud.RouteAuto) // next_hop_type defaults to custom
	const want = `rule rr-1 has next hop type "enic" but next_hop_type is "custom"`
	if _, err := c.Observe(context.Background(), r); !cloud.IsPermanent(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Observe: err = %v, want a permanent error containing %q", err, want)
	}
	if _, err := c.Claim(context.Background(), r, tokenBase); !cloud.IsPermanent(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Claim: err = %v, want a permanent error containing %q", err, want)
	}
	if rep := c.Preflight(context.Background(), []cloud.Resource{r}); !rep.Failed() || !strings.Contains(rep.String(), want) {
		t.Fatalf("Preflight:\n%s", rep)
	}
	if m := f.mutations(); len(m) != 0 {
		t.Fatalf("mutations %+v, want none", m)
	}
	r.Route.NextHopType = "enic"
	if o, err := c.Claim(context.Background(), r, tokenBase); err != nil || !o.Owned {
		t.Fatalf("Claim with next_hop_type enic = %+v, %v", o, err)
	}
}

func TestRouteShapes(t *testing.T) {
	single := []vpc.RouteRule{{RouteRuleId: "rr-1", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "0.0.0.0/0", NexthopType: "custom", NexthopId: "i-other"}}
	viaHAVIP := []vpc.RouteRule{{RouteRuleId: "rr-1", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "0.0.0.0/0", NexthopType: "havip", NexthopId: "havip-1"}}
	tests := []struct {
		name      string
		rules     []vpc.RouteRule
		gw        string // claimed as this dedicated-line gateway; "" for this instance
		mode      cloud.RouteMode
		wantOwned bool
		wantShape string
		wantErr   string
	}{
		{name: "havip shape follows", rules: viaHAVIP, mode: cloud.RouteAuto, wantOwned: true, wantShape: cloud.ShapeHAVIP},
		{name: "havip shape with switch", rules: viaHAVIP, mode: cloud.RouteSwitch, wantErr: "next hop is a HAVIP"},
		{name: "switch on single", rules: single, mode: cloud.RouteSwitch, wantErr: "mode switch"},
		{name: "update on pair", rules: haPair(gwOther, gwSelf), gw: gwSelf, mode: cloud.RouteUpdate, wantErr: "mode update"},
		{name: "not in pair", rules: haPair("dcgw-a", "dcgw-b"), gw: gwSelf, mode: cloud.RouteAuto, wantErr: "not in the HA pair"},
		{name: "instance next hop on pair", rules: haPair(gwOther, gwSelf), mode: cloud.RouteAuto, wantErr: "take only dedicated-line gateways"},
		{name: "no rule", rules: single, mode: cloud.RouteAuto, wantErr: "no rule for destination"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBCE(t)
			f.rules = tt.rules
			c, _ := f.client(t, nil)
			dest := "0.0.0.0/0"
			if tt.name == "no rule" {
				dest = "10.0.0.0/8"
			}
			r := routeRes("rt-1", dest, tt.mode)
			if tt.gw != "" {
				r = haRes(tt.gw, tt.mode)
			}
			o, err := c.Claim(context.Background(), r, tokenBase)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !cloud.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent error containing %q", err, tt.wantErr)
				}
			} else if err != nil || o.Owned != tt.wantOwned || o.Shape != tt.wantShape {
				t.Fatalf("Claim = %+v, %v", o, err)
			}
			if n := len(f.mutations()); n != 0 {
				t.Fatalf("%d mutating requests, want none", n)
			}
		})
	}
}

func TestEIPClaim(t *testing.T) {
	f := newFakeBCE(t)
	f.eips["1.2.3.4"] = &eip.EipModel{Eip: "1.2.3.4", Status: "binded", InstanceType: "BCC", InstanceId: "i-other"}
	c, _ := f.client(t, func(o *Options) { o.InstanceType = "bbc" })
	o, err := c.Claim(context.Background(), cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "1.2.3.4"}}, tokenBase)
	if err != nil || !o.Owned {
		t.Fatalf("Claim = %+v, %v; want owned", o, err)
	}
	checkMutations(t, f, []wantReq{
		{"PUT", "/v1/eip/1.2.3.4", "unbind&clientToken=" + cloud.Token(tokenBase, "eip.unbind/i-other"), ""},
		{"PUT", "/v1/eip/1.2.3.4", "bind&clientToken=" + cloud.Token(tokenBase, "eip.bind/i-self"), `{"instanceType":"BBC","instanceId":"i-self"}`},
	})
	for _, r := range f.requests() {
		if q := canonQuery(r.RawQuery); r.Method == "GET" && q != "eip=1.2.3.4" && q != "instanceId=i-self&instanceType=BBC" {
			t.Errorf("EIP read query %q, want eip=1.2.3.4 or this node's EIPs", r.RawQuery)
		}
	}
}

// A node that already holds another EIP cannot be bound a second one: the claim says so and
// changes nothing (unbinding the wanted EIP from its node first would leave it bound nowhere).
func TestEIPClaimNodeHoldsAnother(t *testing.T) {
	f := newFakeBCE(t)
	f.eips["1.2.3.4"] = &eip.EipModel{Eip: "1.2.3.4", Status: "binded", InstanceType: "BCC", InstanceId: "i-other"}
	f.eips["1.2.3.9"] = &eip.EipModel{Eip: "1.2.3.9", Status: "binded", InstanceType: "BCC", InstanceId: "i-self"}
	c, _ := f.client(t, nil)
	r := cloud.Resource{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "1.2.3.4"}}
	const want = "this node (i-self) already holds EIP 1.2.3.9"
	if _, err := c.Claim(context.Background(), r, tokenBase); !cloud.IsPermanent(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Claim: err = %v, want a permanent error containing %q", err, want)
	}
	if m := f.mutations(); len(m) != 0 {
		t.Fatalf("mutations %+v, want none", m)
	}
	if rep := c.Preflight(context.Background(), []cloud.Resource{r}); !rep.Failed() || !strings.Contains(rep.String(), want) {
		t.Fatalf("Preflight:\n%s", rep)
	}
}

func TestDryRun(t *testing.T) {
	f := newFakeBCE(t)
	f.rules = haPair(gwOther, gwSelf)
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	f.eips["1.2.3.4"] = &eip.EipModel{Eip: "1.2.3.4", InstanceId: "i-other"}
	c, logs := f.client(t, func(o *Options) { o.DryRun = true })
	for _, r := range []cloud.Resource{havipRes("havip-1", cloud.BindExclusive), haRes(gwSelf, ""),
		{Kind: cloud.KindEIP, EIP: &cloud.EIPSpec{Address: "1.2.3.4"}}} {
		o, err := c.Claim(context.Background(), r, tokenBase)
		if err != nil || o.Owned || !strings.Contains(o.Detail, "dry-run: would") {
			t.Fatalf("Claim(%s) = %+v, %v; want a dry-run description", r, o, err)
		}
	}
	if m := f.mutations(); len(m) != 0 {
		t.Fatalf("dry-run sent %d mutating requests: %v", len(m), m)
	}
	if !strings.Contains(logs.String(), "switchRouteHA&clientToken=") {
		t.Fatalf("dry-run did not log the switch it would send:\n%s", logs)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		ft        fault
		wantCalls int
		wantErr   bool
		wantLog   string
		// refused: the server refused the first switch without applying it (throttled), so it
		// is resent without reading the rules first.
		refused bool
	}{
		{name: "5xx", ft: fault{times: 2, status: 500, code: "InternalError"}, wantCalls: 3},
		// Retry-After plus up to half of it.
		{name: "429 Retry-After", ft: fault{times: 1, status: 429, code: "TooManyRequests", retryAfter: "1"}, wantCalls: 2, wantLog: "wait=1", refused: true},
		{name: "RequestExpired", ft: fault{times: 1, status: 400, code: "RequestExpired"}, wantCalls: 2},
		{name: "503 that landed", ft: fault{times: 1, apply: true, status: 503, code: "ServiceUnavailable"}, wantCalls: 1},
		{name: "auth", ft: fault{times: 5, status: 403, code: "AccessDenied"}, wantCalls: 1, wantErr: true},
		{name: "validation", ft: fault{times: 5, status: 400, code: "InvalidParameter"}, wantCalls: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBCE(t)
			f.rules = haPair(gwOther, gwSelf)
			f.addFault("switchRouteHA", tt.ft)
			c, logs := f.client(t, nil)
			o, err := c.Claim(context.Background(), haRes(gwSelf, ""), tokenBase)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Claim = %+v, %v; wantErr %v", o, err, tt.wantErr)
			}
			if tt.wantErr && !cloud.IsPermanent(err) {
				t.Fatalf("err %v should be permanent", err)
			}
			m := f.mutations()
			if len(m) != tt.wantCalls {
				t.Fatalf("%d switch requests, want %d", len(m), tt.wantCalls)
			}
			for _, r := range m {
				if canonQuery(r.RawQuery) != canonQuery(m[0].RawQuery) {
					t.Fatalf("retries changed the request: %q vs %q", r.RawQuery, m[0].RawQuery)
				}
			}
			reqs := requestLines(f)
			first := slices.Index(reqs, switchRA)
			for i := first + 1; first >= 0 && i < len(reqs); i++ {
				if reqs[i] == switchRA && (reqs[i-1] != listRules) != tt.refused {
					t.Fatalf("a switch was retried with a read first %v, want %v: %q", reqs[i-1] == listRules, !tt.refused, reqs)
				}
			}
			if !tt.wantErr && f.applied["route.switch"] != 1 {
				t.Fatalf("switch applied %d times, want 1", f.applied["route.switch"])
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Fatalf("log lacks %q:\n%s", tt.wantLog, logs)
			}
		})
	}
}

func TestBadCredentialsNotRetried(t *testing.T) {
	f := newFakeBCE(t)
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	creds, _ := NewCredentials("AKtest", "wrong-secret", "")
	lb, logger := newLogBuffer()
	c, err := New(context.Background(), Options{Endpoint: f.srv.URL, EIPEndpoint: f.srv.URL, InstanceID: "i-self",
		MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, StaticCredentials(creds), logger)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Observe(context.Background(), havipRes("havip-1", ""))
	if !cloud.IsAuth(err) || !cloud.IsPermanent(err) || len(f.requests()) != 1 {
		t.Fatalf("err = %v after %d requests; want one request and an auth error", err, len(f.requests()))
	}
	if strings.Contains(err.Error()+lb.String(), "wrong-secret") {
		t.Fatal("the secret leaked into an error or a log")
	}
}

func TestContextBoundsRetries(t *testing.T) {
	f := newFakeBCE(t)
	f.havips["havip-1"] = &havip.HaVip{HaVipId: "havip-1"}
	f.addFault("/v1/havip/havip-1", fault{times: 1 << 20, status: 500, code: "InternalError"})
	c, _ := f.client(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Observe(ctx, havipRes("havip-1", ""))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestNewValidates(t *testing.T) {
	creds, _ := NewCredentials("a", "b", "")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no region", Options{InstanceID: "i-1"}, "region is empty"},
		{"bad type", Options{Region: "bj", InstanceID: "i-1", InstanceType: "VM"}, "neither BCC nor BBC"},
		{"no id", Options{Region: "bj"}, "instance id is empty"},
		{"bad endpoint", Options{Endpoint: "bcc.bj.baidubce.com", EIPEndpoint: "https://x", InstanceID: "i-1"}, "must start with"},
	}
	for _, tt := range tests {
		if _, err := New(context.Background(), tt.opts, StaticCredentials(creds), nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	c, err := New(context.Background(), Options{Region: "gz", InstanceID: "i-1"}, StaticCredentials(creds), nil)
	if err != nil || c.opts.Endpoint != "https://bcc.gz.baidubce.com" || c.opts.EIPEndpoint != "https://eip.gz.baidubce.com" || c.opts.InstanceType != "BCC" {
		t.Fatalf("defaults: %+v, %v", c.opts, err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"junk", 0},
		{"Wed, 01 Jan 2025 00:00:10 GMT", 10 * time.Second}, {"Tue, 31 Dec 2024 00:00:10 GMT", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
