package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/havip-agent/havip-agent/agent/journal"
	"github.com/havip-agent/havip-agent/agent/vocab"
	"github.com/havip-agent/havip-agent/e2e/rig"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// frameSeen is a gratuitous ARP captured on the peer with its arrival
// time: at is when the capture read it, wire when the peer's kernel
// received it (SO_TIMESTAMPNS; zero if the kernel gave none), which no
// scheduling of the capturing process delays.
type frameSeen struct {
	at, wire time.Time
	vip      netip.Addr
}

func captureGARPs(c *packet.Conn) <-chan frameSeen {
	ch := make(chan frameSeen, 4096)
	rc, err := c.SyscallConn()
	if err != nil {
		close(ch)
		return ch
	}
	_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) })
	go func() {
		defer close(ch)
		buf, oob := make([]byte, 1600), make([]byte, 128)
		for {
			var n, oobn int
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
				return !errors.Is(rerr, unix.EAGAIN)
			})
			if err != nil || rerr != nil {
				return
			}
			at := time.Now()
			if ip, ok := garpSender(buf[:n]); ok {
				ch <- frameSeen{at: at, wire: kernelTime(oob[:oobn]), vip: ip}
			}
		}
	}()
	return ch
}

// kernelTime is the SO_TIMESTAMPNS receive time in a packet's control
// messages.
func kernelTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Unix())
		}
	}
	return time.Time{}
}

func garpSender(frame []byte) (netip.Addr, bool) {
	// Ethernet header 14 bytes, ARP: sender IP at 14, target IP at 24.
	if len(frame) < 42 || frame[12] != 0x08 || frame[13] != 0x06 {
		return netip.Addr{}, false
	}
	s, _ := netip.AddrFromSlice(frame[28:32])
	d, _ := netip.AddrFromSlice(frame[38:42])
	return s, s == d
}

func addrEvents(t testing.TB, nsName string) <-chan netlink.AddrUpdate {
	ns, err := vnetns.GetFromName(nsName)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan netlink.AddrUpdate, 4096)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &ns, ReceiveBufferSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(done); ns.Close() })
	return ch
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// waitAddr waits for an address event for want (added or removed).
func waitAddr(ch <-chan netlink.AddrUpdate, want netip.Addr, added bool, timeout time.Duration) (time.Time, bool) {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case u := <-ch:
			at := time.Now()
			ip, _ := netip.AddrFromSlice(u.LinkAddress.IP)
			if ip.Unmap() == want && u.NewAddr == added {
				return at, true
			}
		case <-tm.C:
			return time.Time{}, false
		}
	}
}

// BenchmarkCoreFailover measures, over 200 MASTER transitions, the time
// from the MASTER line written into the FIFO to the VIP present (netlink
// event in the node's namespace) and to the first gratuitous ARP on the
// wire (captured in the peer's namespace). With HAVIP_BASELINE_AGENT
// naming another build of the agent (an earlier commit's), both run in
// one rig, alternating in blocks of 50 transitions, and both are reported:
// a change is compared side by side, on the same noisy machine.
func BenchmarkCoreFailover(b *testing.B) {
	c := newCoreRig(b)
	ways := []failoverWay{{bin: binary(b, "havip-agent")}}
	if base := os.Getenv("HAVIP_BASELINE_AGENT"); base != "" {
		ways = append(ways, failoverWay{name: "baseline-", bin: base})
	}
	coreFailover(b, c, ways, 2*time.Millisecond)
}

