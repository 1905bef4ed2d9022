package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/netns"
)

// haRig is the failover rig: a switch namespace with a bridge, two nodes
// running keepalived and the agent, and a client.
//
//	sw:     br0 198.18.0.1/24 (the emulator listens here)
//	n1:     eth0 198.18.0.11/24
//	n2:     eth0 198.18.0.12/24
//	client: eth0 198.18.0.50/24
type haRig struct {
	t     testing.TB
	rig   *netns.Rig
	nodes map[string]*haNode
}

type haNode struct {
	name   string
	ip     string
	peer   string
	dir    string
	ka     *exec.Cmd
	kaMu   sync.Mutex
	kaLog  bytes.Buffer
	kaDone chan struct{}
	agent  *agentProc
}

const rigVIP = "198.18.0.100"

func newHARig(t testing.TB) *haRig {
	t.Helper()
	netns.Require(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed (apt-get install keepalived)")
		}
		t.Skip("keepalived is not installed")
	}
	r := netns.New(t)
	h := &haRig{t: t, rig: r, nodes: map[string]*haNode{
		"n1": {name: "n1", ip: "198.18.0.11", peer: "198.18.0.12"},
		"n2": {name: "n2", ip: "198.18.0.12", peer: "198.18.0.11"},
	}}
	must(t, func() error { _, err := r.AddNS("sw"); return err })
	var ports []string
	for _, n := range []string{"n1", "n2", "client"} {
		must(t, func() error { _, err := r.AddNS(n); return err })
		must(t, func() error { return r.Veth(n, "eth0", "sw", "p-"+n) })
		ports = append(ports, "p-"+n)
	}
	must(t, func() error { return r.Bridge("sw", "br0", ports...) })
	must(t, func() error { return r.Addr("sw", "br0", "198.18.0.1/24") })
	must(t, func() error { return r.Addr("n1", "eth0", "198.18.0.11/24") })
	must(t, func() error { return r.Addr("n2", "eth0", "198.18.0.12/24") })
	must(t, func() error { return r.Addr("client", "eth0", "198.18.0.50/24") })
	for _, ns := range []string{"client", "sw"} {
		must(t, func() error {
			_, err := r.Exec(ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_accept=1", "net.ipv4.conf.default.arp_accept=1")
			return err
		})
	}
	for _, n := range h.nodes {
		n.dir = t.TempDir()
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, name := range []string{"n1", "n2"} {
			n := h.nodes[name]
			n.kaMu.Lock()
			t.Logf("--- %s keepalived (set HAVIP_E2E_DEBUG=1 for its log):\n%s", name, n.kaLog.String())
			n.kaMu.Unlock()
			if n.agent != nil {
				t.Logf("--- %s agent:\n%s", name, n.agent.logs())
			}
		}
	})
	return h
}

// keepalivedConf renders a node's keepalived.conf: unicast peers, the
// agent's FIFO, no virtual_ipaddress; global goes into global_defs, pre
// before the instance (track_file definitions), extra inside it.
func (h *haRig) keepalivedConf(n *haNode, priority int, global, pre, extra string) string {
	return fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_notify_fifo %s
    script_user root
    enable_script_security
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 1
%s
}
%s
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    unicast_src_ip %s
    unicast_peer {
        %s
    }
%s
}
`, n.name, n.agent.fifo, global, pre, priority, n.ip, n.peer, extra)
}

// startKeepalived runs keepalived (VRRP only, no syslog: -G) on a node.
func (h *haRig) startKeepalived(n *haNode, conf string) {
	h.t.Helper()
	path := filepath.Join(n.dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		h.t.Fatal(err)
	}
	args := []string{"keepalived", "-n", "-P", "-G", "-f", path,
		"-p", filepath.Join(n.dir, "keepalived.pid"), "-r", n.vrrpPID(), "-c", filepath.Join(n.dir, "checkers.pid")}
	if os.Getenv("HAVIP_E2E_DEBUG") != "" {
		args = append(args, "-l", "-D")
	}
	cmd := h.rig.Command(n.name, args...)
	n.kaMu.Lock()
	n.kaLog.Reset()
	n.kaMu.Unlock()
	cmd.Stdout = syncWriter{&n.kaMu, &n.kaLog}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	n.ka = cmd
	n.kaDone = make(chan struct{})
	go func(c *exec.Cmd, d chan struct{}) { c.Wait(); close(d) }(cmd, n.kaDone)
	h.t.Cleanup(func() { h.stopKeepalived(n, os.Interrupt) })
}

func (n *haNode) vrrpPID() string { return filepath.Join(n.dir, "vrrp.pid") }

// stopKeepalived signals the parent keepalived process and waits for it.
func (h *haRig) stopKeepalived(n *haNode, sig os.Signal) {
	if n.ka == nil {
		return
	}
	select {
	case <-n.kaDone:
		return
	default:
	}
	n.ka.Process.Signal(sig)
	select {
	case <-n.kaDone:
	case <-time.After(10 * time.Second):
		n.ka.Process.Kill()
		<-n.kaDone
	}
}

// hasVIP reports whether the VIP is on the node's interface now.
func (h *haRig) hasVIP(node string) bool {
	out, err := h.rig.IP(node, "-4", "-o", "addr", "show", "dev", "eth0")
	return err == nil && bytes.Contains([]byte(out), []byte(" "+rigVIP+"/"))
}

// holder returns the nodes that have the VIP.
func (h *haRig) holders() []string {
	var out []string
	for _, n := range []string{"n1", "n2"} {
		if h.hasVIP(n) {
			out = append(out, n)
		}
	}
	return out
}

// agentConfig is the agent configuration of a node, with pid_file set to
// its keepalived's VRRP process.
func (h *haRig) newNodeAgent(n *haNode, body string) *agentProc {
	a := newAgent(h.t, h.rig, n.name, body)
	n.agent = a
	// Point the liveness watch at this node's keepalived.
	cfg, err := os.ReadFile(a.config)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte(`pid_file = ""`), []byte(fmt.Sprintf("pid_file = %q\ndead_after = \"1s\"", n.vrrpPID())), 1)
	if err := os.WriteFile(a.config, cfg, 0o600); err != nil {
		h.t.Fatal(err)
	}
	return a
}
