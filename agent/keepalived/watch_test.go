package keepalived

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeProc builds a proc tree with one process.
func fakeProc(t *testing.T, pid, comm, state string) (procDir, pidFile string) {
	t.Helper()
	root := t.TempDir()
	procDir = filepath.Join(root, "proc")
	if err := os.MkdirAll(filepath.Join(procDir, pid), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFixture(t, filepath.Join(procDir, pid, "comm"), comm+"\n")
	writeFixture(t, filepath.Join(procDir, pid, "stat"), pid+" ("+comm+") "+state+" 1 2 3")
	pidFile = filepath.Join(root, "vrrp.pid")
	writeFixture(t, pidFile, pid+"\n")
	return procDir, pidFile
}

// writeFixture writes a file of a fake proc tree or a pid file.
func writeFixture(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// touchLater moves the modification time of path a minute ahead, as when
// keepalived writes its pid file again.
func touchLater(t *testing.T, path string) {
	t.Helper()
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherCheck(t *testing.T) {
	for _, tt := range []struct {
		name, comm, state, pidText, want string
	}{
		{name: "alive", comm: "keepalived", state: "S"},
		{name: "zombie", comm: "keepalived", state: "Z", want: "has exited"},
		{name: "other process", comm: "nginx", state: "S", want: "not keepalived"},
		{name: "garbage pid", comm: "keepalived", state: "S", pidText: "abc", want: "is not a pid"},
		{name: "gone", comm: "keepalived", state: "S", pidText: "999", want: "is gone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proc, pidFile := fakeProc(t, "42", tt.comm, tt.state)
			if tt.pidText != "" {
				writeFixture(t, pidFile, tt.pidText)
			}
			w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: proc, DeadAfter: time.Second})
			w.kill = func(int, syscall.Signal) error { return syscall.ESRCH }
			err := w.Check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWatcherHiddenProcess(t *testing.T) {
	// /proc hides the process (ProtectProc=invisible) but it exists.
	proc, pidFile := fakeProc(t, "42", "keepalived", "S")
	writeFixture(t, pidFile, "77")
	w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: proc, DeadAfter: time.Second})
	for _, tt := range []struct {
		errno error
		alive bool
	}{{nil, true}, {syscall.EPERM, true}, {syscall.ESRCH, false}} {
		w.kill = func(pid int, _ syscall.Signal) error {
			if pid != 77 {
				t.Errorf("signalled pid %d", pid)
			}
			return tt.errno
		}
		if err := w.Check(); (err == nil) != tt.alive {
			t.Errorf("kill error %v: Check() = %v, want alive %v", tt.errno, err, tt.alive)
		}
	}
}

func TestWatcherRun(t *testing.T) {
	proc, pidFile := fakeProc(t, "42", "keepalived", "S")
	w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: proc, DeadAfter: 100 * time.Millisecond, Poll: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan bool, 10)
	go w.Run(ctx, func(alive bool, _ string) { got <- alive })
	expect := func(want bool) {
		t.Helper()
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("got alive=%v, want %v", v, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no report, want alive=%v", want)
		}
	}
	expect(true)
	os.Remove(pidFile)
	expect(false)
	writeFixture(t, pidFile, "42")
	expect(true)
}

// The identity of a keepalived process is what a state record is judged
// by after an agent restart: a pid alone may be reused.
func TestWatcherIdentify(t *testing.T) {
	proc, pidFile := fakeProc(t, "42", "keepalived", "S")
	stat := "42 (keepalived) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0"
	writeFixture(t, filepath.Join(proc, "42", "stat"), stat)
	w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: proc, DeadAfter: time.Second})
	w.kill = func(int, syscall.Signal) error { return syscall.ESRCH }
	id, err := w.Identify()
	if err != nil || id.PID != 42 || id.Start != 555 || id.PIDFileMtime == 0 {
		t.Fatalf("Identify = %+v, %v", id, err)
	}
	// keepalived restarted with the same pid: a new pid file.
	touchLater(t, pidFile)
	id2, _ := w.Identify()
	if id.Same(id2) {
		t.Errorf("%+v and %+v are the same process", id, id2)
	}
	// Hidden by ProtectProc: no start time, still the same process.
	if !id.Same(Identity{PID: 42, PIDFileMtime: id.PIDFileMtime}) {
		t.Error("a hidden start time made it another process")
	}
	if id.Same(Identity{PID: 42, Start: 556, PIDFileMtime: id.PIDFileMtime}) {
		t.Error("another start time is the same process")
	}
	// A pid file that is a FIFO must not hang the watch.
	os.Remove(pidFile)
	if err := syscall.Mkfifo(pidFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Identify(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo pid file: %v", err)
	}
}

