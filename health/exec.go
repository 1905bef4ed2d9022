package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// checkGroupLinger is how long the process group of an exec check is
// still recognised after its run ended, so that a request a check sent to
// the control socket just before it was killed is still known as a
// check's when the server reads it.
const checkGroupLinger = 5 * time.Second

func execProber(argv []string, timeout time.Duration, groups *ProcGroups) prober {
	return func(ctx context.Context) outcome {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = execEnv
		cmd.Dir = "/"
		// Its own process group, so a timeout kills the script's children
		// too and a process can be recognised as a check's by its group;
		// SIGKILL because a hung check may ignore anything else.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = execWaitDelay
		out := &CapWriter{limit: OutputLimit}
		cmd.Stdout = out
		cmd.Stderr = out

		groups.Starting()
		err := StartWithoutAmbientCaps(cmd)
		pgid := 0
		if err == nil {
			pgid = cmd.Process.Pid
		}
		groups.Started(pgid)
		if err != nil {
			return outcome{msg: err.Error()}
		}
		err = WaitGroup(cmd)
		groups.Ended(pgid, time.Now())

		o := outcome{output: out.String()}
		switch {
		case ctx.Err() != nil && (cmd.ProcessState == nil || !cmd.ProcessState.Success()):
			o.msg = fmt.Sprintf("timed out after %v, process group killed", timeout)
		case cmd.ProcessState != nil && cmd.ProcessState.Success():
			// Exit 0 passes even if a child that left the group kept the
			// output open (ErrWaitDelay).
			o.ok = true
			o.msg = "exit status 0"
		case err != nil:
			o.msg = err.Error()
		default:
			o.msg = "failed"
		}
		return o
	}
}

// StartWithoutAmbientCaps starts cmd so that it gets none of the agent's
// capabilities. The systemd unit grants CAP_NET_ADMIN and CAP_NET_RAW as
// ambient capabilities, which a non-root process passes on to every
// program it executes; a child takes its credentials from the thread that
// forks it, so cmd is started from a thread of its own whose ambient set
// is cleared first. That thread is never unlocked, so the runtime ends it
// with its goroutine and no other goroutine runs on it; the agent's other
// threads keep their capabilities. The inheritable set is left alone: the
// unit's system call filter refuses capset, and without file capabilities
// on the program it grants nothing.
func StartWithoutAmbientCaps(cmd *exec.Cmd) error {
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

// WaitGroup waits for cmd, killing whatever its command left running in
// its process group once the command exited, so that nothing a check
// starts outlives its run (nor piles up, one per run). The command is
// first waited for without being reaped: until it is, its pid, which is
// the group's id, cannot pass to another process, so the kill reaches
// only the check's own processes.
func WaitGroup(cmd *exec.Cmd) error {
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

// ProcGroups is the set of process groups of exec checks that are running
// or ended less than checkGroupLinger ago. A nil *procGroups records
// nothing (Probe).
type ProcGroups struct {
	mu      sync.Mutex
	running map[int]struct{}
	recent  map[int]time.Time
	// inStart counts commands being started: one may already run before
	// its group is recorded.
	inStart int
}

// HasProcess reports whether process pid is in one of the groups, running
// or recently ended; a pid that no longer exists is not.
func (g *ProcGroups) HasProcess(pid int) bool {
	if g == nil || pid <= 0 {
		return false
	}
	pgid, err := unix.Getpgid(pid)
	if err != nil {
		return false
	}
	return g.Contains(pgid, time.Now())
}

// NewProcGroups returns an empty set.
func NewProcGroups() *ProcGroups {
	return &ProcGroups{running: map[int]struct{}{}, recent: map[int]time.Time{}}
}

// Starting notes that a command is about to be started.
func (g *ProcGroups) Starting() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.inStart++
	g.mu.Unlock()
}

// Started records the group of a command that started; pgid 0 means the
// start failed.
func (g *ProcGroups) Started(pgid int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.inStart--
	if pgid > 0 {
		g.running[pgid] = struct{}{}
		delete(g.recent, pgid)
	}
	g.mu.Unlock()
}

// Ended moves the group of a finished command to the recently ended ones
// and forgets those that ended more than checkGroupLinger before now.
func (g *ProcGroups) Ended(pgid int, now time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.running, pgid)
	g.recent[pgid] = now
	for pg, t := range g.recent {
		if now.Sub(t) > checkGroupLinger {
			delete(g.recent, pg)
		}
	}
}

// Contains reports whether pgid is the group of a check that runs or ended
// less than checkGroupLinger before now. While a command is being started
// it may already run unrecorded; its group's leader is then a child of
// this process, which is asked of the kernel.
func (g *ProcGroups) Contains(pgid int, now time.Time) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	_, ok := g.running[pgid]
	if t, seen := g.recent[pgid]; seen && now.Sub(t) <= checkGroupLinger {
		ok = true
	}
	inStart := g.inStart
	g.mu.Unlock()
	if ok {
		return true
	}
	if inStart == 0 {
		return false
	}
	ppid, err := parentPID(pgid)
	return err == nil && ppid == os.Getpid()
}

// parentPID returns the parent of process pid, from /proc/PID/stat.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatPPID(b)
}

// parseStatPPID returns the parent pid from the content of /proc/PID/stat:
// "pid (comm) state ppid ...", where comm may hold spaces and parentheses,
// so the fields are counted from the last ')'.
func parseStatPPID(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, errors.New("stat: too few fields")
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, fmt.Errorf("stat: parent pid: %w", err)
	}
	return ppid, nil
}
