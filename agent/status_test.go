package agent

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/hooks"
)

// A flag of its own: other tests of the package may define -update.
var updateStatus = flag.Bool("update-status", false, "rewrite testdata/status_*.golden")

// checkGolden compares got with testdata/name, rewriting it with -update-status.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateStatus {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update-status creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s (go test -update-status rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// credentialCases are the states of the cloud credentials status shows, at statusNow.
var (
	statusNow       = time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	credentialCases = []struct {
		name string
		c    *CredentialsStatus
	}{
		{"none (local only, or the cloud side not set up)", nil},
		{"file", &CredentialsStatus{Kind: CredentialsFile, AccessKeyID: "AKfile"}},
		{"instance role, not fetched yet", &CredentialsStatus{Kind: CredentialsInstanceRole}},
		{"instance role, healthy", &CredentialsStatus{
			Kind: CredentialsInstanceRole, AccessKeyID: "AKrole",
			Expiration: statusNow.Add(55 * time.Minute), LastRefresh: statusNow.Add(-2 * time.Minute),
			NextRefresh: statusNow.Add(3 * time.Minute), FailuresTotal: 2,
		}},
		{"instance role, refresh failing, last good credentials in use", &CredentialsStatus{
			Kind: CredentialsInstanceRole, AccessKeyID: "AKrole",
			Expiration: statusNow.Add(20 * time.Minute), LastRefresh: statusNow.Add(-40 * time.Minute),
			NextRefresh:  statusNow.Add(30 * time.Second),
			LastError:    "instance-role credentials: metadata /latest/meta-data/sts-credential: HTTP 500",
			LastErrorAt:  statusNow.Add(-10 * time.Second),
			FailingSince: statusNow.Add(-35 * time.Minute), Failures: 70, FailuresTotal: 72, Stale: true,
		}},
		{"instance role, refresh failing, credentials expired", &CredentialsStatus{
			Kind: CredentialsInstanceRole, AccessKeyID: "AKrole",
			Expiration: statusNow.Add(-time.Minute), LastRefresh: statusNow.Add(-61 * time.Minute),
			NextRefresh:  statusNow.Add(20 * time.Second),
			LastError:    "instance-role credentials: metadata /latest/meta-data/sts-credential: HTTP 500",
			LastErrorAt:  statusNow.Add(-10 * time.Second),
			FailingSince: statusNow.Add(-56 * time.Minute), Failures: 112, FailuresTotal: 112,
		}},
		{"instance role, first fetch failing", &CredentialsStatus{
			Kind: CredentialsInstanceRole, NextRefresh: statusNow.Add(20 * time.Second),
			LastError:   "instance-role credentials: metadata /latest/meta-data/sts-credential: connection refused",
			LastErrorAt: statusNow.Add(-10 * time.Second), FailingSince: statusNow.Add(-5 * time.Minute),
			Failures: 10, FailuresTotal: 10,
		}},
	}
)

// TestStatusTextCredentials renders the credentials part of "havip-agent status" for every
// state of the source.
func TestStatusTextCredentials(t *testing.T) {
	var b bytes.Buffer
	for _, tt := range credentialCases {
		b.WriteString("=== " + tt.name + "\n")
		s := Status{Version: "test", Started: statusNow.Add(-time.Hour), Keepalived: KeepalivedStatus{Watching: false},
			IgnoredLines: map[string]uint64{}, Credentials: tt.c}
		s.WriteText(&b, statusNow)
	}
	checkGolden(t, "status_credentials.golden", b.Bytes())
}

// TestStatusJSONCredentials fixes the JSON of "havip-agent status -json" for the credentials
// and shows that it reads back the same.
func TestStatusJSONCredentials(t *testing.T) {
	var b bytes.Buffer
	for _, tt := range credentialCases {
		if tt.c == nil {
			continue
		}
		j, err := json.Marshal(Status{Credentials: tt.c})
		if err != nil {
			t.Fatal(err)
		}
		var back Status
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatal(err)
		}
		if *back.Credentials != *tt.c {
			t.Errorf("%s: read back %+v, want %+v", tt.name, back.Credentials, tt.c)
		}
		var part struct {
			C json.RawMessage `json:"cloud_credentials"`
		}
		if err := json.Unmarshal(j, &part); err != nil {
			t.Fatal(err)
		}
		b.WriteString(tt.name + ": ")
		b.Write(part.C)
		b.WriteString("\n")
	}
	checkGolden(t, "status_credentials_json.golden", b.Bytes())
}

