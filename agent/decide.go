package agent

import (
	"fmt"

	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/vocab"
)

// State is what the agent knows of an instance's VRRP state (vocab.State).
type State = vocab.State

// States, from the agent's vocabulary.
const (
	StateUnknown = vocab.StateUnknown
	StateMaster  = vocab.StateMaster
	StateBackup  = vocab.StateBackup
	StateFault   = vocab.StateFault
	StateStop    = vocab.StateStop
	StateDeleted = vocab.StateDeleted
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
	// before it adds. The actor sets it from the configuration.
	shared bool
	// cloudReadOnly marks a MASTER restored from disk whose cloud side
	// only reads until keepalived confirms the term. The actor sets it
	// from its term.
	cloudReadOnly bool
	// sameKeepalived is set with inKeepalivedSeen when the keepalived
	// process running is the one a restored MASTER's record names: the
	// term is still the one keepalived gave, and nothing newer came
	// through the FIFO's backlog.
	sameKeepalived bool
	// keepalivedBack is set with inDead when, by the time the actor takes
	// the death, the liveness watch already sees keepalived running again:
	// a restarted VRRP process reports its own state through the FIFO, and
	// its first line may have been taken before the death.
	keepalivedBack bool
	// rxLowerPri marks MASTER_RX_LOWER_PRI: another node claims MASTER
	// with a lower priority, and a fresh announcement wins the segment
	// back.
	rxLowerPri bool
}

// action is one step the actor carries out, in order.
type action int

const (
	// actPriority records the input's priority (shown by status).
	actPriority action = iota
	// actBeginTerm moves to the next state: a new generation, the
	// transition's record, and a new term in place of the old one. It
	// comes first in every transition's plan.
	actBeginTerm
	// actPersist records the new state with one pwrite, right after
	// actBeginTerm and before any other action: a crash after an
	// announcement must not restart with the old state.
	actPersist
	// actAddAll adds every VIP with replace semantics, without reading
	// first: the fastest path to VIPs present.
	actAddAll
	// actEnsurePresent reads the interface and adds what is missing.
	actEnsurePresent
	// actBurst starts a burst of announcements; the first is sent at
	// once. On becoming MASTER it comes before actAddAll: the first
	// gratuitous ARP then leaves without waiting for the netlink add; a
	// packet arriving in that window would have found no MASTER anyway.
	// IPv6 VIPs are announced after the add (see term.vipsAdded).
	actBurst
	// actBurstIfAdded starts a burst only if an actEnsurePresent of the
	// same plan added an address: what it finds is known only then.
	actBurstIfAdded
	// actStopAnnouncing cancels bursts, the refresh and a pending
	// netlink retry.
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
	// actCloudPermit lets the read-only cloud side claim: keepalived
	// confirmed the restored MASTER.
	actCloudPermit
	// actSettleLater waits for address changes to settle (shared VIPs)
	// before looking at them.
	actSettleLater
	// actReport reads the interface and reports which VIPs are present.
	actReport
	// actLog logs the transition with its phase timings.
	actLog
	// actSync asks for the record to be made durable, off the actor.
	actSync
	// actPhaseVIPs reports how long a new MASTER took to have its VIPs
	// (the vips_present phase).
	actPhaseVIPs
	// actNotify tells the metrics and systemd the new state. It comes
	// last: nothing but the actions sits on the failover path.
	actNotify
)

var actionNames = [...]string{
	actPriority: "priority", actBeginTerm: "begin-term", actPersist: "persist", actAddAll: "add-all",
	actEnsurePresent: "ensure-present", actBurst: "burst", actBurstIfAdded: "burst-if-added",
	actStopAnnouncing: "stop-announcing", actRemoveAll: "remove-all", actCloudStart: "cloud-start",
	actCloudStop: "cloud-stop", actCloudObserve: "cloud-observe", actCloudPermit: "cloud-permit",
	actSettleLater: "settle-later", actReport: "report", actLog: "log", actSync: "sync",
	actPhaseVIPs: "phase-vips", actNotify: "notify",
}

