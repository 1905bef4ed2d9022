package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/hooks"
	"github.com/havip-agent/havip-agent/cloud"
)

// eventCases are one event of every kind, as the daemon makes them.
func eventCases() []event {
	at := time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	call := &cloud.CallRecord{Operation: "route.rule.switch", Target: "route.switch rr-a", Mutating: true, Attempt: 2, Status: 200,
		Code: "OK", RequestID: "4f1e2d3c-aaaa", ClientToken: "0123456789abcdef0123456789abcdef", Duration: 11 * time.Millisecond}
	lost := &cloud.CallRecord{Operation: "havip.attach", Mutating: true, Attempt: 1, Code: "timeout", ClientToken: "feedface", Duration: 2 * time.Second}
	run := &hooks.Run{Instance: "VI_1", Event: hooks.KindTransition, Generation: 7, Started: at, Duration: 95 * time.Millisecond, Result: hooks.ResultFailed, ExitCode: 3}
	return []event{
		transitionEvent("VI_1", &Transition{From: StateBackup, To: StateMaster, Generation: 7, Source: "fifo", Received: at,
			VIPsDone: 300 * time.Microsecond, FirstAnnouncement: 120 * time.Microsecond}),
		{kind: evCloudCall, at: at.Add(12 * time.Millisecond), instance: "VI_1", generation: 7, resource: "route/rt-1/0.0.0.0/0", call: call},
		{kind: evCloudCall, at: at.Add(2 * time.Second), instance: "VI_1", generation: 7, resource: "havip/havip-1", call: lost},
		{kind: evCloudClaimed, at: at.Add(13 * time.Millisecond), instance: "VI_1", generation: 7, resource: "route/rt-1/0.0.0.0/0", requestID: "4f1e2d3c-aaaa"},
		{kind: evCloudConfirmed, at: at.Add(time.Second), instance: "VI_1", generation: 7, resource: "havip/havip-1",
			cloudRequestSent: 2 * time.Millisecond, cloudConfirmed: time.Second, requestID: "9a8b"},
		{kind: evCloudError, at: at.Add(3 * time.Second), instance: "VI_1", generation: 7, resource: "havip/havip-1",
			requestID: "77aa", errorCode: "AccessDenied", err: "havip.attach havip-1: HTTP 403 AccessDenied: denied"},
		{kind: evReclaim, at: at.Add(10 * time.Second), instance: "VI_1", generation: 7, resource: "havip/havip-1", message: "points at i-peer"},
		{kind: evConflict, at: at.Add(20 * time.Second), instance: "VI_1", generation: 7, resource: "havip/havip-1", message: "points at i-peer again"},
		{kind: evDrain, at: at.Add(time.Hour), instance: "VI_1", generation: 7, message: "havip-agent drain (timeout 30s)"},
		{kind: evDrainDone, at: at.Add(time.Hour + 2*time.Second), instance: "VI_1", generation: 8, message: "switchover complete after 2.00s"},
		{kind: evResume, at: at.Add(2 * time.Hour), instance: "VI_1", generation: 8, message: "havip-agent resume"},
		{kind: evHookRun, at: at.Add(95 * time.Millisecond), hook: "pager", run: run},
	}
}

// TestEventMapping fixes what the history and the hooks get of each kind
// of event (testdata/events.golden): which kinds go where, the phase
// timings, request ids, clientTokens and outcomes.
func TestEventMapping(t *testing.T) {
	var b bytes.Buffer
	for _, e := range eventCases() {
		j, jok := e.journal()
		p, pok := e.payload()
		fmt.Fprintf(&b, "=== %s\n", e.kind)
		if jok {
			line, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "history: %s\n", line)
		} else {
			b.WriteString("history: -\n")
		}
		if pok {
			body, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "hooks:   %s\n", body)
		} else {
			b.WriteString("hooks:   -\n")
		}
	}
	checkGolden(t, "events.golden", b.Bytes())
}

// recordSink keeps what is emitted.
type recordSink struct {
	mu sync.Mutex
	ev []event
}

func newRecordSink() *recordSink { return &recordSink{} }

func (s *recordSink) emit(e event) {
	s.mu.Lock()
	s.ev = append(s.ev, e)
	s.mu.Unlock()
}

func (s *recordSink) all() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event(nil), s.ev...)
}

// CloudCall journals only the mutating calls made under a claim's tag, with
// the claim's instance, generation and resource, and the tag keeps the last
// one for the claim's events.
func TestCloudCallTag(t *testing.T) {
	s := newRecordSink()
	CloudCall(context.Background(), cloud.CallRecord{Mutating: true, Operation: "havip.attach"})
	tag := &callTag{sink: s, instance: "VI_1", generation: 9, resource: "havip/havip-1"}
	ctx := withCallTag(context.Background(), tag)
	CloudCall(ctx, cloud.CallRecord{Operation: "havip.detail"})
	if _, ok := tag.lastCall(); ok {
		t.Error("a read counted as the claim's call")
	}
	CloudCall(ctx, cloud.CallRecord{Mutating: true, Operation: "havip.attach", RequestID: "r-1"})
	CloudCall(ctx, cloud.CallRecord{Mutating: true, Operation: "havip.attach", RequestID: "r-2", Attempt: 2})
	ev := s.all()
	if len(ev) != 2 {
		t.Fatalf("events %+v, want the two mutating calls", ev)
	}
	for _, e := range ev {
		if e.kind != evCloudCall || e.instance != "VI_1" || e.generation != 9 || e.resource != "havip/havip-1" {
			t.Errorf("event %+v", e)
		}
	}
	if last, ok := tag.lastCall(); !ok || last.RequestID != "r-2" {
		t.Errorf("last call %+v", last)
	}
}
