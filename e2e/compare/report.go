package compare

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// The three ways of doing the job.
const (
	WayAgent      = "havip-agent"
	WayKeepalived = "keepalived virtual_ipaddress"
	WayScript     = "notify_master script"
)

// The measured intervals, all from the new MASTER's first VRRP
// advertisement on the wire.
const (
	MetricGARP     = "first gratuitous ARP"
	MetricRequest  = "first cloud request"
	MetricSwitched = "route switched (emulator change)"
)

// Summary is the distribution of one measurement, in milliseconds.
type Summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Summarize computes the percentiles of d (nearest rank below, as the
// other e2e benchmarks do).
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) float64 { return ms(s[int(float64(len(s)-1)*p)]) }
	return Summary{N: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: at(1)}
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Nanoseconds())/1e3) / 1e3 }

// Ratios are a way's percentiles divided by havip-agent's.
type Ratios struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Measure is one way's distribution of one metric.
type Measure struct {
	Way    string `json:"way"`
	Metric string `json:"metric"`
	Summary
	// RatioToAgent is nil for havip-agent itself and where it has no
	// counterpart.
	RatioToAgent *Ratios   `json:"ratio_to_agent,omitempty"`
	SamplesMS    []float64 `json:"samples_ms"`
}

// NewMeasure summarises samples.
func NewMeasure(way, metric string, d []time.Duration) Measure {
	m := Measure{Way: way, Metric: metric, Summary: Summarize(d)}
	for _, x := range d {
		m.SamplesMS = append(m.SamplesMS, ms(x))
	}
	return m
}

// ScaleMeasure is one havip-agent scale point: times from the first
// advertisement to the last VIP's first announcement, to the last
// resource's first cloud request, and to the change that makes the last
// resource point at the new MASTER.
type ScaleMeasure struct {
	VIPs             int     `json:"vips"`
	Routes           int     `json:"ha_routes"`
	LastAnnouncement Summary `json:"last_announcement"`
	LastRequest      Summary `json:"last_cloud_request"`
	LastConfirmation Summary `json:"last_confirmation"`
}

// Target is one of the goals, checked against the measurements.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	MemoryGiB  int    `json:"memory_gib"`
	Kernel     string `json:"kernel"`
	Keepalived string `json:"keepalived"`
	Go         string `json:"go"`
}

// Report is the whole result of a run.
type Report struct {
	Date      string         `json:"date"`
	Machine   Machine        `json:"machine"`
	Failovers int            `json:"failovers_per_way"`
	Block     int            `json:"block"`
	Compare   []Measure      `json:"compare,omitempty"`
	Scale     []ScaleMeasure `json:"scale,omitempty"`
	Targets   []Target       `json:"targets,omitempty"`
	Notes     []string       `json:"notes,omitempty"`
}

// Finish fills the ratios to havip-agent and checks the targets.
func (r *Report) Finish() {
	find := func(way, metric string) *Measure {
		for i := range r.Compare {
			if r.Compare[i].Way == way && r.Compare[i].Metric == metric {
				return &r.Compare[i]
			}
		}
		return nil
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return math.Round(a/b*100) / 100
	}
	for i := range r.Compare {
		m := &r.Compare[i]
		a := find(WayAgent, m.Metric)
		if m.Way == WayAgent || a == nil || a.N == 0 || m.N == 0 {
			m.RatioToAgent = nil
			continue
		}
		m.RatioToAgent = &Ratios{P50: div(m.P50, a.P50), P95: div(m.P95, a.P95), P99: div(m.P99, a.P99)}
	}
	r.Targets = nil
	agentGARP, kaGARP, scriptGARP := find(WayAgent, MetricGARP), find(WayKeepalived, MetricGARP), find(WayScript, MetricGARP)
	agentReq, scriptReq := find(WayAgent, MetricRequest), find(WayScript, MetricRequest)
	if agentGARP != nil && kaGARP != nil {
		d := agentGARP.P50 - kaGARP.P50
		r.Targets = append(r.Targets, Target{Name: "announcement p50 vs keepalived's own", Want: "≤ +0.300 ms",
			Got: fmt.Sprintf("%+.3f ms", d), Met: d <= 0.3})
	}
	if agentGARP != nil && scriptGARP != nil {
		r.Targets = append(r.Targets, Target{Name: "announcement p50 vs the script", Want: "≤ 1/5",
			Got: fmt.Sprintf("1/%.1f", div(scriptGARP.P50, agentGARP.P50)), Met: agentGARP.P50*5 <= scriptGARP.P50})
	}
	if agentReq != nil {
		r.Targets = append(r.Targets, Target{Name: "cloud request p50", Want: "≤ 5 ms",
			Got: fmt.Sprintf("%.3f ms", agentReq.P50), Met: agentReq.P50 <= 5})
	}
	if agentReq != nil && scriptReq != nil {
		r.Targets = append(r.Targets, Target{Name: "cloud request p50 vs the script", Want: "≤ 1/5",
			Got: fmt.Sprintf("1/%.1f", div(scriptReq.P50, agentReq.P50)), Met: agentReq.P50*5 <= scriptReq.P50})
	}
}

// JSON renders the report, indented.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown renders the tables the README quotes.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %d vCPU, %d GiB RAM, Linux %s, %s (`-G`), %s; times on the wire in the switch namespace from the new MASTER's first VRRP advertisement.\n",
		r.Date, r.Machine.CPUs, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Keepalived, r.Machine.Go)
	if len(r.Compare) > 0 {
		fmt.Fprintf(&b, "\n%d failovers per way, the ways alternating in blocks of %d.\n\n", r.Failovers, r.Block)
		b.WriteString("| Way | To | n | p50 | p95 | p99 | × havip-agent (p50 / p95 / p99) |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|\n")
		for _, m := range r.Compare {
			ratio := "1"
			if m.RatioToAgent != nil {
				ratio = fmt.Sprintf("%.2f / %.2f / %.2f", m.RatioToAgent.P50, m.RatioToAgent.P95, m.RatioToAgent.P99)
			} else if m.Way != WayAgent {
				ratio = "–"
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s |\n", m.Way, m.Metric, m.N, fmtMS(m.P50), fmtMS(m.P95), fmtMS(m.P99), ratio)
		}
	}
	if len(r.Scale) > 0 {
		b.WriteString("\nScale, havip-agent, one instance (p50 / p95 / p99):\n\n")
		b.WriteString("| VIPs | HA routes | n | last announcement | last cloud request | last confirmation |\n")
		b.WriteString("|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range r.Scale {
			fmt.Fprintf(&b, "| %d | %d | %d | %s | %s | %s |\n", s.VIPs, s.Routes, s.LastAnnouncement.N,
				triple(s.LastAnnouncement), triple(s.LastRequest), triple(s.LastConfirmation))
		}
	}
	if len(r.Targets) > 0 {
		b.WriteString("\nTargets:\n\n")
		for _, t := range r.Targets {
			mark := "met"
			if !t.Met {
				mark = "NOT met"
			}
			fmt.Fprintf(&b, "- %s: want %s, got %s — %s\n", t.Name, t.Want, t.Got, mark)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func fmtMS(v float64) string { return fmt.Sprintf("%.3f ms", v) }

func triple(s Summary) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f ms", s.P50, s.P95, s.P99)
}
