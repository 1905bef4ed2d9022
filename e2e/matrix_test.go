package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/compare"
	"github.com/havip-agent/havip-agent/e2e/matrix"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// The failover matrix of issue 12. Run as root:
//
//	go test -count=1 ./e2e -run '^$' -bench FailoverMatrix -benchtime 1x -timeout 60m
//
// HAVIP_MATRIX_ROUNDS (default 12; 0 runs only the load runs) is the
// number of rounds per cell, HAVIP_MATRIX_BLOCK (default 4) the rounds of
// each fault a configuration runs before the next configuration takes
// over, HAVIP_MATRIX_SETTLE (default 1s) the pause once the rig is stable
// again. HAVIP_MATRIX_LOAD (default 20s, 0 skips) is how long both nodes
// are kept busy per VRRPv3 interval to count false failovers,
// HAVIP_MATRIX_LOAD_RUNS (default 3) how often, the intervals
// alternating, HAVIP_MATRIX_HOGS (default nproc) the busy loops per node,
// HAVIP_MATRIX_RT (default 50, 0 skips) the vrrp_rt_priority of the extra
// load runs of the 0.2 and 0.1 s intervals. HAVIP_MATRIX_CONFIGS and
// HAVIP_MATRIX_FAULTS (comma-separated keys of e2e/matrix) run a part of
// the matrix; its cells then replace those of e2e/results/matrix.json.
// HAVIP_MATRIX_AGENT runs another build of the agent (a baseline) and
// writes e2e/results/matrix-<its file name>.{json,md} instead.
// HAVIP_MATRIX_TRACE=1 prints every round's times, =agent also the old
// MASTER's last agent log lines.

// matrixPriority is both nodes' priority: the BACKUP's master-down
// interval is then 3 × advert_int + 156/256 of the skew unit, the figure
// of issue 12; nopreempt keeps a recovered node BACKUP, so the MASTER
// alternates between the nodes from round to round.
const matrixPriority = 100

// matrixTimeout bounds every wait of a round.
const matrixTimeout = 15 * time.Second

// matrixSample is the period of the VIP presence sampling.
const matrixSample = time.Millisecond

// mxRig is the rig of the matrix, one configuration at a time.
type mxRig struct {
	b       *testing.B
	h       *rig.HA
	e       *rig.Emulator
	capture *rig.Capture
	macs    map[string]net.HardwareAddr
	ports   map[string]*rig.Link
	links   map[string]*rig.Link
	settle  time.Duration
	vip     netip.Addr

	cfg matrix.Config
	// rt is keepalived's vrrp_rt_priority, 0 for its default.
	rt     int
	master string
	// killed is the VRRP process the last kill fault ended.
	killed int
}

