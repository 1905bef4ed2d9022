package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/e2e/netns"
	vnetns "github.com/vishvananda/netns"
)

// VIP is the rig's virtual IP; Destination is the HA route's destination,
// outside the VPC.
const (
	VIP         = "198.18.0.100"
	Destination = "198.19.0.0/24"
	SwitchIP    = "198.18.0.1"
	ClientIP    = "198.18.0.50"
)

// Binaries are the programs the rig runs.
type Binaries struct {
	Agent    string
	Emulator string
}

// HA is the failover rig.
type HA struct {
	NS    *netns.Rig
	Nodes map[string]*Node
	Bins  Binaries
	Dir   string
	// Log, if set, receives every process's output as it comes.
	Log io.Writer

	emu *Emulator
}

// Node is one of the two VRRP peers.
type Node struct {
	Name, IP, Peer, InstanceID string
	// Gateway is the node's dedicated-line gateway: its next hop in the rig's HA route pair,
	// the only type of next hop such pairs take.
	Gateway    string
	Dir        string
	Agent      *Agent
	Keepalived *Process
	rig        *HA
}

// NewHA builds the namespaces, the bridge and the addresses. dir holds
// every file the rig writes.
func NewHA(dir string, bins Binaries) (*HA, error) {
	r := netns.New()
	h := &HA{NS: r, Bins: bins, Dir: dir, Nodes: map[string]*Node{
		"n1": {Name: "n1", IP: "198.18.0.11", Peer: "198.18.0.12", InstanceID: "i-n1", Gateway: "dcgw-n1"},
		"n2": {Name: "n2", IP: "198.18.0.12", Peer: "198.18.0.11", InstanceID: "i-n2", Gateway: "dcgw-n2"},
	}}
	if err := h.build(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

func (h *HA) build() error {
	// keepalived's enable_script_security refuses scripts below a
	// directory others may write; the caller's umask may have left dir
	// so.
	if err := os.Chmod(h.Dir, 0o755); err != nil {
		return err
	}
	r := h.NS
	if _, err := r.AddNS("sw"); err != nil {
		return err
	}
	var ports []string
	for _, n := range []string{"n1", "n2", "client"} {
		if _, err := r.AddNS(n); err != nil {
			return err
		}
		if err := r.Veth(n, "eth0", "sw", "p-"+n); err != nil {
			return err
		}
		ports = append(ports, "p-"+n)
	}
	if err := r.Bridge("sw", "br0", ports...); err != nil {
		return err
	}
	for ns, cidr := range map[string]string{"sw": SwitchIP + "/24", "n1": "198.18.0.11/24", "n2": "198.18.0.12/24", "client": ClientIP + "/24"} {
		ifname := "eth0"
		if ns == "sw" {
			ifname = "br0"
		}
		if err := r.Addr(ns, ifname, cidr); err != nil {
			return err
		}
	}
	// The client and the switch learn from gratuitous ARP, as a VPC's
	// HAVIP does.
	for _, ns := range []string{"client", "sw"} {
		if _, err := r.Exec(ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_accept=1", "net.ipv4.conf.default.arp_accept=1"); err != nil {
			return err
		}
	}
	for _, n := range h.Nodes {
		n.rig = h
		n.Dir = filepath.Join(h.Dir, n.Name)
		if err := os.MkdirAll(n.Dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every process and removes the namespaces.
func (h *HA) Close() {
	for _, n := range h.Nodes {
		if n.Agent != nil {
			n.Agent.Proc.Stop(os.Interrupt)
		}
		n.Keepalived.Stop(os.Interrupt)
	}
	if h.emu != nil {
		h.emu.Proc.Stop(os.Interrupt)
	}
	h.NS.Close()
}

// HasVIP reports whether the VIP is on the node's interface now.
func (h *HA) HasVIP(node string) bool {
	out, err := h.NS.IP(node, "-4", "-o", "addr", "show", "dev", "eth0")
	return err == nil && strings.Contains(out, " "+VIP+"/")
}

// Holders returns the nodes that have the VIP, in name order.
func (h *HA) Holders() []string {
	var out []string
	for _, n := range []string{"n1", "n2"} {
		if h.HasVIP(n) {
			out = append(out, n)
		}
	}
	return out
}

// MAC is the node's eth0 address.
func (h *HA) MAC(node string) string {
	out, err := h.NS.IP(node, "-br", "link", "show", "eth0")
	if err != nil {
		return ""
	}
	f := strings.Fields(out)
	if len(f) < 3 {
		return ""
	}
	return f[2]
}

// ClientNeighbor is the MAC the client has for the VIP ("" if none).
func (h *HA) ClientNeighbor() string {
	out, _ := h.NS.IP("client", "neigh", "show", VIP)
	f := strings.Fields(out)
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// InNamespace runs f on a thread switched into namespace short; sockets
// created there stay in that namespace.
func (h *HA) InNamespace(short string, f func() error) error {
	return InNamespace(h.NS.Name(short), f)
}

// InNamespace runs f on a thread switched into the named namespace.
func InNamespace(name string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := vnetns.GetFromName(name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := vnetns.Set(target); err != nil {
		return err
	}
	defer func() { _ = vnetns.Set(orig) }()
	return f()
}

// DialIn returns a dial function whose sockets live in namespace short.
func (h *HA) DialIn(short string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := h.InNamespace(short, func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// Agent is a havip-agent daemon in a namespace.
type Agent struct {
	Config, Socket, FIFO, StateDir string
	Proc                           *Process

	ns     *netns.Rig
	nsName string
	bin    string
	log    io.Writer
}

// NewAgent prepares a daemon in namespace nsName of ns with its files in
// dir; body is its whole configuration, which must use the paths
// AgentPaths(dir) gives.
func NewAgent(ns *netns.Rig, nsName, dir, bin, body string, log io.Writer) (*Agent, error) {
	a := &Agent{Config: filepath.Join(dir, "havip-agent.toml"), Socket: filepath.Join(dir, "agent.sock"),
		FIFO: filepath.Join(dir, "keepalived.fifo"), StateDir: filepath.Join(dir, "state"),
		ns: ns, nsName: nsName, bin: bin, log: log}
	if err := os.WriteFile(a.Config, []byte(body), 0o600); err != nil {
		return nil, err
	}
	return a, nil
}

// AgentBase is the [agent] and [keepalived] sections for an agent whose
// files are in dir; pidFile "" turns the liveness watch off.
func AgentBase(dir, logLevel, pidFile string) string {
	return fmt.Sprintf(`[agent]
state_dir = %q
socket = %q
log_level = %q

[keepalived]
fifo = %q
pid_file = %q
dead_after = "1s"
`, filepath.Join(dir, "state"), filepath.Join(dir, "agent.sock"), logLevel, filepath.Join(dir, "keepalived.fifo"), pidFile)
}

// AgentBase is the [agent] and [keepalived] part of a node's agent
// configuration; the liveness watch follows the node's keepalived.
func (n *Node) AgentBase(logLevel string) string { return AgentBase(n.Dir, logLevel, n.VRRPPid()) }

// FIFOPath is where the node's keepalived writes and its agent reads.
func (n *Node) FIFOPath() string { return filepath.Join(n.Dir, "keepalived.fifo") }

// VRRPPid is the pid file of the node's keepalived VRRP process.
func (n *Node) VRRPPid() string { return filepath.Join(n.Dir, "vrrp.pid") }

// WriteAgentConfig writes the node's agent configuration.
func (n *Node) WriteAgentConfig(body string) (*Agent, error) {
	a, err := NewAgent(n.rig.NS, n.Name, n.Dir, n.rig.Bins.Agent, body, prefixWriter(n.rig.Log, n.Name+" agent: "))
	if err != nil {
		return nil, err
	}
	n.Agent = a
	return a, nil
}

// Start runs the daemon and waits until its control socket answers.
func (a *Agent) Start() error {
	p, err := startProcess(a.ns.Command(a.nsName, a.bin, "run", "-config", a.Config), a.log)
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

// Status asks the daemon for its status.
func (a *Agent) Status() (agent.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := control.Do(ctx, a.Socket, control.Request{Op: control.OpStatus})
	if err != nil {
		return agent.Status{}, err
	}
	var s agent.Status
	err = json.Unmarshal(resp.Status, &s)
	return s, err
}

// Write puts lines into the agent's FIFO, as keepalived would.
func (a *Agent) Write(lines ...string) error {
	f, err := os.OpenFile(a.FIFO, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	return err
}

// prefixWriter prefixes each write (whole lines in practice) for a shared
// log; nil w discards.
func prefixWriter(w io.Writer, prefix string) io.Writer {
	if w == nil {
		return nil
	}
	return writerFunc(func(b []byte) (int, error) {
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" {
				_, _ = io.WriteString(w, prefix+l)
			}
		}
		return len(b), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
