package keepalived

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
			name: "VIP in both places",
			conf: strings.Replace(goodConf, "    ! no virtual_ipaddress\n",
				"    virtual_ipaddress {\n        198.18.0.100/24 dev eth0\n        198.18.0.101\n    }\n", 1),
			instances: vi1(),
			want:      []string{"k.conf:12: warning: vrrp_instance VI_1 also manages 198.18.0.100/24"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConf([]byte(tc.conf), "k.conf", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := LintConf(c, ConfExpect{FIFO: fifo, Instances: tc.instances, ScriptUserExists: tc.userOK})
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
	os.Mkdir(filepath.Join(dir, "conf.d"), 0o755)
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

// FuzzParseConf: any input parses or fails with an error naming a line,
// and linting what parses never panics.
func FuzzParseConf(f *testing.F) {
	f.Add([]byte(goodConf))
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
	})
}
