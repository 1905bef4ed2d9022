package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
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
	// creation for the initial or a restored verdict).
	Since time.Time `json:"since"`
	// Restored says that the verdict was kept from the track file written
	// before the agent restarted, rather than set from the initial setting
	// or by results; it stays true until the verdict changes.
	Restored bool `json:"restored,omitempty"`
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
	env     runnerEnv
	groups  *ProcGroups
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
	// touched is when the track file was last written or had its time
	// refreshed; only the check's goroutine uses it after New.
	touched time.Time
}

// runnerEnv is what a Runner takes from the system; tests replace parts.
type runnerEnv struct {
	// probe returns the prober of a check; exec checks record their
	// process groups in the given set.
	probe func(Spec, *ProcGroups) prober
	now   func() time.Time
	// bootTime returns when this boot began.
	bootTime func() (time.Time, error)
}

func systemEnv() runnerEnv {
	return runnerEnv{probe: newProber, now: time.Now, bootTime: bootTime}
}

// New validates specs (defaults are not applied: call Spec.WithDefaults
// first) and returns a Runner for them. Names and track files must be
// unique.
//
// A check with a track file starts from the verdict in that file when the
// file is valid and recent: a regular file holding what the agent writes
// ("0" healthy, another value up to MaxTrackValue failed), modified during
// this boot and at most trackMaxAge before now (5 minutes plus a few
// check periods; a running check refreshes the file's time). This keeps a
// restart of the agent from moving keepalived's MASTER. Otherwise, and
// for a check without a track file, it starts from Spec.Initial. Either
// way rise and fall count from zero: a restored Healthy needs Fall
// failures to turn Failed, a restored Failed needs Rise passes. The
// starting verdicts are visible through Status at once.
func New(specs []Spec, opts Options, logger *slog.Logger) (*Runner, error) {
	return newRunner(specs, opts, logger, systemEnv())
}

func newRunner(specs []Spec, opts Options, logger *slog.Logger, env runnerEnv) (*Runner, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cmdCheck := opts.CommandCheck
	if cmdCheck == nil {
		cmdCheck = ValidateCommand
	}
	r := &Runner{logger: logger, opts: opts, env: env, groups: NewProcGroups(), byName: make(map[string]*check, len(specs))}
	tracks := map[string]string{}
	now := env.now()
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
			probe:   env.probe(s, r.groups),
			m:       machine{rise: s.Rise, fall: s.Fall, verdict: s.Initial},
			pending: s.TrackFile != "",
		}
		c.st = Status{Name: s.Name, Type: s.Type, Verdict: s.Initial, Since: now, TrackFile: s.TrackFile}
		r.byName[s.Name] = c
		r.checks = append(r.checks, c)
	}
	sort.Slice(r.checks, func(i, j int) bool { return r.checks[i].spec.Name < r.checks[j].spec.Name })
	r.restoreVerdicts(now)
	return r, nil
}

// restoreVerdicts gives each check with a usable track file the verdict
// in it (see New). Nothing is written here: a file that already holds the
// verdict as the agent would write it stays untouched, and one that does
// not (another track_value_failed) is rewritten by Run.
func (r *Runner) restoreVerdicts(now time.Time) {
	var boot time.Time
	var bootErr error
	bootRead := false
	for _, c := range r.checks {
		s := c.spec
		if s.TrackFile == "" {
			continue
		}
		content, mod, err := readTrackFile(s.TrackFile)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil && !bootRead {
			boot, bootErr = r.env.bootTime()
			bootRead = true
		}
		if err == nil {
			err = bootErr
		}
		v := Unknown
		if err == nil {
			v, err = keptVerdict(content, mod, now, boot, trackMaxAge(s))
		}
		if err != nil {
			r.logger.Info("track file not used; check starts from its initial verdict",
				"check", s.Name, "file", s.TrackFile, "initial", s.Initial.String(), "reason", err.Error())
			continue
		}
		c.m.verdict = v
		c.st.Verdict = v
		c.st.Restored = true
		c.pending = string(content) != trackContent(trackValue(v, s.TrackValueFailed))
		c.touched = mod
		r.logger.Info("health check verdict kept from its track file",
			"check", s.Name, "file", s.TrackFile, "verdict", v.String(), "age", now.Sub(mod).Round(time.Millisecond))
	}
}

// Run writes the track files that do not hold their check's verdict yet
// and runs every check in its own goroutine until ctx is done, then waits
// for all of them to stop and returns nil. A Runner runs once.
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
// after the previous returned, Interval after its start (with jitter), or
// at once when the run took longer than that (a timeout may exceed the
// interval).
func (r *Runner) loop(ctx context.Context, c *check) {
	r.syncTrack(c, false)
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
		c.st.Restored = false
		c.pending = c.spec.TrackFile != ""
	}
	st := c.st
	confirmed := res.OK == (st.Verdict == Healthy)
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
	r.syncTrack(c, confirmed)
	if r.opts.OnResult != nil {
		r.opts.OnResult(st.Name, res)
	}
	if changed && r.opts.OnChange != nil {
		r.opts.OnChange(r.status(c))
	}
}

// syncTrack writes the track file if it does not hold the verdict yet.
// Otherwise, when the latest result confirmed the verdict, it refreshes
// the file's time every trackTouchEvery, so that after a restart the age
// says how long ago a result last agreed with the verdict (a restored
// verdict is not refreshed before one did). It runs only on the check's
// own goroutine, so writes never race; a failure is kept in the status
// and retried after the next result.
func (r *Runner) syncTrack(c *check, confirmed bool) {
	if c.spec.TrackFile == "" {
		return
	}
	c.mu.Lock()
	pending := c.pending
	v := c.st.Verdict
	c.mu.Unlock()

	now := r.env.now()
	if !pending {
		if !confirmed || (now.Sub(c.touched) < trackTouchEvery && c.touched.Sub(now) < trackTouchEvery) {
			return
		}
		if err := touchTrackFile(c.spec.TrackFile, now); err == nil {
			c.touched = now
			return
		}
		// Gone or replaced: write it again.
	}

	err := writeTrackFile(c.spec.TrackFile, trackValue(v, c.spec.TrackValueFailed))
	if err == nil {
		c.touched = now
	}

	c.mu.Lock()
	if err != nil {
		c.st.TrackError = err.Error()
		c.pending = true
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

// IsCheckProcess reports whether process pid belongs to the process group
// of an exec check of r that is running, or ended less than a few seconds
// ago: the check's command or anything it started that stayed in its
// group. The control socket refuses write requests from those. A process
// that left the group (setsid, setpgid) is not recognised, and neither is
// a pid that no longer exists, so a caller that must be sure also refuses
// a peer that is gone. A nil Runner has no checks.
func (r *Runner) IsCheckProcess(pid int) bool {
	return r != nil && r.groups.HasProcess(pid)
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
