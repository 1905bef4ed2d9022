// Package prometheus_test checks the alerting rules in this directory with
// promtool and against the metrics package agent/metrics defines.
package prometheus_test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/havip-agent/havip-agent/agent/metrics"
)

const (
	rulesFile = "havip-agent.rules.yml"
	testsFile = "havip-agent.rules.test.yml"
)

// promtool returns promtool's path, skipping the test when it is missing
// unless HAVIP_E2E=1 (CI installs the Debian package prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("promtool not on PATH and HAVIP_E2E=1 (apt-get install prometheus)")
		}
		t.Skip("promtool not on PATH (apt-get install prometheus); HAVIP_E2E=1 makes this fatal")
	}
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	run(t, promtool(t), "check", "rules", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	run(t, promtool(t), "test", "rules", testsFile)
}

var alertRe = regexp.MustCompile(`^\s*- alert:\s*(\S+)\s*$`)

func alerts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		if m := alertRe.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: no alerts found", rulesFile)
	}
	return names
}

// TestEveryAlertTestedBothWays proves that the unit tests show every alert
// both firing (a non-empty exp_alerts) and not firing (exp_alerts: []).
func TestEveryAlertTestedBothWays(t *testing.T) {
	f, err := os.Open(testsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	firing, quiet := map[string]bool{}, map[string]bool{}
	var current string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "- ")
		switch {
		case strings.HasPrefix(line, "alertname:"):
			current = strings.TrimSpace(strings.TrimPrefix(line, "alertname:"))
		case line == "exp_alerts: []":
			quiet[current] = true
		case line == "exp_alerts:":
			firing[current] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts(t) {
		if !firing[a] {
			t.Errorf("%s: no test shows %s firing", testsFile, a)
		}
		if !quiet[a] {
			t.Errorf("%s: no test shows %s not firing", testsFile, a)
		}
	}
}

// TestRulesUseExistingMetrics catches a rule that names a metric the agent
// does not export (a typo would make the alert silently never fire).
func TestRulesUseExistingMetrics(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	have, err := metrics.Families()
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`havip_agent_[a-z0-9_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("no havip_agent_ metric in the rules")
	}
	for _, name := range used {
		if !have[metrics.Family(name)] {
			t.Errorf("%s names %s, which agent/metrics does not export", rulesFile, name)
		}
	}
}
