package hooks

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// An exec hook runs at a lower CPU priority than the agent (niceness
// execNice above the agent's), and so does what it starts: on a node
// with few CPUs a hook program that runs right after a transition must
// not hold up the next one. The agent's own priority is left as it was.
// The priority is lowered once the program has started (Go cannot do it
// between fork and exec), so the program looks after a moment.
func TestExecRunsNiced(t *testing.T) {
	before, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "nice")
	// sh -c starts nice as a child: it reports the niceness it inherited.
	r := newExecRunner(t, Options{}, Hook{Name: "nice", Type: TypeExec, Argv: []string{"/bin/sh", "-c", "sleep 0.2; nice > " + out}, Timeout: time.Minute})
	r.Fire(Payload{Event: KindTransition, Instance: "VI_1", To: StateMaster, Generation: 1})
	closeRunner(t, r)
	if st := r.Status()[0]; st.Last == nil || st.Last.Result != ResultOK {
		t.Fatalf("run: %+v", st.Last)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := strconv.Atoi(strings.TrimSpace(string(b)))
	// Getpriority answers 20 - nice.
	agentNice := 20 - before
	if err != nil || got != min(agentNice+execNice, 19) {
		t.Errorf("the hook's child ran at niceness %q, want %d (the agent's %d + %d)", b, agentNice+execNice, agentNice, execNice)
	}
	if after, _ := unix.Getpriority(unix.PRIO_PROCESS, 0); after != before {
		t.Errorf("the agent's own priority changed: %d, was %d", after, before)
	}
}