// BenchmarkCoreFailoverHooks is BenchmarkCoreFailover with and without
// three hooks on every event (two exec hooks and an http hook posting to a
// server in the node's namespace), side by side in one rig: the hooks run
// after the local actions and must leave the failover path's figures as
// they are. Besides what the test process sees, it reports the agent's own
// phase timings from its failover history (agent-vips-present,
// agent-first-announcement): the hooks' programs compete with the
// measuring process for the CPUs too. HAVIP_BENCH_PAUSE sets the pause
// between a cycle's BACKUP and the next MASTER (default that of
// BenchmarkCoreFailover), so that the hooks of one transition may or may
// not still run when the next comes.
func BenchmarkCoreFailoverHooks(b *testing.B) {
	c := newCoreRig(b)
	var ln net.Listener
	must(b, func() error {
		return rig.InNamespace(c.rig.Name(c.node), func() error {
			var err error
			ln, err = net.Listen("tcp", "127.0.0.1:0")
			return err
		})
	})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { srv.Close() })
	hooks := fmt.Sprintf(`
[[hook]]
name = "exec-a"
type = "exec"
command = ["/bin/sh", "-c", "cat >/dev/null"]

[[hook]]
name = "exec-b"
type = "exec"
command = ["/bin/sh", "-c", "cat >/dev/null"]

[[hook]]
name = "http"
type = "http"
url = "http://%s/hook"
`, ln.Addr())
	bin := binary(b, "havip-agent")
	pause := 2 * time.Millisecond
	if p, err := time.ParseDuration(os.Getenv("HAVIP_BENCH_PAUSE")); err == nil {
		pause = p
	}
	coreFailover(b, c, []failoverWay{{bin: bin}, {name: "hooks-", bin: bin, extra: hooks}}, pause)
}

// failoverWay is one agent of a side-by-side failover benchmark: a build
// and what its configuration adds to the instance.
type failoverWay struct {
	name, bin, extra string
}

// coreFailover runs the measured cycle for every way, alternating in
// blocks, and reports each way's figures.
func coreFailover(b *testing.B, c coreRig, ways []failoverWay, pause time.Duration) {
	const transitions, block = 200, 50
	events := addrEvents(b, c.rig.Name(c.node))
	frames := captureGARPs(arpCapture(b, c.rig.Name(c.peer), "eth0"))
	present := make([][]time.Duration, len(ways))
	announced := make([][]time.Duration, len(ways))
	// The agent's own phase timings, from its failover history: what the
	// failover path took inside the agent, apart from how soon the
	// measuring process got to read the event.
	inPresent := make([][]time.Duration, len(ways))
	inAnnounced := make([][]time.Duration, len(ways))
	wire := make([][]time.Duration, len(ways))
	b.ResetTimer()
	for done := 0; done < transitions; done += block {
		for w, way := range ways {
			a := newAgentBin(b, c.rig, c.node, way.bin, strings.Replace(coreInstance, `garp_count = 3`, `garp_count = 1`, 1)+way.extra).quiet()
			a.start()
			f, err := os.OpenFile(a.FIFO, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			cycle := masterCycle{fifo: f, events: events, frames: frames, pause: pause, label: way.name, logs: a.logs}
			for i := 0; i < block; i++ {
				m := cycle.run(b, done+i, nil)
				present[w] = append(present[w], m.present)
				announced[w] = append(announced[w], m.announced)
				if m.wire > 0 {
					wire[w] = append(wire[w], m.wire)
				}
			}
			f.Close()
			a.stop()
			vp, fa := historyPhases(b, a.StateDir)
			inPresent[w], inAnnounced[w] = append(inPresent[w], vp...), append(inAnnounced[w], fa...)
		}
	}
	b.StopTimer()
	for w, way := range ways {
		report(b, way.name+"vip-present", present[w])
		report(b, way.name+"first-garp", announced[w])
	}
	// What the measuring process's scheduling cannot delay: the peer
	// kernel's receive time of the first announcement, and the agent's
	// own phase timings (none from a build without a history).
	for w, way := range ways {
		if len(wire[w]) > 0 {
			report(b, way.name+"first-garp-wire", wire[w])
		}
		if len(inPresent[w]) > 0 {
			report(b, way.name+"agent-vips-present", inPresent[w])
			report(b, way.name+"agent-first-announcement", inAnnounced[w])
		}
	}
}

// historyPhases reads the MASTER transitions' phase timings from the
// failover history in stateDir.
func historyPhases(b *testing.B, stateDir string) (vipsPresent, firstAnnouncement []time.Duration) {
	ev, _, err := journal.Read(stateDir, journal.Filter{})
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ev {
		if e.Kind == journal.KindTransition && e.To == vocab.StateMaster {
			vipsPresent = append(vipsPresent, e.VIPsPresent)
			firstAnnouncement = append(firstAnnouncement, e.FirstAnnouncement)
		}
	}
	return vipsPresent, firstAnnouncement
}

// masterCycle is the measured step of the failover benchmarks: MASTER
// into the FIFO, then BACKUP once the VIP is there, each waited for.
type masterCycle struct {
	fifo   *os.File
	events <-chan netlink.AddrUpdate
	// frames are the announcements captured on the peer; nil when they
	// are not measured.
	frames <-chan frameSeen
	// pause lets the agent settle after the VIP is removed.
	pause time.Duration
	// label prefixes the failures, logs adds the agent's output to them.
	label string
	logs  func() string
}

// cycleTimes are one cycle's delays from the MASTER line: to the VIP's
// netlink event and to its first gratuitous ARP, as read and as the
// peer's kernel received it (zero when frames is nil).
type cycleTimes struct{ present, announced, wire time.Duration }

// run measures transition i. atMaster, when set, runs right after the
// MASTER line is written, with the time it was written.
func (c masterCycle) run(b *testing.B, i int, atMaster func(t0 time.Time)) cycleTimes {
	var m cycleTimes
	if c.frames != nil {
		drainFrames(c.frames)
	}
	t0 := time.Now()
	if _, err := c.fifo.WriteString("INSTANCE \"VI_1\" MASTER 100\n"); err != nil {
		b.Fatalf("%stransition %d: %v", c.label, i, err)
	}
	if atMaster != nil {
		atMaster(t0)
	}
	at, ok := waitAddr(c.events, vip, true, 5*time.Second)
	if !ok {
		b.Fatalf("%stransition %d: VIP not added\n%s", c.label, i, c.logs())
	}
	m.present = at.Sub(t0)
	if c.frames != nil {
		fr, ok := firstFrameSeen(c.frames, vip, 5*time.Second)
		if !ok {
			b.Fatalf("%stransition %d: no announcement", c.label, i)
		}
		m.announced = fr.at.Sub(t0)
		if !fr.wire.IsZero() {
			m.wire = fr.wire.Sub(t0)
		}
	}
	if _, err := c.fifo.WriteString("INSTANCE \"VI_1\" BACKUP 100\n"); err != nil {
		b.Fatalf("%stransition %d: %v", c.label, i, err)
	}
	if _, ok := waitAddr(c.events, vip, false, 5*time.Second); !ok {
		b.Fatalf("%stransition %d: VIP not removed", c.label, i)
	}
	time.Sleep(c.pause)
	return m
}

func drainFrames(ch <-chan frameSeen) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func firstFrameSeen(ch <-chan frameSeen, want netip.Addr, timeout time.Duration) (frameSeen, bool) {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case f := <-ch:
			if f.vip == want {
				return f, true
			}
		case <-tm.C:
			return frameSeen{}, false
		}
	}
}