func TestWatcherCurrent(t *testing.T) {
	proc, pidFile := fakeProc(t, "42", "keepalived", "S")
	w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: proc, DeadAfter: 50 * time.Millisecond, Poll: 10 * time.Millisecond})
	w.kill = func(int, syscall.Signal) error { return syscall.ESRCH }
	if _, ok := w.Current(); ok {
		t.Fatal("identity before the first look")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan bool, 4)
	go w.Run(ctx, func(alive bool, _ string) { seen <- alive })
	if !<-seen {
		t.Fatal("not alive")
	}
	if id, ok := w.Current(); !ok || id.PID != 42 {
		t.Errorf("Current = %+v %v", id, ok)
	}
	os.Remove(pidFile)
	if <-seen {
		t.Fatal("still alive")
	}
	if _, ok := w.Current(); ok {
		t.Error("identity kept after keepalived went")
	}
}

// startKeepalivedLike runs a copy of sleep named keepalived, so that the
// real /proc shows comm "keepalived", and writes its pid file. The
// process is killed and reaped when the test ends.
func startKeepalivedLike(t *testing.T, pidFile string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary:", err)
	}
	bin := filepath.Join(t.TempDir(), "keepalived")
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "60")
	for i := 0; ; i++ {
		// A descriptor of the copy inherited by a concurrent fork
		// makes exec fail with ETXTBSY for a moment.
		err = cmd.Start()
		if !errors.Is(err, syscall.ETXTBSY) || i == 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
		cmd = exec.Command(bin, "60")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		_ = cmd.Wait() // the kill is how it ends
	})
	writePID(t, pidFile, cmd.Process.Pid)
	return cmd
}

func writePID(t *testing.T, pidFile string, pid int) {
	t.Helper()
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// report is one onChange call.
type report struct {
	alive bool
	why   string
	at    time.Time
}

// runWatcher runs w until the test ends and returns its reports; stop
// cancels it and returns once Run has.
func runWatcher(t *testing.T, w *Watcher) (reports chan report, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reports = make(chan report, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(alive bool, why string) {
			select {
			case reports <- report{alive, why, time.Now()}:
			case <-ctx.Done():
			}
		})
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return reports, stop
}

func expectReport(t *testing.T, reports chan report, alive bool, within time.Duration) report {
	t.Helper()
	select {
	case r := <-reports:
		if r.alive != alive {
			t.Fatalf("got alive=%v (%s), want %v", r.alive, r.why, alive)
		}
		return r
	case <-time.After(within):
		t.Fatalf("no report within %s, want alive=%v", within, alive)
	}
	return report{}
}

// With a grace of a minute, only the pidfd can report the death of a
// SIGKILLed keepalived before the test's bound.
func TestWatcherReportsExitAtOnce(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "vrrp.pid")
	cmd := startKeepalivedLike(t, pidFile)
	w := NewWatcher(WatchOptions{PIDFile: pidFile, DeadAfter: time.Minute})
	reports, _ := runWatcher(t, w)
	expectReport(t, reports, true, 5*time.Second)
	if id, ok := w.Current(); !ok || id.PID != cmd.Process.Pid || id.Start == 0 {
		t.Fatalf("Current = %+v %v, want pid %d with a start time", id, ok, cmd.Process.Pid)
	}
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := expectReport(t, reports, false, 5*time.Second)
	t.Logf("SIGKILL to dead report: %s (dead_after %s)", r.at.Sub(killed), w.opts.DeadAfter)
	if !strings.Contains(r.why, "pidfd") {
		t.Errorf("why = %q, want the pidfd named", r.why)
	}
	if _, ok := w.Current(); ok {
		t.Error("Current still names the dead process")
	}
	// Still a zombie (not reaped yet), then gone: no report either way.
	_ = cmd.Wait() // the kill is how it ended
	select {
	case r := <-reports:
		t.Errorf("unexpected report %+v", r)
	case <-time.After(3 * w.opts.Poll):
	}
}

