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
