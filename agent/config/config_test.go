package config

import (
	"flag"
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
		if name == "good" {
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
	}{{"eth0", true}, {"br-lan.10", true}, {"", false}, {"a/b", false}, {"a:b", false}, {"a b", false}, {".", false}, {"0123456789abcdef", false}} {
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
