package agent

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A streak of failed removals while BACKUP ended with the term: the
// MASTER's first failed add is logged as the first attempt of its own
// streak, not counted on and silenced by the spacing of the old one.
func TestFailureStreakEndsWithTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		net.external("eth0", vip4, true)
		net.failDels = 1 << 20
		var buf syncBuffer
		in, _ := testInstanceLog(t, net, 1, time.Millisecond, slog.New(slog.NewTextHandler(&buf, nil)))
		in.cfg.VIPs = []netip.Prefix{vip4}
		start(t, in)
		in.post(state(StateBackup))
		time.Sleep(50 * time.Millisecond) // several retries of the removal
		synctest.Wait()
		if n := net.count("del failed " + vip4.String()); n < 2 {
			t.Fatalf("%d failed removals, want a streak: %v", n, net.opsCopy())
		}
		net.mu.Lock()
		net.failAdds = 1
		net.mu.Unlock()
		in.post(state(StateMaster))
		synctest.Wait()
		if !strings.Contains(buf.String(), `msg="add failed"`) || !strings.Contains(buf.String(), "attempt 1;") {
			t.Errorf("the MASTER's failed add was not logged as a first attempt:\n%s", buf.String())
		}
	})
}
