package bce

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/cloud/metadata"
)

const emuSeed = `
region = "bj"

[[credential]]
access_key_id = "ak-test"
secret_access_key = "sk-test"

[[vpc]]
id = "vpc-1"
cidr = "198.18.0.0/16"

[[vpc]]
id = "vpc-lo"
cidr = "127.0.0.0/8"

[[subnet]]
id = "sbn-1"
vpc_id = "vpc-1"
cidr = "198.18.0.0/24"

[[subnet]]
id = "sbn-lo"
vpc_id = "vpc-lo"
cidr = "127.0.0.0/24"

[[instance]]
id = "i-a"
eni_id = "eni-a"
subnet_id = "sbn-1"
private_ip = "198.18.0.11"

[[instance]]
id = "i-b"
eni_id = "eni-b"
subnet_id = "sbn-1"
private_ip = "198.18.0.12"

[[instance]]
id = "i-lo"
eni_id = "eni-lo"
subnet_id = "sbn-lo"
private_ip = "127.0.0.1"
role = "agent-role"

[[route_table]]
id = "rt-1"
vpc_id = "vpc-1"

[[dc_gateway]]
id = "dcgw-a"
vpc_id = "vpc-1"

[[dc_gateway]]
id = "dcgw-b"
vpc_id = "vpc-1"

# The HA pair names each node's dedicated-line gateway: the only next hops such pairs take.
[[route_rule]]
id = "rr-ha"
route_table_id = "rt-1"
source = "0.0.0.0/0"
destination = "0.0.0.0/0"
next_hop_type = "dcGateway"
next_hop_id = "dcgw-b"
standby_id = "rr-hb"
standby_next_hop_id = "dcgw-a"

[[route_rule]]
id = "rr-s"
route_table_id = "rt-1"
source = "0.0.0.0/0"
destination = "10.9.0.0/16"
next_hop_type = "custom"
next_hop_id = "i-b"

[[havip]]
id = "havip-1"
subnet_id = "sbn-1"
private_ip = "198.18.0.100"
instances = ["i-b"]

# EIP addresses are only data here: nothing is sent to them.
[[eip]]
address = "198.19.0.10"
instance_id = "i-b"

[[eip]]
address = "198.19.0.20"

[[eip]]
address = "198.19.0.30"
`

// newEmulator serves a fresh emulator and returns it with a client of node i-a.
func newEmulator(t *testing.T, mod func(*Options)) (*emulator.Emulator, *Client, string) {
	t.Helper()
	return newEmulatorSeed(t, emuSeed, mod)
}

