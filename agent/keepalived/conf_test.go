package keepalived

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const goodConf = `global_defs {
    router_id a
    script_user root   # before the FIFO
    enable_script_security
    vrrp_notify_fifo "/run/keepalived/havip-agent.fifo"
}
vrrp_sync_group G { group { VI_1 } }
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    ! no virtual_ipaddress
    unicast_peer {
        198.18.0.12
    }
}
`

// sharedConf is VRRPv3 with the agent's VIP also in virtual_ipaddress.
const sharedConf = `global_defs {
    script_user root
    vrrp_notify_fifo /run/keepalived/havip-agent.fifo
    vrrp_version 3
}
vrrp_instance VI_1 {
    interface eth0
    advert_int 0.2
    virtual_ipaddress {
        198.18.0.100/24 dev eth0 no_track
    }
}
`

// groupConf is a shared VRRPv3 sync group of two instances with one VIP
// each.
const groupConf = `global_defs {
    vrrp_notify_fifo /run/keepalived/havip-agent.fifo
    vrrp_version 3
}
vrrp_sync_group G {
    group { VI_A VI_B }
}
vrrp_instance VI_A {
    virtual_ipaddress {
        198.18.0.100/24 no_track
    }
}
vrrp_instance VI_B {
    advert_int 0.2
    virtual_ipaddress {
        198.18.0.101/24 no_track
    }
}
`

func prefixes(vips []string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range vips {
		out = append(out, netip.MustParsePrefix(v))
	}
	return out
}

func sharedVI1(vips ...string) []ConfInstance {
	return []ConfInstance{{Kind: ConfKindInstance, Name: "VI_1", VIPs: prefixes(vips), Shared: true}}
}

func sharedGroup(vips ...string) []ConfInstance {
	return []ConfInstance{{Kind: ConfKindGroup, Name: "G", VIPs: prefixes(vips), Shared: true}}
}