func report(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(us(percentile(d, 0.5)), name+"-p50-µs")
	b.ReportMetric(us(percentile(d, 0.99)), name+"-p99-µs")
	b.ReportMetric(us(percentile(d, 1)), name+"-max-µs")
	fmt.Fprintf(os.Stderr, "%-24s n=%d p50=%s p99=%s max=%s\n", name, len(d), percentile(d, 0.5), percentile(d, 0.99), percentile(d, 1))
}

// BenchmarkCore64VIPs measures the time from the MASTER line to the first
// announcement of the last of 64 VIPs.
func BenchmarkCore64VIPs(b *testing.B) {
	const rounds = 30
	c := newCoreRig(b)
	var vips []string
	want := map[netip.Addr]bool{}
	for i := 1; i <= 64; i++ {
		vips = append(vips, fmt.Sprintf("%q", fmt.Sprintf("198.18.1.%d/24", i)))
		want[netip.MustParseAddr(fmt.Sprintf("198.18.1.%d", i))] = true
	}
	a := newAgent(b, c.rig, c.node, `[[instance]]
name = "VI_1"
interface = "eth0"
vips = [`+strings.Join(vips, ", ")+`]
garp_count = 1
`).quiet()
	a.start()
	frames := captureGARPs(arpCapture(b, c.rig.Name(c.peer), "eth0"))
	h := handleIn(b, c.rig.Name(c.node))
	f, err := os.OpenFile(a.FIFO, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var last []time.Duration
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		drainFrames(frames)
		seen := map[netip.Addr]bool{}
		t0 := time.Now()
		if _, err := f.WriteString("INSTANCE \"VI_1\" MASTER 100\n"); err != nil {
			b.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
		for len(seen) < len(want) {
			select {
			case fr := <-frames:
				if want[fr.vip] && !seen[fr.vip] {
					seen[fr.vip] = true
					if len(seen) == len(want) {
						last = append(last, fr.at.Sub(t0))
					}
				}
			case <-deadline:
				b.Fatalf("round %d: only %d of 64 VIPs announced\n%s", i, len(seen), a.logs())
			}
		}
		// The announcements go out before the addresses are added: wait
		// for the last address, or BACKUP and the next MASTER could
		// reach the actor together and coalesce into no transition.
		eventually(b, "VIPs added", func() bool {
			ok, _ := hasAddr(h, "eth0", netip.MustParseAddr("198.18.1.64"))
			return ok
		})
		if _, err := f.WriteString("INSTANCE \"VI_1\" BACKUP 100\n"); err != nil {
			b.Fatal(err)
		}
		eventually(b, "VIPs removed", func() bool {
			ok, _ := hasAddr(h, "eth0", netip.MustParseAddr("198.18.1.64"))
			return !ok
		})
	}
	b.StopTimer()
	report(b, "last-of-64-first-garp", last)
}

// BenchmarkCoreIdleRSS reports the resident memory of an idle daemon.
func BenchmarkCoreIdleRSS(b *testing.B) {
	c := newCoreRig(b)
	a := newAgent(b, c.rig, c.node, coreInstance).quiet()
	a.start()
	a.write(`INSTANCE "VI_1" MASTER 100`)
	time.Sleep(2 * time.Second)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.Proc.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			b.ReportMetric(float64(kb)/1024, "idle-rss-MiB")
			fmt.Fprintf(os.Stderr, "idle RSS %.1f MiB\n", float64(kb)/1024)
		}
	}
}

