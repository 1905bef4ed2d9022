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
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/compare"
	"github.com/havip-agent/havip-agent/e2e/rig"
	"github.com/vishvananda/netlink"
)

// The comparison benchmark of issue 5. Run as root, both benchmarks in
// one go (they share e2e/results/compare.{json,md}):
//
//	go test ./e2e -run '^$' -bench 'Compare|Scale' -benchtime 1x -timeout 20m
//
// HAVIP_COMPARE_FAILOVERS (default 30) is the number of failovers per way,
// HAVIP_COMPARE_BLOCK (default 10) the failovers a way does before the
// next way takes over, HAVIP_COMPARE_SCALE_ROUNDS (default 12) the
// failovers per scale point, HAVIP_COMPARE_SETTLE (default 1s) the pause
// after restarting the stopped keepalived.

// compareMaxRoutes HA routes are seeded: the rig's 198.19.0.0/24 pair and
// pairs for 198.19.1.0/24 onwards.
const compareMaxRoutes = 32

// compareSeed is the rig's world plus the extra HA route pairs of the
// scale runs, n1 active.
func compareSeed() string {
	var b strings.Builder
	b.WriteString(rig.Seed)
	for i := 1; i < compareMaxRoutes; i++ {
		fmt.Fprintf(&b, `
[[route_rule]]
id = "rr-s%02d-a"
route_table_id = "rt-rig"
source = "0.0.0.0/0"
destination = "198.19.%d.0/24"
next_hop_type = "dcGateway"
next_hop_id = "dcgw-n1"
standby_id = "rr-s%02d-b"
standby_next_hop_id = "dcgw-n2"
`, i, i, i)
	}
	return b.String()
}

// routeIDs are the rule ids of HA route i (0 is the rig's).
func routeIDs(i int) [2]string {
	if i == 0 {
		return [2]string{"rr-a", "rr-b"}
	}
	return [2]string{fmt.Sprintf("rr-s%02d-a", i), fmt.Sprintf("rr-s%02d-b", i)}
}

func routeDest(i int) string { return fmt.Sprintf("198.19.%d.0/24", i) }

// compareVIPs are the rig VIP and 198.18.0.101 onwards.
func compareVIPs(n int) []netip.Addr {
	out := []netip.Addr{netip.MustParseAddr(rig.VIP)}
	for i := 1; i < n; i++ {
		out = append(out, netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}))
	}
	return out
}

// way is how the job is done in a run.
type way int

const (
	wayAgent way = iota
	wayKeepalived
	wayScript
)

func (w way) String() string {
	return [...]string{compare.WayAgent, compare.WayKeepalived, compare.WayScript}[w]
}

// cloud reports whether the way moves the route.
func (w way) cloud() bool { return w != wayKeepalived }

// cmpRig is the failover rig of the comparison, one way at a time.
type cmpRig struct {
	b         *testing.B
	h         *rig.HA
	e         *rig.Emulator
	capture   *rig.Capture
	switchBin string
	settle    time.Duration
	macs      map[string]net.HardwareAddr
	handles   map[string]*netlink.Handle
	confs     map[string]string

	way    way
	vips   []netip.Addr
	routes int
	master string
}

func newCmpRig(b *testing.B) *cmpRig {
	h := newHARig(b)
	c := &cmpRig{b: b, h: h, settle: envDuration(b, "HAVIP_COMPARE_SETTLE", time.Second),
		macs: map[string]net.HardwareAddr{}, handles: map[string]*netlink.Handle{}, confs: map[string]string{}}
	if _, err := exec.LookPath("arping"); err != nil {
		b.Fatal("arping is not installed (apt-get install iputils-arping): the script way needs it")
	}
	c.switchBin = buildSwitchRoute(b)
	e, err := h.StartEmulator(compareSeed())
	if err != nil {
		b.Fatal(err)
	}
	c.e = e
	for _, name := range []string{"n1", "n2"} {
		mac, err := net.ParseMAC(h.MAC(name))
		if err != nil {
			b.Fatalf("%s MAC: %v", name, err)
		}
		c.macs[name] = mac
		c.handles[name] = handleIn(b, h.NS.Name(name))
	}
	capture, err := h.CaptureSwitch()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { capture.Close() })
	c.capture = capture
	return c
}

// buildSwitchRoute builds the one-shot CLI of the script way.
func buildSwitchRoute(b *testing.B) string {
	out := filepath.Join(b.TempDir(), "bce-switchroute")
	cmd := exec.Command("go", "build", "-o", out, "./e2e/cmd/bce-switchroute")
	cmd.Dir = ".."
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./e2e/cmd/bce-switchroute: %v: %s", err, o)
	}
	return out
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

