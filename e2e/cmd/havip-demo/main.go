// Command havip-demo shows a failover end to end: two keepalived nodes with
// havip-agent, the BCE emulator as the cloud and a client pinging the VIP,
// all in network namespaces on this machine. It needs root; "make demo"
// builds the binaries and runs it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

func main() {
	agentBin := flag.String("agent", "bin/havip-agent", "havip-agent binary")
	emuBin := flag.String("emulator", "bin/bce-emulator", "bce-emulator binary")
	preempt := flag.Bool("preempt", true, "let n1 take MASTER back when it returns")
	flag.Parse()
	if err := run(*agentBin, *emuBin, *preempt); err != nil {
		fmt.Fprintln(os.Stderr, "havip-demo:", err)
		os.Exit(1)
	}
}

func run(agentBin, emuBin string, preempt bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		return fmt.Errorf("keepalived is not installed (apt-get install keepalived)")
	}
	dir, err := os.MkdirTemp("", "havip-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	say("building the rig: namespaces sw (bridge + emulator), n1, n2, client; addresses in 198.18.0.0/24")
	h, err := rig.NewHA(dir, rig.Binaries{Agent: agentBin, Emulator: emuBin})
	if err != nil {
		return err
	}
	defer func() {
		h.Close()
		say("torn down: no namespace or process left (%.1fs in all)", time.Since(start).Seconds())
	}()
	e, err := h.StartEmulator("")
	if err != nil {
		return err
	}
	say("emulator at %s, learning HAVIP masters from ARP on the bridge", e.URL)
	pre := ""
	if !preempt {
		pre = "    nopreempt"
	}
	for name, prio := range map[string]int{"n1": 150, "n2": 100} {
		n := h.Nodes[name]
		body, err := n.CloudConfig(e, "")
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
		if err := n.StartKeepalived(n.KeepalivedConf(prio, "", "", pre), false); err != nil {
			return err
		}
	}
	say("keepalived on n1 (priority 150) and n2 (priority 100), unicast peers, no virtual_ipaddress; havip-agent beside each")
	if err := waitFor(20*time.Second, func() bool {
		s, err := e.State()
		return err == nil && sameNodes(h.Holders(), "n1") && rig.ActiveNextHop(s) == "i-n1" && rig.HAVIPMaster(s) == "i-n1"
	}); err != nil {
		return fmt.Errorf("steady state not reached: %w", err)
	}
	ping, err := startPing(h)
	if err != nil {
		return err
	}
	defer ping.stop()
	time.Sleep(time.Second)
	steady(h, e)

	fmt.Println("\n=== failover: SIGKILL n1's keepalived")
	t0 := time.Now()
	h.Nodes["n1"].Keepalived.Kill()
	if err := timeline(h, e, ping, t0, "n2", "i-n2"); err != nil {
		return err
	}

	fmt.Printf("\n=== n1 comes back (preempt %v)\n", preempt)
	t1 := time.Now()
	n1 := h.Nodes["n1"]
	if err := n1.StartKeepalived(n1.KeepalivedConf(150, "", "", pre), false); err != nil {
		return err
	}
	if preempt {
		if err := timeline(h, e, ping, t1, "n1", "i-n1"); err != nil {
			return err
		}
	} else {
		time.Sleep(5 * time.Second)
		say("n1 stays BACKUP; the VIP stays on %v", h.Holders())
	}
	return nil
}

func say(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) }

func steady(h *rig.HA, e *rig.Emulator) {
	s, _ := e.State()
	fmt.Println("\n=== steady state")
	say("VIP %s on %v; client sees it at %s (n1 is %s)", rig.VIP, h.Holders(), h.ClientNeighbor(), h.MAC("n1"))
	say("cloud: route %s active next hop %s; HAVIP master %s", rig.Destination, rig.ActiveNextHop(s), rig.HAVIPMaster(s))
}

