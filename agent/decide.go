package agent

import "github.com/havip-agent/havip-agent/agent/keepalived"

// State is what the agent knows of an instance's VRRP state.
type State string

// States. Unknown is the state of an instance the agent has heard nothing
// about: its addresses are left alone until keepalived speaks.
const (
	StateUnknown State = "UNKNOWN"
	StateMaster  State = "MASTER"
	StateBackup  State = "BACKUP"
	StateFault   State = "FAULT"
	StateStop    State = "STOP"
	StateDeleted State = "DELETED"
)

// stateFromKeepalived maps a keepalived state to the agent's; ok is false
// for priority changes, which are not transitions.
func stateFromKeepalived(s keepalived.State) (State, bool) {
	switch s {
	case keepalived.StateMaster, keepalived.StateMasterRxLowerPri:
		return StateMaster, true
	case keepalived.StateBackup:
		return StateBackup, true
	case keepalived.StateFault:
		return StateFault, true
	case keepalived.StateStop:
		return StateStop, true
	case keepalived.StateDeleted:
		return StateDeleted, true
	}
	return "", false
}

// inputKind is what happened to an instance.
type inputKind int

const (
	// inState: keepalived reported a state.
	inState inputKind = iota
	// inDead: keepalived's VRRP process is gone.
	inDead
	// inAddrChange: something changed a VIP or the interface.
	inAddrChange
	// inRefresh: the refresh period elapsed.
	inRefresh
	// inLinkUp: the interface's link came (back) up: its neighbours may
	// have lost the VIP's entry while the carrier was down.
	inLinkUp
	// inNetRetry: a netlink operation (add, list, remove) failed and its
	// retry is due.
	inNetRetry
	// inPriority: keepalived reported a priority change, no transition.
	inPriority
	// inCloudReady: the cloud provider was set up after the daemon
	// started.
	inCloudReady
	// inSettled: address changes of a shared-VIP instance have had time
	// to settle (see sharedSettle).
	inSettled
	// inKeepalivedSeen: the liveness watch sees keepalived running;
	// sameKeepalived says it is the process the restored record was
	// written to.
	inKeepalivedSeen
)

type input struct {
	kind  inputKind
	state State
	// priority is keepalived's priority with inState and inPriority; -1
	// when the line carried none.
	priority int
	// shared marks an instance whose VIPs keepalived manages too
	// (shared_vips): keepalived adds them just before it reports MASTER
	// and removes them just before it reports leaving, so an address
	// change is acted on only once it has settled, and MASTER reads
	// before it adds.
	shared bool
	// sameKeepalived is set with inKeepalivedSeen when the keepalived
	// process running is the one a restored MASTER's record names: the
	// term is still the one keepalived gave, and nothing newer came
	// through the FIFO's backlog.
	sameKeepalived bool
	// rxLowerPri marks MASTER_RX_LOWER_PRI: another node claims MASTER
	// with a lower priority, and a fresh announcement wins the segment
	// back.
	rxLowerPri bool
}

// action is one step the actor carries out, in order.
type action int

const (
	// actPersist records the new state with one pwrite, before any other
	// action: a crash after an announcement must not restart with the
	// old state.
	actPersist action = iota
	// actAddAll adds every VIP with replace semantics, without reading
	// first: the fastest path to VIPs present.
	actAddAll
	// actEnsurePresent reads the interface and adds what is missing.
	actEnsurePresent
	// actBurst starts a burst of announcements; the first is sent at
	// once. On becoming MASTER it comes before actAddAll: the first
	// gratuitous ARP then leaves without waiting for the netlink add
	// (about 160 µs on the 2-core test VM, where the target is within
	// 0.3 ms of keepalived's own announcement); a packet arriving in
	// that window would have found no MASTER anyway. IPv6 VIPs are
	// announced after the add (see instance.vipsAdded).
	actBurst
	// actBurstIfAdded starts a burst only if actEnsurePresent added an
	// address.
	actBurstIfAdded
	// actStopAnnouncing cancels bursts and the refresh.
	actStopAnnouncing
	// actRemoveAll removes every VIP.
	actRemoveAll
	// actCloudStart starts claiming the cloud resources for this
	// generation, concurrently; it never delays the local actions.
	actCloudStart
	// actCloudStop cancels every claim: no mutating call starts after it.
	actCloudStop
	// actCloudObserve starts the cloud side read-only: a MASTER restored
	// from disk has not been confirmed by keepalived in this run.
	actCloudObserve
	// actCloudPermit lets a read-only cloud side claim: keepalived said
	// MASTER again.
	actCloudPermit
	// actCloudResume starts the cloud side again as it was (read-only or
	// claiming): the provider became ready.
	actCloudResume
	// actSettleLater waits for address changes to settle (shared VIPs)
	// before looking at them.
	actSettleLater
	// actReport reads the interface and reports which VIPs are present.
	actReport
	// actLog logs the transition with its phase timings.
	actLog
	// actSync asks for the record to be made durable, off the actor.
	actSync
)

