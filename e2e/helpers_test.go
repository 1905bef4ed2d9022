package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/e2e/netns"
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

// agentProc is a havip-agent daemon running in a namespace.
type agentProc struct {
	t      testing.TB
	rig    *netns.Rig
	ns     string
	dir    string
	config string
	socket string
	fifo   string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	logMu  *sync.Mutex
	done   chan struct{}
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// newAgent writes a configuration for namespace ns; body is appended after
// the [agent] and [keepalived] sections.
func newAgent(t testing.TB, rig *netns.Rig, ns, body string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	a := &agentProc{t: t, rig: rig, ns: ns, dir: dir, config: filepath.Join(dir, "havip-agent.toml"),
		socket: filepath.Join(dir, "agent.sock"), fifo: filepath.Join(dir, "keepalived.fifo"), log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	cfg := fmt.Sprintf(`[agent]
state_dir = %q
socket = %q
log_level = "debug"

[keepalived]
fifo = %q
pid_file = ""

%s`, filepath.Join(dir, "state"), a.socket, a.fifo, body)
	if err := os.WriteFile(a.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// start runs the daemon and waits until its socket answers.
func (a *agentProc) start() {
	a.t.Helper()
	a.cmd = a.rig.Command(a.ns, binary(a.t, "havip-agent"), "run", "-config", a.config)
	w := syncWriter{a.logMu, a.log}
	a.cmd.Stdout, a.cmd.Stderr = w, w
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(a.cmd, a.done)
	a.t.Cleanup(a.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := control.Do(ctx, a.socket, control.Request{Op: control.OpStatus})
		cancel()
		if err == nil {
			return
		}
		select {
		case <-a.done:
			a.t.Fatalf("agent exited: %s", a.logs())
		default:
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("agent not answering: %v\n%s", err, a.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (a *agentProc) logs() string {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.log.String()
}

// kill sends SIGKILL to the daemon (through ip netns exec, which execs it).
func (a *agentProc) kill() {
	a.cmd.Process.Kill()
	<-a.done
}

func (a *agentProc) stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.done:
		return
	default:
	}
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
	}
}

// write puts lines into the FIFO as keepalived would.
func (a *agentProc) write(lines ...string) {
	a.t.Helper()
	f, err := os.OpenFile(a.fifo, os.O_WRONLY, 0)
	if err != nil {
		a.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		a.t.Fatal(err)
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

// inNamespace runs f on a thread switched into namespace name; sockets
// created there stay in that namespace.
func inNamespace(name string, f func() error) error {
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
	defer vnetns.Set(orig)
	return f()
}

// arpCapture opens a raw ARP socket on ifname inside namespace ns.
func arpCapture(t testing.TB, ns, ifname string) *packet.Conn {
	t.Helper()
	var c *packet.Conn
	err := inNamespace(ns, func() error {
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

func replaceOnce(s, old, new string) string { return strings.Replace(s, old, new, 1) }

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

func statusOf(t testing.TB, a *agentProc) agent.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := control.Do(ctx, a.socket, control.Request{Op: control.OpStatus})
	if err != nil {
		t.Fatal(err)
	}
	var s agent.Status
	if err := json.Unmarshal(resp.Status, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// quiet lowers the daemon's log level: benchmarks measure the agent, not
// its debug logging.
func (a *agentProc) quiet() *agentProc {
	b, err := os.ReadFile(a.config)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := os.WriteFile(a.config, []byte(strings.Replace(string(b), `log_level = "debug"`, `log_level = "info"`, 1)), 0o600); err != nil {
		a.t.Fatal(err)
	}
	return a
}
