package e2e

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// TestIntegrationHealthMovesMaster: a failing check on the MASTER moves
// MASTER to the peer through keepalived's track_file, and the check
// command answers as a vrrp_script expects.
func TestIntegrationHealthMovesMaster(t *testing.T) {
	s := newSuite(t)
	// The service behind the VIP on n1 fails.
	os.Remove(s.flags["n1"])
	s.converged("n2")
	st := s.agents["n1"].status()
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
		if got := checkExit(t, s.agents[tt.node], tt.check); got != tt.want {
			t.Errorf("check %s on %s: exit %d, want %d", tt.check, tt.node, got, tt.want)
		}
	}
	s.agents["n2"].stop()
	if got := checkExit(t, s.agents["n2"], "svc"); got != 2 {
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
