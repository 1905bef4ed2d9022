package metrics

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/vocab"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// families lists every havip_agent_ family the package defines; the scrape
// test proves each is exposed once populate has run.
var families = []string{
	"havip_agent_build_info",
	"havip_agent_vrrp_state",
	"havip_agent_transitions_total",
	"havip_agent_last_transition_timestamp_seconds",
	"havip_agent_failover_phase_duration_seconds",
	"havip_agent_vip_present",
	"havip_agent_announcements_total",
	"havip_agent_cloud_requests_total",
	"havip_agent_cloud_request_duration_seconds",
	"havip_agent_cloud_owned",
	"havip_agent_cloud_reclaims_total",
	"havip_agent_cloud_conflicts_total",
	"havip_agent_fifo_lines_read_total",
	"havip_agent_fifo_lines_ignored_total",
	"havip_agent_check_healthy",
	"havip_agent_check_duration_seconds",
	"havip_agent_check_instance_info",
	"havip_agent_metrics_connections_rejected_total",
	"havip_agent_cloud_ready",
	"havip_agent_config_last_reload_successful",
	"havip_agent_config_last_reload_success_timestamp_seconds",
	"havip_agent_cloud_credentials_expiry_timestamp_seconds",
	"havip_agent_cloud_credentials_refresh_failures_total",
	"havip_agent_cloud_credentials_stale",
}

// populate records one of everything with fixed values, as the agent would
// during a failover of VI_1.
func populate(m *Metrics) {
	at := time.Unix(1700000000, 250000000)
	m.SetState("VI_1", vocab.StateBackup)
	m.SetState("VI_1", vocab.StateMaster)
	m.SetState("VI_2", vocab.StateBackup)
	m.Transition("VI_1", vocab.StateMaster, at)
	m.Transition("VI_2", vocab.StateBackup, at.Add(-time.Hour))
	m.Phase("VI_1", vocab.PhaseVIPsPresent, 300*time.Microsecond)
	m.Phase("VI_1", vocab.PhaseFirstAnnouncement, 800*time.Microsecond)
	m.Phase("VI_1", vocab.PhaseCloudRequestSent, 2*time.Millisecond)
	m.Phase("VI_1", vocab.PhaseCloudConfirmed, 1500*time.Millisecond)
	m.VIPPresent("VI_1", "198.18.0.100/24", true)
	m.VIPPresent("VI_2", "198.18.1.100/24", false)
	m.Announcements("VI_1", 5)
	m.Announcements("VI_1", 0)
	m.CloudRequest("AttachHaVip", CodeOK, 40*time.Millisecond)
	m.CloudRequest("AttachHaVip", "timeout", 3*time.Second)
	m.CloudRequest("UpdateRouteRule", "RouteRuleConflict", 20*time.Millisecond)
	m.CloudOwned("VI_1", "havip/havip-abc123", true)
	m.CloudOwned("VI_1", "route/rt-abc/0.0.0.0/0", false)
	m.Reclaim("VI_1", "route/rt-abc/0.0.0.0/0")
	m.Conflict("VI_1", "route/rt-abc/0.0.0.0/0")
	m.FIFOLine()
	m.FIFOLine()
	m.FIFOIgnored("unknown_instance")
	m.CheckResult("nginx", true, 3*time.Millisecond)
	m.CheckResult("nginx", false, time.Second)
	m.CheckVerdict("nginx", true)
	m.CheckVerdict("db", false)
	m.CheckInstance("VI_1", "nginx")
	m.CheckInstance("VI_1", "db")
	m.ConnectionRejected()
	m.CloudReady(false)
	m.CloudReady(true)
	m.Reload(false)
	m.CredentialsFrom(func() (Credentials, bool) {
		return Credentials{Expiration: at.Add(time.Hour), RefreshFailures: 3, Stale: true}, true
	})
}

// testStart is the start time of every test Metrics.
var testStart = time.Unix(1700000000, 500000000)

func newTestMetrics() *Metrics {
	return newMetrics(BuildInfo{Version: "1.2.3", Revision: "abc1234", GoVersion: "go1.26.8"}, func() time.Time { return testStart })
}