func other(node string) string {
	if node == "n1" {
		return "n2"
	}
	return "n1"
}

// use stops whatever runs and starts the nodes for w with nvips VIPs and
// nroutes HA routes; n1 becomes MASTER (and, for the cloud ways, the
// routes' active next hop), then n2 joins as BACKUP.
func (c *cmpRig) use(w way, nvips, nroutes int) {
	b := c.b
	b.Helper()
	for _, name := range []string{"n1", "n2"} {
		n := c.h.Nodes[name]
		if n.Agent != nil {
			n.Agent.Proc.Stop(os.Interrupt)
			n.Agent = nil
		}
		n.Keepalived.Stop(syscall.SIGTERM)
		n.Keepalived = nil
		c.dropVIPs(name)
	}
	c.way, c.vips, c.routes = w, compareVIPs(nvips), nroutes
	for _, name := range []string{"n1", "n2"} {
		n := c.h.Nodes[name]
		// VRRPv2, advert_int 1: keepalived 2.2.7 refuses a VRRPv3 instance
		// without virtual_ipaddress ("No VIP specified; at least one is
		// required"), and VRRPv2 intervals are whole seconds. Priority 254
		// makes the takeover after a priority-0 advertisement quick (skew
		// time (256-254)/256 s); nopreempt keeps the restarted node BACKUP.
		extra := "    nopreempt\n"
		switch w {
		case wayKeepalived:
			extra += "    virtual_ipaddress {\n"
			for _, v := range c.vips {
				extra += "        " + v.String() + "/24 dev eth0\n"
			}
			extra += "    }\n"
		case wayScript:
			master, backup := c.writeScripts(n)
			extra += fmt.Sprintf("    notify_master %q\n    notify_backup %q\n    notify_fault %q\n    notify_stop %q\n", master, backup, backup, backup)
		case wayAgent:
			c.startAgent(n)
		}
		c.confs[name] = n.KeepalivedConf(254, "", "", extra)
	}
	c.capture.Drain()
	since := time.Now()
	c.startKeepalived("n1")
	c.waitAdvert("n1", since)
	if w.cloud() {
		eventually(b, "routes active on n1", func() bool { return c.routesAt("dcgw-n1") })
	}
	c.startKeepalived("n2")
	time.Sleep(c.settle)
	c.master = "n1"
}

func (c *cmpRig) startKeepalived(name string) {
	if err := c.h.Nodes[name].StartKeepalived(c.confs[name], os.Getenv("HAVIP_E2E_DEBUG") != ""); err != nil {
		c.b.Fatal(err)
	}
}

// dropVIPs removes what a previous way left on the node's interface.
func (c *cmpRig) dropVIPs(name string) {
	h := c.handles[name]
	l, err := h.LinkByName("eth0")
	if err != nil {
		c.b.Fatal(err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		c.b.Fatal(err)
	}
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().String() != c.h.Nodes[name].IP {
			_ = h.AddrDel(l, &a)
		}
	}
}

// startAgent runs havip-agent with the cloud configuration of the rig,
// widened to the run's VIPs and routes.
func (c *cmpRig) startAgent(n *rig.Node) {
	var extra strings.Builder
	for i := 1; i < c.routes; i++ {
		fmt.Fprintf(&extra, "[[instance.route]]\ntable = \"rt-rig\"\ndestination = %q\nnext_hop = %q\nnext_hop_type = \"dcGateway\"\n", routeDest(i), n.Gateway)
	}
	body, err := n.CloudConfig(c.e, extra.String())
	if err != nil {
		c.b.Fatal(err)
	}
	var vips []string
	for _, v := range c.vips {
		vips = append(vips, fmt.Sprintf("%q", v.String()+"/24"))
	}
	body = strings.Replace(body, fmt.Sprintf("vips = [%q]", rig.VIP+"/24"), "vips = ["+strings.Join(vips, ", ")+"]", 1)
	if _, err := n.WriteAgentConfig(n.AgentBase("info") + "\n" + body); err != nil {
		c.b.Fatal(err)
	}
	if err := n.Agent.Start(); err != nil {
		c.b.Fatal(err)
	}
}

