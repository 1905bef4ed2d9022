package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Result is the outcome of one run of a check.
type Result struct {
	// Time is when the run started.
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration"`
	OK       bool          `json:"ok"`
	// Message is a short description: "connected", "HTTP 200",
	// "exit status 1", "timed out", or the error.
	Message string `json:"message"`
	// Output is the combined output of an exec check, at most OutputLimit
	// bytes plus a note of how much was dropped.
	Output string `json:"output,omitempty"`
}

// Status is the state of one check.
type Status struct {
	Name    string  `json:"name"`
	Type    Type    `json:"type"`
	Verdict Verdict `json:"verdict"`
	// Since is when the verdict took its current value (the runner's
	// creation for the initial verdict).
	Since time.Time `json:"since"`
	// Last is the latest result; its Time is zero before the first run.
	Last Result `json:"last"`
	// Passes and Fails count consecutive results; one of them is zero.
	Passes int `json:"passes"`
	Fails  int `json:"fails"`
	// Checks counts the runs so far.
	Checks uint64 `json:"checks"`
	// TrackFile is the spec's track file; TrackError is the latest failure
	// to write it, empty once a write succeeded.
	TrackFile  string `json:"track_file,omitempty"`
	TrackError string `json:"track_error,omitempty"`
}

// Options are the Runner's settings besides the checks.
type Options struct {
	// OnChange, if set, is called after a check's verdict changed, from
	// that check's goroutine. It must not block: queue the status or drop
	// it. Initial verdicts are not reported; read them with Snapshot.
	OnChange func(Status)
	// OnResult, if set, is called after every run (for metrics), from the
	// check's goroutine. It must not block.
	OnResult func(name string, r Result)
	// CommandCheck vets each exec command in New; nil means
	// ValidateCommand. Tests inject a lookup through ValidateCommandWith.
	CommandCheck func(argv []string) error
}

// Runner runs checks on their schedules and keeps their verdicts.
type Runner struct {
	logger  *slog.Logger
	opts    Options
	checks  []*check // sorted by name
	byName  map[string]*check
	started atomic.Bool
}

type check struct {
	spec  Spec
	probe prober

	mu      sync.Mutex
	st      Status
	m       machine
	pending bool // the track file does not hold the current verdict
}

// New validates specs (defaults are not applied: call Spec.WithDefaults
// first) and returns a Runner for them. Names and track files must be
// unique. The initial verdicts are visible through Status at once.
func New(specs []Spec, opts Options, logger *slog.Logger) (*Runner, error) {
	return newRunner(specs, opts, logger, newProber)
}

func newRunner(specs []Spec, opts Options, logger *slog.Logger, mk func(Spec) prober) (*Runner, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cmdCheck := opts.CommandCheck
	if cmdCheck == nil {
		cmdCheck = ValidateCommand
	}
	r := &Runner{logger: logger, opts: opts, byName: make(map[string]*check, len(specs))}
	tracks := map[string]string{}
	now := time.Now()
	for i, s := range specs {
		where := fmt.Sprintf("check %d", i+1)
		if s.Name != "" {
			where = fmt.Sprintf("check %q", s.Name)
		}
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if _, dup := r.byName[s.Name]; dup {
			return nil, fmt.Errorf("%s: name: used by another check", where)
		}
		if s.TrackFile != "" {
			if other, dup := tracks[s.TrackFile]; dup {
				return nil, fmt.Errorf("%s: track_file: %s is also used by check %q", where, s.TrackFile, other)
			}
			tracks[s.TrackFile] = s.Name
		}
		if s.Type == TypeExec {
			if err := cmdCheck(s.Command); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		s.Command = append([]string(nil), s.Command...)
		c := &check{
			spec:    s,
			probe:   mk(s),
			m:       machine{rise: s.Rise, fall: s.Fall, verdict: s.Initial},
			pending: s.TrackFile != "",
		}
		c.st = Status{Name: s.Name, Type: s.Type, Verdict: s.Initial, Since: now, TrackFile: s.TrackFile}
		r.byName[s.Name] = c
		r.checks = append(r.checks, c)
	}
	sort.Slice(r.checks, func(i, j int) bool { return r.checks[i].spec.Name < r.checks[j].spec.Name })
	return r, nil
}

// Run writes the initial track files and runs every check in its own
// goroutine until ctx is done, then waits for all of them to stop and
// returns nil. A Runner runs once.
func (r *Runner) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("health: runner already started")
	}
	var wg sync.WaitGroup
	for _, c := range r.checks {
		wg.Go(func() { r.loop(ctx, c) })
	}
	wg.Wait()
	return nil
}

