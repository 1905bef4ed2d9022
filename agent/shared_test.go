package agent

import (
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Issue 12: shared VIPs (keepalived's virtual_ipaddress and the agent's
// VIPs are the same). keepalived and the agent both add, announce and
// remove the same addresses; they must never fight.

func sharedInstance(t *testing.T, net *fakeNet, settle time.Duration) *instance {
	t.Helper()
	in, _ := testInstance(t, net, 1, time.Millisecond)
	in.cfg.VIPs = []netip.Prefix{vip4}
	in.cfg.Shared, in.cfg.Settle, in.cfg.Recheck = true, settle, 0
	return in
}

func addrChange() pending {
	return pending{input: input{kind: inAddrChange}, received: time.Now(), source: "netlink"}
}

var decideSharedCases = []decideCase{
	{"master reads before it adds", StateBackup, input{kind: inState, state: StateMaster, priority: noPriority, shared: true}, StateMaster, becomeMasterShared},
	{"leaving is the same", StateMaster, input{kind: inState, state: StateBackup, priority: noPriority, shared: true}, StateBackup, leaveMaster},
	{"address change while master settles", StateMaster, input{kind: inAddrChange, shared: true}, StateMaster, []action{actSettleLater}},
	{"address change while backup settles", StateBackup, input{kind: inAddrChange, shared: true}, StateBackup, []action{actSettleLater}},
	{"address change while unknown is nothing", StateUnknown, input{kind: inAddrChange, shared: true}, StateUnknown, nil},
	{"settled master restores", StateMaster, input{kind: inSettled, shared: true}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actReport}},
	{"settled backup removes", StateBackup, input{kind: inSettled, shared: true}, StateBackup, []action{actRemoveAll, actReport}},
	{"add retry is not delayed", StateMaster, input{kind: inNetRetry, shared: true}, StateMaster, []action{actEnsurePresent, actBurstIfAdded, actReport}},
	{"link up is not delayed", StateMaster, input{kind: inLinkUp, shared: true}, StateMaster, []action{actEnsurePresent, actBurst, actReport}},
}

func TestDecideShared(t *testing.T) {
	checkDecide(t, decideSharedCases)
}

// keepalived becomes MASTER: it adds the VIP, then writes MASTER. The
// agent must not remove the address it sees appear while still BACKUP,
// and its MASTER path does no netlink write for an address already there.
func TestSharedMasterDoesNotFightKeepalived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in := sharedInstance(t, net, 30*time.Millisecond)
		start(t, in)
		in.post(state(StateBackup))
		synctest.Wait()
		if s := in.snapshot().state; s != StateBackup {
			t.Fatalf("state %s, want BACKUP", s)
		}
		before := len(net.opsCopy())
		net.external("eth0", vip4, true) // keepalived's add
		in.post(addrChange())
		in.post(state(StateMaster)) // keepalived's line, right after
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 1 {
			t.Fatalf("%d announcements, want 1: %v", n, net.opsCopy())
		}
		time.Sleep(time.Second) // past the settle time
		synctest.Wait()
		for _, op := range net.opsCopy()[before:] {
			if strings.HasPrefix(op, "del") || strings.HasPrefix(op, "add") {
				t.Errorf("agent fought keepalived or wrote what was there: %v", net.opsCopy()[before:])
				break
			}
		}
		if !net.has("eth0", vip4) {
			t.Error("VIP gone while MASTER")
		}
	})
}

// keepalived leaves MASTER: it removes the VIP, then writes BACKUP. The
// agent must not put it back (and announce it) in between.
func TestSharedLeavingIsNotUndone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in := sharedInstance(t, net, 30*time.Millisecond)
		net.external("eth0", vip4, true)
		start(t, in)
		in.post(state(StateMaster))
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 1 {
			t.Fatalf("%d announcements, want 1: %v", n, net.opsCopy())
		}
		before := len(net.opsCopy())
		net.external("eth0", vip4, false) // keepalived's removal
		in.post(addrChange())
		time.Sleep(5 * time.Millisecond)
		in.post(state(StateBackup)) // its line, a moment later
		time.Sleep(time.Second)
		synctest.Wait()
		for _, op := range net.opsCopy()[before:] {
			if strings.HasPrefix(op, "add") || strings.HasPrefix(op, "announce") {
				t.Errorf("the agent put back or announced a VIP keepalived was removing: %v", net.opsCopy()[before:])
				break
			}
		}
		if net.has("eth0", vip4) {
			t.Error("VIP present after BACKUP")
		}
	})
}

// Someone else deletes the VIP of a shared MASTER: restored once the
// change has settled (not before), and announced.
func TestSharedRestoresAfterExternalDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in := sharedInstance(t, net, 20*time.Millisecond)
		net.external("eth0", vip4, true)
		start(t, in)
		in.post(state(StateMaster))
		synctest.Wait()
		if n := net.count("announce 198.18.0.100"); n != 1 {
			t.Fatalf("%d announcements, want 1: %v", n, net.opsCopy())
		}
		net.external("eth0", vip4, false)
		in.post(addrChange())
		time.Sleep(19 * time.Millisecond)
		synctest.Wait()
		if net.has("eth0", vip4) {
			t.Errorf("restored before the change settled: %v", net.opsCopy())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if !net.has("eth0", vip4) || net.count("announce 198.18.0.100") != 2 {
			t.Errorf("not restored and announced: %v", net.opsCopy())
		}
	})
}

// A VIP that appears on a shared BACKUP and is not followed by MASTER is
// stale: removed once settled.
func TestSharedStaleAddressOnBackupRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet("eth0")
		in := sharedInstance(t, net, 20*time.Millisecond)
		start(t, in)
		in.post(state(StateBackup))
		synctest.Wait()
		if s := in.snapshot().state; s != StateBackup {
			t.Fatalf("state %s, want BACKUP", s)
		}
		net.external("eth0", vip4, true)
		in.post(addrChange())
		time.Sleep(19 * time.Millisecond)
		synctest.Wait()
		if !net.has("eth0", vip4) {
			t.Error("removed before the change settled")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if net.has("eth0", vip4) {
			t.Error("stale VIP survived a BACKUP")
		}
	})
}
