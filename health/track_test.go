package health

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseTrackValue(t *testing.T) {
	tests := []struct {
		in    string
		want  int
		valid bool
	}{
		{in: "0\n", want: 0, valid: true},
		{in: "0", want: 0, valid: true},
		{in: "1\n", want: 1, valid: true},
		{in: "20\n", want: 20, valid: true},
		{in: "254\n", want: 254, valid: true},
		{in: "255\n"},
		{in: ""},
		{in: "\n"},
		{in: "00\n"},
		{in: "01\n"},
		{in: "-1\n"},
		{in: "+1\n"},
		{in: " 0\n"},
		{in: "0 \n"},
		{in: "0\n\n"},
		{in: "0\r\n"},
		{in: "1000\n"},
		{in: "healthy\n"},
	}
	for _, tt := range tests {
		got, ok := parseTrackValue([]byte(tt.in))
		if ok != tt.valid || (ok && got != tt.want) {
			t.Errorf("parseTrackValue(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.valid)
		}
	}
}

func TestKeptVerdict(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	boot := now.Add(-time.Hour)
	const maxAge = 6 * time.Minute
	tests := []struct {
		name    string
		content string
		mod     time.Time
		boot    time.Time // zero: an hour ago
		want    Verdict
		why     string // substring of the reason; empty: kept
	}{
		{name: "healthy", content: "0\n", mod: now.Add(-time.Second), want: Healthy},
		{name: "failed", content: "1\n", mod: now.Add(-time.Minute), want: Failed},
		{name: "failed other value", content: "20\n", mod: now, want: Failed},
		{name: "at the age limit", content: "0\n", mod: now.Add(-maxAge), want: Healthy},
		{name: "written at boot", content: "0\n", mod: now.Add(-time.Minute), boot: now.Add(-time.Minute), want: Healthy},
		{name: "slightly ahead", content: "0\n", mod: now.Add(time.Second), want: Healthy},
		{name: "too old", content: "0\n", mod: now.Add(-maxAge - time.Second), why: "more than 6m0s"},
		{name: "before this boot", content: "0\n", mod: boot.Add(-time.Second), why: "before this boot"},
		{name: "far ahead", content: "0\n", mod: now.Add(maxAge + time.Second), why: "ahead of the clock"},
		{name: "garbage", content: "ok\n", mod: now, why: `content "ok\n" is not a track value`},
		{name: "empty", content: "", mod: now, why: "not a track value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := boot
			if !tt.boot.IsZero() {
				b = tt.boot
			}
			got, err := keptVerdict([]byte(tt.content), tt.mod, now, b, maxAge)
			if tt.why == "" {
				if err != nil || got != tt.want {
					t.Fatalf("keptVerdict() = %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			if got != Unknown || err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("keptVerdict() = %v, %v; want unknown because %q", got, err, tt.why)
			}
		})
	}
}

func TestTrackMaxAge(t *testing.T) {
	s := fakeSpec("web")
	s.Interval, s.Timeout = 2*time.Second, time.Second
	if got, want := trackMaxAge(s), 5*time.Minute+16*time.Second; got != want {
		t.Errorf("trackMaxAge = %v, want %v", got, want)
	}
	// A slow check is not refused for being between two runs.
	s.Interval, s.Timeout = 10*time.Minute, 15*time.Minute
	if got := trackMaxAge(s); got < s.Interval+s.Timeout+trackTouchEvery {
		t.Errorf("trackMaxAge = %v, shorter than one period of the check", got)
	}
}

func TestReadTrackFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "long")
	if err := os.WriteFile(long, []byte(strings.Repeat("1", 1<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}

	b, mod, err := readTrackFile(regular)
	if err != nil || string(b) != "0\n" || time.Since(mod) > time.Minute {
		t.Errorf("readTrackFile(regular) = %q, %v, %v", b, mod, err)
	}
	if b, _, err := readTrackFile(long); err != nil || len(b) != trackReadLimit {
		t.Errorf("readTrackFile(long) read %d bytes, %v; want %d", len(b), err, trackReadLimit)
	}
	for _, p := range []string{link, fifo, dir} {
		// A FIFO must not block: nothing writes to it.
		if _, _, err := readTrackFile(p); err == nil {
			t.Errorf("readTrackFile(%s) accepted it", p)
		}
	}
	if _, _, err := readTrackFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readTrackFile(missing) = %v, want not exist", err)
	}
}

func TestBootTime(t *testing.T) {
	boot, err := bootTime()
	if err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); !boot.Before(now) || boot.Before(now.AddDate(-20, 0, 0)) {
		t.Errorf("bootTime() = %v, not in the past twenty years", boot)
	}
}