// String names the action, for test failures.
func (a action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// decide returns the next state and the actions for an input. It is pure:
// the actor carries the actions out, in order, and infers nothing; the
// state changes only through actBeginTerm.
func decide(cur State, in input) (State, []action) {
	next, acts := react(cur, in)
	if (in.kind == inState || in.kind == inPriority) && in.priority >= 0 {
		acts = append([]action{actPriority}, acts...)
	}
	return next, acts
}

// react is decide without the priority.
func react(cur State, in input) (State, []action) {
	switch in.kind {
	case inState:
		if in.state != cur {
			switch {
			case in.state != StateMaster:
				return in.state, leave
			case in.shared:
				// keepalived added the VIPs before it said MASTER:
				// read, and add only what is missing.
				return StateMaster, []action{actBeginTerm, actPersist, actBurst, actEnsurePresent, actCloudStart, actReport, actLog, actSync, actPhaseVIPs, actNotify}
			default:
				return StateMaster, []action{actBeginTerm, actPersist, actBurst, actAddAll, actCloudStart, actReport, actLog, actSync, actPhaseVIPs, actNotify}
			}
		}
		// The same state again is a reminder: make sure it holds. For a
		// MASTER restored from disk it is also keepalived's confirmation.
		if cur == StateMaster {
			acts := []action{actEnsurePresent, actBurstIfAdded}
			if in.rxLowerPri {
				acts[1] = actBurst
			}
			if in.cloudReadOnly {
				acts = append(acts, actCloudPermit)
			}
			return cur, append(acts, actReport)
		}
		return cur, []action{actRemoveAll, actReport}
	case inDead:
		if cur == StateFault {
			return cur, nil
		}
		if in.keepalivedBack && cur != StateMaster {
			// Old news: keepalived is back and its new process's state,
			// taken already, stands. A MASTER still steps down: the new
			// process starts as BACKUP, and holding the VIPs until it
			// says so could leave them on two nodes.
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
		// The provider became ready: start the cloud side as it would
		// have started, read-only until keepalived confirms a restored
		// MASTER.
		if cur == StateMaster {
			return cur, []action{cloudStart(in.cloudReadOnly)}
		}
	case inKeepalivedSeen:
		if cur == StateMaster && in.sameKeepalived && in.cloudReadOnly {
			return cur, []action{actCloudPermit}
		}
	}
	return cur, nil
}

// cloudStart is the action that starts a MASTER's cloud side: read-only,
// or claiming.
func cloudStart(readOnly bool) action {
	if readOnly {
		return actCloudObserve
	}
	return actCloudStart
}

// leave is what every transition to a state other than MASTER does.
var leave = []action{actBeginTerm, actPersist, actCloudStop, actStopAnnouncing, actRemoveAll, actReport, actLog, actSync, actNotify}

// startup is what an actor knows of its instance when it starts.
type startup struct {
	state State
	// queued: a state already waits in the mailbox, and decides.
	queued bool
	// handover: the actor continues one a reload replaced (takeOver);
	// newCloud: with a new cloud side.
	handover, newCloud bool
	// cloudReadOnly: the term's cloud side only reads (see input).
	cloudReadOnly bool
}

// decideStart returns what an actor does as it starts, before its first
// input. Only a MASTER acts, and only if no state is queued: a MASTER
// restored from disk keeps every address (replace, never remove),
// announces, and reads the cloud without claiming until keepalived
// confirms. One a reload handed over adds the VIPs now configured,
// announces (which also resumes the refresh), and starts its new cloud
// side, if the resources changed, as the old one was.
func decideStart(s startup) []action {
	switch {
	case s.state != StateMaster || s.queued:
		return nil
	case !s.handover:
		return []action{actEnsurePresent, actBurst, actCloudObserve, actReport}
	case s.newCloud:
		return []action{actEnsurePresent, actBurst, cloudStart(s.cloudReadOnly), actReport}
	default:
		return []action{actEnsurePresent, actBurst, actReport}
	}
}
