package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/control"
)

func TestDrainUsage(t *testing.T) {
	cfg := writeConfig(t, goodConfig)
	for _, args := range [][]string{
		{"drain", "-config", cfg, "--timeout", "0s"},
		{"drain", "-config", cfg, "--timeout", "2h"},
		{"drain", "-config", cfg, "--timeout", "soon"},
		{"drain", "-config", cfg, "VI_1", "--", "-x"},
		{"resume", "-config", cfg, "--force"},
	} {
		code, _, stderr := runCmd(args...)
		if code != exitUsage || !strings.Contains(stderr, "havip-agent") {
			t.Errorf("%q: exit %d, %q", args, code, stderr)
		}
	}
	for _, cmd := range []string{"drain", "resume"} {
		code, _, stderr := runCmd(cmd, "-config", cfg, "VI_1")
		if code != exitFail || !strings.Contains(stderr, "not reachable") {
			t.Errorf("%s without a daemon: exit %d, %q", cmd, code, stderr)
		}
	}
}

// drain and resume against a running daemon (no cloud, no keepalived): the
// instance is not MASTER, so the drain is complete at once; resume lifts
// it. A drain of an instance without a drain_file is refused with the fix.
func TestDrainThroughRun(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(goodConfig, `vips = ["198.18.0.100/24"]`, `vips = ["198.18.0.100/24"]
drain_file = "DIR/track/drain-VI_1"`, 1)+`
[[instance]]
name = "VI_2"
interface = "eth0"
vips = ["198.18.0.101/24"]
[metrics]
listen = ""
`)
	dir := filepath.Dir(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "-config", cfg}, io.Discard, io.Discard) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := control.Do(context.Background(), filepath.Join(dir, "agent.sock"), control.Request{Op: control.OpStatus}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	drainFile := filepath.Join(dir, "track", "drain-VI_1")
	if b, _ := os.ReadFile(drainFile); string(b) != "0\n" {
		t.Errorf("drain file at start %q", b)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"drain", "-config", cfg, "--timeout", "5s", "VI_1"}, &out, &errb)
	if code != exitOK || !strings.Contains(out.String(), "VI_1  drained: "+drainFile+" = 1") || !strings.Contains(out.String(), "was not MASTER (UNKNOWN)") {
		t.Errorf("drain: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if b, _ := os.ReadFile(drainFile); string(b) != "1\n" {
		t.Errorf("drain file %q", b)
	}
	code, stdout, stderr := runCmd("status", "-config", cfg)
	if code != exitOK || !strings.Contains(stdout, "DRAINED since") {
		t.Errorf("status: exit %d, %s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd("resume", "-config", cfg)
	if code != exitOK || !strings.Contains(stdout, "VI_1 resumed: "+drainFile+" = 0") {
		t.Errorf("resume: exit %d, %q, %q", code, stdout, stderr)
	}
	code, _, stderr = runCmd("drain", "-config", cfg, "VI_2")
	if code != exitFail || !strings.Contains(stderr, "instance VI_2 has no drain_file") {
		t.Errorf("drain without a drain_file: exit %d, %q", code, stderr)
	}
	code, stdout, _ = runCmd("history", "-config", cfg, "VI_1")
	if code != exitOK || !strings.Contains(stdout, "drain: havip-agent drain (timeout 5s)") || !strings.Contains(stdout, "resume: havip-agent resume") {
		t.Errorf("history: exit %d\n%s", code, stdout)
	}
}

// config check -keepalived names an instance's drain_file keepalived does
// not watch with weight 0, and passes once it does.
func TestConfigCheckKeepalivedDrainFile(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(goodConfig, `vips = ["198.18.0.100/24"]`, `vips = ["198.18.0.100/24"]
drain_file = "/run/havip-agent/track/drain-VI_1"`, 1))
	dir := filepath.Dir(cfg)
	ka := filepath.Join(dir, "keepalived.conf")
	global := "global_defs {\n script_user root\n vrrp_notify_fifo " + filepath.Join(dir, "k.fifo") + "\n}\n"
	for _, tc := range []struct {
		name, conf string
		code       int
		stderr     string
	}{
		{"not watched", global + "vrrp_instance VI_1 {\n}\n", 1, "error: no track_file block watches /run/havip-agent/track/drain-VI_1"},
		{"weight 1", global + "track_file drain_VI_1 {\n file /run/havip-agent/track/drain-VI_1\n}\nvrrp_instance VI_1 {\n track_file {\n  drain_VI_1\n }\n}\n", 1,
			"keepalived.conf:5: error: vrrp_instance VI_1 tracks the drain file /run/havip-agent/track/drain-VI_1 with weight 1"},
		{"weight 0", global + "track_file drain_VI_1 {\n file /run/havip-agent/track/drain-VI_1\n weight 0\n}\nvrrp_instance VI_1 {\n track_file {\n  drain_VI_1\n }\n}\n", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(ka, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCmd("config", "check", "-config", cfg, "-keepalived", ka)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr, tc.stderr)
			}
		})
	}
}

// config check reads a hook's headers file like the credentials: one
// others may read is refused at the hook's line, with the fix.
func TestConfigCheckHookHeaders(t *testing.T) {
	cfg := writeConfig(t, goodConfig+`
[[hook]]
name = "web"
type = "http"
url = "https://hooks.example.com/x"
headers_file = "DIR/headers"
`)
	headers := filepath.Join(filepath.Dir(cfg), "headers")
	if err := os.WriteFile(headers, []byte("Authorization: Bearer t0ken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd("config", "check", "-config", cfg)
	if code != exitFail || !strings.Contains(stderr, "havip-agent.toml:16: hook[0].headers_file: "+headers+": mode 0644") || !strings.Contains(stderr, "chmod 600") || strings.Contains(stderr, "t0ken") {
		t.Errorf("loose headers file: exit %d, %q", code, stderr)
	}
	if err := os.Chmod(headers, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("config", "check", "-config", cfg)
	if code != exitOK || !strings.Contains(out, "hook web: http https://hooks.example.com/x on every event") {
		t.Errorf("good headers file: exit %d, %q, %q", code, out, stderr)
	}
}
