package chaos

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestQuantile(t *testing.T) {
	ds := []time.Duration{5, 1, 3, 2, 4}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 3}, {1, 5}, {0, 1}, {0.9, 5}} {
		if got := Quantile(ds, tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := Quantile(nil, 0.5); got != 0 {
		t.Errorf("Quantile(nil) = %v, want 0", got)
	}
}

func sample() []Result {
	var a Result
	a.Scenario, a.Name = "1 cloud faults", "cloud-faults"
	a.Run(true, 3*time.Second)
	a.Run(true, 5*time.Second)
	a.Run(false, 0)
	a.Figure("switches per failover", "1")
	a.Figure("switches per failover", "1 (all)")
	a.Violate("run %d: %d switches", 3, 2)
	b := Result{Scenario: "8 bad | input", Name: "bad-input", Runs: 1, Converged: 1, Times: []time.Duration{time.Second}}
	b.Figure("crashes", "0")
	return []Result{a, b}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	if err := Save(dir, sample()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "chaos.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got []Result
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Runs != 3 || got[0].Converged != 2 || got[0].Violations != 1 || !got[0].Failed() || got[1].Failed() {
		t.Errorf("chaos.json read back as %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "chaos.md")); err != nil {
		t.Error(err)
	}
}
