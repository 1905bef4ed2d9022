package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// OutputLimit is how much of a hook's output, or of an http answer's
	// body, is kept for the log.
	OutputLimit = 4 << 10
	// execWaitDelay bounds the wait for the output pipes once the process
	// is gone, when something it started holds them open.
	execWaitDelay = time.Second
	// groupLinger is how long the process group of a run is still
	// recognised after it ended, so a request a hook sent to the control
	// socket just before it ended is still known as a hook's.
	groupLinger = 5 * time.Second
)

// runExec runs an exec hook: argv[0] with its arguments, no shell, the
// payload on standard input, the minimal environment, in its own process
// group and without the agent's capabilities. The context's end kills the
// whole group, and so does the program's exit: nothing a hook starts
// outlives its run.
func (r *Runner) runExec(ctx context.Context, h *hook, body []byte, p *Payload) (Run, string) {
	argv := h.spec.Argv
	if len(argv) == 0 {
		return Run{Result: ResultError, Error: "no command"}, ""
	}
	if err := r.check(argv); err != nil {
		return Run{Result: ResultError, Error: fmt.Sprintf("refused: %v", err)}, ""
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = hookEnv(r.env, p)
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(body)
	out := &capWriter{limit: OutputLimit}
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own group, so that the timeout reaches the program's children
	// too; SIGKILL because a hung hook may ignore anything else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = execWaitDelay

	if err := startWithoutAmbientCaps(cmd); err != nil {
		return Run{Result: ResultError, Error: err.Error()}, ""
	}
	pgid := cmd.Process.Pid
	r.groups.started(pgid)
	err := waitGroup(cmd)
	r.groups.ended(pgid, time.Now())

	st := cmd.ProcessState
	switch {
	case st != nil && st.Success():
		// Exit 0 passes even when a child that left the group kept the
		// output open (ErrWaitDelay).
		return Run{Result: ResultOK}, out.String()
	case st != nil && st.ExitCode() > 0:
		return Run{Result: ResultFailed, ExitCode: st.ExitCode()}, out.String()
	case st != nil:
		// A signal ended it: the timeout's kill, or another one.
		return Run{Result: ResultFailed, ExitCode: -1, Error: st.String()}, out.String()
	case err != nil:
		return Run{Result: ResultError, Error: err.Error()}, out.String()
	}
	return Run{Result: ResultError, Error: "ended without a status"}, out.String()
}

// startWithoutAmbientCaps starts cmd so that it gets none of the agent's
// capabilities, as health does for exec checks: the systemd unit grants
// ambient capabilities, which a non-root process passes on to what it
// executes, and a child takes its credentials from the thread that forks
// it. So cmd is started from a thread of its own whose ambient set is
// cleared first; the thread stays locked, so the runtime ends it with its
// goroutine and no other goroutine runs on it.
func startWithoutAmbientCaps(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// EINVAL: a kernel without ambient capabilities, so none to clear.
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			errc <- fmt.Errorf("clear ambient capabilities: %w", err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// waitGroup waits for cmd and kills what its program left running in its
// process group. The program is first waited for without being reaped:
// until it is, its pid, which is the group's id, cannot pass to another
// process, so the kill reaches only the hook's own processes.
func waitGroup(cmd *exec.Cmd) error {
	pid := cmd.Process.Pid
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	}
	if err == nil {
		// ESRCH means nothing was left.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	return cmd.Wait()
}

// capWriter keeps the first limit bytes written to it and counts the rest.
type capWriter struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.limit - len(w.buf); room > 0 {
		n := min(room, len(p))
		w.buf = append(w.buf, p[:n]...)
		w.dropped += int64(len(p) - n)
	} else {
		w.dropped += int64(len(p))
	}
	return len(p), nil
}

func (w *capWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.ToValidUTF8(string(w.buf), "\uFFFD")
	if w.dropped > 0 {
		s += fmt.Sprintf("\n[%d more bytes dropped]", w.dropped)
	}
	return s
}

// groups is the set of process groups of exec hooks that run or ended
// less than groupLinger ago.
type groups struct {
	mu      sync.Mutex
	running map[int]struct{}
	recent  map[int]time.Time
}

func newGroups() *groups {
	return &groups{running: map[int]struct{}{}, recent: map[int]time.Time{}}
}

func (g *groups) started(pgid int) {
	g.mu.Lock()
	g.running[pgid] = struct{}{}
	delete(g.recent, pgid)
	g.mu.Unlock()
}

// ended moves pgid to the recently ended groups and forgets those that
// ended more than groupLinger before now.
func (g *groups) ended(pgid int, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.running, pgid)
	g.recent[pgid] = now
	for pg, t := range g.recent {
		if now.Sub(t) > groupLinger {
			delete(g.recent, pg)
		}
	}
}

func (g *groups) contains(pgid int, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.running[pgid]; ok {
		return true
	}
	t, ok := g.recent[pgid]
	return ok && now.Sub(t) <= groupLinger
}

// IsHookProcess reports whether process pid belongs to the process group
// of an exec hook that runs or ended less than a few seconds ago, so the
// control socket can refuse its write requests as it refuses a health
// check's (a hook that drains on a drain event would loop). A process is
// recognised once its start returned; one that left the group (setsid,
// setpgid) or is gone is not.
func (r *Runner) IsHookProcess(pid int) bool {
	if r == nil || pid <= 0 {
		return false
	}
	pgid, err := unix.Getpgid(pid)
	if err != nil {
		return false
	}
	return r.groups.contains(pgid, time.Now())
}
