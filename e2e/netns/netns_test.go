package netns

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestIntegrationReapStale: a process that dies without its teardown
// leaves namespaces; the next one removes them.
func TestIntegrationReapStale(t *testing.T) {
	if os.Getenv("HAVIP_NETNS_HELPER") == "1" {
		r := New()
		if _, err := r.AddNS("a"); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("NS " + r.Name("a") + "\n")
		os.Exit(0) // no Close: as if killed
	}
	Require(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIntegrationReapStale$")
	cmd.Env = append(os.Environ(), "HAVIP_NETNS_HELPER=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	_, name, ok := strings.Cut(strings.TrimSpace(string(out)), "NS ")
	if !ok {
		t.Fatalf("helper printed %q", out)
	}
	t.Cleanup(func() { removeSpaces([]string{name}) })
	if !exists(t, name) {
		t.Fatalf("the helper's namespace %s is missing before the reap", name)
	}
	// A live owner's rig is left alone.
	mine := NewT(t)
	if _, err := mine.AddNS("b"); err != nil {
		t.Fatal(err)
	}
	reapStale()
	if exists(t, name) {
		t.Errorf("namespace %s of a dead process survived the reap", name)
	}
	if !exists(t, mine.Name("b")) {
		t.Errorf("namespace %s of this live process was reaped", mine.Name("b"))
	}
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	out, err := Run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}