// writeScripts writes the node's notify scripts, the common practice:
// the address with ip, the announcement with arping in the background
// (its one-second wait must not count), the route with the one-shot CLI.
func (c *cmpRig) writeScripts(n *rig.Node) (master, backup string) {
	var add, del, dests strings.Builder
	for _, v := range c.vips {
		fmt.Fprintf(&add, "ip addr add %s/24 dev eth0 2>/dev/null\narping -q -U -c 1 -I eth0 %s >/dev/null 2>&1 &\n", v, v)
		fmt.Fprintf(&del, "ip addr del %s/24 dev eth0 2>/dev/null\n", v)
	}
	for i := 0; i < c.routes; i++ {
		fmt.Fprintf(&dests, " -destination %s", routeDest(i))
	}
	creds := filepath.Join(n.Dir, "credentials.toml")
	if err := os.WriteFile(creds, []byte("access_key_id = \"ak-rig\"\nsecret_access_key = \"sk-rig-secret\"\n"), 0o600); err != nil {
		c.b.Fatal(err)
	}
	master, backup = filepath.Join(n.Dir, "notify-master.sh"), filepath.Join(n.Dir, "notify-backup.sh")
	scripts := map[string]string{
		master: fmt.Sprintf("#!/bin/sh\n%sexec %s -endpoint %s -credentials %s -table rt-rig -next-hop %s%s >>%s 2>&1\n",
			add.String(), c.switchBin, c.e.URL, creds, n.Gateway, dests.String(), filepath.Join(n.Dir, "switchroute.log")),
		backup: "#!/bin/sh\n" + del.String(),
	}
	for path, body := range scripts {
		// enable_script_security: root-owned, writable by root only.
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			c.b.Fatal(err)
		}
		if err := os.Chmod(path, 0o755); err != nil {
			c.b.Fatal(err)
		}
	}
	return master, backup
}

// waitAdvert waits for a VRRP advertisement from node on the wire.
func (c *cmpRig) waitAdvert(node string, since time.Time) {
	ip := netip.MustParseAddr(c.h.Nodes[node].IP)
	timeout := time.After(15 * time.Second)
	for {
		select {
		case f := <-c.capture.Frames():
			if src, ok := compare.VRRPSource(f.Data); ok && src == ip && !f.At.Before(since) {
				return
			}
		case <-timeout:
			c.b.Fatalf("%s sent no VRRP advertisement", node)
		}
	}
}

func (c *cmpRig) routesAt(nextHop string) bool {
	s, err := c.e.State()
	if err != nil {
		return false
	}
	active := map[string]string{}
	for _, r := range s.RouteRules {
		if r.PathType == "ha:active" {
			active[r.ID] = r.NexthopID
		}
	}
	for i := 0; i < c.routes; i++ {
		ids := routeIDs(i)
		if active[ids[0]] != nextHop && active[ids[1]] != nextHop {
			return false
		}
	}
	return true
}

// failoverResult is one failover, times from the new MASTER's first
// advertisement.
type failoverResult struct {
	garp, lastGARP                    time.Duration
	request, lastRequest              time.Duration
	switched, lastSwitched, confirmed time.Duration
}

// failover stops the MASTER's keepalived (SIGTERM: a priority-0
// advertisement, the BACKUP takes over at once), measures the takeover on
// the wire and in the emulator's logs, and restarts the stopped node,
// which comes back as BACKUP (nopreempt).
func (c *cmpRig) failover(round int) (failoverResult, error) {
	old, nw := c.master, other(c.master)
	node := c.h.Nodes[nw]
	ip := netip.MustParseAddr(node.IP)
	c.capture.Drain()
	stop := time.Now()
	c.h.Nodes[old].Keepalived.Stop(syscall.SIGTERM)
	defer func() {
		c.startKeepalived(old)
		time.Sleep(c.settle)
		c.master = nw
	}()

	var advert time.Time
	garps := map[netip.Addr]time.Time{}
	want := map[netip.Addr]bool{}
	for _, v := range c.vips {
		want[v] = true
	}
	timeout := time.After(10 * time.Second)
	for advert.IsZero() || len(garps) < len(want) {
		select {
		case f := <-c.capture.Frames():
			if f.At.Before(stop) {
				continue
			}
			if src, ok := compare.VRRPSource(f.Data); ok && src == ip && advert.IsZero() {
				advert = f.At
			}
			if vip, mac, ok := compare.GARP(f.Data); ok && want[vip] && bytes.Equal(mac, c.macs[nw]) {
				if _, seen := garps[vip]; !seen {
					garps[vip] = f.At
				}
			}
		case <-timeout:
			return failoverResult{}, fmt.Errorf("round %d, %s -> %s (%s): advertisement seen %v, %d of %d VIPs announced",
				round, old, nw, c.way, !advert.IsZero(), len(garps), len(want))
		}
	}
	var r failoverResult
	r.garp = garps[c.vips[0]].Sub(advert)
	for _, at := range garps {
		r.lastGARP = max(r.lastGARP, at.Sub(advert))
	}
	if !c.way.cloud() {
		return r, nil
	}
	cr, err := c.waitCloud(node, advert)
	if err != nil {
		return r, fmt.Errorf("round %d, %s -> %s (%s): %w", round, old, nw, c.way, err)
	}
	r.request, r.lastRequest, r.switched, r.lastSwitched, r.confirmed = cr.request, cr.lastRequest, cr.switched, cr.lastSwitched, cr.confirmed
	return r, nil
}

