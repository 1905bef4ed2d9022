package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Buckets of hook run durations: a webhook answers in milliseconds, a
// program may run up to its timeout.
var hookBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// History is what the failover history reports, read at scrape time.
type History struct {
	// Written, Dropped and Failed count the events written, the events not
	// kept (queue full, too long), and the writes the disk refused.
	Written, Dropped, Failed uint64
}

// eventMetrics are the metrics of drains, hooks and the failover history.
type eventMetrics struct {
	drained     *prometheus.GaugeVec
	hookRuns    *prometheus.CounterVec
	hookSeconds *prometheus.HistogramVec
	hookDropped *prometheus.CounterVec
	history     *historyCollector
}

func newEventMetrics() eventMetrics {
	return eventMetrics{
		drained: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "drained",
			Help: "1 while the instance is drained (havip-agent drain: its drain_file holds 1, keepalived puts it into FAULT), else 0.",
		}, []string{"vrrp_instance"}),
		hookRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "hook_runs_total",
			Help: "Runs of event hooks, by how they ended (ok, failed, timeout, error, stopped).",
		}, []string{"hook", "result"}),
		hookSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "hook_run_duration_seconds",
			Help:    "Duration of event hook runs, whatever their result.",
			Buckets: hookBuckets,
		}, []string{"hook"}),
		hookDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "hook_events_dropped_total",
			Help: "Events a hook did not run for: its queue was full (the hook is slower than the events), or the agent stopped first.",
		}, []string{"hook"}),
		history: newHistoryCollector(),
	}
}

func (e eventMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.drained, e.hookRuns, e.hookSeconds, e.hookDropped, e.history}
}

// Drained records whether the instance is drained.
func (m *Metrics) Drained(vrrpInstance string, drained bool) {
	m.events.drained.WithLabelValues(label(vrrpInstance)).Set(b2f(drained))
}

// HookRun counts one run of a hook and observes its duration (the hook
// runner's Observer).
func (m *Metrics) HookRun(hook, result string, d time.Duration) {
	h := label(hook)
	m.events.hookRuns.WithLabelValues(h, label(result)).Inc()
	m.events.hookSeconds.WithLabelValues(h).Observe(d.Seconds())
}

// HookStarted creates a hook's series at zero, so that increase() in
// alerts sees its first failure and its first drop; results lists every
// result the runner reports.
func (m *Metrics) HookStarted(hook string, results []string) {
	h := label(hook)
	for _, r := range results {
		m.events.hookRuns.WithLabelValues(h, label(r))
	}
	m.events.hookDropped.WithLabelValues(h)
}

// HookDropped counts an event a hook did not run for.
func (m *Metrics) HookDropped(hook string) { m.events.hookDropped.WithLabelValues(label(hook)).Inc() }

// HistoryFrom makes the history metrics read what f reports at every
// scrape; without it, or while f reports false, there are none.
func (m *Metrics) HistoryFrom(f func() (History, bool)) { m.events.history.read.Store(&f) }

// historyCollector exports the failover history's counters from a
// snapshot taken at every scrape.
type historyCollector struct {
	read                     atomic.Pointer[func() (History, bool)]
	written, dropped, failed *prometheus.Desc
}

func newHistoryCollector() *historyCollector {
	return &historyCollector{
		written: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "history_events_written_total"),
			"Events written to the failover history in state_dir.", nil, nil),
		dropped: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "history_events_dropped_total"),
			"Events the failover history did not keep: its writer was too far behind, or an event too large.", nil, nil),
		failed: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "history_write_failures_total"),
			"Writes to the failover history the disk refused (a full disk, say).", nil, nil),
	}
}

func (c *historyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.written
	ch <- c.dropped
	ch <- c.failed
}

func (c *historyCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.read.Load()
	if f == nil {
		return
	}
	h, ok := (*f)()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.written, prometheus.CounterValue, float64(h.Written))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(h.Dropped))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(h.Failed))
}
