package metrics

import (
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/havip-agent/havip-agent/agent/vocab"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// DefaultPort is the TCP port of /metrics, /healthz and /readyz when the
// configuration names none.
//
// The Prometheus "Default port allocations" wiki page registers exporters
// from 9100 upwards; that range (9100-9999) is fully allocated and new
// exporters now take 10000 and up, so no free port is left in 9xxx. The wiki
// asks exporters of internal applications to stay outside the allocated
// range. 19112 is outside it, below Linux's ephemeral port range
// (32768-60999, where a listener could collide with outgoing connections)
// and not in /etc/services; 112 is VRRP's IP protocol number.
const DefaultPort = 19112

const namespace = "havip_agent"

// states lists every value of the state label, in exposition order.
var states = [...]vocab.State{vocab.StateMaster, vocab.StateBackup, vocab.StateFault, vocab.StateStop, vocab.StateDeleted, vocab.StateUnknown}

// CodeOK is the code label of a successful cloud request.
const CodeOK = "OK"

// Buckets of the failover phase histogram: from 100µs (a netlink address add)
// to 30s (a slow cloud confirmation), roughly 1-2.5-5 per decade.
var phaseBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
	10, 30,
}

// Buckets of cloud API request durations: a healthy BCE call takes tens of
// milliseconds, a timed-out one seconds.
var cloudBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Buckets of health check durations: local probes answer in milliseconds,
// exec checks may run for seconds.
var checkBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// BuildInfo identifies the running binary in havip_agent_build_info.
type BuildInfo struct {
	Version   string
	Revision  string
	GoVersion string // runtime.Version() when empty
}

// Metrics records the agent's metrics in its own registry. The zero value is
// not usable; call New.
type Metrics struct {
	reg *prometheus.Registry

	state          *prometheus.GaugeVec
	transitions    *prometheus.CounterVec
	lastTransition *prometheus.GaugeVec
	phase          *prometheus.HistogramVec
	vipPresent     *prometheus.GaugeVec
	announcements  *prometheus.CounterVec
	cloudRequests  *prometheus.CounterVec
	cloudDuration  *prometheus.HistogramVec
	cloudOwned     *prometheus.GaugeVec
	reclaims       *prometheus.CounterVec
	conflicts      *prometheus.CounterVec
	fifoLines      prometheus.Counter
	fifoIgnored    *prometheus.CounterVec
	checkHealthy   *prometheus.GaugeVec
	checkDuration  *prometheus.HistogramVec
	checkInstance  *prometheus.GaugeVec
	connsRejected  prometheus.Counter
	cloudReady     *prometheus.GaugeVec
	reloadOK       prometheus.Gauge
	reloadAt       prometheus.Gauge
	creds          *credentialsCollector
	events         eventMetrics

	now func() time.Time

	// stateGauges caches, per VRRP instance, the gauge of every state so
	// that SetState does not hash six label sets on each call.
	stateMu     sync.Mutex
	stateGauges map[string]*[len(states)]prometheus.Gauge

	// vips records, per VRRP instance, the VIPs that have a vip_present
	// series, so that VIPsPresent can drop those no longer configured.
	vipMu sync.Mutex
	vips  map[string]map[string]struct{}
}

// New creates the metrics in a fresh registry that also holds the Go runtime
// and process collectors.
func New(b BuildInfo) *Metrics { return newMetrics(b, time.Now) }