// loop runs one check. Runs never overlap: the next is scheduled only
// after the previous returned, Interval after its start (with jitter).
func (r *Runner) loop(ctx context.Context, c *check) {
	r.syncTrack(c)
	iv := c.spec.Interval
	// Spread the first runs so checks started together do not stay in
	// lockstep.
	t := time.NewTimer(rand.N(iv))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		res := r.runOnce(ctx, c)
		if ctx.Err() != nil {
			// Cut short by shutdown, not by the service: not a result.
			return
		}
		r.record(c, res)
		// Up to ±5% of the interval each period.
		next := iv - iv/20 + rand.N(iv/10+1) - time.Since(start)
		t.Reset(max(next, 0))
	}
}

func (r *Runner) runOnce(ctx context.Context, c *check) Result {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Timeout)
	defer cancel()
	start := time.Now()
	o := c.probe(ctx)
	return Result{Time: start, Duration: time.Since(start), OK: o.ok, Message: o.msg, Output: o.output}
}

// record applies one result: counters, rise/fall, track file, callbacks.
func (r *Runner) record(c *check, res Result) {
	c.mu.Lock()
	changed := c.m.observe(res.OK)
	c.st.Last = res
	c.st.Checks++
	c.st.Passes, c.st.Fails = c.m.passes, c.m.fails
	if changed {
		c.st.Verdict = c.m.verdict
		c.st.Since = res.Time
		c.pending = c.spec.TrackFile != ""
	}
	st := c.st
	c.mu.Unlock()

	if changed {
		lvl := slog.LevelInfo
		if st.Verdict == Failed {
			lvl = slog.LevelWarn
		}
		r.logger.Log(context.Background(), lvl, "health check verdict changed",
			"check", st.Name, "verdict", st.Verdict.String(), "passes", st.Passes, "fails", st.Fails,
			"message", res.Message)
	} else {
		r.logger.Debug("health check result", "check", st.Name, "ok", res.OK,
			"duration", res.Duration, "message", res.Message)
	}
	// The track file goes first so keepalived hears of a failure before
	// anything else that OnChange may start.
	r.syncTrack(c)
	if r.opts.OnResult != nil {
		r.opts.OnResult(st.Name, res)
	}
	if changed && r.opts.OnChange != nil {
		r.opts.OnChange(r.status(c))
	}
}

// syncTrack writes the track file if it does not hold the verdict yet. It
// runs only on the check's own goroutine, so writes never race; a failure
// is kept in the status and retried after the next result.
func (r *Runner) syncTrack(c *check) {
	c.mu.Lock()
	if !c.pending {
		c.mu.Unlock()
		return
	}
	v := c.st.Verdict
	c.mu.Unlock()

	err := writeTrackFile(c.spec.TrackFile, trackValue(v, c.spec.TrackValueFailed))

	c.mu.Lock()
	if err != nil {
		c.st.TrackError = err.Error()
	} else {
		c.st.TrackError = ""
		// Stay pending if the verdict moved on meanwhile.
		c.pending = c.st.Verdict != v
	}
	c.mu.Unlock()
	if err != nil {
		r.logger.Error("cannot write track file; retrying after the next result",
			"check", c.spec.Name, "file", c.spec.TrackFile, "err", err)
	}
}

// Status returns the state of the named check.
func (r *Runner) Status(name string) (Status, bool) {
	c, ok := r.byName[name]
	if !ok {
		return Status{}, false
	}
	return r.status(c), true
}

// Snapshot returns the state of every check, sorted by name.
func (r *Runner) Snapshot() []Status {
	out := make([]Status, len(r.checks))
	for i, c := range r.checks {
		out[i] = r.status(c)
	}
	return out
}

func (r *Runner) status(c *check) Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// machine applies rise and fall to a stream of results.
type machine struct {
	rise, fall    int
	verdict       Verdict
	passes, fails int
}

// observe records one result and reports whether the verdict changed.
func (m *machine) observe(ok bool) bool {
	if ok {
		m.passes++
		m.fails = 0
		if m.verdict != Healthy && m.passes >= m.rise {
			m.verdict = Healthy
			return true
		}
		return false
	}
	m.fails++
	m.passes = 0
	if m.verdict != Failed && m.fails >= m.fall {
		m.verdict = Failed
		return true
	}
	return false
}