func scrape(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The text format is what promtool and the golden file read.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestScrapeIsCleanAndComplete(t *testing.T) {
	m := newTestMetrics()
	populate(m)
	code, hdr, body := scrape(t, m.Handler(nil), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200; body:\n%s", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	got, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, body)
	}
	for _, name := range families {
		if _, ok := got[name]; !ok {
			t.Errorf("scrape lacks %s", name)
		}
	}
	// Go and process collectors are part of the registry too.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := got[name]; !ok {
			t.Errorf("scrape lacks %s", name)
		}
	}
	for name, mf := range got {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "instance" {
					t.Errorf("%s uses the label instance (reserved for the scrape target)", name)
				}
			}
		}
	}
}

func TestLint(t *testing.T) {
	m := newTestMetrics()
	populate(m)
	// Every family in the registry, ours and the runtime collectors'.
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// And ours by name, so a family that vanished is noticed.
	problems, err = testutil.GatherAndLint(m.Registry(), families...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), families...); err != nil || n == 0 {
		t.Errorf("GatherAndCount(ours) = %d, %v", n, err)
	}
}

// TestGolden compares the havip_agent_ part of a real scrape with
// testdata/scrape.golden (run with -update to rewrite it).
func TestGolden(t *testing.T) {
	m := newTestMetrics()
	populate(m)
	_, _, body := scrape(t, m.Handler(nil), "/metrics")
	var b strings.Builder
	for line := range strings.Lines(body) {
		name := line
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			name = f[2]
		}
		if strings.HasPrefix(name, "havip_agent_") {
			b.WriteString(line)
		}
	}
	golden := filepath.Join("testdata", "scrape.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("scrape differs from %s (go test -update rewrites it)\ngot:\n%s", golden, got)
	}
}

func TestValues(t *testing.T) {
	m := newTestMetrics()
	populate(m)
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"vrrp_state VI_1 MASTER", testutil.ToFloat64(m.state.WithLabelValues("VI_1", string(vocab.StateMaster))), 1},
		{"vrrp_state VI_1 BACKUP", testutil.ToFloat64(m.state.WithLabelValues("VI_1", string(vocab.StateBackup))), 0},
		{"vrrp_state VI_2 BACKUP", testutil.ToFloat64(m.state.WithLabelValues("VI_2", string(vocab.StateBackup))), 1},
		{"transitions VI_1 MASTER", testutil.ToFloat64(m.transitions.WithLabelValues("VI_1", string(vocab.StateMaster))), 1},
		{"last transition VI_1", testutil.ToFloat64(m.lastTransition.WithLabelValues("VI_1")), 1700000000.25},
		{"announcements VI_1", testutil.ToFloat64(m.announcements.WithLabelValues("VI_1")), 5},
		{"cloud requests OK", testutil.ToFloat64(m.cloudRequests.WithLabelValues("AttachHaVip", CodeOK)), 1},
		{"cloud requests timeout", testutil.ToFloat64(m.cloudRequests.WithLabelValues("AttachHaVip", "timeout")), 1},
		{"cloud owned route", testutil.ToFloat64(m.cloudOwned.WithLabelValues("VI_1", "route/rt-abc/0.0.0.0/0")), 0},
		{"fifo lines", testutil.ToFloat64(m.fifoLines), 2},
		{"check db", testutil.ToFloat64(m.checkHealthy.WithLabelValues("db")), 0},
		{"check instance info", testutil.ToFloat64(m.checkInstance.WithLabelValues("VI_1", "db")), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// Phase and duration histograms: one observation per phase.
	if n := testutil.CollectAndCount(m.phase); n != 4 {
		t.Errorf("phase series = %d, want 4", n)
	}
}

func TestSetStateExclusive(t *testing.T) {
	tests := []struct {
		in   vocab.State
		want vocab.State
	}{
		{vocab.StateMaster, vocab.StateMaster},
		{vocab.StateBackup, vocab.StateBackup},
		{vocab.StateFault, vocab.StateFault},
		{vocab.StateStop, vocab.StateStop},
		{vocab.StateDeleted, vocab.StateDeleted},
		{"master", vocab.StateUnknown},
		{"", vocab.StateUnknown},
	}
	for _, tt := range tests {
		m := newTestMetrics()
		m.SetState("VI_1", vocab.StateMaster)
		m.SetState("VI_1", tt.in)
		for _, s := range states {
			want := 0.0
			if s == tt.want {
				want = 1
			}
			if got := testutil.ToFloat64(m.state.WithLabelValues("VI_1", string(s))); got != want {
				t.Errorf("SetState(%q): state %s = %v, want %v", tt.in, s, got, want)
			}
		}
	}
}