func newMetrics(b BuildInfo, now func() time.Time) *Metrics {
	if b.GoVersion == "" {
		b.GoVersion = runtime.Version()
	}
	m := &Metrics{
		now:         now,
		reg:         prometheus.NewRegistry(),
		stateGauges: map[string]*[len(states)]prometheus.Gauge{},
		vips:        map[string]map[string]struct{}{},
		creds:       newCredentialsCollector(),
		events:      newEventMetrics(),
	}
	vi := "vrrp_instance"
	m.state = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "vrrp_state",
		Help: "VRRP state of the instance as last reported by keepalived: 1 for the current state, 0 for the others.",
	}, []string{vi, "state"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "transitions_total",
		Help: "VRRP state transitions the agent acted on, by the state entered.",
	}, []string{vi, "state"})
	m.lastTransition = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "last_transition_timestamp_seconds",
		Help: "Unix time of the instance's last VRRP state transition.",
	}, []string{vi})
	m.phase = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "failover_phase_duration_seconds",
		Help:    "Time from the MASTER notification to the end of each failover phase (vips_present, first_announcement, cloud_request_sent, cloud_confirmed).",
		Buckets: phaseBuckets,
	}, []string{vi, "phase"})
	m.vipPresent = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "vip_present",
		Help: "1 if the VIP is configured on this node's interface, else 0.",
	}, []string{vi, "vip"})
	m.announcements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "announcements_total",
		Help: "Gratuitous ARP and unsolicited neighbor advertisement packets sent.",
	}, []string{vi})
	m.cloudRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cloud_requests_total",
		Help: "Cloud API requests by operation and result code (OK, the API error code, network or timeout).",
	}, []string{"operation", "code"})
	m.cloudDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "cloud_request_duration_seconds",
		Help:    "Duration of cloud API requests, whatever their result.",
		Buckets: cloudBuckets,
	}, []string{"operation"})
	m.cloudOwned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "cloud_owned",
		Help: "1 if the cloud resource was last seen pointing at this node, else 0.",
	}, []string{vi, "resource"})
	m.reclaims = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cloud_reclaims_total",
		Help: "Times a MASTER found a cloud resource pointing elsewhere and claimed it back.",
	}, []string{vi, "resource"})
	m.conflicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cloud_conflicts_total",
		Help: "Times a cloud resource was taken away again soon after a reclaim (another node claims it too).",
	}, []string{vi, "resource"})
	m.fifoLines = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "fifo_lines_read_total",
		Help: "Lines read from keepalived's notify FIFO.",
	})
	m.fifoIgnored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "fifo_lines_ignored_total",
		Help: "FIFO lines not acted on, by reason.",
	}, []string{"reason"})
	m.checkHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "check_healthy",
		Help: "1 if the health check's verdict is healthy, 0 if failed.",
	}, []string{"check"})
	m.checkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "check_duration_seconds",
		Help:    "Duration of single health check runs.",
		Buckets: checkBuckets,
	}, []string{"check"})
	m.checkInstance = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "check_instance_info",
		Help: "Always 1: the VRRP instance depends on the health check (for joins in alerts).",
	}, []string{vi, "check"})
	m.connsRejected = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "metrics_connections_rejected_total",
		Help: "Connections to the metrics endpoint closed at once because the connection limit was reached.",
	})
	// No label: the series appears only once the agent reports, so that
	// an agent without a cloud section exports none rather than a 0.
	m.cloudReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "cloud_ready",
		Help: "1 once the cloud provider is set up, 0 while setting it up fails and is retried; absent without a cloud section.",
	}, nil)
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "config_last_reload_successful",
		Help: "1 if the last configuration reload succeeded (or none happened since start), 0 if it was refused.",
	})
	m.reloadAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load, at start or by a reload.",
	})
	// The configuration loaded at start counts as a successful load.
	m.reloadOK.Set(1)
	m.reloadAt.Set(unixSeconds(m.now()))
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1: the agent's version, revision and Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	build.Set(1)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		m.state, m.transitions, m.lastTransition, m.phase, m.vipPresent, m.announcements,
		m.cloudRequests, m.cloudDuration, m.cloudOwned, m.reclaims, m.conflicts,
		m.fifoLines, m.fifoIgnored,
		m.checkHealthy, m.checkDuration, m.checkInstance,
		m.connsRejected, m.cloudReady, m.reloadOK, m.reloadAt, m.creds,
	)
	m.reg.MustRegister(m.events.collectors()...)
	return m
}