func vi1() []ConfInstance {
	return []ConfInstance{{Kind: ConfKindInstance, Name: "VI_1", VIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/24")}}}
}

func TestLintConf(t *testing.T) {
	fifo := "/run/keepalived/havip-agent.fifo"
	for _, tc := range []struct {
		name      string
		conf      string
		instances []ConfInstance
		userOK    bool
		noFIFO    bool     // the agent's FIFO is not known
		want      []string // findings, as File:Line: severity: message prefixes
	}{
		{name: "good", conf: goodConf, instances: vi1()},
		{name: "good group", conf: goodConf, instances: []ConfInstance{{Kind: ConfKindGroup, Name: "G"}}},
		{
			name: "fifo before script_user",
			conf: strings.Replace(strings.Replace(goodConf, "    script_user root   # before the FIFO\n", "", 1),
				"vrrp_notify_fifo \"/run/keepalived/havip-agent.fifo\"\n", "vrrp_notify_fifo /run/keepalived/havip-agent.fifo\n    script_user root\n", 1),
			instances: vi1(),
			want:      []string{"k.conf:4: error: vrrp_notify_fifo comes before script_user"},
		},
		{
			name:      "fifo before script_user, but keepalived_script exists",
			conf:      "global_defs {\n vrrp_notify_fifo /run/keepalived/havip-agent.fifo\n script_user root\n enable_script_security\n}\nvrrp_instance VI_1 {\n}\n",
			instances: vi1(), userOK: true,
		},
		{
			name:      "no script_user at all",
			conf:      "global_defs {\n enable_script_security\n vrrp_notify_fifo /run/keepalived/havip-agent.fifo\n}\nvrrp_instance VI_1 {\n}\n",
			instances: vi1(),
			want:      []string{"k.conf:3: error: vrrp_notify_fifo comes before script_user"},
		},
		{
			name:      "without script security the order does not matter",
			conf:      "global_defs {\n vrrp_notify_fifo /run/keepalived/havip-agent.fifo\n}\nvrrp_instance VI_1 {\n}\n",
			instances: vi1(),
		},
		{
			name:      "other fifo",
			conf:      strings.Replace(goodConf, "havip-agent.fifo", "other.fifo", 1),
			instances: vi1(),
			want:      []string{"k.conf:5: error: vrrp_notify_fifo is /run/keepalived/other.fifo but the agent reads"},
		},
		{
			name:      "nothing tells the agent",
			conf:      "vrrp_instance VI_1 {\n}\n",
			instances: vi1(),
			want:      []string{": error: no vrrp_notify_fifo in global_defs and no notify program"},
		},
		{
			name:      "notify program instead of the FIFO",
			conf:      "vrrp_instance VI_1 {\n notify \"/usr/bin/havip-agent notify\"\n}\n",
			instances: vi1(),
			want:      []string{"k.conf:2: warning: vrrp_instance VI_1 tells the agent only through notify: notify programs run concurrently and reach the agent in any order (a MASTER then a BACKUP can leave the agent MASTER); set vrrp_notify_fifo /run/keepalived/havip-agent.fifo in global_defs, the ordered path"},
		},
		{
			name:      "notify_master and notify_backup instead of the FIFO",
			conf:      "vrrp_instance VI_1 {\n notify_master \"/usr/sbin/havip-agent notify INSTANCE VI_1 MASTER\"\n notify_backup \"/usr/sbin/havip-agent notify INSTANCE VI_1 BACKUP\"\n}\n",
			instances: vi1(),
			want:      []string{"k.conf:2: warning: vrrp_instance VI_1 tells the agent only through notify_master:"},
		},
		{
			name:      "sync group notify instead of the FIFO",
			conf:      "vrrp_sync_group G {\n group { VI_1 }\n notify \"/usr/bin/havip-agent notify\"\n}\nvrrp_instance VI_1 {\n}\n",
			instances: []ConfInstance{{Kind: ConfKindGroup, Name: "G"}},
			want:      []string{"k.conf:3: warning: vrrp_sync_group G tells the agent only through notify:"},
		},
		{
			name:      "notify beside another FIFO",
			conf:      "global_defs {\n vrrp_notify_fifo /run/other.fifo\n}\nvrrp_instance VI_1 {\n notify_fault \"/usr/bin/havip-agent notify\"\n}\n",
			instances: vi1(),
			want: []string{
				"k.conf:2: error: vrrp_notify_fifo is /run/other.fifo but the agent reads",
				"k.conf:5: warning: vrrp_instance VI_1 tells the agent only through notify_fault:",
			},
		},
		{
			name:      "notify beside the agent's FIFO",
			conf:      strings.Replace(goodConf, "    state BACKUP\n", "    state BACKUP\n    notify /usr/bin/havip-agent\n", 1),
			instances: vi1(),
			want:      []string{"k.conf:10: warning: vrrp_instance VI_1 also calls havip-agent through notify: notify programs run concurrently and reach the agent in any order, so a late one can undo the FIFO's order"},
		},
		{
			name:      "notify of another program beside the FIFO",
			conf:      strings.Replace(goodConf, "    state BACKUP\n", "    notify /usr/local/bin/page-oncall\n", 1),
			instances: vi1(),
		},
		{
			name:      "one instance with notify, one with nothing",
			conf:      "vrrp_instance VI_1 {\n notify \"/usr/bin/havip-agent notify\"\n}\nvrrp_instance VI_2 {\n}\n",
			instances: append(vi1(), ConfInstance{Kind: ConfKindInstance, Name: "VI_2"}),
			want: []string{
				"k.conf:2: warning: vrrp_instance VI_1 tells the agent only through notify:",
				"k.conf:4: error: vrrp_instance VI_2 has no notify calling havip-agent and there is no vrrp_notify_fifo: the agent hears none of its transitions",
			},
		},
		{
			name:      "unknown agent FIFO",
			conf:      "vrrp_instance VI_1 {\n notify \"/usr/bin/havip-agent notify\"\n}\n",
			instances: vi1(), noFIFO: true,
			want: []string{"k.conf:2: warning: vrrp_instance VI_1 tells the agent only through notify: notify programs run concurrently and reach the agent in any order (a MASTER then a BACKUP can leave the agent MASTER); set vrrp_notify_fifo to the agent's [keepalived] fifo in global_defs, the ordered path"},
		},
		{
			name:      "instance missing",
			conf:      goodConf,
			instances: []ConfInstance{{Kind: ConfKindInstance, Name: "VI_2"}, {Kind: ConfKindGroup, Name: "VI_1"}},
			want: []string{
				": error: no vrrp_instance VI_2",
				": error: no vrrp_sync_group VI_1",
			},
		},
		{
			name: "agent-owned VIP also in virtual_ipaddress",
			conf: strings.Replace(goodConf, "    ! no virtual_ipaddress\n",
				"    virtual_ipaddress {\n        198.18.0.100/24 dev eth0\n        198.18.0.101\n    }\n", 1),
			instances: vi1(),
			want:      []string{"k.conf:12: error: vrrp_instance VI_1 lists the agent's VIP 198.18.0.100, but the agent's instance \"VI_1\" does not set shared_vips: set shared_vips = true for it in havip-agent.toml (keepalived and the agent then both manage the VIPs, as VRRPv3 needs), or remove the address here (agent-owned VIPs, VRRPv2 only)"},
		},
		{
			name: "agent-owned VIP also in virtual_ipaddress_excluded",
			conf: strings.Replace(goodConf, "    ! no virtual_ipaddress\n",
				"    virtual_ipaddress_excluded {\n        198.18.0.100\n    }\n", 1),
			instances: vi1(),
			want:      []string{"k.conf:12: error: vrrp_instance VI_1 lists the agent's VIP 198.18.0.100, but the agent's instance \"VI_1\" does not set shared_vips"},
		},
		{
			name: "agent-owned, keepalived manages another address",
			conf: strings.Replace(goodConf, "    ! no virtual_ipaddress\n",
				"    virtual_ipaddress {\n        198.18.0.200/24\n    }\n", 1),
			instances: vi1(),
		},
		{name: "shared", conf: sharedConf, instances: sharedVI1("198.18.0.100/24")},
		{
			name:      "shared, version in the instance",
			conf:      strings.Replace(strings.Replace(sharedConf, "    vrrp_version 3\n", "", 1), "    interface eth0\n", "    interface eth0\n    version 3\n", 1),
			instances: sharedVI1("198.18.0.100/24"),
		},
		{
			name:      "shared, the instance's version wins over global_defs",
			conf:      strings.Replace(strings.Replace(sharedConf, "vrrp_version 3", "vrrp_version 2", 1), "    interface eth0\n", "    interface eth0\n    version 3\n", 1),
			instances: sharedVI1("198.18.0.100/24"),
		},
		{
			name:      "shared, a bare address is a /32",
			conf:      strings.Replace(sharedConf, "198.18.0.100/24 dev eth0", "198.18.0.100", 1),
			instances: sharedVI1("198.18.0.100/32"),
		},
		{
			name:      "shared, a bare IPv6 address is a /128 and makes the instance VRRPv3",
			conf:      strings.Replace(strings.Replace(sharedConf, "    vrrp_version 3\n", "", 1), "198.18.0.100/24 dev eth0", "2001:db8::100", 1),
			instances: sharedVI1("2001:db8::100/128"),
		},
		{
			name:      "shared, a bare address but a /24 in the agent",
			conf:      strings.Replace(sharedConf, "198.18.0.100/24 dev eth0", "198.18.0.100", 1),
			instances: sharedVI1("198.18.0.100/24"),
			want:      []string{"k.conf:10: error: vrrp_instance VI_1 lists 198.18.0.100 (no prefix length: keepalived adds 198.18.0.100/32) but the agent's instance \"VI_1\" has 198.18.0.100/24: keepalived and the agent must add the same prefix; write 198.18.0.100/24 here, or \"198.18.0.100/32\" in vips in havip-agent.toml"},
		},
		{
			name:      "shared, keepalived has an address the agent lacks",
			conf:      strings.Replace(sharedConf, "        198.18.0.100/24 dev eth0 no_track\n", "        198.18.0.100/24 dev eth0 no_track\n        198.18.0.101/24 dev eth0\n", 1),
			instances: sharedVI1("198.18.0.100/24"),
			want:      []string{"k.conf:11: error: vrrp_instance VI_1 lists 198.18.0.101/24, which the agent's instance \"VI_1\" does not have (vips = [\"198.18.0.100/24\"]): keepalived and the agent must manage the same addresses; add \"198.18.0.101/24\" to vips in havip-agent.toml, or remove it here"},
		},
		{
			name:      "shared without no_track",
			conf:      strings.Replace(sharedConf, " no_track", "", 1),
			instances: sharedVI1("198.18.0.100/24"),
			want:      []string{"k.conf:10: warning: vrrp_instance VI_1 lists 198.18.0.100/24 without no_track: when the address is deleted from the interface keepalived leaves MASTER (it sends priority 0 and the peer takes over) instead of letting the agent put it back; add no_track to the entry"},
		},
		{
			name:      "shared, the agent has an address keepalived lacks",
			conf:      sharedConf,
			instances: sharedVI1("198.18.0.100/24", "198.18.0.102/24"),
			want:      []string{"k.conf:9: error: the agent's instance \"VI_1\" has the VIP 198.18.0.102/24, which vrrp_instance VI_1 does not list: keepalived and the agent must manage the same addresses; add 198.18.0.102/24 to virtual_ipaddress, or remove it from vips in havip-agent.toml"},
		},
		{
			name:      "shared, virtual_ipaddress_excluded counts",
			conf:      strings.Replace(sharedConf, "    }\n}\n", "    }\n    virtual_ipaddress_excluded {\n        198.18.0.101/24 no_track\n    }\n}\n", 1),
			instances: sharedVI1("198.18.0.100/24", "198.18.0.101/24"),
		},
		{
			name:      "shared without virtual_ipaddress",
			conf:      goodConf,
			instances: sharedVI1("198.18.0.100/24"),
			want:      []string{"k.conf:8: error: the agent's instance \"VI_1\" sets shared_vips = true but vrrp_instance VI_1 has no virtual_ipaddress: list the agent's VIPs ([\"198.18.0.100/24\"]) in virtual_ipaddress, or set shared_vips = false (agent-owned VIPs, VRRPv2 only)"},
		},
		{
			name:      "VRRPv3 without VIPs",
			conf:      strings.Replace(goodConf, "    router_id a\n", "    router_id a\n    vrrp_version 3\n", 1),
			instances: vi1(),
			want:      []string{"k.conf:9: error: vrrp_instance VI_1 is VRRPv3 (by global_defs vrrp_version at k.conf:3) and has no virtual_ipaddress: keepalived refuses it (\"No VIP specified; at least one is required\"); put the agent's VIPs ([\"198.18.0.100/24\"]) in virtual_ipaddress (shared mode) and set shared_vips = true for instance \"VI_1\" in havip-agent.toml, or run VRRPv2 (agent-owned VIPs, whole-second adverts)"},
		},
		{
			name:      "VRRPv3 without VIPs, shared",
			conf:      strings.Replace(goodConf, "    interface eth0\n", "    interface eth0\n    version 3\n", 1),
			instances: sharedVI1("198.18.0.100/24"),
			want:      []string{"k.conf:8: error: vrrp_instance VI_1 is VRRPv3 (by its version at k.conf:11) and has no virtual_ipaddress: keepalived refuses it (\"No VIP specified; at least one is required\"); put the agent's VIPs ([\"198.18.0.100/24\"]) in virtual_ipaddress"},
		},
		{
			name:      "VRRPv3 with only virtual_ipaddress_excluded",
			conf:      strings.Replace(sharedConf, "virtual_ipaddress {", "virtual_ipaddress_excluded {", 1),
			instances: sharedVI1("198.18.0.100/24"),
			want:      []string{"k.conf:6: error: vrrp_instance VI_1 is VRRPv3 (by global_defs vrrp_version at k.conf:4) and has no virtual_ipaddress: keepalived refuses it"},
		},
		{
			name:      "VRRPv3 without VIPs, not the agent's",
			conf:      goodConf + "vrrp_instance VI_9 {\n    version 3\n}\n",
			instances: vi1(),
			want:      []string{"k.conf:16: error: vrrp_instance VI_9 is VRRPv3 (by its version at k.conf:17) and has no virtual_ipaddress: keepalived refuses it (\"No VIP specified; at least one is required\"); give it a virtual_ipaddress"},
		},
		{
			name:      "VRRPv2 sub-second advert_int",
			conf:      strings.Replace(goodConf, "    interface eth0\n", "    interface eth0\n    advert_int 0.2\n", 1),
			instances: vi1(),
			want:      []string{"k.conf:11: error: advert_int 0.2 in vrrp_instance VI_1, which is VRRPv2 (by default): keepalived rounds a VRRPv2 interval to whole seconds and runs at 1 s; for sub-second adverts use VRRPv3 (version 3 in the instance or vrrp_version 3 in global_defs) with the VIPs in virtual_ipaddress and shared_vips = true in havip-agent.toml, or write advert_int 1"},
		},
		{
			name:      "VRRPv2 advert_int rounded up, not the agent's",
			conf:      "global_defs {\n vrrp_notify_fifo /run/keepalived/havip-agent.fifo\n vrrp_version 2\n}\nvrrp_instance VI_9 {\n advert_int 1.5\n}\n",
			instances: nil,
			want:      []string{"k.conf:6: error: advert_int 1.5 in vrrp_instance VI_9, which is VRRPv2 (by global_defs vrrp_version at k.conf:3): keepalived rounds a VRRPv2 interval to whole seconds and runs at 2 s;"},
		},
		{
			name:      "VRRPv2 whole-second advert_int",
			conf:      strings.Replace(goodConf, "    interface eth0\n", "    interface eth0\n    advert_int 2.000\n", 1),
			instances: vi1(),
		},
		{
			name:      "vrrp_version in the instance",
			conf:      strings.Replace(strings.Replace(sharedConf, "    vrrp_version 3\n", "", 1), "    interface eth0\n", "    interface eth0\n    vrrp_version 3\n", 1),
			instances: sharedVI1("198.18.0.100/24"),
			want: []string{
				"k.conf:7: error: vrrp_version is a global_defs keyword: keepalived ignores it in vrrp_instance VI_1, which stays VRRPv2 (by default); write version 3 here, or move it to global_defs",
				"k.conf:8: error: advert_int 0.2 in vrrp_instance VI_1, which is VRRPv2 (by default)",
			},
		},
		{
			name:      "an entry that is not an address",
			conf:      strings.Replace(sharedConf, "        198.18.0.100/24 dev eth0 no_track\n", "        198.18.0.100/24 dev eth0 no_track\n        vip-a dev eth0\n", 1),
			instances: sharedVI1("198.18.0.100/24"),
			want:      []string{"k.conf:11: error: \"vip-a\" in vrrp_instance VI_1 is not an address: keepalived skips the entry"},
		},
		{name: "shared group", conf: groupConf, instances: sharedGroup("198.18.0.100/24", "198.18.0.101/24")},
		{
			name:      "shared group, a member has an address the agent lacks",
			conf:      groupConf,
			instances: sharedGroup("198.18.0.100/24"),
			want:      []string{"k.conf:16: error: vrrp_instance VI_B (of vrrp_sync_group G) lists 198.18.0.101/24, which the agent's instance \"G\" does not have"},
		},
		{
			name:      "shared group, the agent has an address no member lists",
			conf:      groupConf,
			instances: sharedGroup("198.18.0.100/24", "198.18.0.101/24", "198.18.0.102/24"),
			want:      []string{"k.conf:9: error: the agent's instance \"G\" has the VIP 198.18.0.102/24, which vrrp_sync_group G does not list"},
		},
		{
			name:      "agent-owned group, a member lists a VIP",
			conf:      groupConf,
			instances: []ConfInstance{{Kind: ConfKindGroup, Name: "G", VIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.101/24")}}},
			want:      []string{"k.conf:16: error: vrrp_instance VI_B (of vrrp_sync_group G) lists the agent's VIP 198.18.0.101, but the agent's instance \"G\" does not set shared_vips"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConf([]byte(tc.conf), "k.conf", nil)
			if err != nil {
				t.Fatal(err)
			}
			exp := ConfExpect{FIFO: fifo, Instances: tc.instances, ScriptUserExists: tc.userOK}
			if tc.noFIFO {
				exp.FIFO = ""
			}
			got := LintConf(c, exp)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings %v, want %d %v", len(got), got, len(tc.want), tc.want)
			}
			for i, f := range got {
				if !strings.HasPrefix(f.String(), tc.want[i]) {
					t.Errorf("finding %d: got %q, want prefix %q", i, f, tc.want[i])
				}
			}
		})
	}
}

func TestParseInterval(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1_000_000, true},
		{"0.2", 200_000, true},
		{"1.50", 1_500_000, true},
		{".5", 500_000, true},
		{"2.", 2_000_000, true},
		{"0.000001", 1, true},
		{"0.0000001", 0, false},
		{"", 0, false},
		{".", 0, false},
		{"-1", 0, false},
		{"1e3", 0, false},
		{"1.2.3", 0, false},
	} {
		got, ok := parseInterval(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: got %d, %v, want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseConfErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"global_defs {\n", `k.conf:1: "{" is never closed`},
		{"}\n", `k.conf:1: "}" closes nothing`},
		{"{\n}\n", `k.conf:1: "{" without a keyword`},
	} {
		_, err := ParseConf([]byte(tc.conf), "k.conf", nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.conf, err, tc.want)
		}
	}
}

func TestConfWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`vrrp_instance VI_1 {`, []string{"vrrp_instance", "VI_1", "{"}},
		{`unicast_peer {198.18.0.12}`, []string{"unicast_peer", "{", "198.18.0.12", "}"}},
		{`file "/a b/c" # comment`, []string{"file", "/a b/c"}},
		{`! all comment`, nil},
		{`auth_pass a!b`, []string{"auth_pass", "a!b"}},
	} {
		if got := confWords(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestReadConfIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("keepalived.conf", "global_defs {\n script_user root\n vrrp_notify_fifo /f\n}\ninclude conf.d/*.conf\n")
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("conf.d/vi1.conf", "vrrp_instance VI_1 {\n}\n")
	write("conf.d/loop.conf", "include ../keepalived.conf\n")
	if _, err := ReadConf(filepath.Join(dir, "keepalived.conf")); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("include loop: got %v", err)
	}
	os.Remove(filepath.Join(dir, "conf.d/loop.conf"))
	c, err := ReadConf(filepath.Join(dir, "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := LintConf(c, ConfExpect{FIFO: "/f", Instances: vi1()}); len(got) != 0 {
		t.Errorf("findings %v, want none (VI_1 comes from an include)", got)
	}
}

// TestReadConfRefusesSpecialFiles: a FIFO, a device or a directory given
// as keepalived.conf (or matched by an include) is an error naming it, not
// a hang or an endless read.
func TestReadConfRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(dir, "inc.conf")
	if err := os.WriteFile(inc, []byte("include fifo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{fifo, dir, inc}
	if _, err := os.Stat("/dev/zero"); err == nil {
		paths = append(paths, "/dev/zero")
	}
	for _, p := range paths {
		done := make(chan error, 1)
		go func() { _, err := ReadConf(p); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "fifo: not a regular file (a named pipe)") && !strings.Contains(err.Error(), p+": not a regular file (a ") {
				t.Errorf("%s: got %v, want not a regular file", p, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: ReadConf did not return: it blocked on the file", p)
		}
	}
}

// FuzzParseConf: any input parses or fails with an error naming a line,
// and linting what parses never panics.
func FuzzParseConf(f *testing.F) {
	f.Add([]byte(goodConf))
	f.Add([]byte(sharedConf))
	f.Add([]byte(groupConf))
	f.Add([]byte("a {\n b { c }\n}\n}"))
	f.Add([]byte("{\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := ParseConf(src, "k.conf", nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "k.conf:") {
				t.Fatalf("error without a place: %v", err)
			}
			return
		}
		LintConf(c, ConfExpect{FIFO: "/f", Instances: vi1()})
		LintConf(c, ConfExpect{FIFO: "/f", Instances: append(sharedVI1("198.18.0.100/24"), sharedGroup("198.18.0.101/24")...)})
	})
}
