package emulator

import (
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
