package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/netns"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// build compiles the package pkg of the module into dir.
func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join("..", "..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v: %s", pkg, err, b)
	}
	return out
}

var timelineLine = regexp.MustCompile(`^\s+([+-]\d+\.\d) ms  `)

// TestIntegrationDemo runs "make demo"'s program once in its short mode:
// it must end with rc 0, leave no namespace behind, and print both
// faults' timelines in time order with the lines a reader looks for.
func TestIntegrationDemo(t *testing.T) {
	netns.Require(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed (apt-get install keepalived)")
		}
		t.Skip("keepalived is not installed")
	}
	dir := t.TempDir()
	agent, emu := build(t, dir, "./cmd/havip-agent"), build(t, dir, "./cmd/bce-emulator")
	demo := build(t, dir, "./e2e/cmd/havip-demo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demo, "-short", "-agent", agent, "-emulator", emu)
	b, err := cmd.CombinedOutput()
	out := string(b)
	t.Logf("demo output:\n%s", out)
	if err != nil {
		t.Fatalf("havip-demo: %v", err)
	}
	for _, want := range []string{
		"=== fault 1: n1 cut off the network (its switch port down)",
		"=== fault 2: graceful stop of n1's keepalived (SIGTERM)",
		"n1's switch port down",
		"SIGTERM to n1's keepalived",
		"VIP gone from n1",
		"VIP on n2",
		"n2: agent goes MASTER",
		"n2's first gratuitous ARP on the wire",
		"n2's first cloud request",
		"cloud: route switched n1 -> n2",
		"cloud: HAVIP master n1 -> n2",
		"first ping reply from n2: the client is served by the new MASTER",
		"=> client served by n2 after",
		"n1 MASTER again (preemption)",
		"torn down: no namespace, process or file left",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(out, "first ping reply from n2"); n != 2 {
		t.Errorf("%d faults served by n2, want 2", n)
	}
	// Each fault's timeline is in time order.
	for i, block := range strings.Split(out, "=== fault")[1:] {
		last := -1e9
		for _, l := range strings.Split(block, "\n") {
			m := timelineLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			if v < last {
				t.Errorf("fault %d: %q out of time order (after %+.1f ms)", i+1, l, last)
			}
			last = v
		}
	}
}

// TestKeepalivedConf checks the demo's keepalived.conf with "keepalived
// -t": valid, and without a warning (a rounded advert_int, a missing VIP).
func TestKeepalivedConf(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed (apt-get install keepalived)")
		}
		t.Skip("keepalived is not installed")
	}
	dir := t.TempDir()
	for _, preempt := range []bool{true, false} {
		n := &rig.Node{Name: "n1", IP: "198.18.0.11", Peer: "198.18.0.12", Dir: dir}
		conf := keepalivedConf(n, 150, preempt)
		for _, want := range []string{"vrrp_version 3", "advert_int 0.2\n", rig.VIP + "/24 dev eth0"} {
			if !strings.Contains(conf, want) {
				t.Errorf("keepalived.conf lacks %q:\n%s", want, conf)
			}
		}
		if got := strings.Contains(conf, "nopreempt"); got == preempt {
			t.Errorf("preempt %v: nopreempt present = %v", preempt, got)
		}
		path := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("keepalived", "-t", "-f", path).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("keepalived -t: %v: %s\n%s", err, out, conf)
		}
	}
}