func TestForgetInstance(t *testing.T) {
	m := newTestMetrics()
	populate(m)
	m.ForgetInstance("VI_1")
	if n := testutil.CollectAndCount(m.state); n != len(states) {
		t.Errorf("vrrp_state series after ForgetInstance(VI_1) = %d, want %d (VI_2 only)", n, len(states))
	}
	if n := testutil.CollectAndCount(m.cloudOwned); n != 0 {
		t.Errorf("cloud_owned series after ForgetInstance(VI_1) = %d, want 0", n)
	}
	// Recording again after forgetting recreates the series.
	m.SetState("VI_1", vocab.StateBackup)
	if got := testutil.ToFloat64(m.state.WithLabelValues("VI_1", string(vocab.StateBackup))); got != 1 {
		t.Errorf("vrrp_state VI_1 BACKUP after re-adding = %v, want 1", got)
	}
}

func TestInvalidUTF8DoesNotPanic(t *testing.T) {
	m := newTestMetrics()
	m.CloudRequest("AttachHaVip", "bad\xffcode", time.Millisecond)
	m.FIFOIgnored("\xfe")
	if _, err := m.Registry().Gather(); err != nil {
		t.Fatalf("Gather: %v", err)
	}
}

func TestTwoInstancesDoNotCollide(t *testing.T) {
	// No global registration: two Metrics in one process are fine.
	a, b := newTestMetrics(), newTestMetrics()
	a.FIFOLine()
	if got := testutil.ToFloat64(b.fifoLines); got != 0 {
		t.Errorf("second Metrics sees the first's counter: %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newTestMetrics()
	h := m.Handler(nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				populate(m)
				if i == 0 {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				}
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.fifoLines); got != 8*200*2 {
		t.Errorf("fifo lines = %v, want %v", got, 8*200*2)
	}
}

func TestHealthAndReady(t *testing.T) {
	m := newTestMetrics()
	var mu sync.Mutex
	ready := false
	h := m.Handler(func() error {
		mu.Lock()
		defer mu.Unlock()
		if !ready {
			return errors.New("starting")
		}
		return nil
	})
	setReady := func(v bool) { mu.Lock(); ready = v; mu.Unlock() }

	tests := []struct {
		name     string
		ready    bool
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz before ready", false, "/healthz", 200, "ok\n"},
		{"readyz before ready", false, "/readyz", 503, "not ready: starting\n"},
		{"healthz when ready", true, "/healthz", 200, "ok\n"},
		{"readyz when ready", true, "/readyz", 200, "ready\n"},
		{"readyz after losing readiness", false, "/readyz", 503, "not ready: starting\n"},
		{"unknown path", true, "/nope", 404, ""},
	}
	for _, tt := range tests {
		setReady(tt.ready)
		code, _, body := scrape(t, h, tt.path)
		if code != tt.wantCode {
			t.Errorf("%s: GET %s = %d, want %d", tt.name, tt.path, code, tt.wantCode)
		}
		if tt.wantBody != "" && body != tt.wantBody {
			t.Errorf("%s: body = %q, want %q", tt.name, body, tt.wantBody)
		}
	}

	// A nil readiness function means always ready.
	if code, _, _ := scrape(t, m.Handler(nil), "/readyz"); code != 200 {
		t.Errorf("readyz with nil ready = %d, want 200", code)
	}
	// Writes are refused.
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", resp.StatusCode)
	}
}

// TestPromtoolCheckMetrics runs promtool's own linter on a real scrape. It
// is skipped without promtool unless HAVIP_E2E=1 (CI installs the Debian
// package prometheus, which ships /usr/bin/promtool).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("promtool not on PATH and HAVIP_E2E=1 (apt-get install prometheus)")
		}
		t.Skip("promtool not on PATH (apt-get install prometheus); HAVIP_E2E=1 makes this fatal")
	}
	m := newTestMetrics()
	populate(m)
	_, _, body := scrape(t, m.Handler(nil), "/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
	if s := strings.TrimSpace(out.String()); s != "" {
		t.Logf("promtool: %s", s)
	}
}

func BenchmarkFailoverPath(b *testing.B) {
	m := newTestMetrics()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.SetState("VI_1", vocab.StateMaster)
		m.Transition("VI_1", vocab.StateMaster, now)
		m.Phase("VI_1", vocab.PhaseFirstAnnouncement, time.Millisecond)
		m.Announcements("VI_1", 1)
	}
}