// trackEnv is fakeEnv with the given boot time (or error) and clock.
func trackEnv(boot time.Time, bootErr error, now func() time.Time) runnerEnv {
	env := fakeEnv(func(Spec) prober { return never })
	env.bootTime = func() (time.Time, error) { return boot, bootErr }
	env.now = now
	return env
}

// setTrack writes content to path with the given modification time.
func setTrack(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// TestNewKeepsTrackFileVerdict starts a runner over track files left by
// a previous one: a recent, valid file gives the starting verdict, in the
// status too, and is not rewritten; anything else starts from initial and
// is rewritten with it. Before the fix every check started from initial.
func TestNewKeepsTrackFileVerdict(t *testing.T) {
	now := time.Now()
	boot := now.Add(-time.Hour)
	tests := []struct {
		name     string
		initial  Verdict
		content  string // empty: no file
		fifo     bool
		mod      time.Time
		bootErr  error
		want     Verdict
		restored bool
		file     string // the file after Run's first step
	}{
		{name: "healthy kept over initial failed", initial: Failed, content: "0\n", mod: now.Add(-time.Minute),
			want: Healthy, restored: true, file: "0\n"},
		{name: "failed kept over initial healthy", initial: Healthy, content: "1\n", mod: now.Add(-time.Second),
			want: Failed, restored: true, file: "1\n"},
		{name: "failed with another value, rewritten", initial: Healthy, content: "20\n", mod: now,
			want: Failed, restored: true, file: "1\n"},
		{name: "too old", initial: Failed, content: "0\n", mod: now.Add(-time.Hour / 2), want: Failed, file: "1\n"},
		{name: "before this boot", initial: Failed, content: "0\n", mod: boot.Add(-time.Minute), want: Failed, file: "1\n"},
		{name: "ahead of the clock", initial: Failed, content: "0\n", mod: now.Add(time.Hour / 2), want: Failed, file: "1\n"},
		{name: "garbage", initial: Healthy, content: "sick\n", mod: now, want: Healthy, file: "0\n"},
		{name: "no file", initial: Failed, want: Failed, file: "1\n"},
		{name: "boot time unknown", initial: Failed, content: "0\n", mod: now, bootErr: errors.New("no clock"),
			want: Failed, file: "1\n"},
		{name: "fifo", initial: Failed, fifo: true, want: Failed, file: "1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeSpec("web")
			s.Initial = tt.initial
			s.TrackFile = filepath.Join(t.TempDir(), "web")
			switch {
			case tt.fifo:
				if err := syscall.Mkfifo(s.TrackFile, 0o644); err != nil {
					t.Fatal(err)
				}
			case tt.content != "":
				setTrack(t, s.TrackFile, tt.content, tt.mod)
			}
			var before os.FileInfo
			if tt.content != "" {
				var err error
				if before, err = os.Stat(s.TrackFile); err != nil {
					t.Fatal(err)
				}
			}
			r, err := newRunner([]Spec{s}, Options{}, nil, trackEnv(boot, tt.bootErr, func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			st, _ := r.Status("web")
			if st.Verdict != tt.want || st.Restored != tt.restored {
				t.Errorf("status: verdict %v restored %v; want %v, %v", st.Verdict, st.Restored, tt.want, tt.restored)
			}
			if snap := r.Snapshot(); snap[0].Verdict != tt.want {
				t.Errorf("Snapshot verdict %v, want %v", snap[0].Verdict, tt.want)
			}

			r.syncTrack(r.checks[0], false) // what Run does first
			if got := readFile(t, s.TrackFile); got != tt.file {
				t.Errorf("track file = %q, want %q", got, tt.file)
			}
			after, err := os.Stat(s.TrackFile)
			if err != nil {
				t.Fatal(err)
			}
			untouched := before != nil && os.SameFile(before, after) && after.ModTime().Equal(before.ModTime())
			if wantUntouched := tt.restored && tt.file == tt.content; untouched != wantUntouched {
				t.Errorf("file untouched = %v, want %v", untouched, wantUntouched)
			}
		})
	}
}

// TestRestartKeepsVerdict is an agent restart: a runner makes the check
// healthy, a second one started on the same file answers healthy at once
// and leaves the file alone while it runs.
func TestRestartKeepsVerdict(t *testing.T) {
	s := fakeSpec("web")
	s.Interval, s.Timeout = time.Hour, time.Second // no run of the second runner
	s.TrackFile = filepath.Join(t.TempDir(), "track", "web")
	first, err := newRunner([]Spec{s}, Options{}, nil, fakeEnv(func(Spec) prober { return never }))
	if err != nil {
		t.Fatal(err)
	}
	c := first.checks[0]
	first.syncTrack(c, false)
	first.record(c, Result{OK: true})
	first.record(c, Result{OK: true})
	if got := readFile(t, s.TrackFile); got != "0\n" {
		t.Fatalf("track file of the first runner = %q", got)
	}
	before, err := os.Stat(s.TrackFile)
	if err != nil {
		t.Fatal(err)
	}

	second, err := newRunner([]Spec{s}, Options{}, nil, fakeEnv(func(Spec) prober { return never }))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := second.Status("web"); st.Verdict != Healthy {
		t.Fatalf("after the restart the check is %v, want healthy", st.Verdict)
	}
	stop := runInBackground(t, second)
	time.Sleep(50 * time.Millisecond)
	stop()
	after, err := os.Stat(s.TrackFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, s.TrackFile); got != "0\n" || !os.SameFile(before, after) {
		t.Errorf("the second runner replaced the track file (now %q)", got)
	}
}

// TestRestoredVerdictCountsFromZero checks rise and fall after a restored
// verdict: Fall failures to leave a restored Healthy, Rise passes to leave
// a restored Failed, and Restored cleared by the change.
func TestRestoredVerdictCountsFromZero(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		content string
		ok      bool
		from    Verdict
		to      Verdict
		n       int
	}{
		{content: "0\n", ok: false, from: Healthy, to: Failed, n: 3},
		{content: "1\n", ok: true, from: Failed, to: Healthy, n: 4},
	} {
		s := fakeSpec("web")
		s.Rise, s.Fall = 4, 3
		s.Initial = tt.to // the initial verdict must not matter
		s.TrackFile = filepath.Join(t.TempDir(), "web")
		setTrack(t, s.TrackFile, tt.content, now)
		r, err := newRunner([]Spec{s}, Options{}, nil, fakeEnv(func(Spec) prober { return never }))
		if err != nil {
			t.Fatal(err)
		}
		c := r.checks[0]
		for i := 1; i <= tt.n; i++ {
			r.record(c, Result{OK: tt.ok, Time: now})
			st, _ := r.Status("web")
			want := tt.from
			if i == tt.n {
				want = tt.to
			}
			if st.Verdict != want || st.Restored != (i < tt.n) {
				t.Errorf("from %v, after %d results ok=%v: verdict %v restored %v; want %v, %v",
					tt.from, i, tt.ok, st.Verdict, st.Restored, want, i < tt.n)
			}
		}
	}
}

// TestTrackFileTimeRefreshed checks that a result agreeing with the
// verdict refreshes the file's time, at most every trackTouchEvery, and
// one that does not agree leaves it.
func TestTrackFileTimeRefreshed(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clock := start
	s := fakeSpec("web")
	s.Rise, s.Fall = 2, 3
	s.TrackFile = filepath.Join(t.TempDir(), "web")
	kept := start.Add(-time.Minute)
	setTrack(t, s.TrackFile, "0\n", kept)
	r, err := newRunner([]Spec{s}, Options{}, nil, trackEnv(start.Add(-time.Hour), nil, func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	c := r.checks[0]
	mtime := func() time.Time {
		fi, err := os.Stat(s.TrackFile)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}

	r.syncTrack(c, false) // start: a restored verdict is not confirmed yet
	if got := mtime(); !got.Equal(kept) {
		t.Fatalf("time refreshed at start: %v", got)
	}
	steps := []struct {
		after time.Duration
		ok    bool
		want  time.Time
	}{
		{after: 0, ok: false, want: kept}, // disagrees
		{after: time.Second, ok: true, want: start.Add(time.Second)},
		{after: 5 * time.Second, ok: true, want: start.Add(time.Second)}, // too soon
		{after: 11 * time.Second, ok: true, want: start.Add(11 * time.Second)},
		{after: 30 * time.Second, ok: false, want: start.Add(11 * time.Second)},
	}
	for i, st := range steps {
		clock = start.Add(st.after)
		r.record(c, Result{OK: st.ok, Time: clock})
		if got := mtime(); !got.Equal(st.want) {
			t.Errorf("step %d: mtime %v, want %v", i, got.Sub(start), st.want.Sub(start))
		}
		if got := readFile(t, s.TrackFile); got != "0\n" {
			t.Errorf("step %d: content %q", i, got)
		}
	}

	// A file removed behind the agent's back is written again.
	if err := os.Remove(s.TrackFile); err != nil {
		t.Fatal(err)
	}
	clock = start.Add(time.Minute)
	r.record(c, Result{OK: true, Time: clock})
	if got := readFile(t, s.TrackFile); got != "0\n" {
		t.Errorf("removed track file not written again: %q", got)
	}
}
