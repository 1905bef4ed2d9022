// Command havip-demo shows two failovers end to end with the recommended
// configuration: keepalived VRRPv3 with a sub-second advert_int, the VIP
// in keepalived's virtual_ipaddress and in havip-agent's instance
// (shared_vips), the BCE emulator as the cloud and a client pinging the
// VIP, all in network namespaces on this machine. The faults are the
// MASTER cut off the network (its switch port down) and a graceful stop
// of the MASTER's keepalived; each prints its timeline. It needs root;
// "make demo" builds the binaries and runs it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/havip-agent/havip-agent/e2e/netns"
	"github.com/havip-agent/havip-agent/e2e/rig"
	"github.com/vishvananda/netlink"
)

// advertInt is keepalived's advert_int: a BACKUP takes over 3 intervals
// and a skew after the last advertisement it heard.
const advertInt = 200 * time.Millisecond

// Node priorities: n1 is the preferred MASTER.
var priorities = map[string]int{"n1": 150, "n2": 100}

// Waits: how long a steady state may take to come, and a failover.
const (
	phaseTimeout = 15 * time.Second
	steadyWait   = 20 * time.Second
)

// options are the command line.
type options struct {
	agent, emulator string
	preempt, short  bool
	verbose         bool
}

func main() {
	var o options
	flag.StringVar(&o.agent, "agent", "bin/havip-agent", "havip-agent binary")
	flag.StringVar(&o.emulator, "emulator", "bin/bce-emulator", "bce-emulator binary")
	flag.BoolVar(&o.preempt, "preempt", true, "let the preferred MASTER (n1) take over again when it returns")
	flag.BoolVar(&o.short, "short", false, "shorter pauses between the steps (for tests)")
	flag.BoolVar(&o.verbose, "v", false, "copy keepalived's and the agents' output to stderr")
	flag.Parse()
	c := &cleanup{}
	takeSignals(c)
	start := time.Now()
	err := run(c, o, start)
	cerr := c.close(false)
	if cerr == nil {
		fmt.Printf("\ntorn down: no namespace, process or file left (%.1f s in all)\n", time.Since(start).Seconds())
	}
	if err = errors.Join(err, cerr); err != nil {
		fmt.Fprintln(os.Stderr, "havip-demo:", err)
		os.Exit(1)
	}
}

// cleanup is what every exit must remove: the recorder, the rig (its
// processes and namespaces) and the temporary directory.
type cleanup struct {
	mu  sync.Mutex
	h   *rig.HA
	rec *recorder
	dir string
}

// close tears everything down; fast kills the processes outright (on a
// signal) instead of stopping them. It reports a namespace left behind.
func (c *cleanup) close(fast bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.h != nil && fast {
		c.h.NS.Close()
	}
	if c.rec != nil {
		c.rec.stop()
		c.rec = nil
	}
	if c.h != nil {
		c.h.Close()
		err = leftovers(c.h.NS.Prefix)
		c.h = nil
	}
	if c.dir != "" {
		if rerr := os.RemoveAll(c.dir); rerr != nil && err == nil {
			err = rerr
		}
		c.dir = ""
	}
	return err
}

// leftovers reports the namespaces of the rig that still exist.
func leftovers(prefix string) error {
	out, err := netns.Run("ip", "netns", "list")
	if err != nil {
		return err
	}
	var left []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], prefix+"-") {
			left = append(left, f[0])
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("namespaces left behind: %s", strings.Join(left, " "))
	}
	return nil
}

// takeSignals tears down on SIGINT, SIGTERM and SIGHUP. The netns
// package's own handler removes the namespaces but exits before the
// temporary directory is gone, so it is replaced: netns.New installs it,
// Ignore removes it (a signal in between is ignored, not fatal), Notify
// installs ours.
func takeSignals(c *cleanup) {
	netns.New().Close()
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}
	signal.Ignore(sigs...)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		s := <-ch
		fmt.Fprintf(os.Stderr, "\nhavip-demo: %s: tearing down\n", s)
		if err := c.close(true); err != nil {
			fmt.Fprintln(os.Stderr, "havip-demo:", err)
		} else {
			fmt.Fprintln(os.Stderr, "havip-demo: torn down: no namespace, process or file left")
		}
		os.Exit(130)
	}()
}

// demo is the running rig.
type demo struct {
	o     options
	h     *rig.HA
	e     *rig.Emulator
	rec   *recorder
	sw    *netlink.Handle
	nodes []nodeInfo
	out   io.Writer
}

