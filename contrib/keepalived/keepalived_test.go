package keepalived_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/havip-agent/havip-agent/e2e/netns"
)

// TestExamplesParse runs "keepalived -t -f" on every example, inside a
// fresh namespace that has an eth0, so the interfaces the
// examples name exist whatever the machine has.
func TestExamplesParse(t *testing.T) {
	netns.Require(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed")
		}
		t.Skip("keepalived is not installed")
	}
	r := netns.NewT(t)
	if _, err := r.AddNS("kt"); err != nil {
		t.Fatal(err)
	}
	// A veth pair: dummy links need a module this kernel may lack.
	if err := r.Veth("kt", "eth0", "kt", "peer0"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.conf")
	if len(files) < 3 {
		t.Fatalf("found %d examples", len(files))
	}
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		out, err := r.Command("kt", "keepalived", "-t", "-f", abs).CombinedOutput()
		// keepalived exits 5 for warnings; the only one expected is that
		// no VIP is configured, which is the point: the agent owns them.
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" && !strings.Contains(l, "No VIP specified") {
				t.Errorf("%s: %s", f, l)
			}
		}
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 5) {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}
