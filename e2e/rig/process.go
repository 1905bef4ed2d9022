package rig

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Process is a command running in a namespace, with its output kept.
type Process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	tee  io.Writer
	done chan struct{}
}

func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tee != nil {
		_, _ = p.tee.Write(b)
	}
	return p.out.Write(b)
}

func startProcess(cmd *exec.Cmd, tee io.Writer) (*Process, error) {
	p := &Process{cmd: cmd, tee: tee, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p
	}
	cmd.Stderr = p
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Output is what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Pid is the process id ("ip netns exec" execs the command, so this is the
// command itself).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig without waiting.
func (p *Process) Signal(sig os.Signal) { p.cmd.Process.Signal(sig) }

// Stop sends sig and waits up to 10 s, then kills.
func (p *Process) Stop(sig os.Signal) {
	if p == nil || p.Exited() {
		return
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill sends SIGKILL and waits.
func (p *Process) Kill() {
	if p == nil || p.Exited() {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
}