func TestVIPsPresent(t *testing.T) {
	type vip struct{ instance, vip string }
	tests := []struct {
		name string
		set  func(m *Metrics)
		want map[vip]float64
	}{
		{"all at once", func(m *Metrics) {
			m.VIPsPresent("VI_1", map[string]bool{"198.18.0.100/24": true, "198.18.0.101/24": false})
		}, map[vip]float64{{"VI_1", "198.18.0.100/24"}: 1, {"VI_1", "198.18.0.101/24"}: 0}},
		{"a VIP no longer named is dropped", func(m *Metrics) {
			m.VIPsPresent("VI_1", map[string]bool{"198.18.0.100/24": true, "198.18.0.101/24": true})
			m.VIPsPresent("VI_1", map[string]bool{"198.18.0.100/24": false})
		}, map[vip]float64{{"VI_1", "198.18.0.100/24"}: 0}},
		{"one set by VIPPresent is dropped too", func(m *Metrics) {
			m.VIPPresent("VI_1", "198.18.0.102/24", true)
			m.VIPsPresent("VI_1", map[string]bool{"198.18.0.100/24": true})
		}, map[vip]float64{{"VI_1", "198.18.0.100/24"}: 1}},
		{"other instances are untouched", func(m *Metrics) {
			m.VIPPresent("VI_2", "198.18.1.100/24", true)
			m.VIPsPresent("VI_1", map[string]bool{"198.18.0.100/24": true})
			m.VIPsPresent("VI_1", map[string]bool{})
		}, map[vip]float64{{"VI_2", "198.18.1.100/24"}: 1}},
		{"after ForgetInstance", func(m *Metrics) {
			m.VIPsPresent("VI_1", map[string]bool{"198.18.0.100/24": true})
			m.ForgetInstance("VI_1")
			m.VIPsPresent("VI_1", map[string]bool{"198.18.0.101/24": true})
		}, map[vip]float64{{"VI_1", "198.18.0.101/24"}: 1}},
	}
	for _, tt := range tests {
		m := newTestMetrics()
		tt.set(m)
		got := map[vip]float64{}
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "havip_agent_vip_present" {
				continue
			}
			for _, mt := range mf.GetMetric() {
				var k vip
				for _, lp := range mt.GetLabel() {
					switch lp.GetName() {
					case "vrrp_instance":
						k.instance = lp.GetValue()
					case "vip":
						k.vip = lp.GetValue()
					}
				}
				got[k] = mt.GetGauge().GetValue()
			}
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("%s: vip_present = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCloudReadyAndReload(t *testing.T) {
	m := newTestMetrics()
	if n := testutil.CollectAndCount(m.cloudReady); n != 0 {
		t.Errorf("cloud_ready series before any report = %d, want 0 (absent without a cloud section)", n)
	}
	now := testStart
	m.now = func() time.Time { return now }
	tests := []struct {
		name      string
		do        func()
		wantReady float64
		wantOK    float64
		wantAt    float64
	}{
		{"setup fails", func() { m.CloudReady(false) }, 0, 1, 1700000000.5},
		{"setup works", func() { m.CloudReady(true) }, 1, 1, 1700000000.5},
		{"reload refused", func() { now = now.Add(time.Minute); m.Reload(false) }, 1, 0, 1700000000.5},
		{"reload works", func() { now = now.Add(time.Minute); m.Reload(true) }, 1, 1, 1700000120.5},
		{"refused again", func() { now = now.Add(time.Minute); m.Reload(false) }, 1, 0, 1700000120.5},
	}
	for _, tt := range tests {
		tt.do()
		if got := testutil.ToFloat64(m.cloudReady.WithLabelValues()); got != tt.wantReady {
			t.Errorf("%s: cloud_ready = %v, want %v", tt.name, got, tt.wantReady)
		}
		if got := testutil.ToFloat64(m.reloadOK); got != tt.wantOK {
			t.Errorf("%s: config_last_reload_successful = %v, want %v", tt.name, got, tt.wantOK)
		}
		if got := testutil.ToFloat64(m.reloadAt); got != tt.wantAt {
			t.Errorf("%s: config_last_reload_success_timestamp_seconds = %v, want %v", tt.name, got, tt.wantAt)
		}
	}
}
