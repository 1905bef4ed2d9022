package agent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
)

// reloadConfig is testConfig's file with body in place of its instances.
func reloadConfig(t *testing.T, base *config.Config, body string) *config.Config {
	t.Helper()
	dir := filepath.Dir(base.Agent.StateDir)
	src := `[agent]
state_dir = "` + dir + `/state"
socket = "` + dir + `/agent.sock"
[keepalived]
fifo = "` + dir + `/k.fifo"
pid_file = ""
[cloud]
provider = "bce"
instance_id = "i-self"
credentials = "` + dir + `/credentials.toml"
endpoint = "http://127.0.0.1:1"
eip_endpoint = "http://127.0.0.1:1"
reconcile_interval = "1m"
reclaim_max_backoff = "10m"
` + body
	cfg, err := config.Parse(filepath.Join(dir, "c.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const twoInstances = `[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
garp_count = 1
havip = "havip-1"
[[instance]]
name = "G1"
kind = "group"
interface = "eth0"
vips = ["198.18.0.101/24"]
garp_count = 1
`

func runCloudDaemon(t *testing.T, cfg *config.Config, net *fakeNet, p *fakeCloud) *Daemon {
	t.Helper()
	ready := make(chan struct{})
	d, err := New(Options{Config: cfg, Logger: discard(), Network: net, Cloud: p, Ready: func() { close(ready) }, BootID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	<-ready
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// Item 6: a reload adds, changes and removes instances and VIPs without
// dropping a MASTER's addresses that stay configured, and claims nothing
// for cloud resources that did not change.
func TestReloadChangesInstancesInPlace(t *testing.T) {
	base := reloadConfig(t, testConfig(t), twoInstances)
	net := newFakeNet("eth0")
	p := &fakeCloud{owner: "i-other"}
	d := runCloudDaemon(t, base, net, p)
	if err := d.Notify([]string{"INSTANCE", "VI_1", "MASTER", "100"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Notify([]string{"GROUP", "G1", "MASTER", "100"}); err != nil {
		t.Fatal(err)
	}
	vip100, vip101 := vip4, mustPrefix("198.18.0.101/24")
	if !eventually(func() bool { return net.has("eth0", vip100) && net.has("eth0", vip101) && p.claimCount() == 1 }) {
		t.Fatalf("not MASTER: %v, claims %d", net.opsCopy(), p.claimCount())
	}
	gen := d.table().byKey["instance/VI_1"].snapshot().gen
	claims := p.claimCount()
	before := len(net.opsCopy())

	// VI_1 gains a VIP (its havip unchanged), G1 goes, VI_3 comes.
	next := reloadConfig(t, base, `[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24", "198.18.0.102/24"]
garp_count = 1
havip = "havip-1"
[[instance]]
name = "VI_3"
interface = "eth0"
vips = ["198.18.0.103/24"]
`)
	if err := d.ApplyConfig(next); err != nil {
		t.Fatal(err)
	}
	vip102 := mustPrefix("198.18.0.102/24")
	if !eventually(func() bool { return net.has("eth0", vip102) && net.count("announce 198.18.0.102") >= 1 }) {
		t.Fatalf("added VIP not put on: %v", net.opsCopy())
	}
	if !eventually(func() bool { return !net.has("eth0", vip101) }) {
		t.Error("the removed group's VIP stayed")
	}
	for _, op := range net.opsCopy()[before:] {
		if op == "del 198.18.0.100/24" {
			t.Errorf("a VIP that stays configured was removed: %v", net.opsCopy()[before:])
		}
	}
	in := d.table().byKey["instance/VI_1"]
	if s := in.snapshot(); s.state != StateMaster || s.gen != gen {
		t.Errorf("VI_1 after reload: %s generation %d, want MASTER %d", s.state, s.gen, gen)
	}
	if _, ok := d.table().byKey["group/G1"]; ok {
		t.Error("G1 still in the table")
	}
	if s := d.table().byKey["instance/VI_3"].snapshot(); s.state != StateUnknown {
		t.Errorf("VI_3 %s, want UNKNOWN", s.state)
	}
	time.Sleep(50 * time.Millisecond)
	if n := p.claimCount(); n != claims {
		t.Errorf("%d claims after a reload that did not change the HAVIP", n-claims)
	}
	// Inputs reach the new actors.
	if err := d.Notify([]string{"INSTANCE", "VI_1", "BACKUP", "100"}); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return !net.has("eth0", vip100) && !net.has("eth0", vip102) }) {
		t.Errorf("BACKUP after reload kept VIPs: %v", net.opsCopy())
	}
	if st := d.reloadStatus(); !st.OK || st.Count != 1 {
		t.Errorf("reload status %+v", st)
	}
}

// A VIP dropped from a MASTER's instance leaves the interface; a changed
// cloud resource is claimed by a new cloud side.
func TestReloadDropsVIPAndClaimsChangedResource(t *testing.T) {
	base := reloadConfig(t, testConfig(t), twoInstances)
	net := newFakeNet("eth0")
	p := &fakeCloud{owner: "i-other"}
	d := runCloudDaemon(t, base, net, p)
	if err := d.Notify([]string{"INSTANCE", "VI_1", "MASTER", "100"}); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return net.has("eth0", vip4) && p.claimCount() == 1 }) {
		t.Fatal("not MASTER")
	}
	next := reloadConfig(t, base, strings.Replace(strings.Replace(twoInstances, `vips = ["198.18.0.100/24"]`, `vips = ["198.18.0.104/24"]`, 1), "havip-1", "havip-2", 1))
	if err := d.ApplyConfig(next); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return !net.has("eth0", vip4) && net.has("eth0", mustPrefix("198.18.0.104/24")) }) {
		t.Errorf("VIPs after reload: %v", net.opsCopy())
	}
	if !eventually(func() bool { return p.claimCount() == 2 }) {
		t.Errorf("changed HAVIP not claimed: %d claims", p.claimCount())
	}
}

// An invalid file, or a change that needs a restart, is refused whole;
// the running configuration stays and the refusal is in the status.
func TestReloadRefusedKeepsRunning(t *testing.T) {
	base := reloadConfig(t, testConfig(t), twoInstances)
	net := newFakeNet("eth0")
	d := runCloudDaemon(t, base, net, &fakeCloud{owner: "i-self"})
	tab := d.table()
	bad := reloadConfig(t, base, twoInstances)
	bad.Agent.Socket += ".other"
	err := d.ApplyConfig(bad)
	if err == nil || !strings.Contains(err.Error(), "agent.socket") || !strings.Contains(err.Error(), "restart") {
		t.Errorf("socket change: %v", err)
	}
	if d.table() != tab {
		t.Error("refused reload changed the instances")
	}
	dir := filepath.Dir(base.Agent.StateDir)
	if err := os.WriteFile(filepath.Join(dir, "c.toml"), []byte("[agent]\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.loadConfig = config.Load
	err = d.Reload()
	if err == nil || !strings.Contains(err.Error(), "c.toml:2") {
		t.Errorf("invalid file: %v", err)
	}
	if st := d.reloadStatus(); st.OK || st.Count != 2 || !strings.Contains(st.Error, "c.toml:2") {
		t.Errorf("reload status %+v", st)
	}
	if d.table() != tab {
		t.Error("refused reload changed the instances")
	}
	s := d.status()
	if s.Reload == nil || s.Reload.OK {
		t.Errorf("status does not show the refused reload: %+v", s.Reload)
	}
}

// An unchanged file keeps every actor as it is.
func TestReloadUnchangedIsANoOp(t *testing.T) {
	base := reloadConfig(t, testConfig(t), twoInstances)
	net := newFakeNet("eth0")
	d := runCloudDaemon(t, base, net, &fakeCloud{owner: "i-self"})
	if err := d.Notify([]string{"INSTANCE", "VI_1", "MASTER", "100"}); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return net.has("eth0", vip4) }) {
		t.Fatal("not MASTER")
	}
	time.Sleep(20 * time.Millisecond)
	tab, ops := d.table(), len(net.opsCopy())
	if err := d.ApplyConfig(reloadConfig(t, base, twoInstances)); err != nil {
		t.Fatal(err)
	}
	for i, in := range d.table().instances {
		if in != tab.instances[i] {
			t.Errorf("instance %s replaced", in.cfg.Name)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if got := net.opsCopy()[ops:]; len(got) != 0 {
		t.Errorf("operations after an unchanged reload: %v", got)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Checks are part of a reload: a new set replaces the old one.
func TestReloadReplacesChecks(t *testing.T) {
	withCheck := func(name string) string {
		return twoInstances + `[[check]]
name = "` + name + `"
type = "tcp"
target = "127.0.0.1:1"
interval = "1s"
`
	}
	base := reloadConfig(t, testConfig(t), withCheck("web"))
	d := runCloudDaemon(t, base, newFakeNet("eth0"), &fakeCloud{owner: "i-self"})
	if _, err := d.Check("web"); err != nil {
		t.Fatal(err)
	}
	if err := d.ApplyConfig(reloadConfig(t, base, withCheck("db"))); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Check("web"); err == nil {
		t.Error("the removed check still answers")
	}
	if v, err := d.Check("db"); err != nil || v == "" {
		t.Errorf("the added check: %q %v", v, err)
	}
}