// timeline watches the failover to node until everything points at it,
// then prints what happened when, relative to t0.
func timeline(h *rig.HA, e *rig.Emulator, ping *pinger, t0 time.Time, node, instance string) error {
	other := "n1"
	if node == "n1" {
		other = "n2"
	}
	mac := h.MAC(node)
	var mu sync.Mutex
	events := map[string]time.Time{}
	mark := func(k string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := events[k]; !ok && !at.IsZero() {
			events[k] = at
		}
	}
	has := func(k string) bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := events[k]
		return ok
	}
	// The node-side facts change fast: sample them on their own.
	done := make(chan struct{})
	defer close(done)
	for _, f := range []func(){
		func() {
			if h.HasVIP(node) {
				mark("vip", time.Now())
			}
		},
		func() {
			if !h.HasVIP(other) {
				mark("gone", time.Now())
			}
		},
		func() {
			if h.ClientNeighbor() == mac {
				mark("neigh", time.Now())
			}
		},
	} {
		go func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				f()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	err := waitFor(30*time.Second, func() bool {
		now := time.Now()
		if r, ok := ping.firstReplyAfter(t0); ok {
			mark("ping", r)
		}
		l, err := e.Log()
		if err == nil {
			for _, c := range l.Changes {
				if c.Time.Before(t0) {
					continue
				}
				if c.Operation == emulator.OpRouteRuleSwitch {
					mark("route", c.Time)
				}
				if strings.Contains(c.Resource, "havip-rig") && strings.Contains(c.After, instance) && strings.Contains(strings.ToLower(c.Message), "master") {
					mark("havip", c.Time)
				}
			}
			for _, r := range l.Requests {
				if !r.Time.Before(t0) && strings.HasPrefix(r.Source, nodeIP(node)) && r.Method != "GET" {
					mark("cloudreq", r.Time)
				}
			}
		}
		if s, err := e.State(); err == nil && rig.HAVIPMaster(s) == instance {
			mark("havipstate", now)
		}
		return has("ping") && has("route") && has("havipstate") && has("gone") && has("vip") && has("neigh")
	})
	mu.Lock()
	defer mu.Unlock()
	st, serr := h.Nodes[node].Agent.Status()
	if serr == nil && len(st.Instances) > 0 && st.Instances[0].Last != nil {
		t := st.Instances[0].Last
		if t.To == "MASTER" && !t.Received.Before(t0) {
			events["master"] = t.Received
			events["vipagent"] = t.Received.Add(t.VIPsDone)
			events["garp"] = t.Received.Add(t.FirstAnnouncement)
		}
	}
	if _, ok := events["havip"]; !ok {
		events["havip"] = events["havipstate"]
	}
	rows := []struct{ key, what string }{
		{"master", node + "'s keepalived reports MASTER (master loss detected; FIFO line read by the agent)"},
		{"vipagent", "VIP present on " + node},
		{"garp", "first gratuitous ARP sent by " + node},
		{"neigh", "client's neighbour entry for the VIP moved to " + node + " (" + mac + ")"},
		{"cloudreq", "first mutating cloud request from " + node},
		{"route", "cloud route switched to " + instance},
		{"havip", "HAVIP master confirmed on " + instance},
		{"gone", "VIP absent from " + other},
		{"ping", "client's pings answered again"},
	}
	for _, r := range rows {
		at, ok := events[r.key]
		if !ok {
			fmt.Printf("  %10s  %s\n", "-", r.what)
			continue
		}
		fmt.Printf("  %+9.3fs  %s\n", at.Sub(t0).Seconds(), r.what)
	}
	say("pings lost during the failover: %d", ping.lostSince(t0))
	say("VIP now on %v", h.Holders())
	return err
}

func nodeIP(node string) string {
	if node == "n1" {
		return "198.18.0.11"
	}
	return "198.18.0.12"
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func sameNodes(got []string, want ...string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}

// pinger pings the VIP from the client every 50 ms and keeps the reply
// times.
type pinger struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	sent    map[int]time.Time
	replies map[int]time.Time
	start   time.Time
}

var replyRe = regexp.MustCompile(`^\[(\d+\.\d+)\].*icmp_seq=(\d+)`)

func startPing(h *rig.HA) (*pinger, error) {
	p := &pinger{sent: map[int]time.Time{}, replies: map[int]time.Time{}, start: time.Now()}
	p.cmd = h.NS.Command("client", "ping", "-n", "-D", "-i", "0.05", rig.VIP)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ping: %w (apt-get install iputils-ping)", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m := replyRe.FindStringSubmatch(sc.Text())
			if m == nil || !strings.Contains(sc.Text(), "bytes from") {
				continue
			}
			f, _ := strconv.ParseFloat(m[1], 64)
			seq, _ := strconv.Atoi(m[2])
			p.mu.Lock()
			p.replies[seq] = time.Unix(0, int64(f*1e9))
			p.mu.Unlock()
		}
	}()
	return p, nil
}

func (p *pinger) stop() { p.cmd.Process.Kill(); p.cmd.Wait() }

func (p *pinger) firstReplyAfter(t time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best time.Time
	for _, r := range p.replies {
		if r.After(t) && (best.IsZero() || r.Before(best)) {
			best = r
		}
	}
	return best, !best.IsZero()
}

// lostSince counts the sequence numbers without reply between the last
// reply before t and the first after it.
func (p *pinger) lostSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	last, first := -1, -1
	for seq, r := range p.replies {
		if r.Before(t) && seq > last {
			last = seq
		}
		if r.After(t) && (first == -1 || seq < first) {
			first = seq
		}
	}
	if last < 0 || first < 0 {
		return 0
	}
	lost := 0
	for s := last + 1; s < first; s++ {
		if _, ok := p.replies[s]; !ok {
			lost++
		}
	}
	return lost
}
