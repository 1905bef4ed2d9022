package metrics

import (
	"strings"
	"testing"
	"time"
)

// The drain, hook and history metrics, as a scrape shows them: the hook's
// series start at zero, the drained gauge follows the instance, the
// history is read at scrape time, and a removed instance loses its
// drained series.
func TestEventMetrics(t *testing.T) {
	m := newTestMetrics()
	m.Drained("VI_1", true)
	m.Drained("VI_2", false)
	m.HookStarted("pager", []string{"ok", "failed", "timeout", "error", "stopped"})
	m.HookRun("pager", "ok", 40*time.Millisecond)
	m.HookRun("pager", "timeout", 10*time.Second)
	m.HookDropped("pager")
	m.HistoryFrom(func() (History, bool) { return History{Written: 12, Dropped: 1, Failed: 2}, true })
	m.ForgetInstance("VI_2")
	_, _, body := scrape(t, m.Handler(nil), "/metrics")
	var b strings.Builder
	for line := range strings.Lines(body) {
		for _, p := range []string{"havip_agent_drained", "havip_agent_hook_", "havip_agent_history_"} {
			if strings.HasPrefix(line, p) && !strings.Contains(line, "_bucket") {
				b.WriteString(line)
			}
		}
	}
	want := `havip_agent_drained{vrrp_instance="VI_1"} 1
havip_agent_history_events_dropped_total 1
havip_agent_history_events_written_total 12
havip_agent_history_write_failures_total 2
havip_agent_hook_events_dropped_total{hook="pager"} 1
havip_agent_hook_run_duration_seconds_sum{hook="pager"} 10.04
havip_agent_hook_run_duration_seconds_count{hook="pager"} 2
havip_agent_hook_runs_total{hook="pager",result="error"} 0
havip_agent_hook_runs_total{hook="pager",result="failed"} 0
havip_agent_hook_runs_total{hook="pager",result="ok"} 1
havip_agent_hook_runs_total{hook="pager",result="stopped"} 0
havip_agent_hook_runs_total{hook="pager",result="timeout"} 1
`
	if got := b.String(); got != want {
		t.Errorf("scrape:\n%s\nwant:\n%s", got, want)
	}
}
