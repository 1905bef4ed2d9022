// Package vocab is the agent's vocabulary: the VRRP states it knows an
// instance in, the failover phases it measures, the kinds of instance it
// follows and the kinds of cloud error it reports. The daemon, its status,
// its logs, its metrics, the hooks and the journal all use these typed
// constants, so that a typo cannot create a new metric series or a state
// no reader knows.
//
// It is a leaf package (it imports nothing of the agent) so that every
// other package may use it.
package vocab

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

// States lists every state, in the order metrics expose them.
var States = []State{StateMaster, StateBackup, StateFault, StateStop, StateDeleted, StateUnknown}

// Phase is a step of a failover, measured from the moment the MASTER
// notification arrived.
type Phase string

// Phases of a failover.
const (
	PhaseVIPsPresent       Phase = "vips_present"
	PhaseFirstAnnouncement Phase = "first_announcement"
	PhaseCloudRequestSent  Phase = "cloud_request_sent"
	PhaseCloudConfirmed    Phase = "cloud_confirmed"
)

// Phases lists every phase, in the order a failover reaches them.
var Phases = []Phase{PhaseVIPsPresent, PhaseFirstAnnouncement, PhaseCloudRequestSent, PhaseCloudConfirmed}

// Kind is what keepalived notifies about: a VRRP instance or a sync group.
type Kind string

// Kinds of notification target.
const (
	KindInstance Kind = "instance"
	KindGroup    Kind = "group"
)

// ErrorKind classifies a failed cloud call for the operator.
type ErrorKind string

// Kinds of cloud error: only transient ones are retried on their own.
const (
	ErrorAuth       ErrorKind = "auth"
	ErrorValidation ErrorKind = "validation"
	ErrorExpired    ErrorKind = "expired"
	ErrorTransient  ErrorKind = "transient"
)
