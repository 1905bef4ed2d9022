package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
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

func TestRunRefusesLooseCredentials(t *testing.T) {
	cfg := writeConfig(t, goodConfig+`
[cloud]
provider = "bce"
instance_id = "i-test"
credentials = "DIR/credentials.toml"
endpoint = "http://127.0.0.1:1"
metadata_endpoint = "http://127.0.0.1:1"
`)
	creds := filepath.Join(filepath.Dir(cfg), "credentials.toml")
	os.WriteFile(creds, []byte("access_key_id = \"ak\"\nsecret_access_key = \"very-secret\"\n"), 0o644)
	code, _, stderr := runCmd("run", "-config", cfg)
	if code == 0 || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("loose credentials: exit %d, %q", code, stderr)
	}
	if strings.Contains(stderr, "very-secret") {
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
