package hooks

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/agent/vocab"
)

// Kind is the kind of an event a hook can run for.
type Kind string

// The event kinds.
const (
	// KindTransition is a change of an instance's VRRP state.
	KindTransition Kind = "transition"
	// KindCloudClaimed is the cloud accepting this node's claims.
	KindCloudClaimed Kind = "cloud_claimed"
	// KindCloudConfirmed is the cloud showing this node owning the resources.
	KindCloudConfirmed Kind = "cloud_confirmed"
	// KindCloudError is a claim or a read of the cloud that failed.
	KindCloudError Kind = "cloud_error"
	// KindConflict is another node claiming a resource this MASTER holds.
	KindConflict Kind = "conflict"
	// KindDrain is this node being drained (a planned switchover).
	KindDrain Kind = "drain"
	// KindResume is the drain being lifted.
	KindResume Kind = "resume"
)

// Kinds lists every event kind, in the order the documentation gives them.
var Kinds = []Kind{KindTransition, KindCloudClaimed, KindCloudConfirmed, KindCloudError, KindConflict, KindDrain, KindResume}

// State is a VRRP state as the agent names it (vocab.State).
type State = vocab.State

// The states a transition can lead to.
const (
	StateMaster  = vocab.StateMaster
	StateBackup  = vocab.StateBackup
	StateFault   = vocab.StateFault
	StateStop    = vocab.StateStop
	StateDeleted = vocab.StateDeleted
)

// targetStates are the states a transition event may be narrowed to.
var targetStates = []State{StateMaster, StateBackup, StateFault, StateStop, StateDeleted}

// Event selects events for a hook: a kind and, for transitions, the state
// they lead to ("" for any).
type Event struct {
	Kind Kind
	To   State
}

// ParseEvent parses one entry of a hook's events: a kind
// ("cloud_error"), or "transition:STATE" for the transitions into one
// state ("transition:MASTER"; the state in any case).
func ParseEvent(s string) (Event, error) {
	kind, to, narrowed := strings.Cut(s, ":")
	e := Event{Kind: Kind(kind)}
	if narrowed {
		if to == "" {
			return Event{}, fmt.Errorf("%q: no state after the colon; want MASTER, BACKUP, FAULT, STOP or DELETED", s)
		}
		e.To = State(strings.ToUpper(to))
	}
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// String returns the form ParseEvent reads.
func (e Event) String() string {
	if e.To == "" {
		return string(e.Kind)
	}
	return string(e.Kind) + ":" + string(e.To)
}

func (e Event) validate() error {
	if !slices.Contains(Kinds, e.Kind) {
		return fmt.Errorf("%q: unknown event; want one of %s, or transition:STATE", e.String(), joinKinds())
	}
	if e.To == "" {
		return nil
	}
	if e.Kind != KindTransition {
		return fmt.Errorf("%q: only transition takes a state", e.String())
	}
	if !slices.Contains(targetStates, e.To) {
		return fmt.Errorf("%q: unknown state %q; want MASTER, BACKUP, FAULT, STOP or DELETED", e.String(), string(e.To))
	}
	return nil
}

func joinKinds() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// selects reports whether a hook with the events sel runs for p: an empty
// selection takes every event.
func selects(sel []Event, p *Payload) bool {
	if len(sel) == 0 {
		return true
	}
	for _, e := range sel {
		if e.Kind == p.Event && (e.To == "" || e.To == p.To) {
			return true
		}
	}
	return false
}

// Outcome is how a cloud resource fared.
type Outcome string

// The outcomes of a cloud resource.
const (
	// OutcomeClaimed is a claim the cloud accepted.
	OutcomeClaimed Outcome = "claimed"
	// OutcomeConfirmed is the cloud showing this node owning the resource.
	OutcomeConfirmed Outcome = "confirmed"
	// OutcomeOwned is a resource that pointed here already: nothing sent.
	OutcomeOwned Outcome = "owned"
	// OutcomeError is a call that failed.
	OutcomeError Outcome = "error"
	// OutcomeConflict is a resource another node claimed.
	OutcomeConflict Outcome = "conflict"
)

// Resource is one cloud resource in a payload.
type Resource struct {
	// Kind is havip, route or eip.
	Kind string `json:"kind"`
	// ID names the resource as the configuration does.
	ID      string  `json:"id"`
	Outcome Outcome `json:"outcome"`
	// RequestID is the x-bce-request-id of the API's answer, which Baidu
	// support asks for.
	RequestID string `json:"request_id,omitempty"`
	// ErrorCode and Error describe a failure.
	ErrorCode string `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Phases are the timings of a transition, measured from the moment the
// event reached the agent; zero is a phase not (yet) measured.
type Phases struct {
	VIPsPresent       time.Duration `json:"vips_present_ns,omitzero"`
	FirstAnnouncement time.Duration `json:"first_announcement_ns,omitzero"`
	CloudRequestSent  time.Duration `json:"cloud_request_sent_ns,omitzero"`
	CloudConfirmed    time.Duration `json:"cloud_confirmed_ns,omitzero"`
}

// Node is the identity of the node that sends the payload.
type Node struct {
	// InstanceID is the cloud's id of this machine.
	InstanceID string `json:"instance_id,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
}

// Payload is the document a hook receives: on standard input (exec) or
// as the request body (http), as JSON.
type Payload struct {
	// Hook is the name of the hook it is delivered to; the runner sets it.
	Hook       string `json:"hook"`
	Event      Kind   `json:"event"`
	Instance   string `json:"instance"`
	From       State  `json:"from,omitempty"`
	To         State  `json:"to,omitempty"`
	Generation uint64 `json:"generation"`
	// When is when the event happened; it is written in RFC 3339 with
	// nanoseconds.
	When      time.Time  `json:"when"`
	Phases    Phases     `json:"phases,omitzero"`
	Resources []Resource `json:"resources,omitempty"`
	// Detail is a short human-readable note, for example the error of a
	// cloud_error event.
	Detail string `json:"detail,omitempty"`
	// Node is filled from Options.Node when empty.
	Node Node `json:"node"`
}

// clone returns a copy of p that shares no memory with it, so a caller
// may reuse its slices after Fire.
func (p Payload) clone() Payload {
	p.Resources = slices.Clone(p.Resources)
	return p
}

// errEmptyEvent is returned by ParseEvents for an empty entry.
var errEmptyEvent = errors.New("empty event")

// ParseEvents parses a hook's events with ParseEvent; the errors name the
// entry (from 1).
func ParseEvents(ss []string) ([]Event, error) {
	var errs []error
	out := make([]Event, 0, len(ss))
	for i, s := range ss {
		if s == "" {
			errs = append(errs, fmt.Errorf("entry %d: %w", i+1, errEmptyEvent))
			continue
		}
		e, err := ParseEvent(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i+1, err))
			continue
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}
