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
)

type input struct {
	kind  inputKind
	state State
	// rxLowerPri marks MASTER_RX_LOWER_PRI: another node claims MASTER
	// with a lower priority, and a fresh announcement wins the segment
	// back.
	rxLowerPri bool
}

// action is one step the actor carries out, in order.
type action int

const (
	// actPersist records the new state (write and rename; the fsync
	// comes after the first announcement, off the hot path).
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
)

// decide returns the next state and the actions for an input. It is pure:
// the actor carries the actions out.
func decide(cur State, in input) (State, []action) {
	switch in.kind {
	case inState:
		if in.state != cur {
			if in.state == StateMaster {
				return StateMaster, []action{actPersist, actBurst, actAddAll, actCloudStart}
			}
			return in.state, []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll}
		}
		// The same state again is a reminder: make sure it holds.
		if cur == StateMaster {
			if in.rxLowerPri {
				return cur, []action{actEnsurePresent, actBurst}
			}
			return cur, []action{actEnsurePresent, actBurstIfAdded}
		}
		return cur, []action{actRemoveAll}
	case inDead:
		if cur == StateFault {
			return cur, nil
		}
		return StateFault, []action{actPersist, actCloudStop, actStopAnnouncing, actRemoveAll}
	case inAddrChange:
		switch cur {
		case StateUnknown:
			return cur, nil
		case StateMaster:
			return cur, []action{actEnsurePresent, actBurstIfAdded}
		default:
			return cur, []action{actRemoveAll}
		}
	case inRefresh:
		if cur == StateMaster {
			return cur, []action{actBurst}
		}
	}
	return cur, nil
}
