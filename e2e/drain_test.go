package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/rig"
)

// drainPair is the drain tests' rig: two nodes, each with keepalived
// (VRRPv3, advert_int 0.2, shared VIPs, nopreempt) watching its drain file
// with track_file and weight 0, an agent with the liveness watch, and the
// emulator as the cloud (HAVIP and an HA route pair).
type drainPair struct {
	h      *rig.HA
	e      *rig.Emulator
	agents map[string]*agentProc
}

// drainFile is where a node's agent writes its drain state.
func drainFile(n *rig.Node) string { return filepath.Join(n.Dir, "track", "drain-VI_1") }

// drainKeepalivedConf is the node's keepalived.conf with the drain file.
func drainKeepalivedConf(n *rig.Node, priority int) string {
	pre := fmt.Sprintf("track_file drain_VI_1 {\n    file %s\n    weight 0\n}\n", drainFile(n))
	extra := fmt.Sprintf("    virtual_ipaddress {\n        %s/24 dev eth0 no_track\n    }\n    track_file {\n        drain_VI_1\n    }\n    nopreempt", rig.VIP)
	conf := n.KeepalivedConf(priority, "    vrrp_version 3", pre, extra)
	return strings.Replace(conf, "    advert_int 1\n", "    advert_int 0.2\n", 1)
}

// drainAgent starts a node's agent: the rig's cloud instance with a drain
// file and shared VIPs.
func drainAgent(t *testing.T, h *rig.HA, e *rig.Emulator, node string) *agentProc {
	t.Helper()
	n := h.Nodes[node]
	body, err := n.CloudConfig(e, fmt.Sprintf("shared_vips = true\ndrain_file = %q\n", drainFile(n)))
	if err != nil {
		t.Fatal(err)
	}
	return nodeAgent(t, h, node, true, body)
}

// newDrainPair starts everything; with peer false, n2's keepalived does
// not run (n1 is the only node that can be MASTER). n1 is MASTER and the
// cloud points at it when it returns.
func newDrainPair(t *testing.T, peer bool) *drainPair {
	t.Helper()
	h := newHARig(t)
	p := &drainPair{h: h, e: startEmulator(t, h), agents: map[string]*agentProc{}}
	for _, name := range []string{"n1", "n2"} {
		p.agents[name] = drainAgent(t, h, p.e, name)
		if got := readDrainFile(h.Nodes[name]); got != "0" {
			t.Fatalf("%s's drain file at start %q, want 0", name, got)
		}
	}
	startKeepalived(t, h.Nodes["n1"], drainKeepalivedConf(h.Nodes["n1"], 100))
	eventually(t, "n1 MASTER with the VIP", func() bool { return sameNodes(h.Holders(), "n1") && deathState(p.agents["n1"]) == "MASTER" })
	if peer {
		startKeepalived(t, h.Nodes["n2"], drainKeepalivedConf(h.Nodes["n2"], 100))
		eventually(t, "n2 BACKUP", func() bool { return deathState(p.agents["n2"]) == "BACKUP" })
	}
	p.waitCloud(t, "i-n1")
	return p
}

// waitCloud waits until the HAVIP's master and the route's active next hop
// are the node of instance id.
func (p *drainPair) waitCloud(t *testing.T, id string) {
	t.Helper()
	eventuallyFor(t, 20*time.Second, "the cloud pointing at "+id, func() bool {
		s, err := p.e.State()
		return err == nil && rig.HAVIPMaster(s) == id && rig.RouteHolder(s) == id
	})
}

func readDrainFile(n *rig.Node) string {
	b, err := os.ReadFile(drainFile(n))
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(b))
}

// agentCmd runs the agent's client as root, as an operator would, and
// returns its exit code, stdout and stderr.
func agentCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t, "havip-agent"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func eventuallyFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drained reports what n1's agent's status says of the drain.
func drained(a *agentProc) bool {
	s, err := a.Status()
	return err == nil && len(s.Instances) == 1 && s.Instances[0].Drain != nil && s.Instances[0].Drain.Drained
}

