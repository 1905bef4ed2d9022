package e2e

import (
	"errors"
	"fmt"
	"github.com/havip-agent/havip-agent/e2e/rig"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestIntegrationHealthMovesMaster: a failing check on the MASTER moves
// MASTER to the peer through keepalived's track_file.
func TestIntegrationHealthMovesMaster(t *testing.T) {
	h := newHARig(t)
	agents := map[string]*agentProc{}
	flag := filepath.Join(t.TempDir(), "service-up")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, prio := range map[string]int{"n1": 150, "n2": 100} {
		n := h.Nodes[name]
		track := filepath.Join(n.Dir, "track", "svc")
		svcFlag := flag
		if name == "n2" {
			// The peer's service is always healthy.
			svcFlag = filepath.Join(n.Dir, "always")
			os.WriteFile(svcFlag, nil, 0o644)
		}
		agents[name] = nodeAgent(t, h, name, true, fmt.Sprintf(`[[check]]
name = "svc"
type = "exec"
command = ["/usr/bin/test", "-e", %q]
interval = "200ms"
timeout = "100ms"
rise = 1
fall = 1
initial = "healthy"
track_file = %q

[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["%s/24"]
garp_count = 2
garp_interval = "100ms"
checks = ["svc"]
`, svcFlag, track, rig.VIP))
		startKeepalived(t, n, n.KeepalivedConf(prio, "",
			fmt.Sprintf("track_file svc_%s {\n    file %q\n}", name, track),
			fmt.Sprintf("    track_file {\n        svc_%s weight 0\n    }", name)))
	}
	eventually(t, "VIP on n1 (higher priority) only", func() bool { return sameNodes(h.Holders(), "n1") })
	// The service behind the VIP on n1 fails.
	os.Remove(flag)
	eventually(t, "VIP moved to n2 only", func() bool { return sameNodes(h.Holders(), "n2") })
	st := agents["n1"].status()
	if st.Instances[0].State != "FAULT" {
		t.Errorf("n1 state %s, want FAULT", st.Instances[0].State)
	}
	if len(st.Checks) != 1 || st.Checks[0].Verdict.String() != "failed" {
		t.Errorf("n1 checks %+v", st.Checks)
	}
	// The vrrp_script form: 0 healthy, 1 failed, 2 unknown or unreachable.
	for _, tt := range []struct {
		node, check string
		want        int
	}{{"n1", "svc", 1}, {"n2", "svc", 0}, {"n2", "nope", 2}} {
		if got := checkExit(t, agents[tt.node], tt.check); got != tt.want {
			t.Errorf("check %s on %s: exit %d, want %d", tt.check, tt.node, got, tt.want)
		}
	}
	agents["n2"].stop()
	if got := checkExit(t, agents["n2"], "svc"); got != 2 {
		t.Errorf("check with the daemon down: exit %d, want 2", got)
	}
}

// checkExit runs "havip-agent check NAME" against a's daemon.
func checkExit(t testing.TB, a *agentProc, name string) int {
	t.Helper()
	cmd := exec.Command(binary(t, "havip-agent"), "check", "-config", a.Config, name)
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}
