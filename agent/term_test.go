package agent

import (
	"log/slog"
	"net/netip"
	"reflect"
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

// Every transition replaces the term whole: what the old term had set is
// gone, whatever the new plan does.
func TestTransitionReplacesTheTerm(t *testing.T) {
	in, _ := testInstance(t, newFakeNet("eth0"), 1, time.Millisecond)
	in.cur, in.gen = StateMaster, 4
	in.term = term{trans: &Transition{To: StateMaster, Generation: 4}, announced: true, burstLeft: 5, vipsAdded: true, v6Owed: true,
		cloudReadOnly: true, netDelay: time.Second, netFailures: 7, netLogged: time.Now()}
	in.apply(state(StateBackup))
	got := in.term
	if tr := got.trans; tr == nil || tr.From != StateMaster || tr.To != StateBackup || tr.Generation != 5 {
		t.Errorf("the term's transition: %+v, want MASTER to BACKUP, generation 5", tr)
	}
	got.trans = nil
	if !reflect.DeepEqual(got, term{}) {
		t.Errorf("term after the transition: %+v, want only its transition", got)
	}
}

// A MASTER a reload hands over to a new actor keeps its term's record:
// the new actor's own adds are not its transition's phases.
func TestHandoverKeepsTheTransition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		old, _ := testInstance(t, net, 1, time.Millisecond)
		stop := start(t, old)
		old.post(received(state(StateMaster), time.Millisecond))
		synctest.Wait()
		stop()
		time.Sleep(time.Second)
		in, _ := testInstance(t, net, 1, time.Millisecond)
		in.takeOver(old)
		start(t, in)
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 2 {
			t.Errorf("%d announcements, want 2 (the new actor's burst)", n)
		}
		last := in.snapshot().last
		if last == nil || last.Generation != 1 || last.VIPsDone != time.Millisecond || last.FirstAnnouncement != time.Millisecond {
			t.Errorf("transition after the handover: %+v, want generation 1 with both phases %v", last, time.Millisecond)
		}
	})
}