// decide returns the next state and the actions for an input. It is pure:
// the actor carries the actions out, in order, and infers nothing.
func decide(cur State, in input) (State, []action) {
	switch in.kind {
	case inState:
		if in.state != cur {
			switch {
			case in.state != StateMaster:
				return in.state, leave
			case in.shared:
				// keepalived added the VIPs before it said MASTER:
				// read, and add only what is missing.
				return StateMaster, []action{actPersist, actBurst, actEnsurePresent, actCloudStart, actReport, actLog, actSync}
			default:
				return StateMaster, []action{actPersist, actBurst, actAddAll, actCloudStart, actReport, actLog, actSync}
			}
		}
		// The same state again is a reminder: make sure it holds. For a
		// MASTER restored from disk it is also keepalived's confirmation.
		if cur == StateMaster {
			if in.rxLowerPri {
				return cur, []action{actEnsurePresent, actBurst, actCloudPermit, actReport}
			}
			return cur, []action{actEnsurePresent, actBurstIfAdded, actCloudPermit, actReport}
		}
		return cur, []action{actRemoveAll, actReport}
	case inDead:
		if cur == StateFault {
			return cur, nil
		}
		return StateFault, leave
	case inAddrChange, inNetRetry, inSettled:
		if in.kind == inAddrChange && in.shared && cur != StateUnknown {
			// keepalived's own change comes just before its state line:
			// acting now would fight it (remove the VIP it just added,
			// or put back and announce the one it just removed).
			return cur, []action{actSettleLater}
		}
		switch cur {
		case StateUnknown:
			return cur, nil
		case StateMaster:
			return cur, []action{actEnsurePresent, actBurstIfAdded, actReport}
		default:
			return cur, []action{actRemoveAll, actReport}
		}
	case inLinkUp:
		switch cur {
		case StateUnknown:
			return cur, nil
		case StateMaster:
			return cur, []action{actEnsurePresent, actBurst, actReport}
		default:
			return cur, []action{actRemoveAll, actReport}
		}
	case inRefresh:
		if cur == StateMaster {
			return cur, []action{actBurst}
		}
	case inCloudReady:
		if cur == StateMaster {
			return cur, []action{actCloudResume}
		}
	case inKeepalivedSeen:
		if cur == StateMaster && in.sameKeepalived {
			return cur, []action{actCloudPermit}
		}
	}
	return cur, nil
}

// leave is what every transition to a state other than MASTER does.
var leave = []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll, actReport, actLog, actSync}

// restored is what a MASTER restored from disk does when its actor starts:
// keep every address (replace, never remove), announce, and read the cloud
// without claiming until keepalived confirms.
var restored = []action{actEnsurePresent, actBurst, actCloudObserve, actReport}

// handedOver is what a MASTER's new actor does after a reload changed its
// instance: add the VIPs now configured, announce (which also resumes the
// refresh), and start a new cloud side when the resources changed, as the
// old one was (read-only until keepalived confirms, or claiming).
func handedOver(newCloud, readOnly bool) []action {
	acts := []action{actEnsurePresent, actBurst}
	switch {
	case newCloud && readOnly:
		acts = append(acts, actCloudObserve)
	case newCloud:
		acts = append(acts, actCloudStart)
	}
	return append(acts, actReport)
}