// newEmulatorSeed is newEmulator with another seed.
func newEmulatorSeed(t *testing.T, seedText string, mod func(*Options)) (*emulator.Emulator, *Client, string) {
	t.Helper()
	seed, err := emulator.ParseSeed(strings.NewReader(seedText), "seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(seed, emulator.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { checkEmulatorContract(t, emu) })
	opts := Options{Region: "bj", Endpoint: srv.URL, EIPEndpoint: srv.URL, InstanceID: "i-a",
		Timeout: 2 * time.Second, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	creds, _ := NewCredentials("ak-test", "sk-test", "")
	c, err := New(context.Background(), opts, StaticCredentials(creds), nil)
	if err != nil {
		t.Fatal(err)
	}
	return emu, c, srv.URL
}

func emuOps(emu *emulator.Emulator, op string) []emulator.RequestRecord {
	var out []emulator.RequestRecord
	for _, r := range emu.Requests() {
		if r.Operation == op {
			out = append(out, r)
		}
	}
	return out
}

func TestEmulatorHAVIPAttach(t *testing.T) {
	emu, c, _ := newEmulator(t, nil)
	ctx := context.Background()
	r := havipRes("havip-1", cloud.BindAttach)
	if o, err := c.Observe(ctx, r); err != nil || o.Owned || o.Current != "i-b" {
		t.Fatalf("Observe = %+v, %v; want owned by i-b", o, err)
	}
	o, err := c.Claim(ctx, r, tokenBase)
	if err != nil || !o.Owned || o.Current != "i-a" {
		t.Fatalf("Claim = %+v, %v; want owned by i-a", o, err)
	}
	if n := len(emuOps(emu, "havip.attach")); n != 1 {
		t.Fatalf("%d attach requests, want 1", n)
	}
	// Exclusive: detach i-b too.
	if o, err = c.Claim(ctx, havipRes("havip-1", cloud.BindExclusive), "gen-2/havip"); err != nil || !o.Owned {
		t.Fatalf("exclusive Claim = %+v, %v", o, err)
	}
	if d := emuOps(emu, "havip.detach"); len(d) != 1 || d[0].Status != 200 {
		t.Fatalf("detach requests: %+v", d)
	}
}

func TestEmulatorSwitchOnceUnderRetries(t *testing.T) {
	emu, c, _ := newEmulator(t, nil)
	for _, f := range []emulator.Fault{
		{Operation: "route.rule.switch", Kind: emulator.FaultError, Status: 503, Code: "ServiceUnavailable", Count: 1},
		{Operation: "route.rule.switch", Kind: emulator.FaultLost, Count: 1},
	} {
		if _, err := emu.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
	o, err := c.Claim(context.Background(), haRes("dcgw-a", cloud.RouteSwitch), tokenBase)
	if err != nil || !o.Owned || o.Shape != cloud.ShapeHA || o.Current != "dcgw-a" {
		t.Fatalf("Claim = %+v, %v; want the HA pair active on dcgw-a", o, err)
	}
	sw := emuOps(emu, "route.rule.switch")
	applied := 0
	for _, r := range sw {
		if r.ClientToken != cloud.Token(tokenBase, "route.switch/rr-ha") || r.Path != "/v1/route/rule/rr-ha" {
			t.Errorf("switch request %+v", r)
		}
		if r.Applied {
			applied++
		}
	}
	// The 503 is read past and sent again; the lost answer is read past too, and that read
	// finds the switch applied: nothing is sent a third time.
	if len(sw) != 2 || applied != 1 || sw[1].Fault != string(emulator.FaultLost) {
		t.Fatalf("switch requests %+v: want two (503, lost) and exactly one applied", sw)
	}
	var ops []string
	for _, r := range emu.Requests() {
		ops = append(ops, r.Operation)
	}
	want := []string{OpRouteRuleList, OpRouteRuleSwitch, OpRouteRuleList, OpRouteRuleSwitch, OpRouteRuleList}
	if !slices.Equal(ops, want) {
		t.Fatalf("requests %q, want %q", ops, want)
	}
	// Claiming again sends nothing.
	if _, err := c.Claim(context.Background(), haRes("dcgw-a", ""), "gen-2/route"); err != nil {
		t.Fatal(err)
	}
	if n := len(emuOps(emu, "route.rule.switch")); n != len(sw) {
		t.Fatalf("an owned route was switched again")
	}
}

func TestEmulatorUpdateSingleLine(t *testing.T) {
	emu, c, _ := newEmulator(t, nil)
	if _, err := emu.AddFault(emulator.Fault{Operation: "route.rule.update", Kind: emulator.FaultError, Status: 400, Code: "RequestExpired", Count: 1}); err != nil {
		t.Fatal(err)
	}
	o, err := c.Claim(context.Background(), routeRes("rt-1", "10.9.0.0/16", cloud.RouteAuto), tokenBase)
	if err != nil || !o.Owned || o.Shape != cloud.ShapeSingle {
		t.Fatalf("Claim = %+v, %v; want the single rule on i-a", o, err)
	}
	up := emuOps(emu, "route.rule.update")
	if len(up) != 2 || up[0].Code != "RequestExpired" || up[1].Status != 200 {
		t.Fatalf("update requests %+v: want RequestExpired then success", up)
	}
	if o, err := c.Claim(context.Background(), routeRes("rt-1", "10.9.0.0/16", cloud.RouteSwitch), tokenBase); !cloud.IsPermanent(err) {
		t.Fatalf("switch mode on a single rule: %+v, %v; want a permanent error", o, err)
	}
}

func TestEmulatorAuthNotRetried(t *testing.T) {
	emu, _, url := newEmulator(t, nil)
	creds, _ := NewCredentials("ak-test", "wrong", "")
	c, err := New(context.Background(), Options{Endpoint: url, EIPEndpoint: url, InstanceID: "i-a",
		MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, StaticCredentials(creds), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Observe(context.Background(), havipRes("havip-1", "")); !cloud.IsPermanent(err) || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("err = %v", err)
	}
	if n := len(emu.Requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestEmulatorInstanceRole(t *testing.T) {
	_, _, url := newEmulator(t, nil)
	md := metadata.New(url, nil)
	src := NewRoleCredentialSource(md, nil)
	c, err := New(context.Background(), Options{Endpoint: url, EIPEndpoint: url, Identity: md,
		MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID() != "i-lo" {
		t.Fatalf("NodeID = %q, want i-lo (the instance with the caller's address)", c.NodeID())
	}
	if o, err := c.Observe(context.Background(), havipRes("havip-1", "")); err != nil || o.Owned {
		t.Fatalf("Observe with role credentials = %+v, %v", o, err)
	}
}

// Against the emulator, a configured next_hop_type that is not the rule's is refused before
// any write, and the documented update body (no nexthopType) is what reaches the API.
func TestEmulatorUpdateTypeMismatch(t *testing.T) {
	emu, c, _ := newEmulator(t, nil)
	r := routeRes("rt-1", "10.9.0.0/16", cloud.RouteUpdate)
	r.Route.NextHopType = "enic"
	if _, err := c.Claim(context.Background(), r, tokenBase); !cloud.IsPermanent(err) || !strings.Contains(err.Error(), `next hop type "custom" but next_hop_type is "enic"`) {
		t.Fatalf("err = %v", err)
	}
	if up := emuOps(emu, emulator.OpRouteRuleUpdate); len(up) != 0 {
		t.Fatalf("updates sent: %+v", up)
	}
}

// clientFor is a client of node id against the emulator at url.
func clientFor(t *testing.T, url, id string) *Client {
	t.Helper()
	creds, _ := NewCredentials("ak-test", "sk-test", "")
	c, err := New(context.Background(), Options{Region: "bj", Endpoint: url, EIPEndpoint: url, InstanceID: id,
		Timeout: 2 * time.Second, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, StaticCredentials(creds), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Ownership is the next hop of the active rule, whether the cloud's switch swaps the pathType
// of the two rules or their next hops (no document says which): under both, each node's claim
// sends one switch, to the rule active at the time, and is confirmed; the other node then
// reads the route as not its own.
func TestEmulatorSwitchBehaviours(t *testing.T) {
	for _, behaviour := range []string{emulator.HASwitchPathType, emulator.HASwitchNextHops} {
		for _, shape := range []struct {
			name, dest   string
			typ          string
			hopA, hopB   string
			firstSwitch  string
			secondSwitch map[string]string // behaviour -> rule switched by node b
		}{
			{"dcGateway pair", "0.0.0.0/0", "dcGateway", "dcgw-a", "dcgw-b", "rr-ha",
				map[string]string{emulator.HASwitchPathType: "rr-hb", emulator.HASwitchNextHops: "rr-ha"}},
		} {
			t.Run(behaviour+"/"+shape.name, func(t *testing.T) {
				emu, a, url := newEmulatorSeed(t, "ha_switch = \""+behaviour+"\"\n"+emuSeed, nil)
				b := clientFor(t, url, "i-b")
				res := func(hop string) cloud.Resource {
					r := routeRes("rt-1", shape.dest, cloud.RouteSwitch)
					r.Route.NextHop, r.Route.NextHopType = hop, shape.typ
					return r
				}
				ctx := context.Background()
				o, err := a.Claim(ctx, res(shape.hopA), "gen-1/route")
				if err != nil || !o.Owned {
					t.Fatalf("a's Claim = %+v, %v", o, err)
				}
				if o, err := b.Observe(ctx, res(shape.hopB)); err != nil || o.Owned {
					t.Fatalf("b's Observe after a's claim = %+v, %v; want not owned", o, err)
				}
				if o, err := b.Claim(ctx, res(shape.hopB), "gen-2/route"); err != nil || !o.Owned {
					t.Fatalf("b's Claim = %+v, %v", o, err)
				}
				if o, err := a.Observe(ctx, res(shape.hopA)); err != nil || o.Owned {
					t.Fatalf("a's Observe after b's claim = %+v, %v; want not owned", o, err)
				}
				sw := emuOps(emu, emulator.OpRouteRuleSwitch)
				if len(sw) != 2 || sw[0].Path != "/v1/route/rule/"+shape.firstSwitch || sw[1].Path != "/v1/route/rule/"+shape.secondSwitch[behaviour] {
					t.Fatalf("switches %+v: want %s then %s", sw, shape.firstSwitch, shape.secondSwitch[behaviour])
				}
				// Owned now: claiming again sends nothing.
				if _, err := b.Claim(ctx, res(shape.hopB), "gen-3/route"); err != nil || len(emuOps(emu, emulator.OpRouteRuleSwitch)) != 2 {
					t.Fatalf("an owned route was switched again (%v)", err)
				}
			})
		}
	}
}

// A switch answered 200 whose read-back keeps showing the other next hop active ends the claim
// as an accepted but unconfirmed PendingError, after exactly one switch.
func TestEmulatorSwitchUnconfirmed(t *testing.T) {
	emu, c, _ := newEmulator(t, func(o *Options) { o.ConfirmAttempts = 3 })
	// Every read after the switch answers from the state before it.
	addFaults(t, emu, emulator.Fault{Operation: emulator.OpRouteRuleList, Kind: emulator.FaultStale, Mutations: 1, Window: emulator.Duration(time.Minute)})
	o, err := c.Claim(context.Background(), haRes("dcgw-a", cloud.RouteSwitch), tokenBase)
	if o.Owned || !cloud.IsUnconfirmed(err) || !strings.Contains(err.Error(), "accepted") {
		t.Fatalf("Claim = %+v, %v; want an accepted but unconfirmed PendingError", o, err)
	}
	if sw := emuOps(emu, emulator.OpRouteRuleSwitch); len(sw) != 1 || !sw[0].Applied {
		t.Fatalf("switches %+v, want exactly one, applied", sw)
	}
	// The cloud does show it once the reads catch up: the next claim reads and sends nothing.
	emu.ClearFaults()
	if o, err := c.Claim(context.Background(), haRes("dcgw-a", cloud.RouteSwitch), "gen-2/route"); err != nil || !o.Owned {
		t.Fatalf("Claim after the reads caught up = %+v, %v", o, err)
	}
	if sw := emuOps(emu, emulator.OpRouteRuleSwitch); len(sw) != 1 {
		t.Fatalf("%d switches, want 1", len(sw))
	}
}
