package agent

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A reload that adds a drain_file writes it at once (0, or 1 for a drained
// instance), and one that changes the hooks sends the next events to the
// new hooks only; history settings need a restart.
func TestReloadDrainFileAndHooks(t *testing.T) {
	first, second := httptest.NewServer(&hookServer{}), httptest.NewServer(&hookServer{})
	defer first.Close()
	defer second.Close()
	base := testConfig(t)
	dir := filepath.Dir(base.Agent.StateDir)
	instance := `[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
garp_count = 1
havip = "havip-1"
`
	hook := func(url string) string { return "[[hook]]\nname = \"h\"\ntype = \"http\"\nurl = \"" + url + "\"\n" }
	cfg := reloadConfig(t, base, hook(first.URL)+instance)
	d, _ := runEventsDaemon(t, cfg, &scriptCloud{node: "i-self", owner: "i-peer"})
	if err := d.Notify([]string{"INSTANCE", "VI_1", "BACKUP", "100"}); err != nil {
		t.Fatal(err)
	}
	hs1, hs2 := first.Config.Handler.(*hookServer), second.Config.Handler.(*hookServer)
	if !eventually(func() bool { return len(hs1.events()) == 1 }) {
		t.Fatalf("first hook got %v", hs1.events())
	}
	drainFile := filepath.Join(dir, "track", "drain-VI_1")
	next := reloadConfig(t, base, hook(second.URL)+strings.Replace(instance, `havip = "havip-1"`, `havip = "havip-1"
drain_file = "`+drainFile+`"`, 1))
	if err := d.ApplyConfig(next); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(drainFile); err != nil || string(b) != "0\n" {
		t.Errorf("drain file after the reload: %q, %v", b, err)
	}
	if err := d.Notify([]string{"INSTANCE", "VI_1", "FAULT", "0"}); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return len(hs2.events()) == 1 }) {
		t.Fatalf("the new hook got %v", hs2.events())
	}
	if got := hs1.events(); len(got) != 1 {
		t.Errorf("the old hook got %v after the reload", got)
	}
	again := reloadConfig(t, base, hook(second.URL)+instance)
	again.Agent.HistoryKeep = 9
	if err := d.ApplyConfig(again); err == nil || !strings.Contains(err.Error(), "agent.history_keep") {
		t.Errorf("a change of history_keep: %v, want it to need a restart", err)
	}
}
