package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/rig"
	"golang.org/x/sys/unix"
)

// deathDeadAfter is the liveness grace of this test's agents: long
// enough that only the pidfd event can make the old MASTER FAULT before
// the peer has long taken over.
const deathDeadAfter = 10 * time.Second

// deathVRRP is one keepalived configuration of the test.
type deathVRRP struct {
	name string
	// v3 runs VRRPv3 with the VIP also in keepalived's
	// virtual_ipaddress (shared_vips); else VRRPv2 with agent-owned VIPs.
	v3        bool
	advertInt string
}

// deathFault is how n1's keepalived dies.
type deathFault struct {
	name string
	// parentToo kills keepalived's parent as well (a crash or an OOM
	// kill of both: nothing respawns the VRRP process). Otherwise the
	// parent survives and respawns its VRRP process, whose first
	// notification is BACKUP.
	parentToo bool
}

// TestIntegrationKeepalivedDeath SIGKILLs the MASTER's VRRP process (no
// priority-0 advertisement, nothing written to the FIFO), alone or with
// keepalived's parent, and checks that its agent takes the VIP off at
// once, through the liveness watch's pidfd event rather than dead_after
// later, while the peer takes over. It logs, from the kill: the process's
// end, the old MASTER's agent declaring keepalived dead, the VIP leaving
// it, the VIP reaching the peer, and for how long the VIP was on both
// nodes (sampled about every millisecond).
func TestIntegrationKeepalivedDeath(t *testing.T) {
	for _, f := range []deathFault{
		{name: "vrrp_process"},
		{name: "vrrp_process_and_parent", parentToo: true},
	} {
		for _, v := range []deathVRRP{
			{name: "vrrpv2_advert_int_1_agent_owned", advertInt: "1"},
			{name: "vrrpv3_advert_int_0.1_shared", v3: true, advertInt: "0.1"},
		} {
			t.Run(f.name+"/"+v.name, func(t *testing.T) { testKeepalivedDeath(t, f, v) })
		}
	}
}

func testKeepalivedDeath(t *testing.T, f deathFault, v deathVRRP) {
	h := newHARig(t)
	agents := map[string]*agentProc{}
	for _, name := range []string{"n1", "n2"} {
		agents[name] = deathAgent(t, h.Nodes[name], v)
	}
	// n1 becomes MASTER first and stays so: both run nopreempt and n2
	// starts later. n2 has the higher priority, so that it, not n1's
	// respawned VRRP process, is the one to take over.
	startKeepalived(t, h.Nodes["n1"], deathKeepalivedConf(t, h.Nodes["n1"], 100, v))
	eventually(t, "VIP on n1", func() bool { return sameNodes(h.Holders(), "n1") && deathState(agents["n1"]) == "MASTER" })
	startKeepalived(t, h.Nodes["n2"], deathKeepalivedConf(t, h.Nodes["n2"], 150, v))
	eventually(t, "n2's agent BACKUP", func() bool { return deathState(agents["n2"]) == "BACKUP" })
	// The watch must have seen the process it is to see die.
	for _, name := range []string{"n1", "n2"} {
		eventually(t, name+"'s agent sees keepalived", func() bool { return agents[name].status().Keepalived.State == "alive" })
	}
	if !sameNodes(h.Holders(), "n1") {
		t.Fatalf("VIP on %v before the kill, want n1 only", h.Holders())
	}

	s := sampleHolders(t, h)
	pid := deathVRRPPID(t, h.Nodes["n1"])
	// The test's own pidfd tells how long the kernel took to end the
	// process, apart from what the agent took.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	defer unix.Close(pidfd)
	parent := h.Nodes["n1"].Keepalived
	if f.parentToo {
		// Stopped first, the parent can neither respawn the VRRP
		// process nor have it stop gracefully.
		parent.Signal(syscall.SIGSTOP)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill n1's VRRP process %d: %v", pid, err)
	}
	if f.parentToo {
		parent.Signal(syscall.SIGKILL)
	}
	exitedAfter := time.Duration(-1)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 5000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err == nil && n == 1 {
			exitedAfter = time.Since(killed)
		}
		break
	}
	// n1's respawned VRRP process, if any, stays BACKUP under n2's
	// higher priority.
	n1End := "FAULT"
	if !f.parentToo {
		n1End = "BACKUP"
	}
	deathSettled(t, h, map[string]string{"n1": n1End, "n2": "MASTER"}, agents)
	samples := s.stop()

	w := samples.report(killed)
	fault, detail, ok := deathLogged(agents["n1"].logs())
	declared := "never"
	if ok {
		declared = fault.Sub(killed).Round(time.Microsecond).String()
	}
	t.Logf("n1's VRRP process %d SIGKILLed; from the kill: the process had ended after %s (the test's pidfd), n1's agent declared keepalived dead after %s (log time, to the millisecond; detail %q)",
		pid, exitedAfter.Round(time.Microsecond), declared, detail)
	t.Logf("VIP off n1 after %s, on n2 after %s; on both nodes for %s in total (%d samples, at most %s apart)",
		w.n1Off.Round(time.Microsecond), w.n2On.Round(time.Microsecond), w.both.Round(time.Microsecond), w.samples, w.maxGap.Round(time.Microsecond))
	for _, iv := range w.bothIntervals {
		t.Logf("VIP on both nodes from %s to %s after the kill", iv[0].Round(time.Microsecond), iv[1].Round(time.Microsecond))
	}

	// Functional facts only: the death came from the pidfd event, well
	// inside dead_after, and n1 went FAULT; the VIP ends on n2 alone.
	switch {
	case !ok:
		t.Errorf("n1's agent never declared keepalived dead:\n%s", agents["n1"].logs())
	case !strings.Contains(detail, "pidfd"):
		t.Errorf("n1's agent declared keepalived dead with detail %q, want the pidfd event", detail)
	case fault.Sub(killed) >= deathDeadAfter/2:
		t.Errorf("n1's agent declared keepalived dead %s after the kill: dead_after (%s), not the exit event", fault.Sub(killed), deathDeadAfter)
	}
	if !faultAfter(agents["n1"].logs(), killed) {
		t.Errorf("n1's agent logged no transition from MASTER to FAULT after the kill:\n%s", agents["n1"].logs())
	}
	if got := h.Holders(); !sameNodes(got, "n2") {
		t.Errorf("VIP on %v at the end, want n2 only", got)
	}
}

