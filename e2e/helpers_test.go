package e2e

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/cloud/bce"
	"github.com/havip-agent/havip-agent/e2e/netns"
	"github.com/havip-agent/havip-agent/e2e/rig"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// binaries built once per test run, by name.
var bins struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

// binary builds cmd/NAME once and returns its path.
func binary(t testing.TB, name string) string {
	t.Helper()
	bins.mu.Lock()
	defer bins.mu.Unlock()
	if p, ok := bins.built[name]; ok {
		return p
	}
	if bins.dir == "" {
		d, err := os.MkdirTemp("", "havip-e2e-bin")
		if err != nil {
			t.Fatal(err)
		}
		bins.dir, bins.built = d, map[string]string{}
	}
	out := filepath.Join(bins.dir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v: %s", name, err, b)
	}
	bins.built[name] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// agentProc is a rig.Agent bound to a test.
type agentProc struct {
	*rig.Agent
	t testing.TB
}

// newAgent writes a configuration for namespace ns of r; body is appended
// after the [agent] and [keepalived] sections (no liveness watch).
func newAgent(t testing.TB, r *netns.Rig, ns, body string) *agentProc {
	t.Helper()
	return newAgentBin(t, r, ns, binary(t, "havip-agent"), body)
}

// newAgentBin is newAgent with another build of the agent (a baseline
// for side-by-side benchmarks).
func newAgentBin(t testing.TB, r *netns.Rig, ns, bin, body string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	a, err := rig.NewAgent(r, ns, dir, bin, rig.AgentBase(dir, "debug", "")+"\n"+body, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agentProc{a, t}
}

func (a *agentProc) start() {
	a.t.Helper()
	if err := a.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(a.stop)
}

func (a *agentProc) stop()        { a.Proc.Stop(os.Interrupt) }
func (a *agentProc) kill()        { a.Proc.Kill() }
func (a *agentProc) logs() string { return a.Proc.Output() }

func (a *agentProc) write(lines ...string) {
	a.t.Helper()
	if err := a.Write(lines...); err != nil {
		a.t.Fatal(err)
	}
}

func (a *agentProc) status() agent.Status {
	a.t.Helper()
	s, err := a.Status()
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

// quiet lowers the daemon's log level: benchmarks measure the agent, not
// its debug logging.
func (a *agentProc) quiet() *agentProc {
	b, err := os.ReadFile(a.Config)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := os.WriteFile(a.Config, []byte(strings.Replace(string(b), `log_level = "debug"`, `log_level = "info"`, 1)), 0o600); err != nil {
		a.t.Fatal(err)
	}
	return a
}

// newHARig builds the failover rig for a test; it is torn down by the
// test's cleanup, with the processes' output logged on failure.
func newHARig(t testing.TB) *rig.HA {
	t.Helper()
	netns.Require(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed (apt-get install keepalived)")
		}
		t.Skip("keepalived is not installed")
	}
	h, err := rig.NewHA(t.TempDir(), rig.Binaries{Agent: binary(t, "havip-agent"), Emulator: binary(t, "bce-emulator")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"n1", "n2"} {
				n := h.Nodes[name]
				if n.Keepalived != nil {
					t.Logf("--- %s keepalived (set HAVIP_E2E_DEBUG=1 for its log):\n%s", name, n.Keepalived.Output())
				}
				if n.Agent != nil && n.Agent.Proc != nil {
					t.Logf("--- %s agent:\n%s", name, n.Agent.Proc.Output())
				}
			}
		}
		h.Close()
	})
	return h
}

// nodeAgent writes and starts a node's agent with the given body after
// the base sections; watch turns on the liveness watch of the node's
// keepalived (only where keepalived runs).
func nodeAgent(t testing.TB, h *rig.HA, node string, watch bool, body string) *agentProc {
	t.Helper()
	n := h.Nodes[node]
	base := rig.AgentBase(n.Dir, "debug", "")
	if watch {
		base = n.AgentBase("debug")
	}
	a, err := n.WriteAgentConfig(base + "\n" + body)
	if err != nil {
		t.Fatal(err)
	}
	ap := &agentProc{a, t}
	ap.start()
	return ap
}

func startKeepalived(t testing.TB, n *rig.Node, conf string) {
	t.Helper()
	if err := n.StartKeepalived(conf, os.Getenv("HAVIP_E2E_DEBUG") != ""); err != nil {
		t.Fatal(err)
	}
}

func startEmulator(t testing.TB, h *rig.HA, args ...string) *rig.Emulator {
	t.Helper()
	return startEmulatorSeed(t, h, "", args...)
}

// startEmulatorSeed is startEmulator with a seed ("" for the rig's). When the test ends, every
// request in the emulator's log must be in the agent's API contract.
func startEmulatorSeed(t testing.TB, h *rig.HA, seed string, args ...string) *rig.Emulator {
	t.Helper()
	e, err := h.StartEmulator(seed, args...)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the rig's teardown, so it runs first, while the emulator still answers.
	t.Cleanup(func() { checkContract(t, e) })
	return e
}

// checkContract fails t for every request in the emulator's log that is not in the agent's API
// contract (cloud/bce/testdata/api.md): a request, query flag or body field the real API may not
// take. The log is bounded: it checks the newest entries.
func checkContract(t testing.TB, e *rig.Emulator) {
	t.Helper()
	l, err := e.Log()
	if err != nil {
		t.Errorf("contract check: reading the emulator's log: %v", err)
		return
	}
	bad := 0
	for _, r := range l.Requests {
		if _, err := bce.CheckRequest(r.Method, r.Path, r.Query, r.BodyFields); err != nil {
			if bad++; bad <= 10 {
				t.Errorf("request %d from %s: %v", r.Seq, r.Source, err)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%d requests outside the contract in all", bad)
	}
}

// handleIn opens a netlink handle inside a namespace, for reading
// addresses without shelling out on every sample.
func handleIn(t testing.TB, name string) *netlink.Handle {
	t.Helper()
	ns, err := vnetns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func hasAddr(h *netlink.Handle, ifname string, addr netip.Addr) (bool, error) {
	l, err := h.LinkByName(ifname)
	if err != nil {
		return false, err
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			return true, nil
		}
	}
	return false, nil
}

// arpCapture opens a raw ARP socket on ifname inside namespace ns.
func arpCapture(t testing.TB, ns, ifname string) *packet.Conn {
	t.Helper()
	var c *packet.Conn
	err := rig.InNamespace(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, 0x0806, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t testing.TB, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func sameNodes(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
