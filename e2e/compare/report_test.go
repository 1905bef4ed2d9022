package compare

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(101-i)*time.Millisecond)
	}
	got := Summarize(d)
	want := Summary{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("empty: got %+v", got)
	}
}

func sampleReport() *Report {
	ms := func(v ...float64) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x*float64(time.Millisecond)))
		}
		return d
	}
	r := &Report{
		Date:      "2026-01-02",
		Machine:   Machine{CPUs: 2, MemoryGiB: 4, Kernel: "6.1.0", Keepalived: "Keepalived v2.2.7", Go: "go1.26"},
		Failovers: 3, Block: 1,
		Compare: []Measure{
			NewMeasure(WayAgent, MetricGARP, ms(0.2, 0.25, 0.3)),
			NewMeasure(WayKeepalived, MetricGARP, ms(0.1, 0.15, 0.2)),
			NewMeasure(WayScript, MetricGARP, ms(6, 7, 8)),
			NewMeasure(WayAgent, MetricRequest, ms(0.8, 0.9, 1)),
			NewMeasure(WayScript, MetricRequest, ms(12, 13, 14)),
		},
		Scale: []ScaleMeasure{{VIPs: 64, Routes: 1, LastAnnouncement: Summarize(ms(1, 2, 3)),
			LastRequest: Summarize(ms(1, 1, 1)), LastConfirmation: Summarize(ms(4, 5, 6))}},
		Notes: []string{"A note."},
	}
	r.Finish()
	return r
}

func TestMarkdownGolden(t *testing.T) {
	r := sampleReport()
	for _, tc := range []struct {
		file string
		got  func() ([]byte, error)
	}{
		{"report.md.golden", func() ([]byte, error) { return []byte(r.Markdown()), nil }},
		{"report.json.golden", r.JSON},
	} {
		got, err := tc.got()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", tc.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs (go test -update):\n%s", tc.file, got)
		}
	}
}

func TestTargets(t *testing.T) {
	r := sampleReport()
	want := map[string]bool{
		"announcement p50 vs keepalived's own": true,
		"announcement p50 vs the script":       true,
		"cloud request p50":                    true,
		"cloud request p50 vs the script":      true,
	}
	if len(r.Targets) != len(want) {
		t.Fatalf("got %d targets, want %d: %+v", len(r.Targets), len(want), r.Targets)
	}
	for _, tg := range r.Targets {
		if met, ok := want[tg.Name]; !ok || met != tg.Met {
			t.Errorf("target %q met=%v, want %v", tg.Name, tg.Met, met)
		}
	}
}