// A restart: the old process's death is reported at once, the new one is
// alive as soon as its pid file names it, and its exit is watched too.
func TestWatcherRestart(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "vrrp.pid")
	old := startKeepalivedLike(t, pidFile)
	w := NewWatcher(WatchOptions{PIDFile: pidFile, DeadAfter: time.Minute, Poll: 20 * time.Millisecond})
	reports, _ := runWatcher(t, w)
	expectReport(t, reports, true, 5*time.Second)
	old.Process.Signal(syscall.SIGKILL)
	expectReport(t, reports, false, 5*time.Second)
	next := startKeepalivedLike(t, filepath.Join(dir, "next.pid"))
	writePID(t, pidFile, next.Process.Pid)
	expectReport(t, reports, true, 5*time.Second)
	if id, ok := w.Current(); !ok || id.PID != next.Process.Pid {
		t.Fatalf("Current = %+v %v, want pid %d", id, ok, next.Process.Pid)
	}
	next.Process.Signal(syscall.SIGKILL)
	if r := expectReport(t, reports, false, 5*time.Second); !strings.Contains(r.why, "pidfd") {
		t.Errorf("the restarted process's death: why = %q, want the pidfd named", r.why)
	}
}

// A pid file replaced while the process it named still runs keeps the
// grace: the process's exit ends it at once.
func TestWatcherPIDFileGoneThenExit(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "vrrp.pid")
	cmd := startKeepalivedLike(t, pidFile)
	w := NewWatcher(WatchOptions{PIDFile: pidFile, DeadAfter: time.Minute, Poll: 10 * time.Millisecond})
	reports, _ := runWatcher(t, w)
	expectReport(t, reports, true, 5*time.Second)
	os.Remove(pidFile)
	select {
	case r := <-reports:
		t.Fatalf("reported %+v while the process runs and the grace lasts", r)
	case <-time.After(10 * w.opts.Poll):
	}
	cmd.Process.Signal(syscall.SIGKILL)
	if r := expectReport(t, reports, false, 5*time.Second); !strings.Contains(r.why, "pidfd") {
		t.Errorf("why = %q, want the pidfd named", r.why)
	}
}

// Run returns only after its pidfd goroutine has, and leaves no
// descriptor open.
func TestWatcherRunStops(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "vrrp.pid")
	startKeepalivedLike(t, pidFile)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	goroutines, open := runtime.NumGoroutine(), fds()
	for range 3 {
		w := NewWatcher(WatchOptions{PIDFile: pidFile, DeadAfter: time.Minute})
		reports, stop := runWatcher(t, w)
		expectReport(t, reports, true, 5*time.Second)
		stop()
	}
	// The goroutine that called Run ends just after Run returns.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > goroutines {
		t.Errorf("%d goroutines after Run returned, %d before", got, goroutines)
	}
	if got := fds(); got > open {
		t.Errorf("%d descriptors open after Run returned, %d before", got, open)
	}
}

