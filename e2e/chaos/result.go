package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Figure is one scenario-specific figure the issue names, e.g. "switches
// per failover".
type Figure struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Result is what one scenario measured over its runs.
type Result struct {
	Scenario string `json:"scenario"`
	// Name is the scenario's short name, by which HAVIP_CHAOS_ONLY picks it.
	Name      string `json:"name,omitempty"`
	Runs      int    `json:"runs"`
	Converged int    `json:"converged"`
	// Times are the times to converge of the converged runs.
	Times      []time.Duration `json:"times_ns"`
	Violations int             `json:"invariant_violations"`
	// Details says what each violation was, so a table with a non-zero
	// count can be acted upon.
	Details []string `json:"details,omitempty"`
	Figures []Figure `json:"figures,omitempty"`
}

// Run records one run: converged or not, in d.
func (r *Result) Run(converged bool, d time.Duration) {
	r.Runs++
	if converged {
		r.Converged++
		r.Times = append(r.Times, d)
	}
}

// Violate counts an invariant violation with what it was.
func (r *Result) Violate(format string, args ...any) {
	r.Violations++
	if len(r.Details) < 50 {
		r.Details = append(r.Details, fmt.Sprintf(format, args...))
	}
}

// Figure adds (or replaces) a named figure.
func (r *Result) Figure(name string, format string, args ...any) {
	v := fmt.Sprintf(format, args...)
	for i := range r.Figures {
		if r.Figures[i].Name == name {
			r.Figures[i].Value = v
			return
		}
	}
	r.Figures = append(r.Figures, Figure{Name: name, Value: v})
}

// P50 is the median time to converge (0 when nothing converged).
func (r Result) P50() time.Duration { return Quantile(r.Times, 0.5) }

// Max is the longest time to converge.
func (r Result) Max() time.Duration { return Quantile(r.Times, 1) }

// Quantile is the q-quantile of ds (nearest rank), 0 for none.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Failed reports whether the scenario missed its promise: a run that did
// not converge or an invariant violated.
func (r Result) Failed() bool { return r.Converged < r.Runs || r.Violations > 0 }

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

// WriteMarkdown renders results as a Markdown table, then the details of
// every violation.
func WriteMarkdown(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("| scenario | name | runs | converged | converge p50 | converge max | invariant violations | figures |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		var fs []string
		for _, f := range r.Figures {
			fs = append(fs, f.Name+": "+f.Value)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %d | %s |\n", cell(r.Scenario), cell(r.Name), r.Runs, r.Converged,
			dur(r.P50()), dur(r.Max()), r.Violations, cell(strings.Join(fs, "; ")))
	}
	for _, r := range results {
		if len(r.Details) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", r.Scenario)
		for _, d := range r.Details {
			fmt.Fprintf(&b, "- %s\n", d)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps a value inside its table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Save writes chaos.md and chaos.json into dir (created if missing).
func Save(dir string, results []Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# havip-agent chaos results (%s)\n\n", time.Now().UTC().Format(time.RFC3339))
	if err := WriteMarkdown(&md, results); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	j, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos.json"), append(j, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}
