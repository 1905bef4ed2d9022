package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/agent/netif"
	"golang.org/x/sys/unix"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	src := `[agent]
state_dir = "` + dir + `/state"
socket = "` + dir + `/agent.sock"
[keepalived]
fifo = "` + dir + `/k.fifo"
pid_file = ""
[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
garp_count = 1
[[instance]]
name = "G1"
kind = "group"
interface = "eth0"
vips = ["198.18.0.101/24"]
garp_count = 1
`
	cfg, err := config.Parse(filepath.Join(dir, "c.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runDaemon(t *testing.T, cfg *config.Config, net *fakeNet) (*Daemon, func()) {
	t.Helper()
	ready := make(chan struct{})
	d, err := New(Options{Config: cfg, Logger: discard(), Network: net, Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon not ready")
	}
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return d, stop
}

func TestDaemonBacklogActsOnLatestOnly(t *testing.T) {
	cfg := testConfig(t)
	if err := unix.Mkfifo(cfg.Keepalived.FIFO, 0o600); err != nil {
		t.Fatal(err)
	}
	// keepalived holds the pipe open and writes while the agent is down.
	w, err := os.OpenFile(cfg.Keepalived.FIFO, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("INSTANCE \"VI_1\" MASTER 100\nINSTANCE \"VI_1\" BACKUP 100\nINSTANCE \"VI_1\" MASTER 100\n" +
		"GROUP \"G1\" MASTER 100\nGROUP \"G1\" FAULT 0\nVS \"x\" UP\nINSTANCE \"nope\" MASTER 1\n\xff\xfe\n"); err != nil {
		t.Fatal(err)
	}
	net := newFakeNet("eth0")
	d, _ := runDaemon(t, cfg, net)
	if !eventually(func() bool { return net.count("announce 198.18.0.100") == 1 }) {
		t.Fatalf("VI_1 not MASTER: %v", net.opsCopy())
	}
	if n := net.count("add 198.18.0.100/24"); n != 1 {
		t.Errorf("VI_1 added %d times, want once (no dance through BACKUP): %v", n, net.opsCopy())
	}
	if n := net.count("add 198.18.0.101/24"); n != 0 {
		t.Errorf("G1 acted on an intermediate MASTER: %v", net.opsCopy())
	}
	s := d.status()
	for _, r := range []string{"not_vrrp", "unknown_instance", "invalid_utf8"} {
		if s.IgnoredLines[r] != 1 {
			t.Errorf("ignored[%s] = %d, want 1 (all: %v)", r, s.IgnoredLines[r], s.IgnoredLines)
		}
	}
	if !eventually(func() bool { return d.status().Instances[1].State == StateFault }) {
		t.Errorf("G1 state %s, want FAULT", d.status().Instances[1].State)
	}
	// The stream survives a writer going away and coming back.
	w.Close()
	w2, err := os.OpenFile(cfg.Keepalived.FIFO, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := w2.WriteString("INSTANCE \"VI_1\" BACKUP 100\n"); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return !net.has("eth0", vip4) }) {
		t.Fatalf("BACKUP after writer restart not applied: %v", net.opsCopy())
	}
}

func TestDaemonNotifyAndStatusOverSocket(t *testing.T) {
	cfg := testConfig(t)
	net := newFakeNet("eth0")
	_, _ = runDaemon(t, cfg, net)
	st, err := os.Stat(cfg.Agent.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("socket mode %o, want 600", got)
	}
	ctx := context.Background()
	_, err = control.Do(ctx, cfg.Agent.Socket, control.Request{Op: control.OpNotify, Args: []string{"INSTANCE", "VI_1", "MASTER", "100"}})
	if os.Geteuid() != 0 {
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("non-root notify: got %v, want permission denied", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return net.has("eth0", vip4) }) {
		t.Fatal("notify MASTER not applied")
	}
	if _, err := control.Do(ctx, cfg.Agent.Socket, control.Request{Op: control.OpNotify, Args: []string{"INSTANCE", "VI_9", "MASTER"}}); err == nil {
		t.Error("notify for an unknown instance succeeded")
	}
	if _, err := control.Do(ctx, cfg.Agent.Socket, control.Request{Op: control.OpNotify, Args: []string{"INSTANCE", "VI_1"}}); err == nil {
		t.Error("malformed notify succeeded")
	}
	resp, err := control.Do(ctx, cfg.Agent.Socket, control.Request{Op: control.OpStatus})
	if err != nil || !strings.Contains(string(resp.Status), `"state":"MASTER"`) {
		t.Errorf("status: %s %v", resp.Status, err)
	}
}

// Issue 11, item 5: a second daemon opened and drained the FIFO before it
// found the first one, eating a MASTER line. It must stop before it
// opens anything, at the state directory's lock.
func TestDaemonSecondInstanceRefused(t *testing.T) {
	cfg := testConfig(t)
	_, _ = runDaemon(t, cfg, newFakeNet("eth0"))
	d2, err := New(Options{Config: cfg, Logger: discard(), Network: newFakeNet("eth0")})
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "lock") || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second daemon: got %v, %v; want ErrAlreadyRunning naming the lock and the pid", d2, err)
	}
}

