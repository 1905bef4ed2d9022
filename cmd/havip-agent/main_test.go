package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/cloud/emulator"
)

// lockedBuffer is a bytes.Buffer a logger and the test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "havip-agent.toml")
	body = strings.ReplaceAll(body, "DIR", dir)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConfig = `[agent]
state_dir = "DIR/state"
socket = "DIR/agent.sock"
[keepalived]
fifo = "DIR/k.fifo"
pid_file = ""
[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
`

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"notify", "INSTANCE"},
		{"check"},
		{"config"},
		{"config", "check", "extra"},
		{"status", "-bogus"},
		{"run", "extra"},
	} {
		code, _, stderr := runCmd(args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if args != nil && !strings.Contains(stderr, "havip-agent") {
			t.Errorf("%q: no hint on stderr: %q", args, stderr)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	code, out, _ := runCmd("config", "check", "-config", writeConfig(t, goodConfig))
	if code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("good config: exit %d, %q", code, out)
	}
	bad := writeConfig(t, strings.Replace(goodConfig, "198.18.0.100/24", "198.18.0.300/24", 1))
	code, _, stderr := runCmd("config", "check", "-config", bad)
	if code != 1 || !strings.Contains(stderr, `havip-agent.toml:10: instance[0].vips[0]: "198.18.0.300/24" is not an IP prefix`) {
		t.Errorf("bad config: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCmd("run", "-config", bad)
	if code != 2 || !strings.Contains(stderr, "not starting") {
		t.Errorf("run with a bad config: exit %d, %q", code, stderr)
	}
}

func TestConfigCheckKeepalived(t *testing.T) {
	cfg := writeConfig(t, goodConfig)
	fifo := filepath.Join(filepath.Dir(cfg), "k.fifo")
	ka := filepath.Join(filepath.Dir(cfg), "keepalived.conf")
	for _, tc := range []struct {
		name, conf string
		code       int
		stderr     string
	}{
		{"good", "global_defs {\n script_user root\n enable_script_security\n vrrp_notify_fifo " + fifo + "\n}\nvrrp_instance VI_1 {\n}\n", 0, ""},
		{"fifo before script_user", "global_defs {\n vrrp_notify_fifo " + fifo + "\n script_user root\n enable_script_security\n}\nvrrp_instance VI_1 {\n}\n", 1,
			"keepalived.conf:2: error: vrrp_notify_fifo comes before script_user"},
		{"no such instance", "global_defs {\n vrrp_notify_fifo " + fifo + "\n}\n", 1, "keepalived.conf: error: no vrrp_instance VI_1"},
		{"unbalanced", "global_defs {\n", 1, "keepalived.conf:1: \"{\" is never closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(ka, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runCmd("config", "check", "-config", cfg, "-keepalived", ka)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr, tc.stderr)
			}
			if tc.code == 0 && !strings.Contains(out, "keepalived.conf: OK") {
				t.Errorf("stdout %q", out)
			}
		})
	}
	if code, _, stderr := runCmd("config", "check", "-config", cfg, "-keepalived", ka+".missing"); code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

// Item 7: a cloud side that cannot be set up (here: a credentials file
// others may read) used to stop "run" before it opened the FIFO, taking
// the local path down with it. Now the daemon runs, says why the cloud is
// not ready, and keeps trying.
func TestRunStartsWithoutTheCloud(t *testing.T) {
	cfg := writeConfig(t, goodConfig+`
[metrics]
listen = ""
[cloud]
provider = "bce"
instance_id = "i-test"
credentials = "DIR/credentials.toml"
endpoint = "http://127.0.0.1:1"
eip_endpoint = "http://127.0.0.1:1"
metadata_endpoint = "http://127.0.0.1:1"
`)
	dir := filepath.Dir(cfg)
	creds := filepath.Join(dir, "credentials.toml")
	if err := os.WriteFile(creds, []byte("access_key_id = \"ak\"\nsecret_access_key = \"very-secret\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "-config", cfg}, io.Discard, &stderr) }()
	var st agent.Status
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := control.Do(context.Background(), filepath.Join(dir, "agent.sock"), control.Request{Op: control.OpStatus})
		if err == nil && json.Unmarshal(resp.Status, &st) == nil && st.Cloud != nil && st.Cloud.Reason != "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	code := <-done
	if st.Cloud == nil || st.Cloud.Ready || !strings.Contains(st.Cloud.Reason, "chmod 600") {
		t.Errorf("status does not say why the cloud is not ready: %+v", st.Cloud)
	}
	if code != 0 || !strings.Contains(stderr.String(), "chmod 600") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "very-secret") {
		t.Error("secret printed")
	}
}

func TestNotifyWithoutDaemon(t *testing.T) {
	code, _, stderr := runCmd("notify", "-config", writeConfig(t, goodConfig), "INSTANCE", "VI_1", "MASTER", "100")
	if code != 1 || !strings.Contains(stderr, "not reachable") {
		t.Errorf("exit %d, %q", code, stderr)
	}
	code, _, _ = runCmd("check", "-config", writeConfig(t, goodConfig), "web")
	if code != 2 {
		t.Errorf("check without daemon: exit %d, want 2", code)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd("version")
	if code != 0 || !strings.Contains(out, "havip-agent") || !strings.Contains(out, "go1") {
		t.Errorf("exit %d, %q", code, out)
	}
}

// emulatorSeed is the world of TestConfigCheckCloud: the node, its HAVIP
// and a custom route to it.
func emulatorSeed() emulator.Seed {
	return emulator.NewSeedBuilder("c", "ak-cli", "sk-cli-secret").
		Instance("cli", "198.18.0.11").
		RouteTable("rt-c").
		RouteRule(emulator.SeedRouteRule{ID: "rr-1", RouteTableID: "rt-c", Destination: "198.19.0.0/24", NextHopType: "custom", NextHopID: "i-cli"}).
		HAVIP("havip-c", "198.18.0.100", "", "i-cli").
		Seed()
}

// TestConfigCheckCloud runs "config check -cloud" against the emulator.
func TestConfigCheckCloud(t *testing.T) {
	emu, err := emulator.New(emulatorSeed(), emulator.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	defer srv.Close()
	for _, tt := range []struct {
		name, havip string
		want        int
		wantOut     string
	}{
		// The route is a single-line rule (one update); this node is bound to the HAVIP.
		{"good", "havip-c", 0, "a failover to this node sends 1 mutating call (the HAVIP attach and route writes first):\n  havip/havip-c"},
		{"unknown havip", "havip-nope", 1, "FAIL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, goodConfig+fmt.Sprintf(`havip = %q
[[instance.route]]
table = "rt-c"
destination = "198.19.0.0/24"

[cloud]
provider = "bce"
instance_id = "i-cli"
credentials = "DIR/credentials.toml"
endpoint = %q
eip_endpoint = %q
metadata_endpoint = %q
timeout = "1s"
`, tt.havip, srv.URL, srv.URL, srv.URL))
			creds := filepath.Join(filepath.Dir(cfg), "credentials.toml")
			if err := os.WriteFile(creds, []byte("access_key_id = \"ak-cli\"\nsecret_access_key = \"sk-cli-secret\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runCmd("config", "check", "-cloud", "-config", cfg)
			if code != tt.want || !strings.Contains(out, tt.wantOut) {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.want, out, stderr)
			}
			if strings.Contains(out+stderr, "sk-cli-secret") {
				t.Error("secret printed")
			}
			for _, r := range emu.Requests() {
				if r.Method != "GET" {
					t.Errorf("config check -cloud sent %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

// Issue 11, item 4: the client commands read only agent.socket, so a typo
// saved in the file while the daemon runs must not break keepalived's
// vrrp_script and notify calls (they answered with the configuration's
// error instead of asking the daemon).
func TestClientsIgnoreTheRestOfTheFile(t *testing.T) {
	cfg := writeConfig(t, goodConfig+"garp_count = \"five\"\n[agent2]\nbogus = 1\n")
	for _, args := range [][]string{
		{"notify", "-config", cfg, "INSTANCE", "VI_1", "MASTER", "100"},
		{"check", "-config", cfg, "web"},
		{"status", "-config", cfg},
		{"reload", "-config", cfg},
	} {
		_, _, stderr := runCmd(args...)
		if !strings.Contains(stderr, "not reachable") || !strings.Contains(stderr, filepath.Join(filepath.Dir(cfg), "agent.sock")) {
			t.Errorf("%s: %q, want the daemon at the configured socket to be asked", args[0], stderr)
		}
	}
}