// BenchmarkCommandLatency measures "havip-agent notify" and "havip-agent
// check" from exec to exit against a running daemon: keepalived waits for
// notify programs and vrrp_scripts, so both must be quick.
func BenchmarkCommandLatency(b *testing.B) {
	const runs = 50
	c := newCoreRig(b)
	a := newAgent(b, c.rig, c.node, coreInstance+`
[[check]]
name = "ok"
type = "exec"
command = ["/bin/true"]
interval = "1s"
timeout = "500ms"
`)
	a.start()
	bin := binary(b, "havip-agent")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"notify", []string{"notify", "-config", a.Config, "INSTANCE", "VI_1", "BACKUP", "100"}},
		{"check", []string{"check", "-config", a.Config, "ok"}},
	} {
		var d []time.Duration
		for i := 0; i < runs; i++ {
			t0 := time.Now()
			cmd := exec.Command(bin, tc.args...)
			if err := cmd.Run(); err != nil && tc.name == "notify" {
				b.Fatalf("%s: %v", tc.name, err)
			}
			d = append(d, time.Since(t0))
		}
		report(b, tc.name+"-command", d)
	}
}

// BenchmarkCoreRestore measures, over 50 external deletes of the VIP
// while MASTER (what "ip addr flush" or a network manager does), the time
// until the agent has put it back.
func BenchmarkCoreRestore(b *testing.B) {
	const rounds = 50
	c := newCoreRig(b)
	a := newAgent(b, c.rig, c.node, coreInstance).quiet()
	a.start()
	events := addrEvents(b, c.rig.Name(c.node))
	h := handleIn(b, c.rig.Name(c.node))
	a.write(`INSTANCE "VI_1" MASTER 100`)
	if _, ok := waitAddr(events, vip, true, 5*time.Second); !ok {
		b.Fatal("VIP not added")
	}
	link, err := h.LinkByName("eth0")
	if err != nil {
		b.Fatal(err)
	}
	addr, err := netlink.ParseAddr("198.18.0.100/24")
	if err != nil {
		b.Fatal(err)
	}
	var restored []time.Duration
	for i := 0; i < rounds; i++ {
		t0 := time.Now()
		if err := h.AddrDel(link, addr); err != nil {
			b.Fatal(err)
		}
		at, ok := waitAddr(events, vip, true, 5*time.Second)
		if !ok {
			b.Fatalf("round %d: VIP not restored", i)
		}
		restored = append(restored, at.Sub(t0))
		time.Sleep(5 * time.Millisecond)
	}
	report(b, "external-delete-restored", restored)
}
