package journal

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A flag of its own: other packages' tests define -update.
var updateJournal = flag.Bool("update-journal", false, "rewrite testdata/*.golden")

// checkGolden compares got with testdata/name, rewriting it with
// -update-journal.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateJournal {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update-journal creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s (go test -update-journal rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

const ms = time.Millisecond

// failover is a failover of VI_1 to this node, with a route switched,
// a HAVIP attached after a retry, and a hook.
var failover = []Event{
	{Time: at(0), Instance: "VI_1", Kind: KindTransition, From: "BACKUP", To: "MASTER", Generation: 7, Source: "fifo",
		VIPsPresent: 300 * time.Microsecond, FirstAnnouncement: 450 * time.Microsecond, CloudRequestSent: 1200 * time.Microsecond},
	{Time: at(12 * ms), Instance: "VI_1", Kind: KindCloudCall, Generation: 7, Resource: "route/rt-1/0.0.0.0/0", Operation: "switchRouteHA",
		Status: 200, RequestID: "4f1e2d3c-aaaa-bbbb-cccc-0123456789ab", ClientToken: "havip-7-route-rt-1-switch", Elapsed: 10800 * time.Microsecond},
	{Time: at(15 * ms), Instance: "VI_1", Kind: KindCloudCall, Generation: 7, Resource: "havip/havip-abc", Operation: "attach",
		Status: 409, ErrorCode: "Havip.Busy", RequestID: "9a8b7c6d-0000", ClientToken: "havip-7-havip-abc-attach", Elapsed: 13 * ms, Message: "the HAVIP is being changed"},
	{Time: at(230 * ms), Instance: "VI_1", Kind: KindCloudCall, Generation: 7, Resource: "havip/havip-abc", Operation: "attach",
		Status: 200, RequestID: "9a8b7c6d-0001", ClientToken: "havip-7-havip-abc-attach", Attempt: 2, Elapsed: 20 * ms},
	{Time: at(850 * ms), Instance: "VI_1", Kind: KindCloudConfirmed, Generation: 7, Resource: "route/rt-1/0.0.0.0/0"},
	{Time: at(1100 * ms), Instance: "VI_1", Kind: KindCloudConfirmed, Generation: 7, Resource: "havip/havip-abc", CloudConfirmed: 1100 * ms},
	{Time: at(1200 * ms), Instance: "VI_1", Kind: KindHook, Generation: 7, Hook: "pager", Outcome: "ok", Elapsed: 95 * ms},
}

func TestWriteText(t *testing.T) {
	for _, tt := range []struct {
		name   string
		events []Event
	}{
		{name: "failover", events: failover},
		{name: "two instances", events: []Event{
			{Time: at(0), Instance: "VI_1", Kind: KindTransition, From: "MASTER", To: "BACKUP", Generation: 8, Source: "notify", VIPsPresent: 80 * time.Microsecond},
			{Time: at(2 * ms), Instance: "VI_WEB_2", Kind: KindTransition, From: "BACKUP", To: "MASTER", Generation: 3, Source: "fifo", VIPsPresent: 250 * time.Microsecond, FirstAnnouncement: 400 * time.Microsecond},
			{Time: at(5 * ms), Instance: "VI_1", Kind: KindHook, Generation: 8, Hook: "notify-team", Outcome: "failed", Elapsed: 3 * ms, Message: "exit status 1"},
			{Time: at(40 * ms), Instance: "VI_WEB_2", Kind: KindCloudCall, Generation: 3, Resource: "eip/198.18.5.5", Operation: "bind", Elapsed: 30 * ms,
				ClientToken: "havip-3-eip-bind", Message: "dial tcp: i/o timeout"},
			{Time: at(2 * time.Minute), Instance: "VI_WEB_2", Kind: KindConflict, Generation: 3, Resource: "havip/havip-web", Message: "the HAVIP points at i-peer"},
			{Time: at(2*time.Minute + 5*time.Second), Instance: "VI_WEB_2", Kind: KindReclaim, Generation: 3, Resource: "havip/havip-web"},
		}},
		{name: "no transition in view", events: []Event{
			{Time: at(3 * time.Second), Instance: "VI_1", Kind: KindCloudConfirmed, Generation: 7, Resource: "havip/havip-abc", CloudConfirmed: 1100 * ms},
			{Time: at(time.Hour), Instance: "VI_1", Kind: KindDrain, Message: "drained by root"},
			{Time: at(time.Hour + time.Minute), Kind: KindJournal, Message: "3 events dropped"},
			{Time: at(2 * time.Hour), Instance: "VI_1", Kind: KindResume},
		}},
		{name: "order and odd input", events: []Event{
			// Appended after the call it caused: shown before it.
			{Time: at(20 * ms), Instance: "VI_1", Kind: KindCloudCall, Generation: 9, Resource: "route/rt-2", Operation: "updateRoute", Status: 200},
			{Time: at(0).In(time.FixedZone("CST", 8*3600)), Instance: "VI_1", Kind: KindTransition, From: "BACKUP", To: "MASTER", Generation: 9, CloudRequestSent: 5 * ms},
			// A clock that stepped back.
			{Time: at(-2 * ms), Instance: "VI_1", Kind: KindHook, Generation: 9, Hook: "h", Outcome: "ok"},
			{Time: at(30 * ms), Instance: "VI_\x1b[31m", Kind: "future_kind", Message: "line\nbreak\x07 \xff"},
		}},
		{name: "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			WriteText(&b, tt.events)
			checkGolden(t, "text_"+strings.ReplaceAll(tt.name, " ", "_")+".golden", b.Bytes())
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0ns"},
		{500, "500ns"},
		{27 * time.Microsecond, "27µs"},
		{300 * time.Microsecond, "0.3ms"},
		{1250 * time.Microsecond, "1.2ms"},
		{12 * ms, "12ms"},
		{9960 * time.Microsecond, "10ms"},
		{999600 * time.Microsecond, "1.00s"},
		{1250 * ms, "1.25s"},
		{123 * time.Second, "2m3s"},
		{-300 * time.Microsecond, "-0.3ms"},
	} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("%d: got %q, want %q", tt.d, got, tt.want)
		}
	}
}
