package config

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestLoadGood(t *testing.T) {
	c, err := Load("testdata/good.toml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := len(c.Instances), 2; got != want {
		t.Fatalf("instances: got %d, want %d", got, want)
	}
	in := c.Instances[1]
	if in.Kind != KindGroup || in.GARPCount != DefaultGARPCount || in.GARPInterval.Duration != DefaultGARPInterval || !*in.GARPReply {
		t.Errorf("defaults not applied: %+v", in)
	}
	if got, want := c.Instances[0].VIPs[1].String(), "2001:db8::100/64"; got != want {
		t.Errorf("vip: got %s, want %s", got, want)
	}
	if c.Keepalived.DeadAfter.Duration != 2*time.Second || c.Cloud != nil {
		t.Errorf("keepalived/cloud: %+v %+v", c.Keepalived, c.Cloud)
	}
	golden(t, "testdata/good.summary.golden", c.Summary())
}

func TestPIDFileEmptyDisablesWatch(t *testing.T) {
	src := "[keepalived]\npid_file = \"\"\n[[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvips = [\"198.18.0.1/24\"]\n"
	c, err := Parse("x.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Keepalived.PIDFile != "" {
		t.Errorf("pid_file: got %q, want empty", c.Keepalived.PIDFile)
	}
	c, err = Parse("x.toml", []byte(src[strings.Index(src, "[[instance]]"):]))
	if err != nil {
		t.Fatal(err)
	}
	if c.Keepalived.PIDFile != DefaultPIDFile {
		t.Errorf("pid_file default: got %q", c.Keepalived.PIDFile)
	}
}

func TestLoadErrors(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		if strings.HasPrefix(name, "good") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			golden(t, "testdata/"+name+".golden", err.Error()+"\n")
		})
	}
}

func TestValidateCommands(t *testing.T) {
	c, err := Parse("c.toml", []byte(`[[check]]
name = "db"
type = "exec"
command = ["/bin/false"]

[[instance]]
name = "A"
interface = "eth0"
vips = ["198.18.0.1/24"]
checks = ["db"]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.ValidateCommands(func(argv []string) error { return os.ErrPermission })
	if got, want := err.Error(), "c.toml:4: check[0].command: permission denied"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestInterfaceNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"eth0", true}, {"br-lan.10", true}, {"0123456789abcde", true}, {"..a", true},
		{"", false}, {"a/b", false}, {"a:b", false}, {"a b", false}, {".", false}, {"..", false},
		{"0123456789abcdef", false}, {"eth\x000", false}, {"\x00", false}, {"éth0", false},
		{"eth0\xff", false}, {"eth\t0", false}, {"eth0\n", false}, {"eth\x7f", false}, {"eth\x01", false},
	} {
		if got := ValidInterfaceName(tt.name); got != tt.want {
			t.Errorf("ValidInterfaceName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestWarnings: plain http to a host other than loopback is a warning
// naming the line and key; the metadata service's own address and
// loopback hosts are not.
func TestWarnings(t *testing.T) {
	c, err := Load("testdata/good-warnings.toml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	golden(t, "testdata/good-warnings.golden", strings.Join(c.Warnings(), "\n")+"\n")
	for _, f := range []string{"testdata/good.toml", "testdata/good-metadata.toml"} {
		c, err := Load(f)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("%s: got warnings %q, want none", f, w)
		}
	}
	// Unused endpoints are not warned about.
	c, err = Parse("n.toml", []byte("[cloud]\nprovider = \"none\"\nendpoint = \"http://198.18.0.1\"\n[[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvips = [\"198.18.0.1/24\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("provider none: got warnings %q, want none", w)
	}
}

func TestVIPProblem(t *testing.T) {
	for _, tt := range []struct {
		vip  string
		want string // "" when the VIP is accepted, else a part of the reason
	}{
		{"198.18.0.100/24", ""},
		{"10.0.0.1/8", ""},
		{"198.18.1.0/31", ""},
		{"198.18.1.1/31", ""},
		{"198.18.2.0/32", ""},
		{"198.18.2.255/32", ""},
		{"2001:db8::/64", ""},
		{"2001:db8::1/16", ""},
		{"198.18.0.1/0", "wider than /8"},
		{"198.18.0.1/1", "wider than /8"},
		{"10.0.0.1/7", "wider than /8"},
		{"2001:db8::1/15", "wider than /16"},
		{"2001:db8::1/0", "wider than /16"},
		{"198.18.0.0/24", "network address of 198.18.0.0/24"},
		{"198.18.0.255/24", "broadcast address of 198.18.0.0/24"},
		{"198.18.0.127/25", "broadcast address of 198.18.0.0/25"},
		{"198.18.0.128/25", "network address of 198.18.0.128/25"},
		{"198.19.255.255/15", "broadcast address of 198.18.0.0/15"},
		{"::ffff:198.18.3.1/120", "IPv4-mapped IPv6 address (write it as 198.18.3.1/24)"},
		{"::ffff:198.18.3.1/64", "IPv4-mapped"},
		{"fe80::1/64", "link-local"},
		{"febf::1/64", "link-local"},
		{"169.254.169.254/16", "link-local"},
		{"224.0.0.18/24", "multicast"},
		{"ff02::12/64", "multicast"},
		{"0.0.0.0/8", "unspecified"},
		{"::/64", "unspecified"},
		{"127.0.0.2/8", "loopback"},
		{"::1/128", "loopback"},
		{"255.255.255.255/32", "limited broadcast"},
	} {
		got := vipProblem(netip.MustParsePrefix(tt.vip))
		if (got == "") != (tt.want == "") || !strings.Contains(got, tt.want) {
			t.Errorf("vipProblem(%s) = %q, want %q", tt.vip, got, tt.want)
		}
	}
}
