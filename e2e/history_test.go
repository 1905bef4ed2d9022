package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/journal"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// TestIntegrationHistoryAfterSIGKILL: a failover with the cloud (n1 takes
// the HAVIP and the route back from n2), then a burst of transitions,
// and n1's agent SIGKILLed in the middle of it. "havip-agent history"
// reads the journal without the daemon and shows the failover: the
// transition with its phase timings, the route switch with its request id
// and clientToken, the confirmations. A SIGKILL cannot cut a write(2) of
// one line short, but a power cut can, so the test then cuts the last line
// in half: history skips it and says so, and the restarted agent
// terminates it, notes it in the journal and appends on a line of its own.
func TestIntegrationHistoryAfterSIGKILL(t *testing.T) {
	h := newHARig(t)
	e := startEmulator(t, h)
	n1, n2 := cloudAgent(t, h, e, "n1"), cloudAgent(t, h, e, "n2")
	n1.write(`INSTANCE "VI_1" BACKUP 100`)
	n2.write(`INSTANCE "VI_1" MASTER 100`)
	eventuallyFor(t, 20*time.Second, "the cloud at n2", func() bool {
		s := emuState(t, e)
		return rig.RouteHolder(s) == "i-n2" && rig.HAVIPMaster(s) == "i-n2"
	})
	n2.write(`INSTANCE "VI_1" BACKUP 100`)
	n1.write(`INSTANCE "VI_1" MASTER 100`)
	eventuallyFor(t, 20*time.Second, "the cloud back at n1", func() bool {
		s := emuState(t, e)
		return rig.RouteHolder(s) == "i-n1" && rig.HAVIPMaster(s) == "i-n1"
	})
	eventually(t, "n1's claims confirmed", func() bool {
		st := n1.status()
		for _, c := range st.Instances[0].Cloud {
			if !c.Owned || c.ConfirmedAfter == 0 {
				return false
			}
		}
		return true
	})

	// A burst of transitions without the cloud (BACKUP and FAULT), and the
	// agent killed while it writes them.
	f, err := os.OpenFile(n1.FIFO, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	hist := filepath.Join(n1.StateDir, "history.jsonl")
	before := fileSize(hist)
	for i := 0; i < 400; i++ {
		s := "BACKUP"
		if i%2 == 1 {
			s = "FAULT"
		}
		if _, err := f.WriteString(`INSTANCE "VI_1" ` + s + " 100\n"); err != nil {
			t.Fatal(err)
		}
		if i == 200 {
			// Mid-burst: the journal is being written.
			eventuallyFor(t, 5*time.Second, "the burst reaching the journal", func() bool { return fileSize(hist) > before })
			n1.kill()
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	f.Close()
	eventually(t, "n1's agent gone", n1.Proc.Exited)

	code, out, stderr := agentCmd(t, "history", "-config", n1.Config, "-since", "1h")
	if code != 0 {
		t.Fatalf("history after the SIGKILL: exit %d, %s", code, stderr)
	}
	for _, want := range []string{"BACKUP -> MASTER", "first announcement", "vips present",
		"cloud route/rt-rig/" + rig.Destination + " route.rule.switch 200", "request-id ", "token ",
		"cloud confirmed havip/havip-rig", "cloud confirmed route/rt-rig/" + rig.Destination, "MASTER -> BACKUP", "BACKUP -> FAULT"} {
		if !strings.Contains(out, want) {
			t.Errorf("history after the SIGKILL lacks %q", want)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	t.Logf("havip-agent history after the SIGKILL (%d lines; the failover's first lines):\n%s", len(lines), strings.Join(lines[:min(len(lines), 16)], "\n"))

	// The last line cut in half, as a power cut mid-write leaves it.
	size := fileSize(hist)
	if err := os.Truncate(hist, size-20); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = agentCmd(t, "history", "-config", n1.Config, "-n", "3")
	if code != 0 || !strings.Contains(stderr, "1 lines in "+n1.StateDir+" do not parse and were skipped") {
		t.Errorf("history with a torn last line: exit %d, stderr %q", code, stderr)
	}
	n1.start()
	n1.write(`INSTANCE "VI_1" MASTER 100`)
	eventually(t, "n1 MASTER after the restart", func() bool { return deathState(n1) == "MASTER" })
	n1.stop()
	code, out, stderr = agentCmd(t, "history", "-config", n1.Config, "-n", "6")
	t.Logf("havip-agent history -n 6 after the restart:\n%s%s", out, stderr)
	if code != 0 || !strings.Contains(out, "journal: the journal did not end with a newline: the agent stopped in the middle of a write") ||
		!strings.Contains(out, "FAULT -> MASTER") && !strings.Contains(out, "BACKUP -> MASTER") && !strings.Contains(out, "UNKNOWN -> MASTER") {
		t.Errorf("history after the restart: exit %d\n%s%s", code, out, stderr)
	}
	ev, skipped, err := journal.Read(n1.StateDir, journal.Filter{})
	if err != nil || skipped != 1 {
		t.Errorf("journal after the restart: %d skipped (the torn line), %v", skipped, err)
	}
	if last := ev[len(ev)-1]; last.Kind == journal.KindJournal {
		t.Errorf("nothing appended after the note: %+v", last)
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