// deathAgent starts a node's agent with the liveness watch on and
// dead_after at deathDeadAfter, without a cloud.
func deathAgent(t *testing.T, n *rig.Node, v deathVRRP) *agentProc {
	t.Helper()
	base := n.AgentBase("debug")
	if !strings.Contains(base, `dead_after = "1s"`) {
		t.Fatalf("the rig's agent base changed; dead_after not found:\n%s", base)
	}
	base = strings.Replace(base, `dead_after = "1s"`, fmt.Sprintf("dead_after = %q", deathDeadAfter.String()), 1)
	body := fmt.Sprintf(`
[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["%s/24"]
garp_count = 3
garp_interval = "100ms"
shared_vips = %v
`, rig.VIP, v.v3)
	a, err := n.WriteAgentConfig(base + body)
	if err != nil {
		t.Fatal(err)
	}
	ap := &agentProc{a, t}
	ap.start()
	return ap
}

// deathKeepalivedConf is the rig's keepalived.conf with v's version and
// interval, without preemption; VRRPv3 also lists the VIP (keepalived
// refuses a VRRPv3 instance without one).
func deathKeepalivedConf(t *testing.T, n *rig.Node, priority int, v deathVRRP) string {
	t.Helper()
	global, extra := "", ""
	if v.v3 {
		global = "    vrrp_version 3"
		extra = fmt.Sprintf("    virtual_ipaddress {\n        %s/24 dev eth0\n    }", rig.VIP)
	}
	extra += "\n    nopreempt"
	conf := n.KeepalivedConf(priority, global, "", extra)
	if !strings.Contains(conf, "    advert_int 1\n") {
		t.Fatalf("the rig's keepalived.conf changed; advert_int 1 not found:\n%s", conf)
	}
	return strings.Replace(conf, "    advert_int 1\n", "    advert_int "+v.advertInt+"\n", 1)
}

// deathVRRPPID is the pid in the node's VRRP pid file.
func deathVRRPPID(t *testing.T, n *rig.Node) int {
	t.Helper()
	b, err := os.ReadFile(n.VRRPPid())
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("%s: %q is not a pid", n.VRRPPid(), b)
	}
	return pid
}

// deathState is the agent's state of VI_1, "" when it does not answer.
func deathState(a *agentProc) string {
	s, err := a.Status()
	if err != nil || len(s.Instances) != 1 {
		return ""
	}
	return string(s.Instances[0].State)
}

