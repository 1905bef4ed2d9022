package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/health"
)

// DefaultQueueLen is the number of events that wait for one hook and
// instance when Options.QueueLen is zero.
const DefaultQueueLen = 16

// DefaultEnv is the environment of exec hooks when Options.Env is nil,
// before the HAVIP_ variables of the event are added: the same as exec
// health checks get.
var DefaultEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}

// Result classifies how a run ended; it is a metric label, so the set is
// fixed.
type Result string

// The results.
const (
	// ResultOK is exit status 0 or a 2xx answer.
	ResultOK Result = "ok"
	// ResultFailed is another exit status or HTTP status.
	ResultFailed Result = "failed"
	// ResultTimeout is a run the hook's timeout ended.
	ResultTimeout Result = "timeout"
	// ResultError is a run that could not start or reach its receiver.
	ResultError Result = "error"
	// ResultStopped is a run Close ended when its context was done.
	ResultStopped Result = "stopped"
)

// Results lists every Result, for metrics that start every series at zero.
var Results = []Result{ResultOK, ResultFailed, ResultTimeout, ResultError, ResultStopped}

// Observer is told about runs and drops, for metrics. Its methods must be
// cheap and must not block: HookDropped is called by Fire.
type Observer interface {
	HookRun(hook string, result Result, d time.Duration)
	HookDropped(hook string)
}

type nopObserver struct{}

func (nopObserver) HookRun(string, Result, time.Duration) {}
func (nopObserver) HookDropped(string)                    {}

// Options configures a Runner. Every field is optional.
type Options struct {
	Logger *slog.Logger
	// QueueLen bounds the events waiting per hook and instance, besides
	// the one running; DefaultQueueLen when zero.
	QueueLen int
	// Env is the environment of exec hooks, to which the event's HAVIP_
	// variables are added; DefaultEnv when nil.
	Env []string
	// HTTPClient sends the requests of http hooks without a CA file.
	// When nil, each such hook gets a client that verifies TLS with the
	// system's roots and does not follow redirects. Hooks with a CA file
	// always get a client of their own.
	HTTPClient *http.Client
	Observer   Observer
	// CheckExec vets an exec hook's argv before every run; a run it
	// refuses fails with its error. health.ValidateCommand when nil, the
	// rule of exec health checks.
	CheckExec func(argv []string) error
	// Node fills the node identity of payloads that carry none.
	Node Node
	// OnRun, when set, is told the record of every run once it ended,
	// from the goroutine that ran it (the failover history keeps it). It
	// must be quick and must not block.
	OnRun func(hook string, run Run)
}

// Run is the record of one run of a hook.
type Run struct {
	Instance   string        `json:"instance"`
	Event      Kind          `json:"event"`
	Generation uint64        `json:"generation"`
	Started    time.Time     `json:"started"`
	Duration   time.Duration `json:"duration_ns"`
	Result     Result        `json:"result"`
	// ExitCode is the exit status of an exec hook that exited non-zero;
	// -1 when a signal ended it.
	ExitCode int `json:"exit_code,omitempty"`
	// HTTPStatus is the status of the last answer of an http hook.
	HTTPStatus int `json:"http_status,omitempty"`
	// Attempts counts the requests of an http hook.
	Attempts int `json:"attempts,omitempty"`
	// Error says what went wrong, when the result says too little.
	Error string `json:"error,omitempty"`

	// timeout is the hook's, for Outcome.
	timeout time.Duration
}

// Outcome renders the end of a run for a person: "ok", "exit status 3",
// "HTTP 503", "timed out after 10s", "error: ..." or "stopped".
func (r Run) Outcome() string {
	var s string
	switch r.Result {
	case ResultOK:
		s = "ok"
	case ResultFailed:
		switch {
		case r.HTTPStatus != 0:
			s = fmt.Sprintf("HTTP %d", r.HTTPStatus)
		case r.ExitCode > 0:
			s = fmt.Sprintf("exit status %d", r.ExitCode)
		default:
			s = "failed"
		}
		if r.Error != "" {
			s += ": " + r.Error
		}
	case ResultTimeout:
		s = fmt.Sprintf("timed out after %v", r.timeout)
		if r.HTTPStatus != 0 {
			s += fmt.Sprintf(" (last HTTP %d)", r.HTTPStatus)
		}
	case ResultStopped:
		s = "stopped at shutdown"
	default:
		s = "error: " + r.Error
	}
	if r.Attempts > 1 {
		s += fmt.Sprintf(" [%d attempts]", r.Attempts)
	}
	return s
}

