package keepalived

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WatchOptions configures a Watcher.
type WatchOptions struct {
	// PIDFile names keepalived's VRRP process.
	PIDFile string
	// DeadAfter is how long the pid file may name no live keepalived
	// process before keepalived counts as dead: the grace for a pid file
	// being replaced by a restart or not written yet. The exit of a
	// process seen alive is noticed at once where pidfds are available.
	DeadAfter time.Duration
	// Poll is how often the process is looked at; 0 picks DeadAfter/4,
	// between 50ms and 500ms.
	Poll time.Duration
	// Proc is the proc file system's root; "" means /proc. Pidfds are
	// used only with /proc: the pids another tree shows need not be
	// this pid namespace's.
	Proc string
	// Log receives how deaths are noticed (a pidfd, or polling only);
	// nil discards.
	Log *slog.Logger
}

// Watcher reports whether keepalived's VRRP process is alive. keepalived
// writes STOP lines when it stops cleanly, but after a SIGKILL, an OOM kill
// or a crash nothing is written, and without the watcher the node would go
// on announcing VIPs that its peer has taken over.
//
// The process is polled for the pid file's changes, and once seen alive it
// is also watched through a pidfd, which becomes readable when it exits:
// its death is then reported at once instead of DeadAfter late, while the
// peer with fast advertisements is already taking the VIPs.
type Watcher struct {
	opts WatchOptions
	log  *slog.Logger
	kill func(pid int, sig syscall.Signal) error
	// pidfdOpen is pidfd_open(2); nil turns the exit watch off.
	pidfdOpen func(pid, flags int) (int, error)
	current   atomic.Pointer[Identity]
}

// procRoot is the proc file system of this pid namespace.
const procRoot = "/proc"

// NewWatcher returns a Watcher; it does nothing until Run.
func NewWatcher(opts WatchOptions) *Watcher {
	if opts.Proc == "" {
		opts.Proc = procRoot
	}
	if opts.Poll == 0 {
		opts.Poll = min(max(opts.DeadAfter/4, 50*time.Millisecond), 500*time.Millisecond)
	}
	w := &Watcher{opts: opts, log: opts.Log, kill: syscall.Kill}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if opts.Proc == procRoot {
		w.pidfdOpen = unix.PidfdOpen
	}
	return w
}

// Run polls until ctx is done and calls onChange(alive, why) on every change
// of verdict, and once when the first verdict is reached: true as soon as
// the process is seen, false once the process seen alive has exited (at
// once, through its pidfd) or the pid file has named no live process for
// DeadAfter. onChange runs on Run's goroutine. Run returns after every
// goroutine it started has ended.
func (w *Watcher) Run(ctx context.Context, onChange func(alive bool, why string)) {
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	var (
		v = verdict{deadAfter: w.opts.DeadAfter, missingSince: time.Now()}
		// exit watches the process last seen alive; nil when none is.
		exit *exitWatch
		// exited is the process whose exit a pidfd reported: /proc
		// may still show it (a zombie, or hidden and known only to
		// kill(2)) until its parent reaps it.
		exited *Identity
		pidfds = pidfdsUntried
		// retrying is set while pidfds fail for want of resources,
		// so that the failure is logged once.
		retrying bool
	)
	if w.pidfdOpen == nil {
		pidfds = pidfdsUnusable
	}
	defer func() { exit.stop() }()
	for {
		id, err := w.Identify()
		if err == nil && exited != nil && id.Same(*exited) {
			err = fmt.Errorf("keepalived process %d has exited", id.PID)
		}
		if err == nil && pidfds != pidfdsUnusable && (exit == nil || !exit.id.Same(id)) {
			exit.stop()
			exit = nil
			var ok bool
			exit, ok, err = w.watchExit(id)
			if !errors.Is(err, errPidfd) {
				retrying = false
			}
			switch {
			case ok:
				if pidfds != pidfdsUsed {
					w.log.Info("keepalived's exit is watched through a pidfd: its death is noticed at once", "pid", id.PID)
				}
				pidfds = pidfdsUsed
			case isPidfdUnsupported(err):
				w.log.Warn("pidfds are not available: keepalived's death is noticed by polling, dead_after late", "pid_file", w.opts.PIDFile, "error", err)
				pidfds, err = pidfdsUnusable, nil
			case errors.Is(err, errPidfd):
				// A shortage of descriptors or memory: polling
				// still sees the process, and the next look tries
				// again.
				if !retrying {
					w.log.Warn("cannot watch keepalived's exit; trying again at every look", "error", err)
				}
				retrying, err = true, nil
			}
		}
		if err == nil {
			w.current.Store(&id)
			if v.seen() {
				onChange(true, "keepalived is running")
			}
		} else {
			w.current.Store(nil)
			if v.missing(time.Now()) {
				onChange(false, err.Error())
			}
		}
		var ended <-chan error
		if exit != nil {
			ended = exit.ended
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case werr := <-ended:
			gone := exit.id
			exit.stop()
			exit = nil
			if werr != nil {
				w.log.Warn("cannot wait on keepalived's pidfd: its death is noticed by polling, dead_after late", "error", werr)
				pidfds = pidfdsUnusable
				continue
			}
			exited = &gone
			w.current.Store(nil)
			if v.exited() {
				onChange(false, fmt.Sprintf("keepalived process %d exited (noticed through its pidfd)", gone.PID))
			}
		}
	}
}

