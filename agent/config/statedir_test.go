package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDir: the history command's state directory comes from
// agent.state_dir alone; the rest of the file may be broken.
func TestStateDir(t *testing.T) {
	const inst = "\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvips = [\"198.18.0.100/24\"]\n"
	for _, tt := range []struct {
		name, src string
		want      string // the directory, or with wantErr the error
		wantErr   bool
	}{
		{name: "set", src: "[agent]\nstate_dir = \"/srv/havip\"\n" + inst, want: "/srv/havip"},
		{name: "no key", src: "[agent]\nsocket = \"/run/x.sock\"\n" + inst, want: DefaultStateDir},
		{name: "empty file", src: "", want: DefaultStateDir},
		{name: "empty value takes the default, as Load does", src: "[agent]\nstate_dir = \"\"\n", want: DefaultStateDir},
		{name: "unknown keys", src: "[agent]\nstate_dri = \"/y\"\nstate_dir = \"/x\"\n[nonsense]\na = 1\n", want: "/x"},
		{name: "wrong type elsewhere", src: "[agent]\nstate_dir = \"/x\"\nsocket = 5\n" + inst, want: "/x"},
		{name: "invalid value elsewhere", src: "[agent]\nstate_dir = \"/x\"\nlog_level = \"verbose\"\n", want: "/x"},
		{name: "syntax error after", src: "[agent]\nstate_dir = \"/x\" # state\n" + inst + "name = \"unterminated\n", want: "/x"},
		{name: "syntax error before", src: "[[instance]]\nname = \"unterminated\n[agent]\nstate_dir = '/x'\n", want: "/x"},
		{name: "syntax error, no state_dir", src: "[agent]\nsocket = \"/x\n", want: DefaultStateDir},
		{name: "another table's state_dir key", src: "[metrics]\nstate_dir = \"/m\"\n[x\n", want: DefaultStateDir},
		{name: "dotted key", src: "agent.state_dir = \"/x\"\n", want: "/x"},
		{name: "inline table", src: "agent = { state_dir = \"/x\" }\n", want: "/x"},
		{name: "relative", src: "[agent]\n\nstate_dir = \"var/lib/x\"\n", wantErr: true, want: `s.toml:3: agent.state_dir: "var/lib/x" is not an absolute path`},
		{name: "relative, syntax error elsewhere", src: "[agent]\nstate_dir = \"x\"\n[x\n", wantErr: true, want: `s.toml:2: agent.state_dir: "x" is not an absolute path`},
		{name: "NUL", src: "[agent]\nstate_dir = \"/x\\u0000y\"\n", wantErr: true, want: `s.toml:2: agent.state_dir: "/x\x00y" contains a NUL byte`},
		{name: "wrong type", src: "[agent]\nstate_dir = 5\n", wantErr: true, want: "s.toml:2: agent.state_dir: wrong type: int64, want string"},
		{name: "agent not a table", src: "agent = 5\n", wantErr: true, want: "s.toml:1: agent: type mismatch"},
		{name: "syntax error in its own line", src: "[agent]\nstate_dir = \"/x\n" + inst, wantErr: true, want: "s.toml:2: agent.state_dir: "},
		{name: "written twice", src: "[agent]\nstate_dir = \"/a\"\nstate_dir = \"/b\"\n", wantErr: true, want: "s.toml:3: agent.state_dir: "},
		{name: "multi-line string after a syntax error", src: "[agent]\nstate_dir = '''/x\n'''\n[x\n", wantErr: true, want: "s.toml:2: agent.state_dir: is not a single-line string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.toml")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := StateDir(path)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error %q", got, tt.want)
				}
				msg := strings.ReplaceAll(err.Error(), filepath.Dir(path)+"/", "")
				if !strings.HasPrefix(msg, tt.want) {
					t.Errorf("error %q, want prefix %q", msg, tt.want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestStateDirFiles(t *testing.T) {
	got, err := StateDir(filepath.Join(t.TempDir(), "missing.toml"))
	if err != nil || got != DefaultStateDir {
		t.Errorf("missing file: got %q, %v; want %q", got, err, DefaultStateDir)
	}
	// Every file Load accepts gives the directory Load reads.
	files, _ := filepath.Glob("testdata/good*.toml")
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := StateDir(f); err != nil || got != c.Agent.StateDir {
			t.Errorf("%s: got %q, %v; want %q", f, got, err, c.Agent.StateDir)
		}
	}
	for name, path := range specialFiles(t) {
		err := noHang(t, "StateDir", func() error { _, err := StateDir(path); return err })
		if err == nil || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("%s: got %v, want an error naming it", name, err)
		}
	}
	if os.Geteuid() != 0 {
		path := filepath.Join(t.TempDir(), "secret.toml")
		if err := os.WriteFile(path, []byte("[agent]\nstate_dir = \"/x\"\n"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := StateDir(path); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("unreadable: got %v, want fs.ErrPermission", err)
		}
	}
}

// FuzzStateDirValue: any file gives a directory, the default or an error
// naming the file, never a panic.
func FuzzStateDirValue(f *testing.F) {
	f.Add("[agent]\nstate_dir = \"/var/lib/x\"\n")
	f.Add("[agent]\r\nstate_dir = \"/x\"\r\n[x\r\n")
	f.Add("agent = { state_dir = \"/x\" }\n")
	f.Add("[[instance]]\nname = \"x\n[agent]\nstate_dir = '''/a'''\n")
	f.Fuzz(func(t *testing.T, src string) {
		if _, _, err := stateDirValue("f.toml", src); err != nil && !strings.HasPrefix(err.Error(), "f.toml") {
			t.Fatalf("error without a place: %v", err)
		}
	})
}
