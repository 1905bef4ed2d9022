package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// syncBuffer is a log sink for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeObserver counts what the runner reports.
type fakeObserver struct {
	mu      sync.Mutex
	runs    map[string][]Result
	dropped map[string]int
}

func newFakeObserver() *fakeObserver {
	return &fakeObserver{runs: map[string][]Result{}, dropped: map[string]int{}}
}

func (o *fakeObserver) HookRun(hook string, r Result, _ time.Duration) {
	o.mu.Lock()
	o.runs[hook] = append(o.runs[hook], r)
	o.mu.Unlock()
}

func (o *fakeObserver) HookDropped(hook string) {
	o.mu.Lock()
	o.dropped[hook]++
	o.mu.Unlock()
}

// call is one run seen by a fake hook.
type call struct {
	hook     string
	instance string
	gen      uint64
	started  time.Time
	// ctxErr is the run's context's error when the run returned.
	ctxErr error
}

// fakeHooks replaces the runs of a Runner: each takes d, or blocks until
// its context is done when d is negative, or until release is closed.
type fakeHooks struct {
	mu      sync.Mutex
	calls   []call
	d       time.Duration
	release chan struct{}
}

func (f *fakeHooks) run(ctx context.Context, h *hook, _ []byte, p *Payload) (Run, string) {
	c := call{hook: h.spec.Name, instance: p.Instance, gen: p.Generation, started: time.Now()}
	res := Run{Result: ResultOK}
	switch {
	case f.release != nil:
		select {
		case <-f.release:
		case <-ctx.Done():
			res.Result = ResultError
		}
	case f.d < 0:
		<-ctx.Done()
		res.Result = ResultError
	default:
		t := time.NewTimer(f.d)
		select {
		case <-t.C:
		case <-ctx.Done():
			res.Result = ResultError
		}
		t.Stop()
	}
	c.ctxErr = ctx.Err()
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	return res, ""
}

func (f *fakeHooks) seen() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func newFake(t *testing.T, hooks []Hook, opts Options, f *fakeHooks) *Runner {
	t.Helper()
	for i := range hooks {
		hooks[i] = hooks[i].WithDefaults()
	}
	if err := Validate(hooks); err != nil {
		t.Fatal(err)
	}
	r := New(hooks, opts)
	r.run = f.run
	return r
}

func transition(instance string, gen uint64, to State) Payload {
	return Payload{Event: KindTransition, Instance: instance, To: to, Generation: gen, When: time.Now()}
}

func execHook(name string, events ...Event) Hook {
	return Hook{Name: name, Type: TypeExec, Argv: []string{"/bin/true"}, Timeout: time.Minute, Events: events}
}

// A hook slower than the events sees every one, in order, one at a time,
// and no run is cut short by the next event.
func TestSlowHookSeesEveryEventInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{d: 10 * time.Second}
		r := newFake(t, []Hook{execHook("slow")}, Options{}, f)
		for g := uint64(1); g <= 5; g++ {
			r.Fire(transition("VI_1", g, StateMaster))
			time.Sleep(time.Second) // each event well before the run ends
		}
		synctest.Wait()
		if st := r.Status()[0]; st.Running != 1 || st.Queued != 4-len(f.seen()) {
			t.Errorf("status while running: %+v", st)
		}
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		calls := f.seen()
		if len(calls) != 5 {
			t.Fatalf("%d runs, want 5: %+v", len(calls), calls)
		}
		for i, c := range calls {
			if c.gen != uint64(i+1) || c.ctxErr != nil {
				t.Errorf("run %d: generation %d, context %v; want generation %d, not cancelled", i, c.gen, c.ctxErr, i+1)
			}
			if i > 0 && c.started.Sub(calls[i-1].started) < f.d {
				t.Errorf("run %d started %v after the previous one, which takes %v: overlapping", i, c.started.Sub(calls[i-1].started), f.d)
			}
		}
		st := r.Status()[0]
		if st.Runs != 5 || st.Failures != 0 || st.Drops != 0 || st.Queued != 0 || st.Running != 0 {
			t.Errorf("status: %+v", st)
		}
		if st.Last == nil || st.Last.Generation != 5 || st.LastOutcome != "ok" || st.Last.Duration != f.d {
			t.Errorf("last run: %+v (%q)", st.Last, st.LastOutcome)
		}
	})
}

