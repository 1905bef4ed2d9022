package health

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// eventually polls cond until it holds or 5 s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// fakeSpec is a valid spec whose prober the test supplies.
func fakeSpec(name string) Spec {
	return Spec{Name: name, Type: TypeTCP, Target: "127.0.0.1:1", Interval: 20 * time.Millisecond,
		Timeout: 10 * time.Millisecond, Rise: 2, Fall: 2, Initial: Failed, TrackValueFailed: 1}
}

func never(context.Context) outcome { panic("the prober must not run in this test") }

// fakeEnv is the system's environment with the probers of mk and a boot
// an hour before the test began.
func fakeEnv(mk func(Spec) prober) runnerEnv {
	boot := time.Now().Add(-time.Hour)
	return runnerEnv{
		probe:    func(s Spec, _ *ProcGroups) prober { return mk(s) },
		now:      time.Now,
		bootTime: func() (time.Time, error) { return boot, nil },
	}
}

func TestTrackFileFollowsVerdict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "track") // created by the writer
	s := fakeSpec("web")
	s.TrackFile = filepath.Join(dir, "web")
	s.TrackValueFailed = 20
	var changes []Verdict
	r, err := newRunner([]Spec{s}, Options{OnChange: func(st Status) { changes = append(changes, st.Verdict) }},
		nil, fakeEnv(func(Spec) prober { return never }))
	if err != nil {
		t.Fatal(err)
	}
	c := r.checks[0]

	r.syncTrack(c, false) // what Run does first
	if got := readFile(t, s.TrackFile); got != "20\n" {
		t.Fatalf("initial track file = %q, want %q", got, "20\n")
	}
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{s.TrackFile, 0o644}, {dir, os.ModeDir | 0o755}} {
		fi, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != p.mode {
			t.Errorf("%s: mode %v, want %v", p.path, fi.Mode(), p.mode)
		}
	}

	steps := []struct {
		ok      bool
		verdict Verdict
		file    string
	}{
		{ok: true, verdict: Failed, file: "20\n"},
		{ok: true, verdict: Healthy, file: "0\n"},
		{ok: true, verdict: Healthy, file: "0\n"},
		{ok: false, verdict: Healthy, file: "0\n"},
		{ok: false, verdict: Failed, file: "20\n"},
		{ok: true, verdict: Failed, file: "20\n"},
		{ok: true, verdict: Healthy, file: "0\n"},
	}
	start := time.Now()
	for i, st := range steps {
		r.record(c, Result{Time: start.Add(time.Duration(i) * time.Second), OK: st.ok, Message: "m"})
		got, _ := r.Status("web")
		if got.Verdict != st.verdict {
			t.Errorf("step %d: verdict %v, want %v", i, got.Verdict, st.verdict)
		}
		if f := readFile(t, s.TrackFile); f != st.file {
			t.Errorf("step %d: track file %q, want %q", i, f, st.file)
		}
		if got.Checks != uint64(i+1) {
			t.Errorf("step %d: checks %d, want %d", i, got.Checks, i+1)
		}
	}
	want := []Verdict{Healthy, Failed, Healthy}
	if len(changes) != len(want) {
		t.Fatalf("OnChange saw %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("OnChange saw %v, want %v", changes, want)
		}
	}
	if got, _ := r.Status("web"); !got.Since.Equal(start.Add(6 * time.Second)) {
		t.Errorf("since = %v, want the time of the last change", got.Since)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("track directory holds %d entries, want only the track file", len(entries))
	}
}

func TestTrackWriteFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := fakeSpec("web")
	s.TrackFile = filepath.Join(blocker, "web") // its parent is a file
	var results atomic.Int32
	r, err := newRunner([]Spec{s}, Options{OnResult: func(string, Result) { results.Add(1) }},
		nil, fakeEnv(func(Spec) prober { return never }))
	if err != nil {
		t.Fatal(err)
	}
	c := r.checks[0]
	r.syncTrack(c, false)
	r.record(c, Result{OK: true})
	r.record(c, Result{OK: true}) // healthy now, still unwritable
	st, _ := r.Status("web")
	if st.TrackError == "" || st.Verdict != Healthy || results.Load() != 2 {
		t.Fatalf("status = %+v after %d results, want healthy with a track error", st, results.Load())
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	r.record(c, Result{OK: true}) // no change, but the write is still owed
	if got := readFile(t, s.TrackFile); got != "0\n" {
		t.Errorf("track file after retry = %q, want %q", got, "0\n")
	}
	if st, _ := r.Status("web"); st.TrackError != "" {
		t.Errorf("track error not cleared: %q", st.TrackError)
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, dir, "check", "exit 0\n")
	exec := Spec{Name: "db", Type: TypeExec, Command: []string{script}, Interval: time.Second,
		Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1, Initial: Failed, TrackValueFailed: 1}
	withTrack := func(name, track string) Spec {
		s := fakeSpec(name)
		s.TrackFile = track
		return s
	}
	bad := fakeSpec("web")
	bad.Rise = 0
	refuse := func([]string) error { return errors.New("refused by test") }

	tests := []struct {
		name  string
		specs []Spec
		opts  Options
		want  string
	}{
		{name: "invalid spec", specs: []Spec{bad}, want: `check "web": rise: 0`},
		{name: "unnamed", specs: []Spec{{}}, want: "check 1: name: must not be empty"},
		{name: "duplicate name", specs: []Spec{fakeSpec("a"), fakeSpec("a")}, want: `check "a": name: used by another check`},
		{name: "duplicate track file", specs: []Spec{withTrack("a", "/run/t/x"), withTrack("b", "/run/t/x")},
			want: `check "b": track_file: /run/t/x is also used by check "a"`},
		{name: "command refused", specs: []Spec{exec}, opts: Options{CommandCheck: refuse}, want: `check "db": refused by test`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.specs, tt.opts, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() = %v, want containing %q", err, tt.want)
			}
		})
	}

	t.Run("default command check", func(t *testing.T) {
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := New([]Spec{exec}, Options{}, nil); err == nil || !strings.Contains(err.Error(), "writable by others") {
			t.Fatalf("New() = %v, want the script refused", err)
		}
	})
}