func newMxRig(b *testing.B) *mxRig {
	h := newHARig(b)
	m := &mxRig{b: b, h: h, settle: envDuration(b, "HAVIP_MATRIX_SETTLE", time.Second), vip: netip.MustParseAddr(rig.VIP),
		macs: map[string]net.HardwareAddr{}, ports: map[string]*rig.Link{}, links: map[string]*rig.Link{}}
	for _, name := range []string{"n1", "n2"} {
		mac, err := net.ParseMAC(h.MAC(name))
		if err != nil {
			b.Fatalf("%s MAC: %v", name, err)
		}
		m.macs[name] = mac
		port, err := h.SwitchPort(name)
		if err != nil {
			b.Fatal(err)
		}
		link, err := h.OpenLink(name, "eth0")
		if err != nil {
			b.Fatal(err)
		}
		m.ports[name], m.links[name] = port, link
		b.Cleanup(port.Close)
		b.Cleanup(link.Close)
		if err := os.MkdirAll(filepath.Dir(m.trackFile(name)), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	capture, err := h.CaptureSwitch()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { capture.Close() })
	m.capture = capture
	return m
}

func (m *mxRig) trackFile(name string) string {
	return filepath.Join(m.h.Nodes[name].Dir, "track", "svc")
}
func (m *mxRig) flagFile(name string) string { return filepath.Join(m.h.Nodes[name].Dir, "healthy") }

// vrrp is a node's keepalived configuration for cfg.
func (m *mxRig) vrrp(name string, cfg matrix.Config) string {
	v := rig.VRRP{Version: cfg.Version, AdvertInt: cfg.AdvertInt.Duration(), Priority: matrixPriority,
		TrackFile: m.trackFile(name), NoPreempt: true, RTPriority: m.rt}
	if cfg.Shared {
		v.SharedVIPs = []string{rig.VIP + "/24"}
	}
	conf, err := m.h.Nodes[name].KeepalivedConfVRRP(v)
	if err != nil {
		m.b.Fatal(err)
	}
	return conf
}

// use stops whatever runs, starts a fresh emulator, both agents and
// n1's keepalived for cfg; once n1 is MASTER and the cloud points at it,
// n2 joins as BACKUP.
func (m *mxRig) use(cfg matrix.Config, rt int) {
	b := m.b
	b.Helper()
	for _, name := range []string{"n1", "n2"} {
		n := m.h.Nodes[name]
		n.Keepalived.Stop(syscall.SIGTERM)
		n.Keepalived = nil
		if n.Agent != nil {
			n.Agent.Proc.Stop(os.Interrupt)
			n.Agent = nil
		}
		_, _ = m.links[name].Set(true)
		_, _ = m.ports[name].Set(true)
		m.dropVIPs(name)
	}
	if m.e != nil {
		m.e.Proc.Stop(os.Interrupt)
	}
	e, err := m.h.StartEmulator("")
	if err != nil {
		b.Fatal(err)
	}
	m.e, m.cfg, m.rt = e, cfg, rt
	// The emulator learns the instances' MACs from ARP they send with
	// their own addresses, which nodes with warm neighbour caches do not
	// send to a restarted emulator for a while; it is told them, as the
	// cloud knows its instances' MACs.
	for _, name := range []string{"n1", "n2"} {
		if err := e.Admin("/_emulator/arp", map[string]string{"mac": m.macs[name].String(), "ip": m.h.Nodes[name].IP}, nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, name := range []string{"n1", "n2"} {
		m.startAgent(name)
	}
	m.startKeepalived("n1")
	deadline := time.Now().Add(20 * time.Second)
	for !m.settledOn("n1") {
		if time.Now().After(deadline) {
			b.Fatalf("%s: n1 not MASTER with the cloud: %s", cfg.Key, m.describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.startKeepalived("n2")
	m.master = m.stable()
}

func (m *mxRig) startKeepalived(name string) {
	if err := m.h.Nodes[name].StartKeepalived(m.vrrp(name, m.cfg), os.Getenv("HAVIP_E2E_DEBUG") != ""); err != nil {
		m.b.Fatal(err)
	}
}

// startAgent runs the node's agent with the rig's cloud configuration and
// a health check whose service is up while the flag file exists.
func (m *mxRig) startAgent(name string) {
	n := m.h.Nodes[name]
	if err := os.WriteFile(m.flagFile(name), nil, 0o644); err != nil {
		m.b.Fatal(err)
	}
	extra := "checks = [\"svc\"]\n"
	if m.cfg.Shared {
		extra += "shared_vips = true\n"
	}
	body, err := n.CloudConfig(m.e, extra)
	if err != nil {
		m.b.Fatal(err)
	}
	check := fmt.Sprintf(`[[check]]
name = "svc"
type = "exec"
command = ["/usr/bin/test", "-e", %q]
interval = "100ms"
timeout = "1s"
rise = 1
fall = 1
initial = "healthy"
track_file = %q
`, m.flagFile(name), m.trackFile(name))
	if _, err := n.WriteAgentConfig(n.AgentBase("info") + "\n" + check + body); err != nil {
		m.b.Fatal(err)
	}
	if err := n.Agent.Start(); err != nil {
		m.b.Fatal(err)
	}
}

// dropVIPs removes what a previous configuration left on the node.
func (m *mxRig) dropVIPs(name string) {
	if m.h.HasVIP(name) {
		if _, err := m.h.NS.IP(name, "addr", "del", rig.VIP+"/24", "dev", "eth0"); err != nil {
			m.b.Fatal(err)
		}
	}
}

func (m *mxRig) state(name string) agent.State {
	a := m.h.Nodes[name].Agent
	if a == nil {
		return agent.StateUnknown
	}
	s, err := a.Status()
	if err != nil || len(s.Instances) != 1 {
		return agent.StateUnknown
	}
	return s.Instances[0].State
}

// describe is the rig's state for an error.
func (m *mxRig) describe() string {
	s, err := m.e.State()
	cloud := fmt.Sprintf("route at %s, HAVIP master %s", rig.RouteHolder(s), rig.HAVIPMaster(s))
	if err != nil {
		cloud = err.Error()
	}
	return fmt.Sprintf("n1 %s (VIP %v), n2 %s (VIP %v), %s", m.state("n1"), m.h.HasVIP("n1"), m.state("n2"), m.h.HasVIP("n2"), cloud)
}

// settledOn reports whether node is MASTER with the VIP and the cloud
// points at it.
func (m *mxRig) settledOn(node string) bool {
	if m.state(node) != agent.StateMaster || !m.h.HasVIP(node) {
		return false
	}
	s, err := m.e.State()
	id := m.h.Nodes[node].InstanceID
	return err == nil && rig.RouteHolder(s) == id && rig.HAVIPMaster(s) == id
}

// stable waits until one node is MASTER with the VIP and the cloud, the
// other BACKUP without the VIP, then for the settle time, and returns the
// MASTER.
func (m *mxRig) stable() string {
	m.b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, node := range []string{"n1", "n2"} {
			if m.settledOn(node) && m.state(other(node)) == agent.StateBackup && !m.h.HasVIP(other(node)) {
				time.Sleep(m.settle)
				if m.settledOn(node) && !m.h.HasVIP(other(node)) {
					return node
				}
			}
		}
		if time.Now().After(deadline) {
			m.b.Fatalf("%s: no stable MASTER: %s", m.cfg.Key, m.describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inject applies fault to node and returns the fault's time; for the
// health check that is when the agent wrote the failed verdict to the
// track file, and detect is from the service failing to then.
func (m *mxRig) inject(fault, node string) (at time.Time, detect time.Duration, err error) {
	n := m.h.Nodes[node]
	switch fault {
	case matrix.FaultStop:
		at = time.Now()
		n.Keepalived.Signal(syscall.SIGTERM)
		return at, 0, nil
	case matrix.FaultKill:
		m.killed, at, err = n.KillVRRPChild()
		return at, 0, err
	case matrix.FaultCrash:
		m.killed = n.VRRPChildPID()
		at, err = n.KillKeepalivedTree()
		return at, 0, err
	case matrix.FaultCut:
		at, err = m.ports[node].Set(false)
		return at, 0, err
	case matrix.FaultLink:
		at, err = m.links[node].Set(false)
		return at, 0, err
	case matrix.FaultHealth:
		w, err := rig.WatchFile(m.trackFile(node))
		if err != nil {
			return at, 0, err
		}
		defer w.Close()
		failed := time.Now()
		if err := os.Remove(m.flagFile(node)); err != nil {
			return at, 0, err
		}
		timeout := time.After(matrixTimeout)
		for {
			select {
			case t := <-w.Times():
				// The agent also refreshes the file while its verdict holds.
				if b, _ := os.ReadFile(m.trackFile(node)); strings.TrimSpace(string(b)) != "0" && len(b) > 0 {
					return t, t.Sub(failed), nil
				}
			case <-timeout:
				return at, 0, fmt.Errorf("%s: the agent wrote no failed verdict to %s", node, m.trackFile(node))
			}
		}
	}
	return at, 0, fmt.Errorf("unknown fault %q", fault)
}

// recover undoes fault on node.
func (m *mxRig) recover(fault, node string) {
	n := m.h.Nodes[node]
	switch fault {
	case matrix.FaultStop:
		n.Keepalived.Stop(syscall.SIGTERM)
		m.startKeepalived(node)
	case matrix.FaultCrash:
		n.Keepalived.Stop(syscall.SIGTERM)
		// The orphaned VRRP process stays a zombie where init does not
		// reap it (this VM's does not), and keepalived refuses to start
		// while its pid file names one ("daemon is already running"):
		// the file goes, as it would once the zombie was reaped.
		if n.VRRPChildPID() == m.killed {
			os.Remove(n.VRRPPid())
		}
		m.startKeepalived(node)
	case matrix.FaultKill:
		// keepalived's parent starts a new VRRP process; without one the
		// node's keepalived is restarted.
		respawned := false
		deadline := time.Now().Add(5 * time.Second)
		for !respawned && time.Now().Before(deadline) {
			pid := n.VRRPChildPID()
			respawned = pid > 0 && pid != m.killed && syscall.Kill(pid, 0) == nil
			time.Sleep(10 * time.Millisecond)
		}
		if !respawned || n.Keepalived.Exited() {
			m.b.Logf("%s: keepalived did not respawn its VRRP process; restarting it", node)
			n.Keepalived.Stop(syscall.SIGTERM)
			m.startKeepalived(node)
		}
	case matrix.FaultCut:
		if _, err := m.ports[node].Set(true); err != nil {
			m.b.Fatal(err)
		}
	case matrix.FaultLink:
		if _, err := m.links[node].Set(true); err != nil {
			m.b.Fatal(err)
		}
	case matrix.FaultHealth:
		if err := os.WriteFile(m.flagFile(node), nil, 0o644); err != nil {
			m.b.Fatal(err)
		}
	}
}

// round fails the MASTER with fault, measures the takeover, restores the
// rig and waits until it is stable again.
func (m *mxRig) round(fault string, i int) (matrix.Round, error) {
	old, nw := m.master, other(m.master)
	node := m.h.Nodes[nw]
	ip := netip.MustParseAddr(node.IP)
	samplers := map[string]*rig.AddrSampler{}
	for _, name := range []string{old, nw} {
		s, err := m.h.SampleAddr(name, "eth0", m.vip, matrixSample)
		if err != nil {
			return matrix.Round{}, err
		}
		samplers[name] = s
		defer s.Stop()
	}
	// A first sample of each before the fault.
	for _, s := range samplers {
		for len(s.Now().Changes) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	m.capture.Drain()
	var r matrix.Round
	t0, detect, err := m.inject(fault, old)
	if err != nil {
		return r, err
	}
	defer func() {
		m.recover(fault, old)
		m.master = m.stable()
	}()
	r.CheckDetect = detect
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s, %s, round %d, %s -> %s: %s", m.cfg.Key, fault, i, old, nw, fmt.Sprintf(format, a...))
	}

	// The advertisement is not awaited: a unicast advertisement to a
	// peer whose neighbour entry failed while it was cut off waits for
	// ARP and never reaches the wire.
	var advert, garp time.Time
	timeout := time.After(matrixTimeout)
	var grace <-chan time.Time
	for advert.IsZero() || garp.IsZero() {
		if !garp.IsZero() && grace == nil {
			grace = time.After(100 * time.Millisecond)
		}
		select {
		case <-grace:
			advert = garp
			continue
		case f := <-m.capture.Frames():
			if f.At.Before(t0) {
				continue
			}
			if src, ok := compare.VRRPSource(f.Data); ok && src == ip && advert.IsZero() {
				advert = f.At
			}
			if v, mac, ok := compare.GARP(f.Data); ok && v == m.vip && bytes.Equal(mac, m.macs[nw]) && garp.IsZero() {
				garp = f.At
			}
		case <-timeout:
			return r, fail("no gratuitous ARP from %s", nw)
		}
	}
	r.FirstGARP = garp.Sub(t0)
	if advert != garp {
		r.FirstAdvert = advert.Sub(t0)
	}

	req, points, err := m.waitCloud(node, t0)
	if err != nil {
		return r, fail("%v", err)
	}
	r.FirstRequest, r.CloudPoints = req.Sub(t0), points.Sub(t0)

	// The window ends when the old MASTER has let the VIP go.
	deadline := time.Now().Add(matrixTimeout)
	for samplers[old].Present() || !samplers[nw].Present() {
		if time.Now().After(deadline) {
			return r, fail("VIP still on %s (%v) or not on %s (%v)", old, samplers[old].Present(), nw, samplers[nw].Present())
		}
		time.Sleep(5 * time.Millisecond)
	}
	end := time.Now()
	to, tn := samplers[old].Stop(), samplers[nw].Stop()
	for name, t := range map[string]rig.AddrTrack{old: to, nw: tn} {
		if t.Err != nil {
			return r, fail("sampling %s: %v", name, t.Err)
		}
		r.SampleGap = max(r.SampleGap, t.MaxGap)
	}
	r.TwoNodes = matrix.Overlap(presence(to), presence(tn), t0, end)
	if c := to.Changes; len(c) > 0 && c[len(c)-1].At.After(t0) {
		r.Released = c[len(c)-1].At.Sub(t0)
	}
	if os.Getenv("HAVIP_MATRIX_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "matrix: %s %s round %d %s->%s at %s: advert %v garp %v request %v points %v released %v two-nodes %v old %v new %v",
			m.cfg.Key, fault, i, old, nw, t0.UTC().Format("15:04:05.000000"), r.FirstAdvert, r.FirstGARP, r.FirstRequest, r.CloudPoints, r.Released, r.TwoNodes,
			relative(to.Changes, t0), relative(tn.Changes, t0))
		fmt.Fprintln(os.Stderr)
		if os.Getenv("HAVIP_MATRIX_TRACE") == "agent" {
			lines := strings.Split(strings.TrimSpace(m.h.Nodes[old].Agent.Proc.Output()), "\n")
			fmt.Fprintf(os.Stderr, "matrix: %s agent:\n%s\n", old, strings.Join(lines[max(0, len(lines)-4):], "\n"))
			if k := m.h.Nodes[old].Keepalived; k != nil {
				lines = strings.Split(strings.TrimSpace(k.Output()), "\n")
				fmt.Fprintf(os.Stderr, "matrix: %s keepalived (HAVIP_E2E_DEBUG=1 for its log):\n%s\n", old, strings.Join(lines[max(0, len(lines)-8):], "\n"))
			}
		}
	}
	return r, nil
}

// relative writes changes as offsets from t0, for the trace.
func relative(cs []rig.AddrChange, t0 time.Time) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%v@%v", c.Present, c.At.Sub(t0).Round(10*time.Microsecond)))
	}
	return strings.Join(parts, " ")
}

func presence(t rig.AddrTrack) []matrix.Presence {
	var out []matrix.Presence
	for _, c := range t.Changes {
		out = append(out, matrix.Presence{At: c.At, Present: c.Present})
	}
	return out
}

// waitCloud reads the emulator's logs until the route and the HAVIP
// point at node: its first cloud request after t0, and the later of the
// route switch and the HAVIP master change to it.
func (m *mxRig) waitCloud(node *rig.Node, t0 time.Time) (first, points time.Time, err error) {
	deadline := time.Now().Add(matrixTimeout)
	for {
		l, err := m.e.Log()
		if err != nil {
			return first, points, err
		}
		first = time.Time{}
		for _, q := range l.Requests {
			if src, _, _ := strings.Cut(q.Source, ":"); src == node.IP && !q.Time.Before(t0) && !strings.HasPrefix(q.Operation, "metadata") {
				first = q.Time
				break
			}
		}
		var route, havip time.Time
		for _, ch := range l.Changes {
			if ch.Time.Before(t0) || ch.After != node.InstanceID {
				continue
			}
			if ch.Operation == emulator.OpRouteRuleSwitch && route.IsZero() {
				route = ch.Time
			}
			if ch.Resource == "havip-rig" && havip.IsZero() {
				havip = ch.Time
			}
		}
		if !first.IsZero() && !route.IsZero() && !havip.IsZero() {
			if route.After(havip) {
				return first, route, nil
			}
			return first, havip, nil
		}
		if time.Now().After(deadline) {
			return first, points, fmt.Errorf("cloud: first request seen %v, route switched %v, HAVIP master %v",
				!first.IsZero(), !route.IsZero(), !havip.IsZero())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	mxTransitionRe = regexp.MustCompile(`msg=transition vrrp_instance=VI_1 from=\S+ to=MASTER`)
	mxFaultRe      = regexp.MustCompile(`msg=transition vrrp_instance=VI_1 from=\S+ to=FAULT`)
)

// load keeps both nodes busy for d with no fault and counts the
// transitions to MASTER and the advertisements on the wire.
func (m *mxRig) load(d time.Duration, per int) (matrix.LoadRun, []time.Duration) {
	b := m.b
	master, backup := m.master, other(m.master)
	mip, bip := netip.MustParseAddr(m.h.Nodes[master].IP), netip.MustParseAddr(m.h.Nodes[backup].IP)
	logLen := map[string]int{}
	for _, name := range []string{"n1", "n2"} {
		logLen[name] = len(m.h.Nodes[name].Agent.Proc.Output())
	}
	m.capture.Drain()
	hogs, err := m.h.StartCPUHogs(per)
	if err != nil {
		b.Fatal(err)
	}
	defer hogs.Stop()
	var adverts []time.Time
	lr := matrix.LoadRun{Config: m.cfg.Key, RTPriority: m.rt, Seconds: d.Seconds(), Hogs: 2 * per,
		MasterDown: float64(matrix.MasterDown(m.cfg.Version, m.cfg.AdvertInt.Duration(), matrixPriority)) / 1e6}
	end := time.After(d)
	start := time.Now()
collect:
	for {
		select {
		case f := <-m.capture.Frames():
			if f.At.Before(start) {
				continue
			}
			src, ok := compare.VRRPSource(f.Data)
			switch {
			case !ok:
			case src == mip && lr.BackupAdverts == 0:
				adverts = append(adverts, f.At)
			case src == bip:
				lr.BackupAdverts++
			}
		case <-end:
			break collect
		}
	}
	hogs.Stop()
	for _, name := range []string{"n1", "n2"} {
		out := m.h.Nodes[name].Agent.Proc.Output()[logLen[name]:]
		lr.MasterTransitions += len(mxTransitionRe.FindAllString(out, -1))
		lr.FaultTransitions += len(mxFaultRe.FindAllString(out, -1))
	}
	gaps := matrix.GapsOf(adverts)
	lr.Adverts = len(adverts)
	if lr.FalseFailovers() > 0 {
		b.Logf("%s (vrrp_rt_priority %d) under load: %d transitions to MASTER, %d advertisements from the BACKUP", m.cfg.Key, m.rt, lr.MasterTransitions, lr.BackupAdverts)
		if os.Getenv("HAVIP_MATRIX_TRACE") != "" {
			for _, name := range []string{"n1", "n2"} {
				fmt.Fprintf(os.Stderr, "matrix: --- %s keepalived:\n%s\n--- %s agent:\n%s\n", name, m.h.Nodes[name].Keepalived.Output(),
					name, m.h.Nodes[name].Agent.Proc.Output()[logLen[name]:])
			}
		}
		m.master = m.stable()
	}
	return lr, gaps
}

// BenchmarkFailoverMatrix measures, on the wire in the switch namespace,
// from each fault of the MASTER to the new MASTER's first gratuitous ARP,
// its first cloud request, the cloud pointing at it, and how long the VIP
// was on two nodes, for VRRPv2 with agent-owned VIPs and VRRPv3 with
// shared VIPs at three intervals; then counts false failovers with both
// nodes busy. Results go to e2e/results/matrix.{json,md}.
func BenchmarkFailoverMatrix(b *testing.B) {
	rounds := 12
	if v := os.Getenv("HAVIP_MATRIX_ROUNDS"); v != "" {
		if _, err := fmt.Sscan(v, &rounds); err != nil || rounds < 0 {
			b.Fatalf("HAVIP_MATRIX_ROUNDS=%q: want a number of rounds (0: only the load runs)", v)
		}
	}
	block := max(min(envInt(b, "HAVIP_MATRIX_BLOCK", 4), rounds), 1)
	loadFor := 20 * time.Second
	if v := os.Getenv("HAVIP_MATRIX_LOAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			b.Fatalf("HAVIP_MATRIX_LOAD=%q: want a duration (0 skips the load runs)", v)
		}
		loadFor = d
	}
	var configKeys, faultKeys []string
	for _, c := range matrix.Configs {
		configKeys = append(configKeys, c.Key)
	}
	for _, f := range matrix.Faults {
		faultKeys = append(faultKeys, f.Key)
	}
	cks, err := matrix.Select(os.Getenv("HAVIP_MATRIX_CONFIGS"), configKeys)
	if err != nil {
		b.Fatalf("HAVIP_MATRIX_CONFIGS: %v", err)
	}
	fks, err := matrix.Select(os.Getenv("HAVIP_MATRIX_FAULTS"), faultKeys)
	if err != nil {
		b.Fatalf("HAVIP_MATRIX_FAULTS: %v", err)
	}
	loadRuns := envInt(b, "HAVIP_MATRIX_LOAD_RUNS", 3)
	hogs := envInt(b, "HAVIP_MATRIX_HOGS", runtime.NumCPU())
	rtPriority := 50
	if v := os.Getenv("HAVIP_MATRIX_RT"); v != "" {
		if _, err := fmt.Sscan(v, &rtPriority); err != nil || rtPriority < 0 || rtPriority > 99 {
			b.Fatalf("HAVIP_MATRIX_RT=%q: want a vrrp_rt_priority from 1 to 99, or 0 for no realtime load runs", v)
		}
	}
	partial := len(cks) < len(configKeys) || len(fks) < len(faultKeys) || rounds == 0
	var configs []matrix.Config
	for _, c := range matrix.Configs {
		for _, k := range cks {
			if c.Key == k {
				configs = append(configs, c)
			}
		}
	}

	m := newMxRig(b)
	// A baseline build measured in the same rig (the liveness watch before
	// its pidfd, say); its results go to matrix-<name>.{json,md}.
	out := "matrix"
	if bin := os.Getenv("HAVIP_MATRIX_AGENT"); bin != "" {
		m.h.Bins.Agent = bin
		out = "matrix-" + filepath.Base(bin)
	}
	got := map[[2]string][]matrix.Round{}
	b.ResetTimer()
	for done := 0; done < rounds; done += block {
		n := min(block, rounds-done)
		for _, cfg := range configs {
			m.use(cfg, 0)
			for _, fault := range fks {
				for i := 0; i < n; i++ {
					r, err := m.round(fault, done+i)
					if err != nil {
						b.Fatal(err)
					}
					key := [2]string{cfg.Key, fault}
					got[key] = append(got[key], r)
				}
			}
		}
	}
	var load []matrix.LoadRun
	// A re-run of some faults leaves the load runs as they were.
	if loadFor > 0 && os.Getenv("HAVIP_MATRIX_FAULTS") == "" {
		type acc struct {
			run  matrix.LoadRun
			gaps []time.Duration
		}
		var order []*acc
		accs := map[string]*acc{}
		for rep := 0; rep < loadRuns; rep++ {
			for _, rt := range []int{0, rtPriority} {
				for _, cfg := range configs {
					// Realtime scheduling is tried where the default
					// has least margin.
					if cfg.Version != 3 || rt != 0 && (rtPriority == 0 || cfg.AdvertInt > 200) {
						continue
					}
					key := fmt.Sprintf("%s/%d", cfg.Key, rt)
					if accs[key] == nil {
						accs[key] = &acc{}
						order = append(order, accs[key])
					}
					m.use(cfg, rt)
					lr, gaps := m.load(loadFor, hogs)
					accs[key].run.Add(lr, gaps, &accs[key].gaps)
				}
			}
		}
		for _, a := range order {
			load = append(load, a.run)
		}
	}
	b.StopTimer()
	if d := m.capture.Dropped(); d > 0 {
		b.Errorf("the capture dropped %d frames", d)
	}
	if u := m.capture.Untimed(); u > 0 {
		b.Errorf("%d captured frames had no kernel timestamp", u)
	}

	var r matrix.Report
	for _, cfg := range configs {
		for _, fault := range fks {
			if rounds > 0 {
				r.Cells = append(r.Cells, matrix.NewCell(cfg.Key, fault, got[[2]string{cfg.Key, fault}]))
			}
		}
	}
	r.Load = load
	r.Date = time.Now().UTC().Format("2006-01-02")
	r.Machine = machine()
	r.Revision = matrixRevision()
	if bin := os.Getenv("HAVIP_MATRIX_AGENT"); bin != "" {
		r.Revision = filepath.Base(bin) + " in the rig of " + r.Revision
	}
	r.Rounds, r.Block, r.Priority = rounds, block, matrixPriority
	r.Configs = matrix.Configs
	r.Notes = matrixNotes
	for _, c := range r.Cells {
		if c.Config == "v3-0.1s" {
			b.ReportMetric(c.FirstGARP.P50, c.Fault+"/garp-p50-ms")
		}
	}
	writeMatrixResults(b, r, partial, out)
}

var matrixNotes = []string{
	"Wire times are kernel receive timestamps (SO_TIMESTAMPNS) of a promiscuous AF_PACKET capture on the switch's bridge; cloud times are the emulator's request and change log times, on the same clock. The fault's time is taken just before its system call (kill, or a netlink request that sets the link down).",
	"First gratuitous ARP: the first one from the new MASTER's MAC for the VIP (keepalived's own with shared VIPs, or the agent's, whichever is first). First cloud request: the new MASTER's first request at the emulator. Cloud points at it: the later of the route switch and the HAVIP master change (learned from ARP) to the new MASTER.",
	"VIP on two nodes: both nodes' eth0 addresses are dumped over netlink every 1 ms from just before the fault until the old MASTER has let the VIP go; the window is the time both dumps showed the VIP, so its resolution is about a millisecond.",
	"Graceful stop: SIGTERM to keepalived's parent (its VRRP process sends priority 0 and stops). SIGKILL of the VRRP process alone: the child named by the VRRP pid file is killed, keepalived's parent starts a new one, which comes up BACKUP; killing the parent alone would make the child exit gracefully, which is the graceful stop. keepalived crash: SIGKILL of the parent and the VRRP process at once; nothing respawns, nothing is written to the FIFO, and only the agent's liveness watch takes the VIP off the node.",
	"Node cut off: the switch's end of the node's veth set down; the node's eth0 then loses carrier too. Link down: the node's own eth0 set down. Health check: an agent exec check (every 100 ms, timeout 1 s, fall 1) writes its track file, which keepalived tracks with weight 0 (FAULT); that cell is timed from the track file write (inotify), and the check's own detection time is given separately.",
	"Each round fails the current MASTER, waits for the takeover and the cloud, then restores the node (keepalived restarted, or its new VRRP process running; port or link up; service back) and waits until one node is MASTER with the VIP and the cloud and the other BACKUP without the VIP, plus a settle second; with nopreempt the MASTER alternates between the nodes.",
	"False failovers: with both nodes running, 2 × nproc busy shell loops (nproc in each node's namespace, sharing the machine's CPUs with keepalived and the agents) for the given time, no fault, each setting run several times alternating with the others; counted are the agents' transitions to MASTER (their logs) and advertisements from the node that was BACKUP; the gaps are between the first MASTER's advertisements on the wire up to the BACKUP's first. The check's timeout is 1 s: with the default for a 100 ms interval (50 ms) the check itself timed out under this load and moved MASTER through its track file. The 0.2 and 0.1 s intervals run a second time with keepalived's `vrrp_rt_priority` (realtime scheduling of the VRRP process).",
}

func matrixRevision() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// writeMatrixResults writes e2e/results/matrix.json and matrix.md; a
// partial run replaces its cells in the earlier results. The table also
// goes to stderr.
func writeMatrixResults(b *testing.B, r matrix.Report, partial bool, name string) {
	dir := "results"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	jsonPath := filepath.Join(dir, name+".json")
	if partial {
		var old matrix.Report
		if data, err := os.ReadFile(jsonPath); err == nil {
			if err := json.Unmarshal(data, &old); err != nil {
				b.Fatalf("%s: %v", jsonPath, err)
			}
			old.Merge(r)
			r = old
		} else if !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
	}
	r.Finish()
	js, err := r.JSON()
	if err != nil {
		b.Fatal(err)
	}
	md := r.Markdown()
	if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, md)
}