// Registry returns the private registry, for tests and for callers that add
// collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetState records the instance's current VRRP state: the series of that
// state is 1 and the other five are 0, so that
// havip_agent_vrrp_state{state="MASTER"} == 1 selects masters without
// regular expressions. A state outside the known set is recorded as UNKNOWN.
//
// Call it for every configured instance at startup (with StateUnknown until
// keepalived reports): the first call also creates the instance's
// transitions_total series at 0, and increase() only sees a counter's first
// increment if a 0 sample preceded it.
func (m *Metrics) SetState(vrrpInstance string, state vocab.State) {
	g := m.stateSeries(vrrpInstance)
	cur := len(states) - 1 // UNKNOWN
	for i, s := range states {
		if s == state {
			cur = i
			break
		}
	}
	for i := range g {
		if i == cur {
			g[i].Set(1)
		} else {
			g[i].Set(0)
		}
	}
}

func (m *Metrics) stateSeries(vrrpInstance string) *[len(states)]prometheus.Gauge {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	g, ok := m.stateGauges[vrrpInstance]
	if !ok {
		g = new([len(states)]prometheus.Gauge)
		v := label(vrrpInstance)
		for i, s := range states {
			g[i] = m.state.WithLabelValues(v, string(s))
			// Counters start at 0 so that increase() in alerts sees the
			// first transition too.
			m.transitions.WithLabelValues(v, string(s))
		}
		m.stateGauges[vrrpInstance] = g
	}
	return g
}

// Transition counts a transition of the instance into state to and records
// its time.
func (m *Metrics) Transition(vrrpInstance string, to vocab.State, at time.Time) {
	v := label(vrrpInstance)
	m.transitions.WithLabelValues(v, label(string(to))).Inc()
	m.lastTransition.WithLabelValues(v).Set(unixSeconds(at))
}

// unixSeconds is t as Unix seconds, split so that whole seconds stay exact
// in a float64.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// Phase observes how long after the MASTER notification a failover phase
// ended.
func (m *Metrics) Phase(vrrpInstance string, phase vocab.Phase, d time.Duration) {
	m.phase.WithLabelValues(label(vrrpInstance), label(string(phase))).Observe(d.Seconds())
}

// VIPPresent records whether vip (as written in the configuration, e.g.
// "198.18.0.100/24") is on this node's interface.
func (m *Metrics) VIPPresent(vrrpInstance, vip string, present bool) {
	m.vipMu.Lock()
	defer m.vipMu.Unlock()
	m.setVIPLocked(vrrpInstance, vip, present)
}

// VIPsPresent records, for every VIP the instance has, whether it is on this
// node's interface (as VIPPresent does one by one), and removes the series
// of any VIP of the instance that present does not name, such as a VIP a
// reload removed from the configuration. Series that stay are updated in
// place, so a scrape never sees the instance without them.
func (m *Metrics) VIPsPresent(vrrpInstance string, present map[string]bool) {
	m.vipMu.Lock()
	defer m.vipMu.Unlock()
	for vip := range m.vips[vrrpInstance] {
		if _, ok := present[vip]; !ok {
			m.vipPresent.DeleteLabelValues(label(vrrpInstance), label(vip))
			delete(m.vips[vrrpInstance], vip)
		}
	}
	for vip, p := range present {
		m.setVIPLocked(vrrpInstance, vip, p)
	}
}

func (m *Metrics) setVIPLocked(vrrpInstance, vip string, present bool) {
	known, ok := m.vips[vrrpInstance]
	if !ok {
		known = map[string]struct{}{}
		m.vips[vrrpInstance] = known
	}
	known[vip] = struct{}{}
	m.vipPresent.WithLabelValues(label(vrrpInstance), label(vip)).Set(b2f(present))
}

// Announcements counts n gratuitous ARP / unsolicited NA packets sent.
func (m *Metrics) Announcements(vrrpInstance string, n int) {
	if n <= 0 {
		return
	}
	m.announcements.WithLabelValues(label(vrrpInstance)).Add(float64(n))
}

// CloudRequest counts one cloud API request and observes its duration. code
// is CodeOK on success, else the API's error code or "network" / "timeout".
func (m *Metrics) CloudRequest(operation, code string, d time.Duration) {
	op := label(operation)
	m.cloudRequests.WithLabelValues(op, label(code)).Inc()
	m.cloudDuration.WithLabelValues(op).Observe(d.Seconds())
}