func TestSnapshot(t *testing.T) {
	b := fakeSpec("b")
	b.Initial = Healthy
	r, err := newRunner([]Spec{b, fakeSpec("a")}, Options{}, nil, fakeEnv(func(Spec) prober { return never }))
	if err != nil {
		t.Fatal(err)
	}
	snap := r.Snapshot()
	if len(snap) != 2 || snap[0].Name != "a" || snap[1].Name != "b" {
		t.Fatalf("Snapshot() = %+v, want a then b", snap)
	}
	if snap[0].Verdict != Failed || snap[1].Verdict != Healthy {
		t.Errorf("initial verdicts = %v, %v; want failed, healthy", snap[0].Verdict, snap[1].Verdict)
	}
	if _, ok := r.Status("c"); ok {
		t.Error(`Status("c") found a check that does not exist`)
	}
}

// runInBackground starts r.Run and returns a function that stops it and
// waits for it to return.
func runInBackground(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestRunWritesInitialTrackFile(t *testing.T) {
	s := fakeSpec("web")
	s.Interval, s.Timeout = time.Hour, time.Second // no run during the test
	s.Initial = Healthy
	s.TrackFile = filepath.Join(t.TempDir(), "web")
	r, err := newRunner([]Spec{s}, Options{}, nil, fakeEnv(func(Spec) prober { return never }))
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, r)
	eventually(t, "the initial track file", func() bool { return readFile(t, s.TrackFile) == "0\n" })
	stop()
	if err := r.Run(t.Context()); err == nil {
		t.Error("second Run() succeeded")
	}
}

func TestHangingCheckDoesNotDelayOthers(t *testing.T) {
	release := make(chan struct{})
	hangStarted := make(chan struct{})
	var inflight atomic.Int32
	var fastRuns atomic.Int32
	probes := map[string]prober{
		// Ignores its timeout on purpose: the worst case.
		"hang": func(ctx context.Context) outcome {
			inflight.Add(1)
			defer inflight.Add(-1)
			select {
			case hangStarted <- struct{}{}:
			default:
			}
			<-release
			return outcome{}
		},
		"fast": func(ctx context.Context) outcome {
			inflight.Add(1)
			defer inflight.Add(-1)
			fastRuns.Add(1)
			return outcome{ok: true}
		},
	}
	r, err := newRunner([]Spec{fakeSpec("hang"), fakeSpec("fast")}, Options{}, nil,
		fakeEnv(func(s Spec) prober { return probes[s.Name] }))
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, r)
	select {
	case <-hangStarted:
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging check never started")
	}
	base := fastRuns.Load()
	eventually(t, "results of the fast check while the other hangs", func() bool {
		return fastRuns.Load() >= base+5
	})
	if st, _ := r.Status("fast"); st.Verdict != Healthy {
		t.Errorf("fast check verdict = %v, want healthy", st.Verdict)
	}
	if st, _ := r.Status("hang"); st.Checks != 0 {
		t.Errorf("hanging check recorded %d results", st.Checks)
	}
	close(release)
	stop()
	if n := inflight.Load(); n != 0 {
		t.Errorf("%d probes still running after Run returned", n)
	}
}

func TestRunEndToEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dir := t.TempDir()
	flag := filepath.Join(dir, "sick")
	script := writeScript(t, dir, "check", "[ ! -e '"+flag+"' ]\n")

	tcp := Spec{Name: "tcp", Type: TypeTCP, Target: ln.Addr().String(), Interval: 20 * time.Millisecond,
		Timeout: 15 * time.Millisecond, Rise: 2, Fall: 2, Initial: Failed, TrackValueFailed: 1,
		TrackFile: filepath.Join(dir, "track", "tcp")}
	ex := Spec{Name: "exec", Type: TypeExec, Command: []string{script}, Interval: 20 * time.Millisecond,
		Timeout: 15 * time.Millisecond, Rise: 1, Fall: 2, Initial: Failed, TrackValueFailed: 5,
		TrackFile: filepath.Join(dir, "track", "exec")}
	// Forking may be slow on a loaded machine; give it room.
	ex.Timeout, ex.Interval = 180*time.Millisecond, 200*time.Millisecond

	var results atomic.Int32
	changes := make(chan Status, 100)
	r, err := New([]Spec{tcp, ex}, Options{
		OnChange: func(s Status) {
			select {
			case changes <- s:
			default:
			}
		},
		OnResult:     func(string, Result) { results.Add(1) },
		CommandCheck: func(argv []string) error { return ValidateCommandWith(argv, fakeOwners(dir, nil)) },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, r)

	eventually(t, "both checks healthy", func() bool {
		return readFile(t, tcp.TrackFile) == "0\n" && readFile(t, ex.TrackFile) == "0\n"
	})
	for _, name := range []string{"tcp", "exec"} {
		if st, _ := r.Status(name); st.Verdict != Healthy || st.Checks == 0 || st.Last.Time.IsZero() {
			t.Errorf("%s: status %+v, want healthy with a result", name, st)
		}
	}

	ln.Close()
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both checks failed", func() bool {
		return readFile(t, tcp.TrackFile) == "1\n" && readFile(t, ex.TrackFile) == "5\n"
	})
	st, _ := r.Status("exec")
	if st.Verdict != Failed || st.Last.OK || st.Last.Message == "" {
		t.Errorf("exec status %+v, want failed with a message", st)
	}
	if results.Load() < 4 {
		t.Errorf("OnResult saw %d results", results.Load())
	}
	// OnChange runs after the track file is written: wait for it too.
	seen := map[string][]Verdict{}
	last := func(name string) Verdict {
		if v := seen[name]; len(v) > 0 {
			return v[len(v)-1]
		}
		return Unknown
	}
	eventually(t, "OnChange to report both failures", func() bool {
		for len(changes) > 0 {
			s := <-changes
			seen[s.Name] = append(seen[s.Name], s.Verdict)
		}
		return last("tcp") == Failed && last("exec") == Failed
	})
	for _, name := range []string{"tcp", "exec"} {
		if v := seen[name]; v[0] != Healthy {
			t.Errorf("%s: OnChange saw %v, want healthy first", name, v)
		}
	}
}

// TestRunsNeverOverlapWhenTimeoutExceedsInterval runs a check whose
// timeout is five times its interval, with runs that end early, run past
// the interval, or hang until the timeout, on synctest's clock: a run
// never starts before the previous one returned, and one that ran past
// the interval is followed at once by the next.
func TestRunsNeverOverlapWhenTimeoutExceedsInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const iv = time.Second
		s := fakeSpec("slow")
		s.Interval, s.Timeout = iv, 5*iv
		type span struct {
			start, end time.Time
			hung       bool
		}
		var (
			mu       sync.Mutex
			spans    []span
			inflight int
			overlaps int
		)
		// Durations of the runs in turn; 0 hangs until the timeout.
		pattern := []time.Duration{2500 * time.Millisecond, 100 * time.Millisecond, 0, 100 * time.Millisecond, 1200 * time.Millisecond}
		probe := func(ctx context.Context) outcome {
			mu.Lock()
			inflight++
			if inflight > 1 {
				overlaps++
			}
			d := pattern[len(spans)%len(pattern)]
			spans = append(spans, span{start: time.Now(), hung: d == 0})
			mu.Unlock()
			if d == 0 {
				<-ctx.Done()
			} else {
				time.Sleep(d)
			}
			mu.Lock()
			inflight--
			spans[len(spans)-1].end = time.Now()
			mu.Unlock()
			return outcome{ok: d != 0}
		}
		r, err := newRunner([]Spec{s}, Options{}, nil, fakeEnv(func(Spec) prober { return probe }))
		if err != nil {
			t.Fatalf("New() with timeout above interval: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(time.Minute)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		mu.Lock()
		defer mu.Unlock()
		if overlaps != 0 {
			t.Errorf("%d runs started while another was running", overlaps)
		}
		if len(spans) < 2*len(pattern) {
			t.Fatalf("only %d runs in a minute", len(spans))
		}
		for i := 1; i < len(spans)-1; i++ {
			prev, cur := spans[i-1], spans[i]
			took := prev.end.Sub(prev.start)
			if prev.hung && took != s.Timeout {
				t.Errorf("run %d hung for %v, want it cut at the timeout %v", i-1, took, s.Timeout)
			}
			switch {
			case cur.start.Before(prev.end):
				t.Errorf("run %d started at %v, before run %d ended at %v", i, cur.start, i-1, prev.end)
			case took > iv+iv/20:
				if !cur.start.Equal(prev.end) {
					t.Errorf("run %d took %v, past the interval; the next started %v after it ended, want at once",
						i-1, took, cur.start.Sub(prev.end))
				}
			default:
				if gap := cur.start.Sub(prev.start); gap < iv-iv/20 || gap > iv+iv/20 {
					t.Errorf("run %d took %v; the next started %v after its start, want the interval ±5%%", i-1, took, gap)
				}
			}
		}
		if st, _ := r.Status("slow"); st.Checks == 0 {
			t.Error("no result recorded")
		}
	})
}