// TestIntegrationDrainSwitchesOver: "havip-agent drain" on the MASTER
// makes keepalived put it into FAULT through the drain file; the peer
// becomes MASTER, the HAVIP and the route follow it, and drain exits 0
// with the timeline; the VIP ends on the peer alone. resume returns at
// once and n1 comes back as BACKUP (nopreempt).
func TestIntegrationDrainSwitchesOver(t *testing.T) {
	p := newDrainPair(t, true)
	h := p.h
	start := time.Now()
	code, out, stderr := agentCmd(t, "drain", "-config", p.agents["n1"].Config, "--timeout", "20s")
	took := time.Since(start)
	t.Logf("havip-agent drain on n1 (exit %d after %s):\n%s%s", code, took.Round(time.Millisecond), out, stderr)
	if code != 0 {
		t.Fatalf("drain exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"VI_1  drained: " + drainFile(h.Nodes["n1"]) + " = 1", "VI_1  left MASTER: now FAULT",
		"VI_1  the cloud sees peer i-n2 as MASTER (havip/havip-rig)", "VI_1  havip/havip-rig moved to i-n2",
		"VI_1  route/rt-rig/" + rig.Destination + " moved to dcgw-n2", "VI_1  drained: left MASTER and the cloud points elsewhere"} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	s, err := p.e.State()
	if err != nil {
		t.Fatal(err)
	}
	if rig.HAVIPMaster(s) != "i-n2" || rig.RouteHolder(s) != "i-n2" {
		t.Errorf("after the drain: HAVIP master %s, route %s; want i-n2", rig.HAVIPMaster(s), rig.RouteHolder(s))
	}
	eventually(t, "the VIP on n2 alone", func() bool { return sameNodes(h.Holders(), "n2") })
	if st := deathState(p.agents["n1"]); st != "FAULT" || !drained(p.agents["n1"]) || readDrainFile(h.Nodes["n1"]) != "1" {
		t.Errorf("n1: state %s, drained %v, drain file %q", st, drained(p.agents["n1"]), readDrainFile(h.Nodes["n1"]))
	}
	if deathState(p.agents["n2"]) != "MASTER" {
		t.Errorf("n2 %s, want MASTER", deathState(p.agents["n2"]))
	}
	_, status, _ := agentCmd(t, "status", "-config", p.agents["n1"].Config)
	if !strings.Contains(status, "DRAINED since") {
		t.Errorf("status lacks the drain:\n%s", status)
	}
	code, out, stderr = agentCmd(t, "resume", "-config", p.agents["n1"].Config)
	if code != 0 || !strings.Contains(out, "VI_1 resumed") {
		t.Fatalf("resume: exit %d, %s%s", code, out, stderr)
	}
	eventually(t, "n1 BACKUP after resume", func() bool { return deathState(p.agents["n1"]) == "BACKUP" })
	if readDrainFile(h.Nodes["n1"]) != "0" || drained(p.agents["n1"]) {
		t.Errorf("after resume: drain file %q, drained %v", readDrainFile(h.Nodes["n1"]), drained(p.agents["n1"]))
	}
	_, hist, _ := agentCmd(t, "history", "-config", p.agents["n1"].Config)
	t.Logf("havip-agent history on n1:\n%s", hist)
	for _, want := range []string{"BACKUP -> MASTER", "cloud confirmed havip/havip-rig",
		"drain: havip-agent drain (timeout 20s)", "MASTER -> FAULT", "drain: switchover complete", "resume: havip-agent resume", "FAULT -> BACKUP"} {
		if !strings.Contains(hist, want) {
			t.Errorf("n1's history lacks %q", want)
		}
	}
	// The peer's claim switched the route: the call with its request id
	// and clientToken.
	_, hist, _ = agentCmd(t, "history", "-config", p.agents["n2"].Config)
	t.Logf("havip-agent history on n2:\n%s", hist)
	for _, want := range []string{"BACKUP -> MASTER", "cloud route/rt-rig/" + rig.Destination + " route.rule.switch 200", "request-id ", "token ",
		"cloud confirmed havip/havip-rig", "cloud confirmed route/rt-rig/" + rig.Destination} {
		if !strings.Contains(hist, want) {
			t.Errorf("n2's history lacks %q", want)
		}
	}
}

// TestIntegrationDrainOnlyNode: with the peer's keepalived stopped, a
// drain of the only node steps down, but nothing takes the cloud over:
// after --timeout the drain undoes itself (drain file 0), exits 1 saying
// what did not move, and keepalived makes the node MASTER again.
func TestIntegrationDrainOnlyNode(t *testing.T) {
	p := newDrainPair(t, false)
	h := p.h
	code, out, stderr := agentCmd(t, "drain", "-config", p.agents["n1"].Config, "--timeout", "4s")
	t.Logf("havip-agent drain on the only node (exit %d):\n%s%s", code, out, stderr)
	if code != 1 {
		t.Fatalf("drain exit %d, want 1", code)
	}
	for _, want := range []string{"left MASTER: now FAULT", "not taken over after 4s", "undoing the drain", "resumed: " + drainFile(h.Nodes["n1"]) + " = 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	if !strings.Contains(stderr, "not drained, the drain was undone") || !strings.Contains(stderr, "havip/havip-rig still points at this node") ||
		!strings.Contains(stderr, "route/rt-rig/"+rig.Destination+" still points at this node") {
		t.Errorf("drain's error does not say what did not move: %q", stderr)
	}
	if readDrainFile(h.Nodes["n1"]) != "0" || drained(p.agents["n1"]) {
		t.Errorf("after the undone drain: drain file %q, drained %v", readDrainFile(h.Nodes["n1"]), drained(p.agents["n1"]))
	}
	eventually(t, "n1 MASTER again with the VIP", func() bool {
		return deathState(p.agents["n1"]) == "MASTER" && sameNodes(h.Holders(), "n1")
	})
	p.waitCloud(t, "i-n1")
}

// TestIntegrationDrainSurvivesRestart: the drained state is in state_dir.
// A drained node's agent SIGKILLed and restarted keeps it drained (status,
// drain file 1, keepalived stays FAULT); then the node "reboots": its
// keepalived and agent stop, the drain file (in /run on a real node) is
// gone, the agent starts first, as the unit orders it, and writes 1 before
// keepalived reads it: keepalived starts in FAULT and the node never takes
// the VIP back.
func TestIntegrationDrainSurvivesRestart(t *testing.T) {
	p := newDrainPair(t, true)
	h := p.h
	n1 := h.Nodes["n1"]
	if code, out, stderr := agentCmd(t, "drain", "-config", p.agents["n1"].Config, "--timeout", "20s"); code != 0 {
		t.Fatalf("drain exit %d:\n%s%s", code, out, stderr)
	}
	eventually(t, "the VIP on n2 alone", func() bool { return sameNodes(h.Holders(), "n2") })
	s := sampleHolders(t, h)

	p.agents["n1"].kill()
	p.agents["n1"].start()
	if !drained(p.agents["n1"]) || readDrainFile(n1) != "1" {
		t.Fatalf("after the agent's restart: drained %v, drain file %q", drained(p.agents["n1"]), readDrainFile(n1))
	}

	n1.Keepalived.Stop(os.Interrupt)
	p.agents["n1"].stop()
	if err := os.Remove(drainFile(n1)); err != nil {
		t.Fatal(err)
	}
	p.agents["n1"].start()
	if readDrainFile(n1) != "1" {
		t.Fatalf("drain file after the reboot %q, want 1 before keepalived starts", readDrainFile(n1))
	}
	startKeepalived(t, n1, drainKeepalivedConf(n1, 100))
	eventually(t, "n1's keepalived FAULT", func() bool { return deathState(p.agents["n1"]) == "FAULT" })
	// Longer than keepalived's master-down interval: a node that ignored
	// the drain would have become MASTER by now (nopreempt or not, n2
	// holds MASTER; a FAULT node never contends).
	time.Sleep(2 * time.Second)
	for _, x := range s.stop() {
		if x.n1 {
			t.Fatalf("the VIP was on n1 at %s, after the drain", x.at.Format(time.RFC3339Nano))
		}
	}
	if deathState(p.agents["n1"]) != "FAULT" || deathState(p.agents["n2"]) != "MASTER" || !drained(p.agents["n1"]) {
		t.Errorf("n1 %s (drained %v), n2 %s; want FAULT (drained) and MASTER", deathState(p.agents["n1"]), drained(p.agents["n1"]), deathState(p.agents["n2"]))
	}
	st, err := p.agents["n1"].Status()
	if err == nil && st.Instances[0].Drain.Since.IsZero() {
		t.Error("the drain lost its time across the restarts")
	}
	if code, _, _ := agentCmd(t, "resume", "-config", p.agents["n1"].Config, "VI_1"); code != 0 {
		t.Fatal("resume failed")
	}
	eventually(t, "n1 BACKUP after resume", func() bool { return deathState(p.agents["n1"]) == "BACKUP" })
}
