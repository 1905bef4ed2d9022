package agent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/havip-agent/havip-agent/agent/netif"
)

// TestRouteChange is the netlink routing table: which instances a change
// concerns, and as what input, given the carrier states seen before.
func TestRouteChange(t *testing.T) {
	vip := netip.MustParsePrefix("198.18.0.100/24")
	a := &instance{cfg: instanceConfig{Name: "A", Kind: "instance", Interface: "eth0", VIPs: []netip.Prefix{vip}}}
	b := &instance{cfg: instanceConfig{Name: "B", Kind: "instance", Interface: "eth1"}}
	tab := newTable([]*instance{a, b})
	tests := []struct {
		name     string
		up       map[string]bool
		c        netif.Change
		want     []*instance
		wantKind inputKind
		wantUp   map[string]bool
	}{
		{"resync: everyone looks", map[string]bool{}, netif.Change{Resync: true}, []*instance{a, b}, inAddrChange, map[string]bool{}},
		{"VIP address change", map[string]bool{}, netif.Change{Interface: "eth0", Addr: vip.Addr(), Present: false},
			[]*instance{a}, inAddrChange, map[string]bool{}},
		{"other address on the link", map[string]bool{}, netif.Change{Interface: "eth0", Addr: netip.MustParseAddr("198.18.0.11")},
			nil, inAddrChange, map[string]bool{}},
		{"VIP address on another link", map[string]bool{}, netif.Change{Interface: "eth1", Addr: vip.Addr(), Present: true},
			nil, inAddrChange, map[string]bool{}},
		{"first link state seen", map[string]bool{}, netif.Change{Interface: "eth0", Present: true, Up: true},
			[]*instance{a}, inAddrChange, map[string]bool{"eth0": true}},
		{"carrier came back", map[string]bool{"eth0": false}, netif.Change{Interface: "eth0", Present: true, Up: true},
			[]*instance{a}, inLinkUp, map[string]bool{"eth0": true}},
		{"still up", map[string]bool{"eth0": true}, netif.Change{Interface: "eth0", Present: true, Up: true},
			[]*instance{a}, inAddrChange, map[string]bool{"eth0": true}},
		{"carrier lost", map[string]bool{"eth0": true}, netif.Change{Interface: "eth0", Present: true},
			[]*instance{a}, inAddrChange, map[string]bool{"eth0": false}},
		{"link gone", map[string]bool{"eth1": true}, netif.Change{Interface: "eth1"}, []*instance{b}, inAddrChange, map[string]bool{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kind := routeChange(tab, tt.up, tt.c)
			if !slices.Equal(got, tt.want) || kind != tt.wantKind {
				t.Errorf("routeChange = %v, %v; want %v, %v", names(got), kind, names(tt.want), tt.wantKind)
			}
			if len(tt.up) != len(tt.wantUp) {
				t.Errorf("up = %v, want %v", tt.up, tt.wantUp)
			}
			for k, v := range tt.wantUp {
				if tt.up[k] != v {
					t.Errorf("up = %v, want %v", tt.up, tt.wantUp)
				}
			}
		})
	}
}

func names(ins []*instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.cfg.Name)
	}
	return out
}
