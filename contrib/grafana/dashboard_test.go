// Package grafana_test checks the Grafana dashboard in this directory: it is
// valid JSON, and every query uses only metrics agent/metrics exports (or
// Prometheus' own up).
package grafana_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/havip-agent/havip-agent/agent/metrics"
)

const dashboardFile = "havip-agent.json"

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: uid, title or panels missing", dashboardFile)
	}
	return d
}

// query is one PromQL expression and where it sits in the dashboard.
type query struct {
	where string
	expr  string
}

var labelValuesRe = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

func queries(t *testing.T, d dashboard) []query {
	t.Helper()
	var qs []query
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no queries", p.ID, p.Title)
		}
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, query{"annotation " + a.Name, a.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValuesRe.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(METRIC, LABEL)", v.Name, q.Query)
			continue
		}
		qs = append(qs, query{"variable " + v.Name, m[1]})
	}
	for _, q := range qs {
		if strings.TrimSpace(q.expr) == "" {
			t.Errorf("%s: empty expression", q.where)
		}
	}
	return qs
}

var (
	stringRe  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matcherRe = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRe   = regexp.MustCompile(`\[[^\]]*\]`)
	groupRe   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// Numbers, including durations after offset ("5m").
	numberRe = regexp.MustCompile(`\b\d+(\.\d+)?([eE][+-]?\d+)?(ms|s|m|h|d|w|y)?\b`)
	identRe  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "by": true,
		"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames returns the metric names an expression selects. It is a small
// lexer, not a PromQL parser: it drops strings, label matchers, ranges and
// grouping label lists, then treats identifiers not followed by "(" (which
// are functions and aggregations) and not keywords as metric names.
func metricNames(expr string) []string {
	s := stringRe.ReplaceAllString(expr, `""`)
	s = matcherRe.ReplaceAllString(s, "{}")
	s = rangeRe.ReplaceAllString(s, "[]")
	s = groupRe.ReplaceAllString(s, "")
	s = numberRe.ReplaceAllString(s, "0")
	var names []string
	for _, m := range identRe.FindAllString(s, -1) {
		if strings.HasSuffix(m, "(") || keywords[strings.ToLower(m)] {
			continue
		}
		names = append(names, m)
	}
	return names
}

func TestMetricNamesLexer(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		{`up{job=~"$job"}`, "up"},
		{`histogram_quantile(0.99, sum by (le, phase) (rate(havip_agent_x_bucket{a="b"}[$__rate_interval])))`, "havip_agent_x_bucket"},
		{`a * on (job, instance) group_left () b == 1`, "a b"},
		{`time() - c offset 5m`, "c"},
		{`sum without (le) (d) > 1e3`, "d"},
	}
	for _, tt := range tests {
		if got := strings.Join(metricNames(tt.expr), " "); got != tt.want {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestDashboardUsesOnlyAgentMetrics(t *testing.T) {
	d := load(t)
	have, err := metrics.Families()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries(t, d) {
		names := metricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		for _, n := range names {
			switch {
			case n == "up":
			case strings.HasPrefix(n, "havip_agent_"):
				if !have[metrics.Family(n)] {
					t.Errorf("%s: %s is not exported by agent/metrics", q.where, n)
				}
			default:
				t.Errorf("%s: %s is neither a havip_agent_ metric nor up", q.where, n)
			}
		}
	}
}

func TestPanelLayout(t *testing.T) {
	d := load(t)
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %d %q: gridPos %+v does not fit the 24-column grid", p.ID, p.Title, p.GridPos)
		}
	}
}

// TestQueriesArePromQL has promtool parse every query, as the expression
// of a recording rule with Grafana's variables filled in.
func TestQueriesArePromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("promtool not on PATH and HAVIP_E2E=1 (apt-get install prometheus)")
		}
		t.Skip("promtool not on PATH (apt-get install prometheus); HAVIP_E2E=1 makes this fatal")
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "6h", "$__interval", "15s",
		"$job", "havip-agent", "$instance", ".*", "$vrrp_instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries(t, load(t)) {
		expr, _ := json.Marshal(vars.Replace(q.expr)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	f := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules (dashboard queries): %v\n%s\n%s", err, out, b.String())
	}
}