// A full queue drops the event, counts it, and the worker logs the streak
// once.
func TestQueueOverflowDropsAndCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{release: make(chan struct{})}
		obs := newFakeObserver()
		var logs syncBuffer
		r := newFake(t, []Hook{execHook("stuck")}, Options{QueueLen: 2, Observer: obs,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))}, f)
		for g := uint64(1); g <= 6; g++ {
			r.Fire(transition("VI_1", g, StateBackup))
			synctest.Wait()
		}
		st := r.Status()[0]
		if st.Running != 1 || st.Queued != 2 || st.Drops != 3 {
			t.Errorf("status: running %d queued %d drops %d; want 1, 2, 3", st.Running, st.Queued, st.Drops)
		}
		if obs.dropped["stuck"] != 3 {
			t.Errorf("observer saw %d drops, want 3", obs.dropped["stuck"])
		}
		if strings.Contains(logs.String(), "dropped") {
			t.Errorf("Fire logged:\n%s", logs.String())
		}
		close(f.release)
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		var gens []uint64
		for _, c := range f.seen() {
			gens = append(gens, c.gen)
		}
		if want := []uint64{1, 2, 3}; !reflect.DeepEqual(gens, want) {
			t.Errorf("ran generations %v, want %v", gens, want)
		}
		if n := strings.Count(logs.String(), "hook queue was full"); n != 1 || !strings.Contains(logs.String(), "dropped=3") {
			t.Errorf("%d drop messages, want one saying dropped=3:\n%s", n, logs.String())
		}
		if got := obs.runs["stuck"]; len(got) != 3 {
			t.Errorf("observer saw runs %v", got)
		}
	})
}

// Fire returns at once even when every hook is stuck and every queue is
// full; synctest reports a deadlock if it ever blocked.
func TestFireNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{d: -1}
		r := newFake(t, []Hook{execHook("a"), execHook("b")}, Options{QueueLen: 4}, f)
		const n = 1000
		instances := []string{"VI_1", "VI_2"}
		for i := range n {
			r.Fire(transition(instances[i%2], uint64(i), StateMaster))
			if i < len(instances) {
				synctest.Wait() // the first run of each instance has started
			}
		}
		synctest.Wait()
		for _, st := range r.Status() {
			// Per instance: one running, four queued, the rest dropped.
			if st.Running != 2 || st.Queued != 8 || st.Drops != n-10 {
				t.Errorf("%s: running %d queued %d drops %d", st.Name, st.Running, st.Queued, st.Drops)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close: %v, want the deadline", err)
		}
		for _, st := range r.Status() {
			if st.Runs != 2 || st.Last.Result != ResultStopped || st.Drops != n-2 || st.Running != 0 || st.Queued != 0 {
				t.Errorf("%s after Close: %+v", st.Name, st)
			}
		}
	})
}

// Close waits for the queued events to run when its context allows.
func TestCloseRunsWhatIsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{d: time.Second}
		r := newFake(t, []Hook{execHook("a")}, Options{}, f)
		for g := uint64(1); g <= 3; g++ {
			r.Fire(transition("VI_1", g, StateStop))
		}
		start := time.Now()
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(f.seen()) != 3 || time.Since(start) != 3*time.Second {
			t.Errorf("Close returned after %v with %d runs; want all three", time.Since(start), len(f.seen()))
		}
		r.Fire(transition("VI_1", 4, StateStop))
		synctest.Wait()
		if len(f.seen()) != 3 || r.Status()[0].Queued != 0 {
			t.Errorf("an event fired after Close ran or waits")
		}
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// A hook's timeout ends its run; the next event then runs.
func TestTimeoutEndsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{d: -1}
		h := execHook("hang")
		h.Timeout = 3 * time.Second
		r := newFake(t, []Hook{h}, Options{}, f)
		r.Fire(transition("VI_1", 1, StateMaster))
		r.Fire(transition("VI_1", 2, StateBackup))
		time.Sleep(4 * time.Second)
		synctest.Wait()
		st := r.Status()[0]
		if st.Runs != 1 || st.Failures != 1 || st.Last.Result != ResultTimeout || st.LastOutcome != "timed out after 3s" || st.Running != 1 {
			t.Errorf("status: %+v", st)
		}
		time.Sleep(3 * time.Second)
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if calls := f.seen(); len(calls) != 2 || calls[1].gen != 2 {
			t.Errorf("runs: %+v", calls)
		}
	})
}