type cloudResult struct {
	request, lastRequest, switched, lastSwitched, confirmed time.Duration
}

// waitCloud reads the emulator's logs until every route has switched to
// node: the first request from node, each route's first request naming
// its rules, each route's switch, and the HAVIP master learned from node's
// announcement (havip-agent only; the others do not claim it).
func (c *cmpRig) waitCloud(node *rig.Node, advert time.Time) (cloudResult, error) {
	rules := map[string]int{}
	for i := 0; i < c.routes; i++ {
		for _, id := range routeIDs(i) {
			rules[id] = i
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	time.Sleep(30 * time.Millisecond)
	for {
		l, err := c.e.Log()
		if err != nil {
			return cloudResult{}, err
		}
		var r cloudResult
		var first time.Time
		firstByRoute := map[int]time.Time{}
		switchByRoute := map[int]time.Time{}
		var havip time.Time
		for _, q := range l.Requests {
			if q.Source != node.IP || q.Time.Before(advert) || strings.HasPrefix(q.Operation, "metadata") {
				continue
			}
			if first.IsZero() {
				first = q.Time
			}
			if i, ok := rules[q.Path[strings.LastIndexByte(q.Path, '/')+1:]]; ok {
				if _, seen := firstByRoute[i]; !seen {
					firstByRoute[i] = q.Time
				}
			}
		}
		for _, ch := range l.Changes {
			if ch.Time.Before(advert) || (ch.After != node.InstanceID && ch.After != node.Gateway) {
				continue
			}
			if i, ok := rules[ch.Resource]; ok && ch.Operation == emulator.OpRouteRuleSwitch {
				if _, seen := switchByRoute[i]; !seen {
					switchByRoute[i] = ch.Time
				}
			}
			if ch.Resource == "havip-rig" && havip.IsZero() {
				havip = ch.Time
			}
		}
		done := !first.IsZero() && len(switchByRoute) == c.routes && (c.way != wayAgent || !havip.IsZero())
		if done {
			r.request = first.Sub(advert)
			for _, at := range firstByRoute {
				r.lastRequest = max(r.lastRequest, at.Sub(advert))
			}
			r.switched = switchByRoute[0].Sub(advert)
			for _, at := range switchByRoute {
				r.lastSwitched = max(r.lastSwitched, at.Sub(advert))
			}
			r.confirmed = r.lastSwitched
			if !havip.IsZero() {
				r.confirmed = max(r.confirmed, havip.Sub(advert))
			}
			return r, nil
		}
		if time.Now().After(deadline) {
			return cloudResult{}, fmt.Errorf("cloud: first request seen %v, %d of %d routes switched to %s, HAVIP master %v",
				!first.IsZero(), len(switchByRoute), c.routes, node.InstanceID, !havip.IsZero())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkCapture fails the benchmark if the capture lost frames or had to
// time them in user space.
func (c *cmpRig) checkCapture() {
	if d := c.capture.Dropped(); d > 0 {
		c.b.Errorf("the capture dropped %d frames", d)
	}
	if u := c.capture.Untimed(); u > 0 {
		c.b.Errorf("%d captured frames had no kernel timestamp", u)
	}
}

// BenchmarkCompare measures havip-agent, keepalived's own
// virtual_ipaddress and a notify_master script on the same rig, the ways
// alternating in blocks, from the new MASTER's first advertisement to its
// first gratuitous ARP and to its first cloud request.
func BenchmarkCompare(b *testing.B) {
	failovers := envInt(b, "HAVIP_COMPARE_FAILOVERS", 30)
	block := envInt(b, "HAVIP_COMPARE_BLOCK", 10)
	c := newCmpRig(b)
	ways := []way{wayAgent, wayKeepalived, wayScript}
	garp := map[way][]time.Duration{}
	req := map[way][]time.Duration{}
	sw := map[way][]time.Duration{}
	b.ResetTimer()
	for done := 0; done < failovers; done += block {
		n := min(block, failovers-done)
		for _, w := range ways {
			c.use(w, 1, 1)
			for i := 0; i < n; i++ {
				r, err := c.failover(done + i)
				if err != nil {
					b.Fatal(err)
				}
				garp[w] = append(garp[w], r.garp)
				if w.cloud() {
					req[w] = append(req[w], r.request)
					sw[w] = append(sw[w], r.switched)
				}
			}
		}
	}
	b.StopTimer()
	var ms []compare.Measure
	for _, w := range ways {
		ms = append(ms, compare.NewMeasure(w.String(), compare.MetricGARP, garp[w]))
	}
	for _, w := range ways {
		if w.cloud() {
			ms = append(ms, compare.NewMeasure(w.String(), compare.MetricRequest, req[w]))
		}
	}
	for _, w := range ways {
		if w.cloud() {
			ms = append(ms, compare.NewMeasure(w.String(), compare.MetricSwitched, sw[w]))
		}
	}
	for _, m := range ms {
		b.ReportMetric(m.P50*1e3, strings.ReplaceAll(m.Way+"/"+m.Metric, " ", "_")+"-p50-µs")
	}
	writeCompareResults(b, func(r *compare.Report) {
		r.Failovers, r.Block, r.Compare = failovers, block, ms
	})
	c.checkCapture()
}

// BenchmarkScale measures havip-agent with 1, 16 and 64 VIPs and 1, 8
// and 32 HA routes on one instance: from the first advertisement to the
// last VIP's first announcement, the last route's first request naming
// it, and the last change (route switch or HAVIP master) that points at
// the new MASTER.
func BenchmarkScale(b *testing.B) {
	rounds := envInt(b, "HAVIP_COMPARE_SCALE_ROUNDS", 12)
	c := newCmpRig(b)
	points := [][2]int{{1, 1}, {16, 1}, {64, 1}, {1, 8}, {1, 32}}
	var out []compare.ScaleMeasure
	b.ResetTimer()
	for _, p := range points {
		c.use(wayAgent, p[0], p[1])
		var ann, req, conf []time.Duration
		for i := 0; i < rounds; i++ {
			r, err := c.failover(i)
			if err != nil {
				b.Fatalf("%d VIPs, %d routes: %v", p[0], p[1], err)
			}
			ann, req, conf = append(ann, r.lastGARP), append(req, r.lastRequest), append(conf, r.confirmed)
		}
		out = append(out, compare.ScaleMeasure{VIPs: p[0], Routes: p[1], LastAnnouncement: compare.Summarize(ann),
			LastRequest: compare.Summarize(req), LastConfirmation: compare.Summarize(conf)})
	}
	b.StopTimer()
	writeCompareResults(b, func(r *compare.Report) { r.Scale = out })
	c.checkCapture()
}

// writeCompareResults updates e2e/results/compare.json (keeping the other
// benchmark's section of an earlier run) and rewrites compare.md from it;
// the table also goes to stderr.
func writeCompareResults(b *testing.B, update func(*compare.Report)) {
	dir := "results"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	jsonPath := filepath.Join(dir, "compare.json")
	var r compare.Report
	if old, err := os.ReadFile(jsonPath); err == nil {
		if err := json.Unmarshal(old, &r); err != nil {
			b.Logf("ignoring %s: %v", jsonPath, err)
			r = compare.Report{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		b.Fatal(err)
	}
	update(&r)
	r.Date = time.Now().UTC().Format("2006-01-02")
	r.Machine = machine()
	r.Notes = []string{
		"havip-agent and the script move the HA route; keepalived's own virtual_ipaddress does no cloud work.",
		"The script runs `ip addr add`, `arping -U -c 1 &` and a one-shot SDK program (bce-switchroute) that lists the rules and switches the pair.",
		"Wire times are kernel receive timestamps (SO_TIMESTAMPNS) of a promiscuous AF_PACKET capture on br0; cloud times are the emulator's request and change log times (stamped when the request has been handled), on the same clock.",
		"keepalived 2.2.7 refuses VRRPv3 without virtual_ipaddress, so all ways run VRRPv2, advert_int 1, priority 254, nopreempt, `-G`; each failover is a SIGTERM of the MASTER's keepalived (priority-0 advertisement), measured from the other node's first advertisement.",
		"Scale: last cloud request is the last route's first request naming its rules; last confirmation is the last route switch or HAVIP master change pointing at the new MASTER.",
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
	if err := os.WriteFile(filepath.Join(dir, "compare.md"), []byte(md), 0o644); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, md)
}

// machine describes this machine for the README.
func machine() compare.Machine {
	m := compare.Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		m.MemoryGiB = int((uint64(si.Totalram)*uint64(si.Unit) + 1<<29) >> 30)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("keepalived", "--version").CombinedOutput(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 2 {
			m.Keepalived = f[0] + " " + f[1]
		}
	}
	return m
}
