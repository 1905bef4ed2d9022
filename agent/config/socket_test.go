package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/health"
)

// specialFiles makes, in a temporary directory, files that are not
// configuration files: reading them whole would block or never end.
func specialFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.toml")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: the size is what counts, not the disk.
	if err := f.Truncate(MaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"a named pipe (FIFO)": fifo,
		"a directory":         dir,
		"huge":                huge,
		"a symlink to a FIFO": link,
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		files["a character device"] = "/dev/zero"
	}
	return files
}

// noHang fails the test when fn has not returned within a generous bound:
// the point is that it returns at all, not how fast.
func noHang(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return: it blocked on the file", what)
		return nil
	}
}

func TestLoadRefusesSpecialFiles(t *testing.T) {
	for name, path := range specialFiles(t) {
		t.Run(name, func(t *testing.T) {
			err := noHang(t, "Load", func() error { _, err := Load(path); return err })
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q does not start with the path", err)
			}
			want := "not a regular file"
			if name == "huge" {
				want = "larger than the 1048576 a configuration file may have"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want it to say %q", err, want)
			}
			err = noHang(t, "SocketPath", func() error { _, err := SocketPath(path); return err })
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("SocketPath: got %v, want %q", err, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/missing.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
	if got, want := err.Error(), "testdata/missing.toml: no such file or directory"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestSocketPath: the client commands' socket comes from agent.socket
// alone; the rest of the file may be broken.
func TestSocketPath(t *testing.T) {
	const inst = "\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvips = [\"198.18.0.100/24\"]\n"
	for _, tt := range []struct {
		name, src string
		want      string // the socket, or with wantErr the error
		wantErr   bool
	}{
		{name: "set", src: "[agent]\nsocket = \"/run/x/a.sock\"\n" + inst, want: "/run/x/a.sock"},
		{name: "no key", src: "[agent]\nstate_dir = \"/var/lib/x\"\n" + inst, want: DefaultSocket},
		{name: "empty file", src: "", want: DefaultSocket},
		{name: "empty value takes the default, as Load does", src: "[agent]\nsocket = \"\"\n", want: DefaultSocket},
		{name: "unknown keys", src: "[agent]\nsokcet = \"/run/y.sock\"\nsocket = \"/run/x.sock\"\n[nonsense]\na = 1\n" + inst, want: "/run/x.sock"},
		{name: "wrong type elsewhere", src: "[agent]\nsocket = \"/run/x.sock\"\n" + inst + "garp_count = \"five\"\n", want: "/run/x.sock"},
		{name: "invalid value elsewhere", src: "[agent]\nsocket = \"/run/x.sock\"\nlog_level = \"verbose\"\n", want: "/run/x.sock"},
		{name: "no instance", src: "[agent]\nsocket = \"/run/x.sock\"\n", want: "/run/x.sock"},
		{name: "syntax error after", src: "[agent]\nsocket = \"/run/x.sock\" # the socket\n" + inst + "name = \"unterminated\n", want: "/run/x.sock"},
		{name: "syntax error before", src: "[[instance]]\nname = \"unterminated\n[agent]\nsocket = '/run/x.sock'\n", want: "/run/x.sock"},
		{name: "syntax error, no socket", src: "[agent]\nstate_dir = \"/x\n", want: DefaultSocket},
		{name: "another table's socket key", src: "[metrics]\nsocket = \"/run/m.sock\"\n[x\n", want: DefaultSocket},
		{name: "dotted key", src: "agent.socket = \"/run/x.sock\"\n", want: "/run/x.sock"},
		{name: "inline table", src: "agent = { socket = \"/run/x.sock\" }\n", want: "/run/x.sock"},
		{name: "relative", src: "[agent]\n\nsocket = \"run/x.sock\"\n", wantErr: true, want: `s.toml:3: agent.socket: "run/x.sock" is not an absolute path`},
		{name: "relative, syntax error elsewhere", src: "[agent]\nsocket = \"run/x.sock\"\n[x\n", wantErr: true, want: `s.toml:2: agent.socket: "run/x.sock" is not an absolute path`},
		{name: "a directory", src: "[agent]\nsocket = \"/run/\"\n", wantErr: true, want: `s.toml:2: agent.socket: "/run/" names a directory, not a socket`},
		{name: "NUL", src: "[agent]\nsocket = \"/run/x\\u0000.sock\"\n", wantErr: true, want: `s.toml:2: agent.socket: "/run/x\x00.sock" contains a NUL byte`},
		{name: "too long", src: "[agent]\nsocket = \"/" + strings.Repeat("a", 107) + "\"\n", wantErr: true, want: `s.toml:2: agent.socket: "/` + strings.Repeat("a", 107) + `" is longer than the 107 bytes a unix socket path may have`},
		{name: "wrong type", src: "[agent]\nsocket = 5\n", wantErr: true, want: "s.toml:2: agent.socket: wrong type: int64, want string"},
		{name: "agent not a table", src: "agent = 5\n", wantErr: true, want: "s.toml:1: agent: type mismatch"},
		{name: "syntax error in the socket's line", src: "[agent]\nsocket = \"/run/x.sock\n" + inst, wantErr: true, want: "s.toml:2: agent.socket: "},
		{name: "written twice", src: "[agent]\nsocket = \"/run/a.sock\"\nsocket = \"/run/b.sock\"\n", wantErr: true, want: "s.toml:3: agent.socket: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.toml")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := SocketPath(path)
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

func TestSocketPathFiles(t *testing.T) {
	got, err := SocketPath(filepath.Join(t.TempDir(), "missing.toml"))
	if err != nil || got != DefaultSocket {
		t.Errorf("missing file: got %q, %v; want %q", got, err, DefaultSocket)
	}
	// Every file Load accepts gives the socket Load reads.
	files, _ := filepath.Glob("testdata/good*.toml")
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := SocketPath(f); err != nil || got != c.Agent.Socket {
			t.Errorf("%s: got %q, %v; want %q", f, got, err, c.Agent.Socket)
		}
	}
	if os.Geteuid() != 0 {
		path := filepath.Join(t.TempDir(), "secret.toml")
		if err := os.WriteFile(path, []byte("[agent]\nsocket = \"/run/x.sock\"\n"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := SocketPath(path); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("unreadable: got %v, want fs.ErrPermission", err)
		}
	}
}

// FuzzSocketValue: any file gives a socket, the default or an error naming
// the file, never a panic.
func FuzzSocketValue(f *testing.F) {
	f.Add("[agent]\nsocket = \"/run/x.sock\"\n")
	f.Add("[agent]\r\nsocket = \"/run/x.sock\"\r\n[x\r\n")
	f.Add("agent = { socket = \"/run/x.sock\" }\n")
	f.Add("[[instance]]\nname = \"x\n[agent]\nsocket = '''/a'''\n")
	f.Fuzz(func(t *testing.T, src string) {
		if _, _, err := socketValue("f.toml", src); err != nil && !strings.HasPrefix(err.Error(), "f.toml") {
			t.Fatalf("error without a place: %v", err)
		}
	})
}

// BenchmarkSocketPath: the client commands run as vrrp_scripts every few
// seconds; compare with BenchmarkLoad.
func BenchmarkSocketPath(b *testing.B) {
	for b.Loop() {
		if _, err := SocketPath("testdata/good.toml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load("testdata/good.toml"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTrackFileIsTheConfiguration: a track file written over the
// configuration would leave the agent unable to start again.
func TestTrackFileIsTheConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "havip-agent.toml")
	src := "[[check]]\nname = \"web\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:80\"\ntrack_file = \"" + path + "\"\n" +
		"[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvips = [\"198.18.0.100/24\"]\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":5: check[0].track_file: \"" + path + "\" is also the configuration file itself"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want prefix %q", err, want)
	}
}

// TestCheckTimeoutRuleIsHealths: the timeout/interval rule belongs to
// package health; the configuration reports what health reports and has
// no rule of its own.
func TestCheckTimeoutRuleIsHealths(t *testing.T) {
	for _, timeout := range []string{"1s", "2s", "3s"} {
		src := "[[check]]\nname = \"web\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:80\"\ninterval = \"2s\"\ntimeout = \"" + timeout + "\"\n" +
			"[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvips = [\"198.18.0.100/24\"]\n"
		_, err := Parse("t.toml", []byte(src))
		d, _ := time.ParseDuration(timeout)
		herr := health.Spec{Name: "web", Type: health.TypeTCP, Target: "127.0.0.1:80", Interval: 2 * time.Second, Timeout: d}.WithDefaults().Validate()
		if (err == nil) != (herr == nil) {
			t.Errorf("timeout %s: config says %v, health says %v", timeout, err, herr)
		}
	}
}
