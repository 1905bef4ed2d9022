package keepalived

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeProc builds a proc tree with one process.
func fakeProc(t *testing.T, pid, comm, state string) (procDir, pidFile string) {
	t.Helper()
	root := t.TempDir()
	procDir = filepath.Join(root, "proc")
	os.MkdirAll(filepath.Join(procDir, pid), 0o755)
	os.WriteFile(filepath.Join(procDir, pid, "comm"), []byte(comm+"\n"), 0o644)
	os.WriteFile(filepath.Join(procDir, pid, "stat"), []byte(pid+" ("+comm+") "+state+" 1 2 3"), 0o644)
	pidFile = filepath.Join(root, "vrrp.pid")
	os.WriteFile(pidFile, []byte(pid+"\n"), 0o644)
	return procDir, pidFile
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
				os.WriteFile(pidFile, []byte(tt.pidText), 0o644)
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
	os.WriteFile(pidFile, []byte("77"), 0o644)
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
	os.WriteFile(pidFile, []byte("42"), 0o644)
	expect(true)
}

// The identity of a keepalived process is what a state record is judged
// by after an agent restart: a pid alone may be reused.
func TestWatcherIdentify(t *testing.T) {
	proc, pidFile := fakeProc(t, "42", "keepalived", "S")
	stat := "42 (keepalived) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0"
	os.WriteFile(filepath.Join(proc, "42", "stat"), []byte(stat), 0o644)
	w := NewWatcher(WatchOptions{PIDFile: pidFile, Proc: proc, DeadAfter: time.Second})
	w.kill = func(int, syscall.Signal) error { return syscall.ESRCH }
	id, err := w.Identify()
	if err != nil || id.PID != 42 || id.Start != 555 || id.PIDFileMtime == 0 {
		t.Fatalf("Identify = %+v, %v", id, err)
	}
	// keepalived restarted with the same pid: a new pid file.
	later := time.Now().Add(time.Minute)
	os.Chtimes(pidFile, later, later)
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
