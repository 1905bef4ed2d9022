package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havip-agent/havip-agent/agent/hooks"
	"github.com/havip-agent/havip-agent/agent/journal"
	"github.com/havip-agent/havip-agent/cloud"
)

// eventKind says what an event reports. Each kind goes to the failover
// history, to the hooks, or to both (see event.journal and event.payload).
type eventKind int

const (
	// evTransition: a state change, with the local phase timings.
	evTransition eventKind = iota
	// evCloudCall: one mutating cloud API call and its answer (history).
	evCloudCall
	// evCloudClaimed: a claim the cloud accepted, or found done (hooks).
	evCloudClaimed
	// evCloudConfirmed: a claimed resource read back pointing here.
	evCloudConfirmed
	// evCloudError: a claim that failed, or the first failed read of a
	// streak (hooks).
	evCloudError
	// evReclaim: a resource found pointing elsewhere and claimed again
	// (history).
	evReclaim
	// evConflict: a reclaim after a reclaim: another node keeps claiming.
	evConflict
	// evDrain: an instance drained (planned switchover).
	evDrain
	// evResume: a drain lifted.
	evResume
	// evDrainDone: a drain's switchover completed (history).
	evDrainDone
	// evHookRun: a hook's run ended (history).
	evHookRun
)

var eventKindNames = [...]string{
	evTransition: "transition", evCloudCall: "cloud_call", evCloudClaimed: "cloud_claimed",
	evCloudConfirmed: "cloud_confirmed", evCloudError: "cloud_error", evReclaim: "reclaim",
	evConflict: "conflict", evDrain: "drain", evResume: "resume", evDrainDone: "drain_done", evHookRun: "hook_run",
}

// String names the kind, for tests and logs.
func (k eventKind) String() string {
	if k >= 0 && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("eventKind(%d)", int(k))
}

// event is one thing the daemon reports to its failover history and its
// hooks. Fields a kind has nothing to say about stay zero.
type event struct {
	kind       eventKind
	at         time.Time
	instance   string
	generation uint64
	// from, to and source describe a transition.
	from, to State
	source   string
	// The phase timings, each from the transition's receipt.
	vipsPresent, firstAnnouncement, cloudRequestSent, cloudConfirmed time.Duration
	// resource names a cloud resource by its key ("havip/havip-1").
	resource string
	// call is a mutating API call (evCloudCall); requestID, errorCode and
	// err describe the last call of a claim for the other cloud kinds.
	call      *cloud.CallRecord
	requestID string
	errorCode string
	err       string
	// hook and run are a hook's run (evHookRun).
	hook string
	run  *hooks.Run
	// message is a short note for people (a drain's outcome).
	message string
}

// sink takes the daemon's events. emit never blocks and never fails: the
// actors call it after their local actions and the cloud side after its
// calls, and what the history or a hook cannot take is counted there.
type sink interface {
	emit(e event)
}

// nopSink drops every event (tests, and before the daemon wires its own).
type nopSink struct{}

func (nopSink) emit(event) {}

// journalKinds maps the kinds the history keeps to its own.
var journalKinds = map[eventKind]journal.Kind{
	evTransition:     journal.KindTransition,
	evCloudCall:      journal.KindCloudCall,
	evCloudConfirmed: journal.KindCloudConfirmed,
	evReclaim:        journal.KindReclaim,
	evConflict:       journal.KindConflict,
	evDrain:          journal.KindDrain,
	evResume:         journal.KindResume,
	evDrainDone:      journal.KindDrain,
	evHookRun:        journal.KindHook,
}

// hookKinds maps the kinds hooks may run for to theirs.
var hookKinds = map[eventKind]hooks.Kind{
	evTransition:     hooks.KindTransition,
	evCloudClaimed:   hooks.KindCloudClaimed,
	evCloudConfirmed: hooks.KindCloudConfirmed,
	evCloudError:     hooks.KindCloudError,
	evConflict:       hooks.KindConflict,
	evDrain:          hooks.KindDrain,
	evResume:         hooks.KindResume,
}

// journal is the history's line of e; false for a kind it does not keep.
func (e event) journal() (journal.Event, bool) {
	k, ok := journalKinds[e.kind]
	if !ok {
		return journal.Event{}, false
	}
	j := journal.Event{
		Time: e.at, Instance: e.instance, Kind: k, Generation: e.generation,
		From: e.from, To: e.to, Source: e.source,
		VIPsPresent: e.vipsPresent, FirstAnnouncement: e.firstAnnouncement,
		CloudRequestSent: e.cloudRequestSent, CloudConfirmed: e.cloudConfirmed,
		Resource: e.resource, RequestID: e.requestID, ErrorCode: e.errorCode, Message: e.message,
	}
	if e.err != "" && j.Message == "" {
		j.Message = e.err
	}
	switch e.kind {
	case evDrain, evDrainDone, evResume:
		// A drain belongs to no transition: the history shows it at its
		// own time (hooks still get the generation).
		j.Generation = 0
	}
	if c := e.call; c != nil {
		j.Operation, j.Status, j.ErrorCode, j.RequestID = c.Operation, c.Status, c.ErrorCode, c.RequestID
		j.ClientToken, j.Attempt, j.Elapsed = c.ClientToken, c.Attempt, c.Duration
		if c.Status == 0 && c.ErrorCode == "" {
			// No answer: say what happened instead (timeout, network, ...).
			j.Message = c.Code
		}
	}
	if r := e.run; r != nil {
		j.Hook, j.Outcome, j.Elapsed = e.hook, r.Outcome(), r.Duration
		// The run's own event, so that it reads as part of that event's
		// transition.
		j.Generation = r.Generation
		if j.Instance == "" {
			j.Instance = r.Instance
		}
		if r.Event != "" {
			j.Message = "for " + string(r.Event)
		}
	}
	return j, true
}

