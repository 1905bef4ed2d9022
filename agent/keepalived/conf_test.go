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
