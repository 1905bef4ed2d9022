package keepalived

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
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
	opts    WatchOptions
	kill    func(pid int, sig syscall.Signal) error
	current atomic.Pointer[Identity]
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
		id, err := w.Identify()
		if err == nil {
			w.current.Store(&id)
		} else {
			w.current.Store(nil)
		}
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
	_, err := w.Identify()
	return err
}

// Identity names one keepalived process: a pid alone may be reused, so it
// comes with the process's start time (when /proc shows it) and the
// modification time of the pid file keepalived wrote when it started.
type Identity struct {
	PID int `json:"pid"`
	// Start is the process's start time in clock ticks since boot (field
	// 22 of /proc/PID/stat); 0 when /proc hides the process.
	Start uint64 `json:"start,omitempty"`
	// PIDFileMtime is the pid file's modification time, in nanoseconds.
	PIDFileMtime int64 `json:"pid_file_mtime"`
}

// Same reports whether two identities name the same process. A start
// time is compared only when both have one (ProtectProc may hide it).
func (id Identity) Same(o Identity) bool {
	if id.PID != o.PID || id.PIDFileMtime != o.PIDFileMtime {
		return false
	}
	return id.Start == 0 || o.Start == 0 || id.Start == o.Start
}

// Identify looks once and names the live keepalived process the pid file
// points at; an error says why there is none.
func (w *Watcher) Identify() (Identity, error) {
	// Non-blocking: a FIFO put in the pid file's place must not hang the
	// watch.
	f, err := os.OpenFile(w.opts.PIDFile, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return Identity{}, fmt.Errorf("keepalived pid file: %w", err)
	}
	fi, err := f.Stat()
	var b []byte
	if err == nil {
		if !fi.Mode().IsRegular() {
			err = fmt.Errorf("%s is not a regular file", w.opts.PIDFile)
		} else {
			b, err = io.ReadAll(io.LimitReader(f, 64))
		}
	}
	f.Close()
	if err != nil {
		return Identity{}, fmt.Errorf("keepalived pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return Identity{}, fmt.Errorf("keepalived pid file %s: %q is not a pid", w.opts.PIDFile, clip(strings.TrimSpace(string(b))))
	}
	id := Identity{PID: pid, PIDFileMtime: fi.ModTime().UnixNano()}
	dir := w.opts.Proc + "/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		// Under systemd's ProtectProc=invisible a process the agent may
		// not ptrace is absent from /proc although it runs: ask the
		// kernel directly. EPERM also means the process exists.
		if kerr := w.kill(pid, 0); kerr == nil || errors.Is(kerr, syscall.EPERM) {
			return id, nil
		}
		return Identity{}, fmt.Errorf("keepalived process %d (from %s) is gone", pid, w.opts.PIDFile)
	}
	if name := string(bytes.TrimSpace(comm)); name != "keepalived" {
		return Identity{}, fmt.Errorf("process %d (from %s) is %q, not keepalived", pid, w.opts.PIDFile, clip(name))
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Identity{}, fmt.Errorf("keepalived process %d is gone", pid)
	}
	// The state follows the parenthesised command name; a zombie has
	// exited even though its pid still exists.
	i := bytes.LastIndexByte(stat, ')')
	if i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return Identity{}, fmt.Errorf("keepalived process %d has exited", pid)
	}
	if i >= 0 {
		// After ") " come the fields from the third on; the start time
		// is the 22nd.
		if f := strings.Fields(string(stat[i+1:])); len(f) > 19 {
			id.Start, _ = strconv.ParseUint(f[19], 10, 64)
		}
	}
	return id, nil
}

// Current returns the identity of the keepalived process seen by the
// latest look of Run; ok is false when Run has seen none (yet, or now).
func (w *Watcher) Current() (Identity, bool) {
	p := w.current.Load()
	if p == nil {
		return Identity{}, false
	}
	return *p, true
}