// payload is what the hooks are given for e; false for a kind no hook
// runs for. Node is left for the sink to fill.
func (e event) payload() (hooks.Payload, bool) {
	k, ok := hookKinds[e.kind]
	if !ok {
		return hooks.Payload{}, false
	}
	p := hooks.Payload{
		Event: k, Instance: e.instance, From: e.from, To: e.to, Generation: e.generation, When: e.at,
		Phases: hooks.Phases{VIPsPresent: e.vipsPresent, FirstAnnouncement: e.firstAnnouncement,
			CloudRequestSent: e.cloudRequestSent, CloudConfirmed: e.cloudConfirmed},
		Detail: e.message,
	}
	if e.err != "" {
		p.Detail = e.err
	}
	if e.resource != "" {
		p.Resources = []hooks.Resource{{Kind: resourceKind(e.resource), ID: resourceID(e.resource), Outcome: outcomes[e.kind],
			RequestID: e.requestID, ErrorCode: e.errorCode, Error: e.err}}
	}
	return p, true
}

// outcomes is the outcome a payload gives the resource of each cloud kind.
var outcomes = map[eventKind]hooks.Outcome{
	evCloudClaimed:   hooks.OutcomeClaimed,
	evCloudConfirmed: hooks.OutcomeConfirmed,
	evCloudError:     hooks.OutcomeError,
	evConflict:       hooks.OutcomeConflict,
}

// resourceKind and resourceID split a resource key ("route/rt-1/0.0.0.0/0")
// into its kind and the id the configuration gives it.
func resourceKind(key string) string {
	for i := range len(key) {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return key
}

func resourceID(key string) string {
	k := resourceKind(key)
	if len(k) < len(key) {
		return key[len(k)+1:]
	}
	return ""
}

// transitionEvent is the event of transition t.
func transitionEvent(instance string, t *Transition) event {
	return event{kind: evTransition, at: t.Received, instance: instance, generation: t.Generation,
		from: t.From, to: t.To, source: t.Source, vipsPresent: t.VIPsDone, firstAnnouncement: t.FirstAnnouncement}
}

// events is the daemon's sink: the failover history and the hooks.
type events struct {
	log     *slog.Logger
	journal *journal.Journal
	// hooks is swapped by a reload.
	hooks atomic.Pointer[hooks.Runner]
	// node names this node in hook payloads; the instance id is known
	// once the cloud side is set up.
	node func() hooks.Node
	// dropLogged: a history that could not keep an event is logged once.
	dropLogged atomic.Bool
}

func (s *events) emit(e event) {
	if e.at.IsZero() {
		e.at = time.Now()
	}
	if s.journal != nil {
		if j, ok := e.journal(); ok {
			if err := s.journal.Append(j); err != nil && !errors.Is(err, journal.ErrClosed) && s.dropLogged.CompareAndSwap(false, true) {
				// Counted by the journal; the log says once why.
				s.log.Warn("failover history cannot keep up; events are dropped and counted (havip_agent_history_events_dropped_total)", "err", err)
			}
		}
	}
	if r := s.hooks.Load(); r != nil {
		if p, ok := e.payload(); ok {
			if s.node != nil {
				p.Node = s.node()
			}
			r.Fire(p)
		}
	}
}

// hookRan is hooks.Options.OnRun: every run's outcome goes into the
// history (never to the hooks, which would run for their own runs).
func (s *events) hookRan(hook string, run hooks.Run) {
	s.emit(event{kind: evHookRun, at: run.Started.Add(run.Duration), hook: hook, run: &run})
}

// callTagKey carries a callTag in the context of a claim.
type callTagKey struct{}

// callTag says which instance, generation and resource the API calls made
// under a context are for, and keeps what the last mutating one answered.
type callTag struct {
	sink       sink
	instance   string
	generation uint64
	resource   string

	mu   sync.Mutex
	last *cloud.CallRecord
}

// withCallTag returns ctx carrying t.
func withCallTag(ctx context.Context, t *callTag) context.Context {
	return context.WithValue(ctx, callTagKey{}, t)
}

// lastCall returns the last mutating call made under t, if any.
func (t *callTag) lastCall() (cloud.CallRecord, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		return cloud.CallRecord{}, false
	}
	return *t.last, true
}

// CloudCall takes a cloud provider's report of one API attempt (the bce
// client's Options.OnCall): a mutating call made for a claim goes into the
// failover history with the transition it belongs to. Calls made outside
// a claim (config check -cloud) and reads are ignored. It never blocks.
func CloudCall(ctx context.Context, r cloud.CallRecord) {
	t, _ := ctx.Value(callTagKey{}).(*callTag)
	if t == nil || !r.Mutating {
		return
	}
	t.mu.Lock()
	t.last = &r
	t.mu.Unlock()
	t.sink.emit(event{kind: evCloudCall, instance: t.instance, generation: t.generation, resource: t.resource, call: &r})
}