// Status is the state of one hook, for the status command and metrics.
type Status struct {
	Name     string `json:"name"`
	Type     Type   `json:"type"`
	Runs     uint64 `json:"runs"`
	Failures uint64 `json:"failures"`
	// Drops counts events that found the queue full, and events still
	// queued when Close gave up.
	Drops uint64 `json:"drops"`
	// Queued and Running are the events waiting and running now, over
	// every instance.
	Queued  int  `json:"queued"`
	Running int  `json:"running"`
	Last    *Run `json:"last,omitempty"`
	// LastOutcome is Last.Outcome(), for the text status.
	LastOutcome string `json:"last_outcome,omitempty"`
}

// hook is a configured hook with its counters, guarded by Runner.mu.
type hook struct {
	spec Hook
	// client sends the requests of an http hook; setupErr, when not nil,
	// is why it has none (an unreadable CA file) and fails every run.
	client   *http.Client
	setupErr error

	runs, failures, drops uint64
	running               int
	last                  *Run
}

type queueKey struct {
	hook     *hook
	instance string
}

// queue is the events waiting for one hook and instance. While active, a
// worker goroutine owns the running of its events.
type queue struct {
	key    queueKey
	events []Payload
	active bool
	// dropped counts the events dropped since the worker last logged.
	dropped int
}

// Runner runs hooks for the events Fire is given. Per hook and instance
// the runs go in order, one at a time; hooks and instances run in
// parallel.
type Runner struct {
	log      *slog.Logger
	obs      Observer
	queueLen int
	env      []string
	check    func([]string) error
	node     Node
	onRun    func(string, Run)
	hooks    []*hook
	groups   *health.ProcGroups

	// ctx is the parent of every run; Close cancels it when its own
	// context is done.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// run runs one hook; tests replace it.
	run func(ctx context.Context, h *hook, body []byte, p *Payload) (Run, string)

	mu     sync.Mutex
	queues map[queueKey]*queue
	closed bool
}

