package hooks

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/havip-agent/havip-agent/health"
	"golang.org/x/sys/unix"
)

const (
	// OutputLimit is how much of a hook's output, or of an http answer's
	// body, is kept for the log.
	OutputLimit = 4 << 10
	// execWaitDelay bounds the wait for the output pipes once the process
	// is gone, when something it started holds them open.
	execWaitDelay = time.Second
	// execNice is how much nicer than the agent exec hooks run: on a node
	// with few CPUs, a hook program that starts right after a transition
	// must not hold up the next one.
	execNice = 10
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
	out := health.NewCapWriter(OutputLimit)
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own group, so that the timeout reaches the program's children
	// too; SIGKILL because a hung hook may ignore anything else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = execWaitDelay

	r.groups.Starting()
	if err := health.StartWithoutAmbientCaps(cmd); err != nil {
		r.groups.Started(0)
		return Run{Result: ResultError, Error: err.Error()}, ""
	}
	pgid := cmd.Process.Pid
	r.groups.Started(pgid)
	// A hook is the operator's afterthought, the failover path is not:
	// the program (and what it starts) yields the CPU to the agent. The
	// whole group, in case the program started something already; best
	// effort: a hook that runs at the agent's priority still runs.
	if raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err == nil {
		// The system call answers 20 - nice.
		_ = unix.Setpriority(unix.PRIO_PGRP, pgid, min(20-raw+execNice, 19))
	}
	err := health.WaitGroup(cmd)
	r.groups.Ended(pgid, time.Now())

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

// IsHookProcess reports whether process pid belongs to the process group
// of an exec hook that runs or ended less than a few seconds ago, so the
// control socket can refuse its write requests as it refuses a health
// check's (a hook that drains on a drain event would loop). A process is
// recognised once its start returned; one that left the group (setsid,
// setpgid) or is gone is not.
func (r *Runner) IsHookProcess(pid int) bool {
	return r != nil && r.groups.HasProcess(pid)
}
