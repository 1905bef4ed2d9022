package agent

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var (
	vip4 = netip.MustParsePrefix("198.18.0.100/24")
	vip6 = netip.MustParsePrefix("2001:db8::100/64")
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testInstance(t *testing.T, net *fakeNet, garpCount int, garpInterval time.Duration) (*instance, *store) {
	t.Helper()
	return testInstanceLog(t, net, garpCount, garpInterval, discard())
}

// testInstanceLog is testInstance logging to log. The store is closed
// when the test ends, so that a synctest bubble sees its goroutine end.
func testInstanceLog(t *testing.T, net *fakeNet, garpCount int, garpInterval time.Duration, log *slog.Logger) (*instance, *store) {
	t.Helper()
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	in := newInstance(instanceConfig{
		Name: "VI_1", Kind: "instance", Interface: "eth0", VIPs: []netip.Prefix{vip4, vip6},
		GARPCount: garpCount, GARPInterval: garpInterval, GARPRefresh: time.Hour, GARPReply: true,
	}, net, st, log, nil)
	return in, st
}

func start(t *testing.T, in *instance) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); in.run(ctx) }()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

func state(s State) pending {
	return pending{input: input{kind: inState, state: s}, received: time.Now(), source: "test"}
}

// received is a pending input that arrived ago before now: in a synctest
// bubble time stands still while the actor works, so the phases of a
// transition measure exactly ago.
func received(p pending, ago time.Duration) pending {
	p.received = p.received.Add(-ago)
	return p
}

func TestMasterAnnouncesAndAddsBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in, st := testInstance(t, net, 3, 5*time.Millisecond)
		start(t, in)
		in.post(received(state(StateMaster), time.Millisecond))
		synctest.Wait()
		// IPv4 is announced before the netlink add, so the first
		// gratuitous ARP does not wait for it; IPv6 right after the add,
		// since an unsolicited NA may have to come from the VIP itself.
		want := []string{"announce 198.18.0.100", "add 198.18.0.100/24", "add 2001:db8::100/64", "announce 2001:db8::100"}
		if got := net.opsCopy(); !reflect.DeepEqual(got, want) {
			t.Errorf("ops at once: got %v, want %v", got, want)
		}
		time.Sleep(4 * time.Millisecond)
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 1 {
			t.Errorf("%d announcements before the interval, want 1", n)
		}
		time.Sleep(6 * time.Millisecond)
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 3 {
			t.Errorf("%d announcements after two intervals, want 3", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 3 {
			t.Errorf("%d announcements after the burst, want 3", n)
		}
		r, ok, err := st.load("instance", "VI_1")
		if err != nil || !ok || r.State != StateMaster || r.Generation != 1 {
			t.Errorf("persisted %+v %v %v", r, ok, err)
		}
		snap := in.snapshot()
		if snap.last == nil || snap.last.FirstAnnouncement != time.Millisecond || snap.last.VIPsDone != time.Millisecond {
			t.Errorf("transition timings: %+v, want both phases %v after the input", snap.last, time.Millisecond)
		}
	})
}

// An IPv6-only instance adds before it announces, and its first
// announcement is still recorded, and counted once per burst step.
func TestMasterIPv6OnlyAddsThenAnnounces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in, _ := testInstance(t, net, 2, 5*time.Millisecond)
		in.cfg.VIPs = []netip.Prefix{vip6}
		start(t, in)
		in.post(received(state(StateMaster), time.Millisecond))
		synctest.Wait()
		if got, want := net.opsCopy(), []string{"add 2001:db8::100/64", "announce 2001:db8::100"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ops at once: got %v, want %v", got, want)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := net.count("announce 2001:db8::100"); n != 2 {
			t.Errorf("%d announcements, want 2: %v", n, net.opsCopy())
		}
		if snap := in.snapshot(); snap.last == nil || snap.last.FirstAnnouncement != time.Millisecond {
			t.Errorf("first announcement not recorded: %+v", snap.last)
		}
	})
}

func TestBackupSupersedesMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in, _ := testInstance(t, net, 50, 2*time.Millisecond)
		start(t, in)
		in.post(state(StateMaster))
		time.Sleep(3 * time.Millisecond) // one announcement of the burst more
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 2 {
			t.Fatalf("%d announcements, want 2: %v", n, net.opsCopy())
		}
		in.post(state(StateBackup))
		synctest.Wait()
		if net.has("eth0", vip4) || net.has("eth0", vip6) {
			t.Fatal("VIPs still present after BACKUP")
		}
		// Nothing of the MASTER state may land after BACKUP's actions.
		ops := net.opsCopy()
		time.Sleep(time.Hour + time.Minute) // past the burst and the refresh
		synctest.Wait()
		if after := net.opsCopy()[len(ops):]; len(after) != 0 {
			t.Errorf("operations after BACKUP: %v", after)
		}
		if last := ops[len(ops)-1]; !strings.HasPrefix(last, "del ") {
			t.Errorf("last op %q, want a removal", last)
		}
	})
}

func TestQueuedStatesCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in, _ := testInstance(t, net, 1, time.Millisecond)
		// Queued before the actor runs, like a FIFO backlog.
		in.post(state(StateMaster))
		in.post(state(StateBackup))
		in.post(state(StateMaster))
		in.post(state(StateFault))
		start(t, in)
		synctest.Wait()
		if s := in.snapshot().state; s != StateFault {
			t.Fatalf("state %s, want FAULT", s)
		}
		for _, op := range net.opsCopy() {
			if strings.HasPrefix(op, "add") || strings.HasPrefix(op, "announce") {
				t.Errorf("intermediate MASTER acted on: %v", net.opsCopy())
				break
			}
		}
		if g := in.snapshot().gen; g != 1 {
			t.Errorf("generation %d, want 1 (one transition)", g)
		}
	})
}

func TestRestartWhileMasterNeverRemoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		net.external("eth0", vip4, true)
		net.external("eth0", vip6, true)
		in, _ := testInstance(t, net, 2, time.Millisecond)
		in.restore(record{Kind: "instance", Name: "VI_1", State: StateMaster, Generation: 7})
		start(t, in)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 2 {
			t.Fatalf("%d announcements after restart, want a burst of 2: %v", n, net.opsCopy())
		}
		for _, op := range net.opsCopy() {
			if strings.HasPrefix(op, "del") {
				t.Fatalf("removed an address on restart: %v", net.opsCopy())
			}
		}
		if g := in.snapshot().gen; g != 7 {
			t.Errorf("generation %d, want 7", g)
		}
	})
}

func TestUnknownLeavesAddressesAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		net.external("eth0", vip4, true)
		in, _ := testInstance(t, net, 1, time.Millisecond)
		start(t, in)
		in.post(pending{input: input{kind: inAddrChange}, received: time.Now()})
		time.Sleep(time.Minute)
		synctest.Wait()
		if ops := net.opsCopy(); len(ops) != 0 || !net.has("eth0", vip4) {
			t.Errorf("unknown state acted: %v", ops)
		}
	})
}

func TestExternalChangesAreUndone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in, _ := testInstance(t, net, 1, time.Millisecond)
		start(t, in)
		in.post(state(StateMaster))
		synctest.Wait()
		if !net.has("eth0", vip4) {
			t.Fatal("VIP not added")
		}
		net.external("eth0", vip4, false)
		in.post(pending{input: input{kind: inAddrChange}, received: time.Now()})
		synctest.Wait()
		if !net.has("eth0", vip4) || net.count("announce 198.18.0.100") != 2 {
			t.Fatalf("VIP not restored and announced: %v", net.opsCopy())
		}
		in.post(state(StateBackup))
		synctest.Wait()
		if net.has("eth0", vip4) {
			t.Fatal("VIP not removed")
		}
		net.external("eth0", vip4, true)
		in.post(pending{input: input{kind: inAddrChange}, received: time.Now()})
		synctest.Wait()
		if net.has("eth0", vip4) {
			t.Fatal("VIP that appeared while BACKUP was not removed")
		}
	})
}

func TestMissingInterfaceActsWhenItAppears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		in, _ := testInstance(t, net, 1, time.Millisecond)
		start(t, in)
		in.post(state(StateMaster))
		synctest.Wait()
		if s := in.snapshot().state; s != StateMaster {
			t.Fatalf("state %s, want MASTER", s)
		}
		before := net.count("announce 198.18.0.100")
		net.mu.Lock()
		net.addrs["eth0"] = map[netip.Prefix]bool{}
		net.mu.Unlock()
		in.post(pending{input: input{kind: inAddrChange}, received: time.Now()})
		synctest.Wait()
		if !net.has("eth0", vip4) || net.count("announce 198.18.0.100") != before+1 {
			t.Fatalf("VIPs not added and announced when the interface appeared: %v", net.opsCopy())
		}
	})
}

func TestKeepalivedDeathFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in, _ := testInstance(t, net, 1, time.Millisecond)
		start(t, in)
		in.post(state(StateMaster))
		synctest.Wait()
		if !net.has("eth0", vip4) {
			t.Fatal("VIP not added")
		}
		in.post(pending{input: input{kind: inDead}, received: time.Now()})
		synctest.Wait()
		if net.has("eth0", vip4) || in.snapshot().state != StateFault {
			t.Fatal("VIP kept after keepalived died")
		}
	})
}