// verdict is Run's judgement of keepalived's liveness. Each method takes
// one observation and reports whether the verdict changed, or was reached
// for the first time.
type verdict struct {
	deadAfter time.Duration
	reported  bool
	alive     bool
	// missingSince is when the pid file began to name no live process;
	// zero while one is seen.
	missingSince time.Time
}

// seen: the pid file names a live keepalived process.
func (v *verdict) seen() bool {
	v.missingSince = time.Time{}
	if v.reported && v.alive {
		return false
	}
	v.reported, v.alive = true, true
	return true
}

// missing: at now the pid file names no live keepalived process; dead
// once that has lasted deadAfter, the grace for a restart replacing it.
func (v *verdict) missing(now time.Time) bool {
	if v.missingSince.IsZero() {
		v.missingSince = now
	}
	if now.Sub(v.missingSince) < v.deadAfter || v.reported && !v.alive {
		return false
	}
	v.reported, v.alive = true, false
	return true
}

// exited: the process seen alive has exited; dead at once, for no grace
// can bring that process back.
func (v *verdict) exited() bool {
	if v.reported && !v.alive {
		return false
	}
	v.reported, v.alive = true, false
	return true
}

// pidfdState says whether Run watches keepalived's exit through pidfds.
type pidfdState int

const (
	// pidfdsUntried: none opened yet.
	pidfdsUntried pidfdState = iota
	// pidfdsUsed: a pidfd has been opened and waited on.
	pidfdsUsed
	// pidfdsUnusable: the kernel or a seccomp filter refuses them, or
	// they cannot be waited on; polling alone notices a death.
	pidfdsUnusable
)

// errPidfd marks an error of opening or waiting on a pidfd, as opposed to
// the process's absence.
var errPidfd = errors.New("pidfd")

// isPidfdUnsupported reports whether err says that pidfds cannot be used
// at all: an old kernel (ENOSYS) or a seccomp filter (EPERM, the errno the
// shipped unit sets, or ENOSYS).
func isPidfdUnsupported(err error) bool {
	return errors.Is(err, errPidfd) && (errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM))
}

// exitWatch waits for one process's exit on its pidfd.
type exitWatch struct {
	id Identity
	f  *os.File
	// ended receives one value when the wait ends by itself: nil when
	// the process has exited, else why the pidfd cannot be waited on.
	ended chan error
	// done is closed when the waiting goroutine has returned.
	done chan struct{}
}

// watchExit opens a pidfd for the process id names and waits on it in a
// goroutine. ok is false with a nil error when the pid file and /proc no
// longer name that process once the pidfd is open (the next look watches
// the new one); an error wrapping errPidfd says the pidfd could not be
// opened; any other error says why no keepalived process runs.
func (w *Watcher) watchExit(id Identity) (e *exitWatch, ok bool, err error) {
	fd, err := w.pidfdOpen(id.PID, 0)
	if errors.Is(err, syscall.ESRCH) {
		return nil, false, fmt.Errorf("keepalived process %d (from %s) is gone", id.PID, w.opts.PIDFile)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: pidfd_open(%d): %w", errPidfd, id.PID, err)
	}
	// The pid may have been freed and reused between reading the pid
	// file and opening the pidfd: the pidfd is trusted only when the
	// same process is found after it was opened, for a reuse after the
	// open cannot change the process the pidfd refers to.
	again, err := w.Identify()
	if err != nil || !again.Same(id) {
		unix.Close(fd)
		return nil, false, err
	}
	// Non-blocking so that os.NewFile registers it with the runtime
	// poller: the wait parks a goroutine, not a thread, and Close wakes
	// it.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, false, fmt.Errorf("%w: pidfd of process %d: %w", errPidfd, id.PID, err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", id.PID))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("%w: pidfd of process %d: %w", errPidfd, id.PID, err)
	}
	e = &exitWatch{id: id, f: f, ended: make(chan error, 1), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			var exited bool
			exited, perr = pidfdReadable(int(fd))
			return exited || perr != nil
		})
		if errors.Is(err, os.ErrClosed) {
			return
		}
		e.ended <- errors.Join(err, perr)
	}()
	return e, true, nil
}

// stop ends the wait and returns once its goroutine has; a nil e is
// already stopped.
func (e *exitWatch) stop() {
	if e == nil {
		return
	}
	e.f.Close()
	<-e.done
}

// pidfdReadable reports whether the process of pidfd fd has exited: its
// pidfd is then readable.
func pidfdReadable(fd int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			return false, fmt.Errorf("poll pidfd: revents %#x", fds[0].Revents)
		}
		return n > 0 && fds[0].Revents&unix.POLLIN != 0, nil
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