// deathSettled waits until each agent is in its wanted state, the MASTER
// alone with the VIP, for a second on end. It waits past dead_after, so
// that a watch that missed the death still ends in the figures.
func deathSettled(t *testing.T, h *rig.HA, want map[string]string, agents map[string]*agentProc) {
	t.Helper()
	var since time.Time
	deadline := time.Now().Add(deathDeadAfter + 5*time.Second)
	for cond := func() bool {
		ok := true
		var masters []string
		for _, name := range []string{"n1", "n2"} {
			ok = ok && deathState(agents[name]) == want[name]
			if want[name] == "MASTER" {
				masters = append(masters, name)
			}
		}
		ok = ok && sameNodes(h.Holders(), masters...)
		switch {
		case !ok:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		}
		return ok && time.Since(since) >= time.Second
	}; !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: agents %v, the VIP on the MASTER only, for a second", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var deathLineRe = regexp.MustCompile(`(?m)^time=(\S+) .*msg="keepalived is not running[^"]*" detail="([^"]*)"`)

// deathLogged returns when an agent's log declared keepalived dead, and
// the detail it gave.
func deathLogged(log string) (time.Time, string, bool) {
	m := deathLineRe.FindStringSubmatch(log)
	if m == nil {
		return time.Time{}, "", false
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	return at, m[2], err == nil
}

// faultAfter reports whether the log has a transition from MASTER to
// FAULT at or after since; the log's times have milliseconds.
func faultAfter(log string, since time.Time) bool {
	since = since.Truncate(time.Millisecond)
	for _, l := range strings.Split(log, "\n") {
		m := transitionRe.FindStringSubmatch(l)
		if m == nil || m[2] != "MASTER" || m[3] != "FAULT" {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && !at.Before(since) {
			return true
		}
	}
	return false
}

// holderSample is one look at both nodes.
type holderSample struct {
	at     time.Time
	n1, n2 bool
}

// holderSampler looks at both nodes' addresses about every millisecond.
type holderSampler struct {
	mu      sync.Mutex
	samples []holderSample
	quit    chan struct{}
	done    chan struct{}
}

func sampleHolders(t *testing.T, h *rig.HA) *holderSampler {
	t.Helper()
	n1, n2 := handleIn(t, h.NS.Name("n1")), handleIn(t, h.NS.Name("n2"))
	vip := netip.MustParseAddr(rig.VIP)
	s := &holderSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			a, err1 := hasAddr(n1, "eth0", vip)
			b, err2 := hasAddr(n2, "eth0", vip)
			if err1 == nil && err2 == nil {
				s.mu.Lock()
				s.samples = append(s.samples, holderSample{time.Now(), a, b})
				s.mu.Unlock()
			}
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *holderSampler) stop() holderSamples {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(holderSamples(nil), s.samples...)
}

type holderSamples []holderSample

// deathWindow is what the samples say, in times from the kill.
type deathWindow struct {
	n1Off, n2On   time.Duration
	both          time.Duration
	bothIntervals [][2]time.Duration
	samples       int
	maxGap        time.Duration
}

// report measures from the kill: a change is dated by the first sample
// that saw it, an interval on both nodes from its first sample to the
// first sample after it.
func (ss holderSamples) report(killed time.Time) deathWindow {
	var w deathWindow
	w.n1Off, w.n2On = -1, -1
	var bothSince time.Time
	for i, s := range ss {
		if i > 0 {
			w.maxGap = max(w.maxGap, s.at.Sub(ss[i-1].at))
		}
		if s.at.Before(killed) {
			continue
		}
		w.samples++
		since := s.at.Sub(killed)
		if !s.n1 && w.n1Off < 0 {
			w.n1Off = since
		}
		if s.n2 && w.n2On < 0 {
			w.n2On = since
		}
		switch both := s.n1 && s.n2; {
		case both && bothSince.IsZero():
			bothSince = s.at
		case !both && !bothSince.IsZero():
			w.both += s.at.Sub(bothSince)
			w.bothIntervals = append(w.bothIntervals, [2]time.Duration{bothSince.Sub(killed), since})
			bothSince = time.Time{}
		}
	}
	if !bothSince.IsZero() && len(ss) > 0 {
		end := ss[len(ss)-1].at
		w.both += end.Sub(bothSince)
		w.bothIntervals = append(w.bothIntervals, [2]time.Duration{bothSince.Sub(killed), end.Sub(killed)})
	}
	return w
}
