package emulator

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// stateRule answers the rule id of the emulator's state.
func stateRule(t *testing.T, emu *Emulator, id string) StateRouteRule {
	t.Helper()
	for _, r := range emu.State().RouteRules {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no rule %s", id)
	return StateRouteRule{}
}

// The update takes the documented body only: a nexthopType (or any other field it does not
// know) is ignored, so the rule keeps its type and the new next hop must be of that type.
func TestRouteUpdateIgnoresUnknownFields(t *testing.T) {
	emu, srv := newTest(t, Options{})
	create := signedDo(t, srv.URL, "POST", "/v1/route/rule", nil, []byte(
		`{"routeTableId":"rt-1","sourceAddress":"0.0.0.0/0","destinationAddress":"192.0.2.0/24","nexthopType":"custom","nexthopId":"i-c"}`))
	var res struct{ RouteRuleID string }
	if create.status != 200 || jsonInto(create.body, &res) != nil {
		t.Fatalf("create got %d %s", create.status, create.body)
	}
	id := res.RouteRuleID
	tests := []struct {
		name, body string
		status     int
		code       string
		wantHop    string
	}{
		{"type ignored", `{"sourceAddress":"0.0.0.0/0","destinationAddress":"192.0.2.0/24","nexthopId":"i-d","nexthopType":"enic"}`, 200, "", "i-d"},
		{"unknown fields ignored", `{"nexthopId":"i-e","routeRuleId":"rr-other","colour":"blue","nextHopList":[]}`, 200, "", "i-e"},
		// An ENI id under the rule's own type (custom) names no instance.
		{"id of another type", `{"nexthopId":"eni-a","nexthopType":"enic"}`, 400, "RouteNexthopNotFound", "i-e"},
	}
	for _, tt := range tests {
		r := signedDo(t, srv.URL, "PUT", "/v1/route/rule/"+id, nil, []byte(tt.body))
		if r.status != tt.status || r.code() != tt.code {
			t.Fatalf("%s: got %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
		if got := stateRule(t, emu, id); got.NexthopType != "custom" || got.NexthopID != tt.wantHop {
			t.Fatalf("%s: rule %+v, want custom %s", tt.name, got, tt.wantHop)
		}
	}
}

// seedWith parses testdata/seed.toml with extra TOML before it (top-level keys) and after it
// (tables), and builds an emulator behind a test server.
func seedWith(t *testing.T, top, tables string) (*Emulator, *httptest.Server, error) {
	t.Helper()
	return seedWithOptions(t, top, tables, Options{})
}

// seedWithOptions is seedWith with emulator options.
func seedWithOptions(t *testing.T, top, tables string, opts Options) (*Emulator, *httptest.Server, error) {
	t.Helper()
	b, err := os.ReadFile("testdata/seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	seed, err := ParseSeed(strings.NewReader(top+"\n"+string(b)+"\n"+tables), "seed.toml")
	if err != nil {
		return nil, nil, err
	}
	emu, err := New(seed, opts, nil)
	if err != nil {
		return nil, nil, err
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	return emu, srv, nil
}

// Nothing documents whether switchRouteHA swaps the pathType of the pair or its next hops; the
// seed picks one. Either way the active rule's next hop moves to the standby's, and exactly one
// change is logged.
func TestRouteSwitchBehaviours(t *testing.T) {
	const pair = `
[[route_rule]]
id = "rr-dc1"
route_table_id = "rt-1"
source = "0.0.0.0/0"
destination = "192.0.2.0/24"
next_hop_type = "dcGateway"
next_hop_id = "dcgw-1"
standby_id = "rr-dc2"
standby_next_hop_id = "dcgw-2"
`
	tests := []struct {
		top              string
		wantActive, path map[string]string // after one switch: rule -> next hop, rule -> path type
	}{
		{"", map[string]string{"rr-dc1": "dcgw-1", "rr-dc2": "dcgw-2"}, map[string]string{"rr-dc1": pathHAStandby, "rr-dc2": pathHAActive}},
		{`ha_switch = "path_type"`, map[string]string{"rr-dc1": "dcgw-1", "rr-dc2": "dcgw-2"}, map[string]string{"rr-dc1": pathHAStandby, "rr-dc2": pathHAActive}},
		{`ha_switch = "next_hops"`, map[string]string{"rr-dc1": "dcgw-2", "rr-dc2": "dcgw-1"}, map[string]string{"rr-dc1": pathHAActive, "rr-dc2": pathHAStandby}},
	}
	for _, tt := range tests {
		t.Run(tt.top, func(t *testing.T) {
			emu, srv, err := seedWith(t, tt.top, pair)
			if err != nil {
				t.Fatal(err)
			}
			r := signedDo(t, srv.URL, "PUT", "/v1/route/rule/rr-dc1", map[string]string{"switchRouteHA": "", "clientToken": "tok-1"}, nil)
			if r.status != 200 {
				t.Fatalf("switch got %d %s", r.status, r.body)
			}
			active := ""
			for id, hop := range tt.wantActive {
				got := stateRule(t, emu, id)
				if got.NexthopID != hop || got.PathType != tt.path[id] || got.NexthopType != "dcGateway" {
					t.Errorf("rule %s = %+v, want %s %s", id, got, hop, tt.path[id])
				}
				if got.PathType == pathHAActive {
					active = got.NexthopID
				}
			}
			if active != "dcgw-2" {
				t.Errorf("active next hop %q after the switch, want dcgw-2", active)
			}
			if n := countChanges(emu, "active dcgw-1 -> dcgw-2"); n != 1 {
				t.Errorf("%d switch changes logged, want 1", n)
			}
		})
	}
	if _, _, err := seedWith(t, `ha_switch = "both"`, ""); err == nil || !strings.Contains(err.Error(), `ha_switch "both"`) {
		t.Fatalf("bad ha_switch: %v", err)
	}
}

// An HA pair whose next hops are not dedicated-line gateways is refused (400 with a JSON
// error), by the API and in the seed; dcGateway pairs are accepted.
func TestHANextHopsAreDCGateways(t *testing.T) {
	b, err := os.ReadFile("testdata/seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	instancePair := strings.NewReplacer(`next_hop_id = "dcgw-1"`, `next_hop_id = "i-a"`, `standby_next_hop_id = "dcgw-2"`,
		`standby_next_hop_id = "i-b"`, `next_hop_type = "dcGateway"`, `next_hop_type = "custom"`).Replace(string(b))
	if instancePair == string(b) {
		t.Fatal("the test seed's HA pair changed: update this test")
	}
	seed, err := ParseSeed(strings.NewReader(instancePair), "seed.toml")
	if err == nil {
		_, err = New(seed, Options{}, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "seed.toml:") || !strings.Contains(err.Error(), "route_rule[0]") ||
		!strings.Contains(err.Error(), `next hop type "custom" is not supported`) {
		t.Fatalf("instance pair in the seed: %v", err)
	}
	_, srv := newTest(t, Options{})
	create := func(typ, a, b string) rawResp {
		return signedDo(t, srv.URL, "POST", "/v1/route/rule", nil, []byte(`{"routeTableId":"rt-1","sourceAddress":"0.0.0.0/0",`+
			`"destinationAddress":"192.0.2.0/24","nextHopList":[{"nexthopId":"`+a+`","nexthopType":"`+typ+`","pathType":"ha:active"},`+
			`{"nexthopId":"`+b+`","nexthopType":"`+typ+`","pathType":"ha:standby"}]}`))
	}
	for _, tt := range [][3]string{{"custom", "i-a", "i-b"}, {"enic", "eni-a", "eni-b"}, {"havip", "havip-seed1", "havip-seed1"}} {
		r := create(tt[0], tt[1], tt[2])
		if r.status != 400 || r.code() != "InvalidParameter" || !strings.Contains(string(r.body), "dcGateway") {
			t.Fatalf("%s pair: got %d %s", tt[0], r.status, r.body)
		}
	}
	if r := create("dcGateway", "dcgw-1", "dcgw-2"); r.status != 200 {
		t.Fatalf("dcGateway pair: got %d %s", r.status, r.body)
	}
}
