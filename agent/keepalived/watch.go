package keepalived

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WatchOptions configures a Watcher.
type WatchOptions struct {
	// PIDFile names keepalived's VRRP process.
	PIDFile string
	// DeadAfter is how long the process may be missing before it counts
	// as dead (keepalived restarting takes a moment).
	DeadAfter time.Duration
	// Poll is how often the process is looked at; 0 picks DeadAfter/4,
	// between 50ms and 500ms.
	Poll time.Duration
	// Proc is the proc file system's root; "" means /proc.
	Proc string
}

// Watcher reports whether keepalived's VRRP process is alive. keepalived
// writes STOP lines when it stops cleanly, but after a SIGKILL, an OOM kill
// or a crash nothing is written, and without the watcher the node would go
// on announcing VIPs that its peer has taken over.
type Watcher struct {
	opts WatchOptions
	kill func(pid int, sig syscall.Signal) error
}

// NewWatcher returns a Watcher; it does nothing until Run.
func NewWatcher(opts WatchOptions) *Watcher {
	if opts.Proc == "" {
		opts.Proc = "/proc"
	}
	if opts.Poll == 0 {
		opts.Poll = min(max(opts.DeadAfter/4, 50*time.Millisecond), 500*time.Millisecond)
	}
	return &Watcher{opts: opts, kill: syscall.Kill}
}

// Run polls until ctx is done and calls onChange(alive, why) on every change
// of verdict, and once when the first verdict is reached: true as soon as
// the process is seen, false once it has been missing for DeadAfter.
// onChange runs on Run's goroutine.
func (w *Watcher) Run(ctx context.Context, onChange func(alive bool, why string)) {
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	var (
		reported  bool
		alive     bool
		missingAt time.Time
	)
	start := time.Now()
	for {
		err := w.Check()
		now := time.Now()
		switch {
		case err == nil:
			missingAt = time.Time{}
			if !reported || !alive {
				reported, alive = true, true
				onChange(true, "keepalived is running")
			}
		default:
			if missingAt.IsZero() {
				missingAt = now
				if !reported {
					missingAt = start
				}
			}
			if now.Sub(missingAt) >= w.opts.DeadAfter && (!reported || alive) {
				reported, alive = true, false
				onChange(false, err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check looks once: nil when the pid file names a live keepalived process.
func (w *Watcher) Check() error {
	b, err := os.ReadFile(w.opts.PIDFile)
	if err != nil {
		return fmt.Errorf("keepalived pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("keepalived pid file %s: %q is not a pid", w.opts.PIDFile, clip(strings.TrimSpace(string(b))))
	}
	dir := w.opts.Proc + "/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		// Under systemd's ProtectProc=invisible a process the agent may
		// not ptrace is absent from /proc although it runs: ask the
		// kernel directly. EPERM also means the process exists.
		if kerr := w.kill(pid, 0); kerr == nil || errors.Is(kerr, syscall.EPERM) {
			return nil
		}
		return fmt.Errorf("keepalived process %d (from %s) is gone", pid, w.opts.PIDFile)
	}
	if name := string(bytes.TrimSpace(comm)); name != "keepalived" {
		return fmt.Errorf("process %d (from %s) is %q, not keepalived", pid, w.opts.PIDFile, clip(name))
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return fmt.Errorf("keepalived process %d is gone", pid)
	}
	// The state follows the parenthesised command name; a zombie has
	// exited even though its pid still exists.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return fmt.Errorf("keepalived process %d has exited", pid)
	}
	return nil
}