// CloudOwned records whether the cloud resource (e.g. "havip/havip-x" or
// "route/rt-1/0.0.0.0/0") was last seen pointing at this node.
//
// It also creates the resource's reclaim and conflict counters at 0 (the
// agent checks ownership before it ever reclaims), so that alerts on
// increase() see the first conflict.
func (m *Metrics) CloudOwned(vrrpInstance, resource string, owned bool) {
	v, r := label(vrrpInstance), label(resource)
	m.cloudOwned.WithLabelValues(v, r).Set(b2f(owned))
	m.reclaims.WithLabelValues(v, r)
	m.conflicts.WithLabelValues(v, r)
}

// Reclaim counts a claim-back of a resource found pointing elsewhere.
func (m *Metrics) Reclaim(vrrpInstance, resource string) {
	m.reclaims.WithLabelValues(label(vrrpInstance), label(resource)).Inc()
}

// Conflict counts a resource lost again after a reclaim.
func (m *Metrics) Conflict(vrrpInstance, resource string) {
	m.conflicts.WithLabelValues(label(vrrpInstance), label(resource)).Inc()
}

// FIFOLine counts a line read from keepalived's notify FIFO.
func (m *Metrics) FIFOLine() { m.fifoLines.Inc() }

// FIFOIgnored counts a FIFO line that was not acted on. Keep reason to a
// small fixed set (e.g. "malformed", "unknown_instance", "unknown_state").
func (m *Metrics) FIFOIgnored(reason string) { m.fifoIgnored.WithLabelValues(label(reason)).Inc() }

// CheckResult observes one run of a health check. ok is accepted for
// symmetry with the runner's hook; the verdict, not single results, drives
// havip_agent_check_healthy (see CheckVerdict).
func (m *Metrics) CheckResult(check string, ok bool, d time.Duration) {
	_ = ok
	m.checkDuration.WithLabelValues(label(check)).Observe(d.Seconds())
}

// CheckVerdict records the health check's verdict.
func (m *Metrics) CheckVerdict(check string, healthy bool) {
	m.checkHealthy.WithLabelValues(label(check)).Set(b2f(healthy))
}

// CheckInstance records that the VRRP instance depends on the check, so that
// alerts can join a failing check with the instance's state.
func (m *Metrics) CheckInstance(vrrpInstance, check string) {
	m.checkInstance.WithLabelValues(label(vrrpInstance), label(check)).Set(1)
}

// ConnectionRejected counts a connection to the metrics endpoint refused by
// the connection limit (ServerOptions.Rejected).
func (m *Metrics) ConnectionRejected() { m.connsRejected.Inc() }

// CloudReady records whether the cloud provider is set up. The agent calls
// it only when the configuration has a cloud section.
func (m *Metrics) CloudReady(ready bool) { m.cloudReady.WithLabelValues().Set(b2f(ready)) }

// Reload records the outcome of a configuration reload; a successful one
// also sets the time of the last successful load. A refused reload leaves
// the running configuration, and that time, as they were.
func (m *Metrics) Reload(ok bool) {
	m.reloadOK.Set(b2f(ok))
	if ok {
		m.reloadAt.Set(unixSeconds(m.now()))
	}
}

// ForgetInstance removes every series labelled with the VRRP instance, for
// an instance removed from the configuration.
func (m *Metrics) ForgetInstance(vrrpInstance string) {
	m.stateMu.Lock()
	delete(m.stateGauges, vrrpInstance)
	m.stateMu.Unlock()
	m.vipMu.Lock()
	delete(m.vips, vrrpInstance)
	m.vipMu.Unlock()
	l := prometheus.Labels{"vrrp_instance": label(vrrpInstance)}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.state, m.transitions, m.lastTransition, m.phase, m.vipPresent, m.announcements,
		m.cloudOwned, m.reclaims, m.conflicts, m.checkInstance, m.events.drained,
	} {
		v.DeletePartialMatch(l)
	}
}

// label makes s acceptable as a label value: client_golang panics on invalid
// UTF-8, and some values (cloud error codes) come from outside.
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