func TestDaemonUnreachable(t *testing.T) {
	_, err := control.Do(context.Background(), filepath.Join(t.TempDir(), "none.sock"), control.Request{Op: control.OpStatus})
	if !errors.Is(err, control.ErrUnreachable) {
		t.Errorf("got %v, want ErrUnreachable", err)
	}
}

func TestDaemonOnStopRelease(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agent.OnStop = "release"
	net := newFakeNet("eth0")
	d, stop := runDaemon(t, cfg, net)
	if err := d.Notify([]string{"INSTANCE", "VI_1", "MASTER"}); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return net.has("eth0", vip4) }) {
		t.Fatal("not added")
	}
	stop()
	if net.has("eth0", vip4) {
		t.Error("on_stop = release kept the VIP")
	}
}

// Regression (issue 7, scenario 4): keepalived restarted after its FIFO
// was removed creates a new one; the agent kept reading the old pipe and
// missed every transition after.
func TestDaemonFIFORecreated(t *testing.T) {
	old := fifoCheckEvery
	fifoCheckEvery = 20 * time.Millisecond
	t.Cleanup(func() { fifoCheckEvery = old })
	cfg := testConfig(t)
	net := newFakeNet("eth0")
	runDaemon(t, cfg, net)
	if err := os.Remove(cfg.Keepalived.FIFO); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(cfg.Keepalived.FIFO, 0o600); err != nil {
		t.Fatal(err)
	}
	// keepalived opens the new FIFO for writing and keeps it open.
	w, err := os.OpenFile(cfg.Keepalived.FIFO, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("INSTANCE \"VI_1\" MASTER 100\n"); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return net.has("eth0", vip4) }) {
		t.Fatalf("MASTER written into the recreated FIFO not applied: %v", net.opsCopy())
	}
}

// Network changes reach the daemon through its Network, never the host's netlink: a VIP taken
// off the interface behind a MASTER's back is put back, and a link that went away is forgotten
// (handle and sockets) before anything acts on it.
func TestDaemonNetworkChanges(t *testing.T) {
	cfg := testConfig(t)
	if err := unix.Mkfifo(cfg.Keepalived.FIFO, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(cfg.Keepalived.FIFO, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	net := newFakeNet("eth0")
	_, _ = runDaemon(t, cfg, net)
	if _, err := w.WriteString("INSTANCE \"VI_1\" MASTER 100\n"); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return net.has("eth0", vip4) }) {
		t.Fatalf("VI_1 not MASTER: %v", net.opsCopy())
	}
	net.external("eth0", vip4, false)
	net.changes <- netif.Change{Interface: "eth0", Addr: vip4.Addr()}
	if !eventually(func() bool { return net.count("add 198.18.0.100/24") == 2 && net.has("eth0", vip4) }) {
		t.Fatalf("the removed VIP was not put back: %v", net.opsCopy())
	}
	net.changes <- netif.Change{Interface: "eth0"}
	if !eventually(func() bool {
		net.mu.Lock()
		defer net.mu.Unlock()
		return slices.Contains(net.forgotten, "eth0 gone=true")
	}) {
		t.Fatal("a link that went away was not forgotten")
	}
}