// Where the kernel or a seccomp filter refuses pidfds, polling alone
// notices the death, after the grace, and pidfd_open is not tried again.
func TestWatcherWithoutPidfd(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSYS, syscall.EPERM} {
		t.Run(errno.Error(), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "vrrp.pid")
			cmd := startKeepalivedLike(t, pidFile)
			var logs syncBuffer
			w := NewWatcher(WatchOptions{PIDFile: pidFile, DeadAfter: 200 * time.Millisecond, Poll: 10 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(&logs, nil))})
			var calls atomic.Int32
			w.pidfdOpen = func(int, int) (int, error) {
				calls.Add(1)
				return -1, errno
			}
			reports, stop := runWatcher(t, w)
			expectReport(t, reports, true, 5*time.Second)
			// Looks enough to show a retry.
			time.Sleep(10 * w.opts.Poll)
			killed := time.Now()
			cmd.Process.Signal(syscall.SIGKILL)
			r := expectReport(t, reports, false, 5*time.Second)
			if strings.Contains(r.why, "pidfd") || !strings.Contains(r.why, "has exited") {
				t.Errorf("why = %q, want the polling's verdict", r.why)
			}
			// The grace runs from the first look that missed the process,
			// after the kill.
			if d := r.at.Sub(killed); d < w.opts.DeadAfter {
				t.Errorf("dead %s after the kill, before the grace of %s", d, w.opts.DeadAfter)
			}
			stop()
			if n := calls.Load(); n != 1 {
				t.Errorf("pidfd_open called %d times, want 1", n)
			}
			if !strings.Contains(logs.String(), "pidfds are not available") {
				t.Errorf("log does not say pidfds are off:\n%s", logs.String())
			}
		})
	}
}

// The pidfd is trusted only if the same process is found after opening
// it: a pid freed and reused in between would watch another process.
func TestWatcherExitWatchVerifiesAfterOpen(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(t *testing.T, proc, pidFile string)
		ok     bool
		err    string
	}{
		{name: "same process", ok: true},
		{name: "pid reused", change: func(t *testing.T, proc, _ string) {
			writeFixture(t, filepath.Join(proc, "42", "stat"), statLine("42", "keepalived", 556))
		}},
		{name: "reused by another program", change: func(t *testing.T, proc, _ string) {
			writeFixture(t, filepath.Join(proc, "42", "comm"), "nginx\n")
		}, err: "not keepalived"},
		{name: "pid file replaced", change: func(t *testing.T, _, pidFile string) {
			touchLater(t, pidFile)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proc, pidFile := fakeProc(t, "42", "keepalived", "S")
			writeFixture(t, filepath.Join(proc, "42", "stat"), statLine("42", "keepalived", 555))
			w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: proc, DeadAfter: time.Minute})
			w.kill = func(int, syscall.Signal) error { return syscall.ESRCH }
			var opened int
			w.pidfdOpen = func(int, int) (int, error) {
				// Any live process serves: this test's own.
				fd, err := unix.PidfdOpen(os.Getpid(), 0)
				opened = fd
				if tt.change != nil {
					tt.change(t, proc, pidFile)
				}
				return fd, err
			}
			id, err := w.Identify()
			if err != nil {
				t.Fatal(err)
			}
			e, ok, err := w.watchExit(id)
			if ok != tt.ok || tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("watchExit = %v, %v; want ok %v, error %q", ok, err, tt.ok, tt.err)
			}
			if ok {
				e.stop()
			}
			if _, err := unix.FcntlInt(uintptr(opened), unix.F_GETFD, 0); !errors.Is(err, syscall.EBADF) {
				t.Errorf("pidfd %d still open: %v", opened, err)
			}
		})
	}
}