// TestStatusAsksCloudCredentials shows the seam: the daemon's status carries what
// Options.CloudCredentials answers at the time of the request, and nothing without it.
func TestStatusAsksCloudCredentials(t *testing.T) {
	tests := []struct {
		name string
		f    func() *CredentialsStatus
		want *CredentialsStatus
	}{
		{"no func", nil, nil},
		{"no cloud side yet", func() *CredentialsStatus { return nil }, nil},
		{"instance role", func() *CredentialsStatus {
			return &CredentialsStatus{Kind: CredentialsInstanceRole, AccessKeyID: "AKseam", Stale: true}
		}, &CredentialsStatus{Kind: CredentialsInstanceRole, AccessKeyID: "AKseam", Stale: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Options{Config: testConfig(t), Logger: discard(), Network: newFakeNet("eth0"), CloudCredentials: tt.f})
			if err != nil {
				t.Fatal(err)
			}
			defer d.close()
			got := d.status().Credentials
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("status().Credentials = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestStatusTextCloudResource renders a resource of an instance, with the last measured
// confirmation time (cloud_confirmed), which no document bounds.
func TestStatusTextCloudResource(t *testing.T) {
	var b bytes.Buffer
	s := Status{Version: "test", Started: statusNow.Add(-time.Hour), IgnoredLines: map[string]uint64{},
		Instances: []InstanceStatus{{Name: "VI_1", Kind: "instance", Interface: "eth0", State: StateMaster, Since: statusNow.Add(-time.Minute),
			Generation: 3, Cloud: []ResourceStatus{
				{Resource: "havip/havip-1", Owned: true, Current: "i-self", Checked: statusNow, Claims: 1, ConfirmedAfter: 1234567 * time.Microsecond},
				{Resource: "route/rt-1/0.0.0.0/0", Checked: statusNow, Current: "dcgw-peer"},
			}}}}
	s.WriteText(&b, statusNow)
	checkGolden(t, "status_cloud.golden", b.Bytes())
}

// TestStatusTextDrainAndHooks renders a drained instance, one whose drain
// file could not be written, one not drained, the hooks with their last
// runs, and the history's counters.
func TestStatusTextDrainAndHooks(t *testing.T) {
	var b bytes.Buffer
	last := &hooks.Run{Instance: "VI_1", Event: hooks.KindTransition, Generation: 7, Started: statusNow.Add(-time.Minute), Duration: 95 * time.Millisecond, Result: hooks.ResultOK}
	s := Status{Version: "test", Started: statusNow.Add(-time.Hour), IgnoredLines: map[string]uint64{},
		Instances: []InstanceStatus{
			{Name: "VI_1", Kind: "instance", Interface: "eth0", State: StateFault, Since: statusNow.Add(-time.Minute), Generation: 8,
				Drain: &DrainStatus{File: "/run/havip-agent/track/drain-VI_1", Drained: true, Since: statusNow.Add(-2 * time.Minute)}},
			{Name: "VI_2", Kind: "instance", Interface: "eth0", State: StateMaster, Since: statusNow.Add(-time.Minute), Generation: 3,
				Drain: &DrainStatus{File: "/run/havip-agent/track/drain-VI_2", Error: "open /run/havip-agent/track/.drain-VI_2.tmp1: read-only file system"}},
			{Name: "VI_3", Kind: "instance", Interface: "eth0", State: StateBackup, Generation: 1,
				Drain: &DrainStatus{Drained: true}},
		},
		Hooks: []hooks.Status{
			{Name: "pager", Type: hooks.TypeExec, Runs: 12, Failures: 1, Drops: 2, Running: 1, Queued: 3, Last: last, LastOutcome: "ok"},
			{Name: "inventory", Type: hooks.TypeHTTP},
		},
		History: &HistoryStatus{Dir: "/var/lib/havip-agent", Written: 120, Dropped: 1},
	}
	s.WriteText(&b, statusNow)
	checkGolden(t, "status_drain_hooks.golden", b.Bytes())
}
