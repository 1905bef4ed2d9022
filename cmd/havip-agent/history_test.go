package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/journal"
)

// historyNow is the time the history commands of the tests run at.
var historyNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// writeHistory writes, with the journal package as the daemon would, a
// failover of VI_1 two hours ago and one of VI_2 a minute ago, plus a torn
// line, into the state directory of a new configuration, and returns the
// configuration's path. No daemon runs.
func writeHistory(t *testing.T) string {
	t.Helper()
	cfg := writeConfig(t, goodConfig)
	dir := filepath.Join(filepath.Dir(cfg), "state")
	old, recent := historyNow.Add(-2*time.Hour), historyNow.Add(-time.Minute)
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []journal.Event{
		{Time: old, Instance: "VI_1", Kind: journal.KindTransition, From: "BACKUP", To: "MASTER", Generation: 4, Source: "fifo", VIPsPresent: 300 * time.Microsecond},
		{Time: old.Add(12 * time.Millisecond), Instance: "VI_1", Kind: journal.KindCloudCall, Generation: 4, Resource: "havip/havip-abc", Operation: "attach",
			Status: 200, RequestID: "req-1", ClientToken: "tok-1"},
		{Time: recent, Instance: "VI_2", Kind: journal.KindTransition, From: "MASTER", To: "BACKUP", Generation: 9, Source: "notify"},
	} {
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "history.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"time":"20`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runHistory(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cmdHistory(args, &out, &errb, historyNow)
	return code, out.String(), errb.String()
}

func TestHistory(t *testing.T) {
	cfg := writeHistory(t)
	const (
		vi1     = "2030-01-01T10:00:00.000Z  VI_1  BACKUP -> MASTER generation 4 (fifo)\n"
		vi1VIP  = "                  +0.3ms  VI_1  vips present\n"
		vi1Call = "                   +12ms  VI_1  cloud havip/havip-abc attach 200 request-id req-1 token tok-1\n"
		vi2     = "2030-01-01T11:59:00.000Z  VI_2  MASTER -> BACKUP generation 9 (notify)\n"
	)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "all", args: nil, want: vi1 + vi1VIP + vi1Call + vi2},
		{name: "instance", args: []string{"VI_1"}, want: vi1 + vi1VIP + vi1Call},
		{name: "flags after the instance", args: []string{"VI_1", "-n", "1"}, want: "2030-01-01T10:00:00.012Z  VI_1  cloud havip/havip-abc attach 200 generation 4 request-id req-1 token tok-1\n"},
		{name: "last", args: []string{"-n", "2"}, want: "2030-01-01T10:00:00.012Z  VI_1  cloud havip/havip-abc attach 200 generation 4 request-id req-1 token tok-1\n" + vi2},
		{name: "since", args: []string{"-since", "1h"}, want: vi2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runHistory(append([]string{"-config", cfg}, tt.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if out != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", out, tt.want)
			}
			if !strings.Contains(errOut, "1 lines in ") || !strings.Contains(errOut, "skipped") {
				t.Errorf("stderr %q does not report the torn line", errOut)
			}
		})
	}
}

func TestHistoryJSON(t *testing.T) {
	cfg := writeHistory(t)
	code, out, errOut := runHistory("-config", cfg, "-json", "VI_1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out)
	}
	var e journal.Event
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Kind != journal.KindCloudCall || e.RequestID != "req-1" || e.ClientToken != "tok-1" || e.Version != journal.Version {
		t.Errorf("got %+v", e)
	}
}

// TestHistoryThroughRun: the command is reachable as "havip-agent history"
// and reads only state_dir: the rest of the file may be broken.
func TestHistoryThroughRun(t *testing.T) {
	cfg := writeHistory(t)
	src, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(src, "[bogus\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("history", "-config", cfg, "VI_2")
	if code != exitOK || !strings.Contains(out, "VI_2  MASTER -> BACKUP") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestHistoryErrors(t *testing.T) {
	cfg := writeHistory(t)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{name: "n not a number", args: []string{"-n", "x"}, code: exitUsage, want: `invalid value "x" for flag -n`},
		{name: "n negative", args: []string{"-n", "-1"}, code: exitUsage, want: "history: -n -1: want 0 (all) or more"},
		{name: "since not a duration", args: []string{"-since", "yesterday"}, code: exitUsage, want: `invalid value "yesterday" for flag -since`},
		{name: "since negative", args: []string{"-since", "-1h"}, code: exitUsage, want: "history: -since -1h0m0s: want a positive duration"},
		{name: "unknown flag", args: []string{"-follow"}, code: exitUsage, want: "flag provided but not defined: -follow"},
		{name: "bad flag after the instance", args: []string{"VI_1", "-n", "x"}, code: exitUsage, want: `invalid value "x" for flag -n`},
		{name: "two instances", args: []string{"VI_1", "VI_2"}, code: exitUsage, want: `history takes at most one INSTANCE, got "VI_1" and "VI_2"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runHistory(append([]string{"-config", cfg}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}

	// A state directory that is not there: the error names it.
	missing := writeConfig(t, "[agent]\nstate_dir = \"DIR/nowhere\"\n")
	dir := filepath.Join(filepath.Dir(missing), "nowhere")
	if code, _, errOut := runHistory("-config", missing); code != exitFail || !strings.Contains(errOut, dir+": no such file or directory") || !strings.Contains(errOut, "no journal: the daemon has not run with state_dir "+dir+" (from "+missing+")") {
		t.Errorf("missing state_dir: exit %d, stderr %q", code, errOut)
	}
	// A state_dir the configuration gets wrong: file:line.
	bad := writeConfig(t, "[agent]\nstate_dir = \"relative\"\n")
	if code, _, errOut := runHistory("-config", bad); code != exitFail || !strings.Contains(errOut, bad+":2: agent.state_dir: \"relative\" is not an absolute path") {
		t.Errorf("relative state_dir: exit %d, stderr %q", code, errOut)
	}
	// An empty journal: nothing on stdout, a note on stderr.
	empty := writeConfig(t, "[agent]\nstate_dir = \"DIR\"\n")
	if code, out, errOut := runHistory("-config", empty, "-json"); code != exitOK || out != "" {
		t.Errorf("empty journal: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, errOut := runHistory("-config", empty); code != exitOK || out != "" || !strings.Contains(errOut, "no events in "+filepath.Dir(empty)) {
		t.Errorf("empty journal: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