// Under ProtectProc=invisible /proc hides keepalived but kill(2) still
// finds it, a zombie too: once its pidfd reported the exit, that process
// is not alive again although kill(2) finds it until it is reaped.
func TestWatcherHiddenZombie(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "vrrp.pid")
	cmd := startKeepalivedLike(t, pidFile)
	emptyProc := filepath.Join(dir, "proc")
	if err := os.Mkdir(emptyProc, 0o755); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: emptyProc, DeadAfter: time.Minute, Poll: 10 * time.Millisecond})
	w.pidfdOpen = unix.PidfdOpen
	reports, _ := runWatcher(t, w)
	expectReport(t, reports, true, 5*time.Second)
	cmd.Process.Signal(syscall.SIGKILL)
	expectReport(t, reports, false, 5*time.Second)
	if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
		t.Fatalf("the zombie is not there to be found: %v", err)
	}
	select {
	case r := <-reports:
		t.Fatalf("reported %+v for a zombie", r)
	case <-time.After(10 * w.opts.Poll):
	}
	// A new process, which writes its pid file, is alive.
	next := startKeepalivedLike(t, pidFile)
	if r := expectReport(t, reports, true, 5*time.Second); next.Process.Pid == 0 || r.why == "" {
		t.Fatalf("report %+v", r)
	}
}

func statLine(pid, comm string, start int) string {
	return pid + " (" + comm + ") S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " + strconv.Itoa(start) + " 0 0"
}

// The verdict's decisions, one observation after another.
func TestVerdict(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		op     string // seen, missing, exited
		ms     int
		change bool
		alive  bool
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"alive at start", []step{{"seen", 0, true, true}, {"seen", 10, false, true}}},
		{"missing at start, dead after the grace from the start", []step{
			{"missing", 500, false, false}, {"missing", 1000, true, false}, {"missing", 1500, false, false}}},
		{"pid file replaced within the grace", []step{
			{"seen", 0, true, true}, {"missing", 100, false, true}, {"missing", 1000, false, true}, {"seen", 1050, false, true},
			{"missing", 1100, false, true}, {"missing", 2099, false, true}, {"missing", 2100, true, false}}},
		{"exited: dead at once", []step{{"seen", 0, true, true}, {"exited", 5, true, false}, {"missing", 10, false, false}, {"missing", 5000, false, false}}},
		{"exited within a grace already running", []step{{"seen", 0, true, true}, {"missing", 100, false, true}, {"exited", 200, true, false}, {"missing", 1200, false, false}}},
		{"exited after the grace ran out", []step{{"seen", 0, true, true}, {"missing", 100, false, true}, {"missing", 1100, true, false}, {"exited", 1200, false, false}}},
		{"back after death", []step{{"seen", 0, true, true}, {"exited", 5, true, false}, {"seen", 50, true, true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := verdict{deadAfter: time.Second, missingSince: t0}
			for i, s := range tt.steps {
				var got bool
				switch s.op {
				case "seen":
					got = v.seen()
				case "missing":
					got = v.missing(at(s.ms))
				case "exited":
					got = v.exited()
				}
				if got != s.change || v.alive != s.alive {
					t.Errorf("step %d (%s at %dms): change %v alive %v, want change %v alive %v", i, s.op, s.ms, got, v.alive, s.change, s.alive)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer for a logger on another goroutine.
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

// Short of descriptors, the watcher counts the process alive as polling
// sees it, logs once, and watches its exit once a pidfd can be opened.
func TestWatcherPidfdRetry(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "vrrp.pid")
	cmd := startKeepalivedLike(t, pidFile)
	var logs syncBuffer
	w := NewWatcher(WatchOptions{PIDFile: pidFile, DeadAfter: time.Minute, Poll: 10 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	var calls atomic.Int32
	w.pidfdOpen = func(pid, flags int) (int, error) {
		if calls.Add(1) <= 3 {
			return -1, syscall.EMFILE
		}
		return unix.PidfdOpen(pid, flags)
	}
	reports, _ := runWatcher(t, w)
	expectReport(t, reports, true, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "watched through a pidfd") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(logs.String(), "watched through a pidfd") {
		t.Fatalf("no pidfd watch after %d tries:\n%s", calls.Load(), logs.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	if r := expectReport(t, reports, false, 5*time.Second); !strings.Contains(r.why, "pidfd") {
		t.Errorf("why = %q, want the pidfd named", r.why)
	}
	if n := strings.Count(logs.String(), "cannot watch keepalived's exit"); n != 1 {
		t.Errorf("the failure logged %d times, want once:\n%s", n, logs.String())
	}
}