// New returns a Runner for hooks, which should have passed Validate. It
// starts no goroutine until an event is fired. A hook whose CA file
// cannot be read is kept: its runs fail with that error, logged.
func New(hooks []Hook, opts Options) *Runner {
	r := &Runner{
		log:      opts.Logger,
		obs:      opts.Observer,
		queueLen: opts.QueueLen,
		env:      opts.Env,
		check:    opts.CheckExec,
		node:     opts.Node,
		onRun:    opts.OnRun,
		queues:   map[queueKey]*queue{},
		groups:   health.NewProcGroups(),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	if r.queueLen <= 0 {
		r.queueLen = DefaultQueueLen
	}
	if r.env == nil {
		r.env = DefaultEnv
	}
	if r.check == nil {
		r.check = health.ValidateCommand
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.run = r.runHook
	for _, spec := range hooks {
		h := &hook{spec: spec.WithDefaults()}
		if h.spec.Type == TypeHTTP {
			h.client, h.setupErr = httpClient(opts.HTTPClient, h.spec.CAFile)
			if h.setupErr != nil {
				r.log.Error("hook cannot send requests; its runs will fail", "hook", h.spec.Name, "err", h.setupErr)
			}
		}
		r.hooks = append(r.hooks, h)
	}
	return r
}

// Fire queues ev for every hook that selects it, on the queue of the hook
// and ev.Instance, and returns at once: it never waits for a hook, the
// disk or a log line, so the failover path can call it. An event that
// finds a queue full is dropped and counted; the hook's worker logs the
// drops when it takes its next event. Events fired after Close are
// ignored. A nil Runner has no hooks.
func (r *Runner) Fire(ev Payload) {
	if r == nil || len(r.hooks) == 0 {
		return
	}
	if ev.Node == (Node{}) {
		ev.Node = r.node
	}
	var dropped []string
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	for _, h := range r.hooks {
		if !selects(h.spec.Events, &ev) {
			continue
		}
		k := queueKey{hook: h, instance: ev.Instance}
		q := r.queues[k]
		if q == nil {
			q = &queue{key: k}
			r.queues[k] = q
		}
		if len(q.events) >= r.queueLen {
			q.dropped++
			h.drops++
			dropped = append(dropped, h.spec.Name)
			continue
		}
		q.events = append(q.events, ev.clone())
		if !q.active {
			q.active = true
			r.wg.Add(1)
			go r.work(q)
		}
	}
	r.mu.Unlock()
	for _, name := range dropped {
		r.obs.HookDropped(name)
	}
}

// work runs the events of q in order until q is empty, then forgets q and
// returns. Once Close gave up waiting, the events left are dropped.
func (r *Runner) work(q *queue) {
	defer r.wg.Done()
	h := q.key.hook
	for {
		r.mu.Lock()
		dropped := q.dropped
		q.dropped = 0
		stopping := r.ctx.Err() != nil
		if len(q.events) == 0 || stopping {
			left := len(q.events)
			h.drops += uint64(left)
			q.events = nil
			q.active = false
			delete(r.queues, q.key)
			r.mu.Unlock()
			r.logDrops(h, q.key.instance, dropped)
			if left > 0 {
				r.log.Warn("hook events dropped: the agent stopped before they ran",
					"hook", h.spec.Name, "instance", q.key.instance, "dropped", left)
				for range left {
					r.obs.HookDropped(h.spec.Name)
				}
			}
			return
		}
		ev := q.events[0]
		q.events[0] = Payload{}
		q.events = q.events[1:]
		h.running++
		r.mu.Unlock()

		r.logDrops(h, q.key.instance, dropped)
		run := r.runOne(h, ev)

		r.mu.Lock()
		h.running--
		h.runs++
		if run.Result != ResultOK {
			h.failures++
		}
		h.last = &run
		r.mu.Unlock()
		r.obs.HookRun(h.spec.Name, run.Result, run.Duration)
		if r.onRun != nil {
			r.onRun(h.spec.Name, run)
		}
	}
}

func (r *Runner) logDrops(h *hook, instance string, n int) {
	if n == 0 {
		return
	}
	r.log.Warn("hook queue was full: events dropped; the hook is slower than the events",
		"hook", h.spec.Name, "instance", instance, "dropped", n, "queue_len", r.queueLen)
}

// runOne runs h for ev under the hook's timeout and logs how it ended.
func (r *Runner) runOne(h *hook, ev Payload) Run {
	ev.Hook = h.spec.Name
	started := time.Now()
	var run Run
	var detail string
	body, err := json.Marshal(ev)
	if err != nil {
		run = Run{Result: ResultError, Error: fmt.Sprintf("encode payload: %v", err)}
	} else {
		ctx, cancel := context.WithTimeout(r.ctx, h.spec.Timeout)
		run, detail = r.run(ctx, h, body, &ev)
		switch {
		case run.Result == ResultOK:
		case r.ctx.Err() != nil:
			run.Result = ResultStopped
		case ctx.Err() != nil:
			run.Result = ResultTimeout
		}
		cancel()
	}
	run.Instance, run.Event, run.Generation = ev.Instance, ev.Event, ev.Generation
	run.Started, run.Duration, run.timeout = started, time.Since(started), h.spec.Timeout

	attrs := []any{"hook", h.spec.Name, "instance", ev.Instance, "event", ev.Event,
		"generation", ev.Generation, "outcome", run.Outcome(), "took", run.Duration}
	if ev.To != "" {
		attrs = append(attrs, "to", ev.To)
	}
	if run.Result == ResultOK {
		if detail != "" {
			attrs = append(attrs, "output", detail)
		}
		r.log.Info("hook ran", attrs...)
	} else {
		if detail != "" {
			attrs = append(attrs, "output", detail)
		}
		r.log.Warn("hook failed", attrs...)
	}
	return run
}

// runHook runs h by its type. The result is ResultOK, ResultFailed or
// ResultError; runOne turns the runs its context ended into timeouts.
func (r *Runner) runHook(ctx context.Context, h *hook, body []byte, p *Payload) (Run, string) {
	switch h.spec.Type {
	case TypeExec:
		return r.runExec(ctx, h, body, p)
	case TypeHTTP:
		return r.runHTTP(ctx, h, body)
	}
	return Run{Result: ResultError, Error: fmt.Sprintf("unknown hook type %q", string(h.spec.Type))}, ""
}

// Close stops accepting events and waits for the queued and running ones
// until ctx is done; then it ends the running ones (exec: the process
// group is killed; http: the request is abandoned), drops what is still
// queued, and waits for every goroutine of r to return. It returns
// ctx's error when it had to end runs. Close may be called more than once.
func (r *Runner) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		<-done
		return fmt.Errorf("hooks: runs ended before they finished: %w", ctx.Err())
	}
}

// Status returns the state of every hook, in the configured order.
func (r *Runner) Status() []Status {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	queued := map[*hook]int{}
	for k, q := range r.queues {
		queued[k.hook] += len(q.events)
	}
	out := make([]Status, len(r.hooks))
	for i, h := range r.hooks {
		out[i] = Status{
			Name: h.spec.Name, Type: h.spec.Type,
			Runs: h.runs, Failures: h.failures, Drops: h.drops,
			Queued: queued[h], Running: h.running,
		}
		if h.last != nil {
			last := *h.last
			out[i].Last = &last
			out[i].LastOutcome = last.Outcome()
		}
	}
	return out
}

// hookEnv returns the environment of an exec hook for p: base without
// any HAVIP_ variable, then the event's.
func hookEnv(base []string, p *Payload) []string {
	env := make([]string, 0, len(base)+6)
	for _, kv := range base {
		if !strings.HasPrefix(kv, "HAVIP_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HAVIP_HOOK="+p.Hook,
		"HAVIP_EVENT="+string(p.Event),
		"HAVIP_INSTANCE="+p.Instance,
		"HAVIP_FROM="+string(p.From),
		"HAVIP_TO="+string(p.To),
		fmt.Sprintf("HAVIP_GENERATION=%d", p.Generation),
	)
}
