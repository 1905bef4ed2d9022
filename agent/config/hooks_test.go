package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/hooks"
)

// A configuration with hooks and drain files: the hooks as package hooks
// runs them (defaults applied, events parsed, retries defaulted only for
// http), a drain file under a directory the unit makes private is a
// warning, and the summary names both.
func TestLoadHooks(t *testing.T) {
	c, err := Load("testdata/good-hooks.toml")
	if err != nil {
		t.Fatal(err)
	}
	hs := c.HookSpecs()
	if len(hs) != 3 {
		t.Fatalf("%d hooks, want 3", len(hs))
	}
	want := []struct {
		name    string
		typ     hooks.Type
		events  string
		timeout time.Duration
		retries int
	}{
		{"pager", hooks.TypeExec, "transition:MASTER conflict drain resume", hooks.DefaultTimeout, 0},
		{"inventory", hooks.TypeHTTP, "", 5 * time.Second, hooks.DefaultRetries},
		{"once", hooks.TypeHTTP, "", hooks.DefaultTimeout, 0},
	}
	for i, w := range want {
		h := hs[i]
		var ev []string
		for _, e := range h.Events {
			ev = append(ev, e.String())
		}
		if h.Name != w.name || h.Type != w.typ || strings.Join(ev, " ") != w.events || h.Timeout != w.timeout || h.Retries != w.retries {
			t.Errorf("hook %d = %+v, want %+v", i, h, w)
		}
		if err := h.Validate(); err != nil {
			t.Errorf("hook %s: %v", h.Name, err)
		}
		if h.Headers != nil {
			t.Errorf("hook %s has headers before ReadHookFiles: %v", h.Name, h.Headers)
		}
	}
	if c.Instances[0].DrainFile != "/run/havip-agent/track/drain-VI_1" {
		t.Errorf("drain_file %q", c.Instances[0].DrainFile)
	}
	golden(t, "testdata/good-hooks.warnings.golden", strings.Join(c.Warnings(), "\n")+"\n")
	golden(t, "testdata/good-hooks.summary.golden", c.Summary())
	if c.Agent.HistoryMaxBytes != DefaultHistoryMaxBytes || c.Agent.HistoryKeep != DefaultHistoryKeep {
		t.Errorf("history defaults: %d, %d", c.Agent.HistoryMaxBytes, c.Agent.HistoryKeep)
	}
}

// history_keep = 0 keeps no rotated file; it is not the default.
func TestHistoryKeepZero(t *testing.T) {
	c, err := Parse("h.toml", []byte("[agent]\nhistory_keep = 0\nhistory_max_bytes = 65536\n[[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvips = [\"198.18.0.1/24\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.HistoryKeep != 0 || c.Agent.HistoryMaxBytes != 65536 {
		t.Errorf("history: %d, %d", c.Agent.HistoryMaxBytes, c.Agent.HistoryKeep)
	}
}

// ReadHookFiles reads each headers file through the reader it is given and
// reports what is wrong at the hook's headers_file line.
func TestReadHookFiles(t *testing.T) {
	c, err := Load("testdata/good-hooks.toml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/etc/havip-agent/hook-headers": "# token\nAuthorization: Bearer s3cret\n"}
	read := func(p string) ([]byte, error) {
		b, ok := files[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return []byte(b), nil
	}
	if err := c.ReadHookFiles(read); err != nil {
		t.Fatal(err)
	}
	if got := c.HookSpecs()[1].Headers; got["Authorization"] != "Bearer s3cret" || len(got) != 1 {
		t.Errorf("headers %v", got)
	}
	if h := c.HookSpecs()[0]; h.Headers != nil {
		t.Errorf("exec hook got headers %v", h.Headers)
	}
	files["/etc/havip-agent/hook-headers"] = "Authorization Bearer s3cret\nContent-Type: text/plain\n"
	err = c.ReadHookFiles(read)
	if err == nil {
		t.Fatal("bad headers accepted")
	}
	got := err.Error()
	for _, want := range []string{
		"testdata/good-hooks.toml:11: hook[1].headers_file: /etc/havip-agent/hook-headers:1: want \"Name: value\"",
		"/etc/havip-agent/hook-headers:2: header \"Content-Type\": set by the agent",
		"testdata/good-hooks.toml:19: hook[2].headers_file:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("error %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "s3cret") {
		t.Errorf("error repeats the secret: %q", got)
	}
	delete(files, "/etc/havip-agent/hook-headers")
	if err := c.ReadHookFiles(read); err == nil || !strings.Contains(err.Error(), "hook[1].headers_file: file does not exist") {
		t.Errorf("missing file: %v", err)
	}
}

// SecretFileReader refuses what others may read, what another user owns,
// and what is not a regular file, saying how to fix it.
func TestSecretFileReader(t *testing.T) {
	dir := t.TempDir()
	me := os.Geteuid()
	read := SecretFileReader(me)
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("X-Token: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := read(ok); err != nil || string(b) != "X-Token: 1\n" {
		t.Errorf("read(0600 file) = %q, %v", b, err)
	}
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte("X-Token: 1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := read(loose); err == nil || !strings.Contains(err.Error(), "mode 0640") || !strings.Contains(err.Error(), "chmod 600 "+loose) {
		t.Errorf("read(0640 file): %v", err)
	}
	if _, err := SecretFileReader(me + 1)(ok); err == nil || !strings.Contains(err.Error(), "owned by uid") {
		t.Errorf("read(another's file): %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := read(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("read(fifo): %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxHeadersFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := read(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("read(big): %v", err)
	}
}