// Hooks select their events, and instances have queues of their own that
// run in parallel.
func TestSelectionAndInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{d: time.Second}
		r := newFake(t, []Hook{
			execHook("masters", Event{Kind: KindTransition, To: StateMaster}),
			execHook("errors", Event{Kind: KindCloudError}),
			execHook("all"),
		}, Options{}, f)
		r.Fire(transition("VI_1", 1, StateMaster))
		r.Fire(transition("VI_2", 1, StateMaster))
		r.Fire(Payload{Event: KindCloudError, Instance: "VI_1", Generation: 1})
		r.Fire(transition("VI_1", 2, StateBackup))
		synctest.Wait()
		running := map[string]int{}
		for _, st := range r.Status() {
			running[st.Name] = st.Running
		}
		if want := map[string]int{"masters": 2, "errors": 1, "all": 2}; !reflect.DeepEqual(running, want) {
			t.Errorf("running %v, want %v", running, want)
		}
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, c := range f.seen() {
			got[c.hook] = append(got[c.hook], c.instance)
		}
		want := map[string]int{"masters": 2, "errors": 1, "all": 4}
		for name, n := range want {
			if len(got[name]) != n {
				t.Errorf("%s ran for %v, want %d runs", name, got[name], n)
			}
		}
	})
}

// A worker ends when its queue is empty, and the queue is forgotten.
func TestIdleWorkerExits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{d: time.Second}
		r := newFake(t, []Hook{execHook("a")}, Options{}, f)
		r.Fire(transition("VI_1", 1, StateMaster))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		r.mu.Lock()
		n := len(r.queues)
		r.mu.Unlock()
		if n != 0 {
			t.Errorf("%d queues left after the run", n)
		}
		// synctest.Test fails if the worker were still blocked here.
	})
}

func TestNilRunner(t *testing.T) {
	var r *Runner
	r.Fire(Payload{})
	if r.Status() != nil || r.Close(context.Background()) != nil || r.IsHookProcess(1) {
		t.Error("a nil Runner is not empty")
	}
}

// The document a hook receives, as sent.
func TestPayloadGolden(t *testing.T) {
	var body []byte
	done := make(chan struct{})
	r := New([]Hook{execHook("notify")}, Options{Node: Node{InstanceID: "i-7Xc3Rk2p", Hostname: "lb-a"}})
	r.run = func(_ context.Context, _ *hook, b []byte, _ *Payload) (Run, string) {
		body = b
		close(done)
		return Run{Result: ResultOK}, ""
	}
	res := []Resource{
		{Kind: "havip", ID: "havip-1", Outcome: OutcomeConfirmed, RequestID: "6f0d7c1e-2a4b-4c3e-9f1a-0b2c3d4e5f60"},
		{Kind: "route", ID: "rt-1/198.19.9.0/24", Outcome: OutcomeError, RequestID: "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
			ErrorCode: "RouteRuleConflict", Error: "the route rule conflicts with an existing one"},
		{Kind: "eip", ID: "198.18.7.9", Outcome: OutcomeOwned},
	}
	r.Fire(Payload{
		Event: KindTransition, Instance: "VI_1", From: StateBackup, To: StateMaster, Generation: 42,
		When:      time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("CST", 8*3600)),
		Phases:    Phases{VIPsPresent: 1200 * time.Microsecond, FirstAnnouncement: 1500 * time.Microsecond, CloudRequestSent: 3 * time.Millisecond, CloudConfirmed: 2100 * time.Millisecond},
		Resources: res,
	})
	res[0].Outcome = "changed after Fire"
	<-done
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", "payload.golden.json")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if pretty.String() != string(want) {
		t.Errorf("payload\n%s\nwant (go test -update)\n%s", pretty.String(), want)
	}
	var back Payload
	if err := json.Unmarshal(body, &back); err != nil || back.Generation != 42 || len(back.Resources) != 3 || !back.When.Equal(time.Date(2026, 5, 1, 4, 0, 0, 123456789, time.UTC)) {
		t.Errorf("payload does not read back: %+v, %v", back, err)
	}
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