func run(c *cleanup, o options, start time.Time) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	for _, p := range []string{"keepalived", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install keepalived iproute2)", p)
		}
	}
	for _, b := range []string{o.agent, o.emulator} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("binary: %w (make build)", err)
		}
	}
	d := &demo{o: o, out: os.Stdout}
	c.mu.Lock()
	dir, err := os.MkdirTemp("", "havip-demo")
	if err == nil {
		c.dir = dir
		d.h, err = rig.NewHA(dir, rig.Binaries{Agent: o.agent, Emulator: o.emulator})
		c.h = d.h
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("building the rig: %w", err)
	}
	if o.verbose {
		d.h.Log = os.Stderr
	}
	d.printf("havip-demo: keepalived VRRPv3, advert_int %g s, VIP %s/24 in its virtual_ipaddress and in\n", advertInt.Seconds(), rig.VIP)
	d.printf("havip-agent's instance with shared_vips = true; the BCE emulator plays the cloud.\n")
	if err := d.startNodes(); err != nil {
		return err
	}
	sw, _, err := linkIn(d.h.NS.Name("sw"), "br0")
	if err != nil {
		return err
	}
	d.sw = sw
	defer sw.Close()
	for _, n := range []string{"n1", "n2"} {
		d.nodes = append(d.nodes, nodeInfo{Name: n, MAC: d.h.MAC(n), IP: d.h.Nodes[n].IP, Instance: d.h.Nodes[n].InstanceID, Gateway: d.h.Nodes[n].Gateway})
	}
	d.say("sw:     bridge, BCE emulator at %s", d.e.URL)
	for _, n := range d.nodes {
		d.say("%s:     %s, priority %d, MAC %s, keepalived + havip-agent", n.Name, n.IP, priorities[n.Name], n.MAC)
	}
	d.say("client: %s, pings the VIP every %s; a reply's source MAC names the node that sent it", rig.ClientIP, pingEvery)
	d.say("the VIP on each node: netlink events and a dump every %s (a change shows when first seen)", sampleEvery)
	if err := d.steady("n1"); err != nil {
		return err
	}
	d.say("steady %.1f s after start: VIP on n1; route and HAVIP master i-n1", time.Since(start).Seconds())
	rec, err := startRecorder(d.h, d.nodes)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.rec, d.rec = rec, rec
	c.mu.Unlock()
	d.pause(time.Second)

	// Fault 1: the MASTER cut off the network, then back.
	master := "n1"
	d.printf("\n=== fault 1: %s cut off the network (its switch port down)\n", master)
	cut := phase{Fault: master + "'s switch port down", Old: master, New: peer(master)}
	if err := d.fault(cut, false, func() error { return d.port(master, false) }); err != nil {
		return err
	}
	d.printf("--- %s reconnected (its switch port up)\n", master)
	cutOff := master
	if master, err = d.recover(cutOff, func() error { return d.port(cutOff, true) }); err != nil {
		return err
	}

	// Fault 2: a graceful stop of the MASTER's keepalived, then a restart.
	d.printf("\n=== fault 2: graceful stop of %s's keepalived (SIGTERM)\n", master)
	stopped := d.h.Nodes[master]
	stop := phase{Fault: "SIGTERM to " + master + "'s keepalived", Old: master, New: peer(master)}
	if err := d.fault(stop, true, func() error { stopped.Keepalived.Signal(syscall.SIGTERM); return nil }); err != nil {
		return err
	}
	d.printf("--- %s's keepalived started again\n", master)
	if _, err = d.recover(master, func() error {
		stopped.Keepalived.Stop(syscall.SIGTERM)
		return d.startKeepalived(master)
	}); err != nil {
		return err
	}
	if n := d.rec.dropped(); n > 0 {
		d.say("warning: the captures dropped %d frames; the timelines may miss some", n)
	}
	return nil
}

// recover undoes a fault on node back. With preemption back takes over
// again and the handover is summed up; without, back stays BACKUP. It
// returns the MASTER.
func (d *demo) recover(back string, undo func() error) (string, error) {
	cur := peer(back)
	p := phase{Fault: back + " back", Old: cur, New: back, Start: time.Now()}
	if err := undo(); err != nil {
		return "", err
	}
	if !d.o.preempt {
		d.pause(2 * time.Second)
		d.say("%s is BACKUP (nopreempt); the VIP stays on %s", back, strings.Join(d.h.Holders(), " and "))
		return cur, nil
	}
	r, err := d.watch(&p, true)
	d.printf("  => %s MASTER again (preemption): %s\n", back, summary(p, r))
	return back, err
}

