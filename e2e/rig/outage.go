package rig

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartWith runs the daemon like Start, with env added to its environment
// and, when wrapper is not empty, as the last argument of wrapper (strace
// and its options). With strace -D the process started is the daemon
// itself (the tracer runs as its grandchild), so Proc's signals, Stop and
// Kill reach it; AgentPID names the daemon under any other wrapper.
func (a *Agent) StartWith(env []string, wrapper ...string) error {
	args := append(append([]string{}, wrapper...), a.bin, "run", "-config", a.Config)
	cmd := a.ns.Command(a.nsName, args...)
	cmd.Env = append(os.Environ(), env...)
	p, err := startProcess(cmd, a.log)
	if err != nil {
		return err
	}
	a.Proc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.Status(); err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s agent exited:\n%s", a.nsName, p.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s agent does not answer:\n%s", a.nsName, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// AgentPID is the daemon's process id: Proc's, or under a wrapper its
// child's; 0 when it cannot be found.
func (a *Agent) AgentPID() int {
	if a.Proc == nil {
		return 0
	}
	pid := a.Proc.Pid()
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(b)) == "strace" {
		pid, _ = ChildPID(pid)
	}
	return pid
}

// ChildPID is the first child of process pid.
func ChildPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("process %d has no child", pid)
	}
	return strconv.Atoi(f[0])
}

// VRRPPID is the pid in the node's keepalived VRRP pid file, 0 if none.
func (n *Node) VRRPPID() int {
	b, err := os.ReadFile(n.VRRPPid())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// CrashKeepalived SIGKILLs the node's keepalived and its VRRP process at
// once: no priority-0 advertisement, nothing written to the FIFO, the pid
// file left behind, as after a crash or a power cut.
func (n *Node) CrashKeepalived() {
	if pid := n.VRRPPID(); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	n.Keepalived.Kill()
}

// SignalKeepalived sends sig to the node's keepalived and its VRRP
// process (SIGSTOP and SIGCONT pause and resume both).
func (n *Node) SignalKeepalived(sig syscall.Signal) {
	if pid := n.VRRPPID(); pid > 0 {
		syscall.Kill(pid, sig)
	}
	n.Keepalived.Signal(sig)
}

// Blackhole drops, in the switch namespace, the TCP packets a node sends
// to port of the switch (the emulator): nothing answers, nothing is
// refused, as with a firewall that drops or a path that died. srcPorts,
// when given, limits it to those source ports: connections that were
// open die silently while new ones get through. It works with routing
// policy rules (no netfilter): the local table moves behind them, as
// vrrpCut does for VRRP. Each Blackhole returns its own undo.
func (h *HA) Blackhole(node string, port int, srcPorts ...int) (undo func() error, err error) {
	n := h.Nodes[node]
	if out, err := h.NS.IP("sw", "rule", "show", "pref", "0"); err == nil && strings.Contains(out, "local") {
		for _, c := range [][]string{{"rule", "add", "pref", "32765", "table", "local"}, {"rule", "del", "pref", "0"}} {
			if out, err := h.NS.IP("sw", c...); err != nil {
				return nil, fmt.Errorf("ip %v: %w: %s", c, err, out)
			}
		}
	}
	var rules [][]string
	if len(srcPorts) == 0 {
		rules = append(rules, []string{"from", n.IP, "ipproto", "tcp", "dport", strconv.Itoa(port), "blackhole"})
	}
	for _, sp := range srcPorts {
		rules = append(rules, []string{"from", n.IP, "ipproto", "tcp", "sport", strconv.Itoa(sp), "dport", strconv.Itoa(port), "blackhole"})
	}
	var added [][]string
	undo = func() error {
		var first error
		for _, r := range added {
			if out, err := h.NS.IP("sw", append([]string{"rule", "del", "pref", "10"}, r...)...); err != nil && first == nil {
				first = fmt.Errorf("ip rule del %v: %w: %s", r, err, out)
			}
		}
		added = nil
		return first
	}
	for _, r := range rules {
		if out, err := h.NS.IP("sw", append([]string{"rule", "add", "pref", "10"}, r...)...); err != nil {
			_ = undo()
			return nil, fmt.Errorf("ip rule add %v: %w: %s", r, err, out)
		}
		added = append(added, r)
	}
	return undo, nil
}

// Connections lists the local ports of the established TCP connections
// of process pid (in its network namespace) to addr:port.
func Connections(pid int, addr string, port int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return nil, err
	}
	want := hexAddr(addr, port)
	var ports []int
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		// sl local_address rem_address st ...; 01 is ESTABLISHED.
		if len(f) < 4 || f[2] != want || f[3] != "01" {
			continue
		}
		_, lp, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(lp, 16, 16)
		if err == nil {
			ports = append(ports, int(p))
		}
	}
	return ports, nil
}

// hexAddr is addr:port as /proc/net/tcp writes an IPv4 endpoint.
func hexAddr(addr string, port int) string {
	var o [4]int
	_, _ = fmt.Sscanf(addr, "%d.%d.%d.%d", &o[0], &o[1], &o[2], &o[3])
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", o[3], o[2], o[1], o[0], port)
}

// Strace attaches strace to every thread of process pid with args (for
// example -e inject=sendto:error=ENOBUFS); stopping the returned process
// with SIGINT detaches it and leaves pid running.
func Strace(pid int, args ...string) (*Process, error) {
	a := append([]string{"-f", "-qq", "-o", "/dev/null", "-p", strconv.Itoa(pid)}, args...)
	p, err := startProcess(exec.Command("strace", a...), nil)
	if err != nil {
		return nil, err
	}
	// Injection starts once every thread is traced.
	deadline := time.Now().Add(10 * time.Second)
	for !traced(pid) {
		if p.Exited() || time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("strace did not attach to %d:\n%s", pid, p.Output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p, nil
}

// traced reports whether every thread of pid has a tracer.
func traced(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "TracerPid:"); ok && strings.TrimSpace(v) == "0" {
				return false
			}
		}
	}
	return true
}