// peer is the other node.
func peer(n string) string {
	if n == "n1" {
		return "n2"
	}
	return "n1"
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

func (d *demo) say(format string, args ...any) { d.printf("  "+format+"\n", args...) }

// pause waits d, or a fifth of it in short mode.
func (d *demo) pause(p time.Duration) {
	if d.o.short {
		p /= 5
	}
	time.Sleep(p)
}

// startNodes runs the emulator, then an agent and keepalived on each
// node.
func (d *demo) startNodes() error {
	e, err := d.h.StartEmulator("")
	if err != nil {
		return err
	}
	d.e = e
	for _, name := range []string{"n1", "n2"} {
		n := d.h.Nodes[name]
		body, err := n.CloudConfig(e, "shared_vips = true\n")
		if err != nil {
			return err
		}
		a, err := n.WriteAgentConfig(n.AgentBase("info") + body)
		if err != nil {
			return err
		}
		if err := a.Start(); err != nil {
			return err
		}
		if err := d.startKeepalived(name); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) startKeepalived(name string) error {
	n := d.h.Nodes[name]
	return n.StartKeepalived(keepalivedConf(n, priorities[name], d.o.preempt), false)
}

// keepalivedConf is the recommended configuration: VRRPv3, a sub-second
// advert_int, the VIP in virtual_ipaddress (keepalived adds and announces
// it too; the agent is told by shared_vips), unicast peers and the
// agent's FIFO.
func keepalivedConf(n *rig.Node, priority int, preempt bool) string {
	noPreempt := ""
	if !preempt {
		noPreempt = "    nopreempt\n"
	}
	return fmt.Sprintf(`global_defs {
    router_id %s
    script_user root
    enable_script_security
    vrrp_notify_fifo %s
    vrrp_version 3
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 1
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int %g
    unicast_src_ip %s
    unicast_peer {
        %s
    }
    virtual_ipaddress {
        %s/24 dev eth0
    }
%s}
`, n.Name, n.FIFOPath(), priority, advertInt.Seconds(), n.IP, n.Peer, rig.VIP, noPreempt)
}

// steady waits until node holds the VIP alone and the cloud points at it.
func (d *demo) steady(node string) error {
	inst := d.h.Nodes[node].InstanceID
	deadline := time.Now().Add(steadyWait)
	for {
		s, err := d.e.State()
		if err == nil && strings.Join(d.h.Holders(), ",") == node && rig.RouteHolder(s) == inst && rig.HAVIPMaster(s) == inst {
			return nil
		}
		if time.Now().After(deadline) {
			d.dumpLogs()
			return fmt.Errorf("no steady state with %s as MASTER after %s (VIP on %v)", node, steadyWait, d.h.Holders())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// port sets node's switch port (its veth end in the switch namespace)
// up or down.
func (d *demo) port(node string, up bool) error {
	l, err := d.sw.LinkByName("p-" + node)
	if err != nil {
		return fmt.Errorf("switch port of %s: %w", node, err)
	}
	if up {
		err = d.sw.LinkSetUp(l)
	} else {
		err = d.sw.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("switch port of %s: %w", node, err)
	}
	return nil
}

// fault injects a fault at the phase's start, waits for the failover and
// prints its timeline. oldLoses says the old MASTER is expected to drop
// the VIP (not so for a node cut off, which nobody can reach anyway).
func (d *demo) fault(p phase, oldLoses bool, inject func() error) error {
	p.Start = time.Now()
	if err := inject(); err != nil {
		return err
	}
	r, err := d.watch(&p, oldLoses)
	render(d.out, p, r)
	return err
}

// watch waits until the MASTER has moved to p.New as far as everyone
// can tell (VIP on New, gone from Old when oldLoses, the client answered
// by New, the cloud pointing at New), records a little longer, and
// explains what happened.
func (d *demo) watch(p *phase, oldLoses bool) (result, error) {
	inst, mac := d.h.Nodes[p.New].InstanceID, d.h.MAC(p.New)
	deadline := p.Start.Add(phaseTimeout)
	var werr error
	for {
		s, err := d.e.State()
		if err == nil && d.rec.holds(p.New) && (!oldLoses || !d.rec.holds(p.Old)) && d.rec.servedBy(mac, p.Start) &&
			rig.RouteHolder(s) == inst && rig.HAVIPMaster(s) == inst {
			break
		}
		if time.Now().After(deadline) {
			werr = fmt.Errorf("the MASTER did not move to %s within %s", p.New, phaseTimeout)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Keep recording a little: late replies, a VIP left on two nodes.
	d.pause(time.Second)
	p.End = time.Now()
	s, err := d.rec.snapshot(d.e)
	if err != nil {
		return result{}, err
	}
	if werr != nil {
		d.dumpLogs()
	}
	return explain(*p, s), werr
}

// dumpLogs prints the end of each node's keepalived and agent output,
// for a failure.
func (d *demo) dumpLogs() {
	for _, name := range []string{"n1", "n2"} {
		n := d.h.Nodes[name]
		if n.Keepalived != nil {
			fmt.Fprintf(os.Stderr, "--- %s keepalived:\n%s", name, tail(n.Keepalived.Output(), 20))
		}
		if n.Agent != nil && n.Agent.Proc != nil {
			fmt.Fprintf(os.Stderr, "--- %s agent:\n%s", name, tail(n.Agent.Proc.Output(), 20))
		}
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
