package matrix

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/e2e/compare"
)

// Config is one keepalived and agent configuration of the matrix.
type Config struct {
	// Key names the configuration in HAVIP_MATRIX_CONFIGS and the JSON.
	Key       string `json:"key"`
	Version   int    `json:"vrrp_version"`
	AdvertInt Millis `json:"advert_int_ms"`
	// Shared: the VIPs are in keepalived's virtual_ipaddress too and the
	// agent's instance has shared_vips = true; otherwise the agent owns
	// them.
	Shared bool `json:"shared_vips"`
}

// Millis is a duration that JSON writes in milliseconds.
type Millis float64

// Duration converts m back.
func (m Millis) Duration() time.Duration {
	return time.Duration(float64(m) * float64(time.Millisecond))
}

// Label is how the tables name c.
func (c Config) Label() string {
	owner := "agent-owned VIPs"
	if c.Shared {
		owner = "shared VIPs"
	}
	return fmt.Sprintf("VRRPv%d %s s, %s", c.Version, secs(c.AdvertInt.Duration()), owner)
}

func secs(d time.Duration) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", d.Seconds()), "0"), ".")
}

// Configs are the configurations of the matrix: today's VRRPv2 with
// agent-owned VIPs, and VRRPv3 with shared VIPs at three intervals.
var Configs = []Config{
	{Key: "v2-1s", Version: 2, AdvertInt: 1000},
	{Key: "v3-0.5s", Version: 3, AdvertInt: 500, Shared: true},
	{Key: "v3-0.2s", Version: 3, AdvertInt: 200, Shared: true},
	{Key: "v3-0.1s", Version: 3, AdvertInt: 100, Shared: true},
}

// Fault is one way the MASTER fails.
type Fault struct {
	// Key names the fault in HAVIP_MATRIX_FAULTS and the JSON.
	Key  string `json:"key"`
	Name string `json:"name"`
}

// The faults' keys.
const (
	FaultStop   = "stop"
	FaultKill   = "kill-vrrp"
	FaultCrash  = "crash"
	FaultCut    = "cut"
	FaultLink   = "link-down"
	FaultHealth = "health"
)

// Faults are the faults of the matrix, in table order.
var Faults = []Fault{
	{FaultStop, "graceful stop (SIGTERM to keepalived)"},
	{FaultKill, "SIGKILL of the VRRP process alone"},
	{FaultCrash, "keepalived crash (SIGKILL of parent and VRRP process)"},
	{FaultCut, "node cut off (switch port down)"},
	{FaultLink, "MASTER's link down (its eth0)"},
	{FaultHealth, "health check failing (track_file weight 0)"},
}

// FaultName is the table name of a fault key.
func FaultName(key string) string {
	for _, f := range Faults {
		if f.Key == key {
			return f.Name
		}
	}
	return key
}

// Select keeps the keys named in the comma-separated list; "" keeps all.
// An unknown name is an error naming it and the known ones.
func Select(list string, keys []string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return keys, nil
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
	}
	want := map[string]bool{}
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		if !known[k] {
			return nil, fmt.Errorf("unknown %q (known: %s)", k, strings.Join(keys, ", "))
		}
		want[k] = true
	}
	var out []string
	for _, k := range keys {
		if want[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

// MasterDown is how long a BACKUP of priority waits without
// advertisements before it takes over: 3 × advert_int plus the skew time,
// (256 − priority)/256 s in VRRPv2 and (256 − priority)/256 × advert_int
// in VRRPv3.
func MasterDown(version int, advert time.Duration, priority int) time.Duration {
	skew := time.Duration(256-priority) * time.Second / 256
	if version == 3 {
		skew = time.Duration(256-priority) * advert / 256
	}
	return 3*advert + skew
}

// Presence is a change of a VIP's presence on one node, at the first
// sample that saw it.
type Presence struct {
	At      time.Time
	Present bool
}

// Overlap is how long the VIP was present on both nodes between from and
// to, each node's presence held from one change to its next (so the
// resolution is the sampling period). Changes must be in time order.
func Overlap(a, b []Presence, from, to time.Time) time.Duration {
	ia, ib := intervals(a, from, to), intervals(b, from, to)
	var d time.Duration
	for i, j := 0, 0; i < len(ia) && j < len(ib); {
		lo, hi := later(ia[i][0], ib[j][0]), earlier(ia[i][1], ib[j][1])
		if hi.After(lo) {
			d += hi.Sub(lo)
		}
		if ia[i][1].Before(ib[j][1]) {
			i++
		} else {
			j++
		}
	}
	return d
}

// intervals are the spans in which p shows the VIP present, clipped to
// [from, to].
func intervals(p []Presence, from, to time.Time) [][2]time.Time {
	var out [][2]time.Time
	for i, c := range p {
		if !c.Present {
			continue
		}
		end := to
		if i+1 < len(p) {
			end = p[i+1].At
		}
		lo, hi := later(c.At, from), earlier(end, to)
		if hi.After(lo) {
			out = append(out, [2]time.Time{lo, hi})
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Summary is the distribution of one measurement, in milliseconds.
type Summary struct {
	N         int       `json:"n"`
	P50       float64   `json:"p50_ms"`
	P95       float64   `json:"p95_ms"`
	Max       float64   `json:"max_ms"`
	SamplesMS []float64 `json:"samples_ms"`
}

// Summarize computes the percentiles of d (nearest rank below, as the
// other e2e benchmarks do) and keeps the samples in run order.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) float64 { return ms(s[int(float64(len(s)-1)*p)]) }
	out := Summary{N: len(s), P50: at(0.50), P95: at(0.95), Max: at(1)}
	for _, x := range d {
		out.SamplesMS = append(out.SamplesMS, ms(x))
	}
	return out
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Nanoseconds())/1e3) / 1e3 }

// Round is one failover's times, each from the fault.
type Round struct {
	// FirstAdvert is the new MASTER's first VRRP advertisement, 0 when
	// none was seen before its gratuitous ARP.
	FirstAdvert time.Duration
	// FirstGARP is its first gratuitous ARP for the VIP.
	FirstGARP time.Duration
	// FirstRequest is its first cloud request (emulator log).
	FirstRequest time.Duration
	// CloudPoints is the later of the route switch and the HAVIP master
	// change pointing at it (emulator change log).
	CloudPoints time.Duration
	// TwoNodes is how long the VIP was on both nodes.
	TwoNodes time.Duration
	// Released is when the old MASTER no longer had the VIP (0 when it
	// had let it go before the fault's time).
	Released time.Duration
	// SampleGap is the longest pause of the presence sampling, the
	// resolution of TwoNodes and Released.
	SampleGap time.Duration
	// CheckDetect is, for the health fault, from the service failing to
	// the agent's track file write (the fault's time).
	CheckDetect time.Duration
}

// Cell is one configuration and fault.
type Cell struct {
	Config       string   `json:"config"`
	Fault        string   `json:"fault"`
	FirstAdvert  Summary  `json:"first_advertisement"`
	FirstGARP    Summary  `json:"first_gratuitous_arp"`
	FirstRequest Summary  `json:"first_cloud_request"`
	CloudPoints  Summary  `json:"cloud_points_at_new_master"`
	TwoNodes     Summary  `json:"vip_on_two_nodes"`
	Released     Summary  `json:"vip_off_old_master"`
	CheckDetect  *Summary `json:"check_detection,omitempty"`
	// SampleGap is the longest pause of the presence sampling in any
	// round, in milliseconds.
	SampleGap float64 `json:"sampling_max_gap_ms"`
}

// NewCell summarises rounds.
func NewCell(config, fault string, rounds []Round) Cell {
	pick := func(f func(Round) time.Duration) Summary {
		var d []time.Duration
		for _, r := range rounds {
			d = append(d, f(r))
		}
		return Summarize(d)
	}
	var adverts []time.Duration
	for _, r := range rounds {
		if r.FirstAdvert > 0 {
			adverts = append(adverts, r.FirstAdvert)
		}
	}
	c := Cell{Config: config, Fault: fault,
		FirstAdvert:  Summarize(adverts),
		FirstGARP:    pick(func(r Round) time.Duration { return r.FirstGARP }),
		FirstRequest: pick(func(r Round) time.Duration { return r.FirstRequest }),
		CloudPoints:  pick(func(r Round) time.Duration { return r.CloudPoints }),
		TwoNodes:     pick(func(r Round) time.Duration { return r.TwoNodes }),
		Released:     pick(func(r Round) time.Duration { return r.Released }),
	}
	for _, r := range rounds {
		c.SampleGap = max(c.SampleGap, ms(r.SampleGap))
	}
	if fault == FaultHealth {
		s := pick(func(r Round) time.Duration { return r.CheckDetect })
		c.CheckDetect = &s
	}
	return c
}

// LoadRun is one interval's run with both nodes busy and no fault.
type LoadRun struct {
	Config string `json:"config"`
	// RTPriority is keepalived's vrrp_rt_priority (SCHED_RR for its VRRP
	// process); 0 is keepalived's default, the normal scheduler.
	RTPriority int `json:"vrrp_rt_priority,omitempty"`
	// Runs are the load runs folded in, Seconds their total length.
	Runs    int     `json:"runs"`
	Seconds float64 `json:"seconds"`
	// RunsWithFalseFailover counts the runs that had one or more.
	RunsWithFalseFailover int `json:"runs_with_false_failover"`
	// Hogs is the number of busy loops (per node × 2).
	Hogs int `json:"cpu_hogs"`
	// MasterTransitions are the agents' transitions to MASTER during the
	// run (from their logs): every one is a false failover.
	MasterTransitions int `json:"master_transitions"`
	// FaultTransitions are the agents' transitions to FAULT (a health
	// check failing under the load, not VRRP).
	FaultTransitions int `json:"fault_transitions"`
	// BackupAdverts are advertisements on the wire from the node that
	// was BACKUP when the run began: it believed itself MASTER.
	BackupAdverts int `json:"backup_advertisements"`
	// Adverts are the first MASTER's advertisements seen before the
	// BACKUP's first one.
	Adverts int `json:"master_advertisements"`
	// MaxGap and P99Gap are between two of those advertisements: a gap
	// on the wire as long as MasterDown is a false failover; a false
	// failover with shorter gaps was the BACKUP's own delay.
	MaxGap float64 `json:"max_advert_gap_ms"`
	P99Gap float64 `json:"p99_advert_gap_ms"`
	// MasterDown is the BACKUP's master-down interval.
	MasterDown float64 `json:"master_down_ms"`
}

// FalseFailovers is the run's count: transitions to MASTER the agents
// logged, or, if the agents missed one, the wire's evidence (a BACKUP
// that advertised at all counts once).
func (l LoadRun) FalseFailovers() int {
	if l.MasterTransitions == 0 && l.BackupAdverts > 0 {
		return max(1, l.RunsWithFalseFailover)
	}
	return l.MasterTransitions
}

func (l LoadRun) key() string { return fmt.Sprintf("%s/%d", l.Config, l.RTPriority) }

// GapsOf are the gaps between consecutive times.
func GapsOf(at []time.Time) []time.Duration {
	var g []time.Duration
	for i := 1; i < len(at); i++ {
		g = append(g, at[i].Sub(at[i-1]))
	}
	return g
}

// GapStats are the p99 (nearest rank below) and the maximum of gaps.
func GapStats(gaps []time.Duration) (p99, maxGap time.Duration) {
	if len(gaps) == 0 {
		return 0, 0
	}
	g := append([]time.Duration(nil), gaps...)
	sort.Slice(g, func(i, j int) bool { return g[i] < g[j] })
	return g[int(float64(len(g)-1)*0.99)], g[len(g)-1]
}

// Add folds another run of the same configuration into l: counts add up,
// gaps (all runs' gaps together) give the p99 and maximum.
func (l *LoadRun) Add(o LoadRun, gaps []time.Duration, all *[]time.Duration) {
	l.Config, l.RTPriority, l.Hogs, l.MasterDown = o.Config, o.RTPriority, o.Hogs, o.MasterDown
	l.Runs++
	l.Seconds += o.Seconds
	l.MasterTransitions += o.MasterTransitions
	l.FaultTransitions += o.FaultTransitions
	l.BackupAdverts += o.BackupAdverts
	l.Adverts += o.Adverts
	if o.FalseFailovers() > 0 {
		l.RunsWithFalseFailover++
	}
	*all = append(*all, gaps...)
	p99, maxGap := GapStats(*all)
	l.P99Gap, l.MaxGap = ms(p99), ms(maxGap)
}

// Target is one of issue 12's goals, checked against the measurements.
type Target = compare.Target

// Report is the whole result of a run.
type Report struct {
	Date    string          `json:"date"`
	Machine compare.Machine `json:"machine"`
	// Revision is the commit the agent was built from.
	Revision string `json:"revision,omitempty"`
	// Rounds per cell and the block of rounds a configuration runs before
	// the next takes over.
	Rounds   int       `json:"rounds_per_cell"`
	Block    int       `json:"block"`
	Priority int       `json:"priority"`
	Configs  []Config  `json:"configs"`
	Cells    []Cell    `json:"cells"`
	Load     []LoadRun `json:"load,omitempty"`
	Targets  []Target  `json:"targets,omitempty"`
	// UnderLoad names the shortest VRRPv3 interval that the load runs
	// found safe, with the figures (see Recommend).
	UnderLoad string   `json:"under_load,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

func (r *Report) cell(config, fault string) *Cell {
	for i := range r.Cells {
		if r.Cells[i].Config == config && r.Cells[i].Fault == fault {
			return &r.Cells[i]
		}
	}
	return nil
}

func (r *Report) config(key string) (Config, bool) {
	for _, c := range r.Configs {
		if c.Key == key {
			return c, true
		}
	}
	for _, c := range Configs {
		if c.Key == key {
			return c, true
		}
	}
	return Config{}, false
}

// Merge puts the cells and load runs of n into r, replacing those of the
// same configuration (and fault), and takes n's date, machine and notes:
// a partial re-run updates only what it measured.
func (r *Report) Merge(n Report) {
	for _, c := range n.Cells {
		if old := r.cell(c.Config, c.Fault); old != nil {
			*old = c
		} else {
			r.Cells = append(r.Cells, c)
		}
	}
	for _, l := range n.Load {
		replaced := false
		for i := range r.Load {
			if r.Load[i].key() == l.key() {
				r.Load[i], replaced = l, true
			}
		}
		if !replaced {
			r.Load = append(r.Load, l)
		}
	}
	r.Date, r.Machine, r.Revision, r.Rounds, r.Block, r.Priority, r.Notes = n.Date, n.Machine, n.Revision, n.Rounds, n.Block, n.Priority, n.Notes
	r.Configs = Configs
	r.sort()
}

// sort puts cells and load runs in the order of Configs and Faults.
func (r *Report) sort() {
	ci := map[string]int{}
	for i, c := range Configs {
		ci[c.Key] = i
	}
	fi := map[string]int{}
	for i, f := range Faults {
		fi[f.Key] = i
	}
	sort.SliceStable(r.Cells, func(i, j int) bool {
		a, b := r.Cells[i], r.Cells[j]
		if ci[a.Config] != ci[b.Config] {
			return ci[a.Config] < ci[b.Config]
		}
		return fi[a.Fault] < fi[b.Fault]
	})
	sort.SliceStable(r.Load, func(i, j int) bool {
		a, b := r.Load[i], r.Load[j]
		if a.RTPriority != b.RTPriority {
			return a.RTPriority < b.RTPriority
		}
		return ci[a.Config] < ci[b.Config]
	})
}

// Finish checks the targets and writes the recommendation.
func (r *Report) Finish() {
	r.sort()
	r.Targets = nil
	check := func(name, fault, metric string, want float64, get func(Cell) float64) {
		c := r.cell("v3-0.1s", fault)
		if c == nil || c.FirstGARP.N == 0 {
			return
		}
		got := get(*c)
		r.Targets = append(r.Targets, Target{Name: name, Want: fmt.Sprintf("p50 ≤ %g ms", want),
			Got: fmt.Sprintf("p50 %.1f ms (%s)", got, metric), Met: got <= want})
	}
	check("VRRPv3 0.1 s, node cut off → first gratuitous ARP", FaultCut, "first gratuitous ARP", 450, func(c Cell) float64 { return c.FirstGARP.P50 })
	check("VRRPv3 0.1 s, graceful stop → first gratuitous ARP", FaultStop, "first gratuitous ARP", 100, func(c Cell) float64 { return c.FirstGARP.P50 })
	check("VRRPv3 0.1 s, VIP on two nodes after a killed VRRP process", FaultKill, "VIP on two nodes", 50, func(c Cell) float64 { return c.TwoNodes.P50 })
	check("VRRPv3 0.1 s, VIP on two nodes after a keepalived crash", FaultCrash, "VIP on two nodes", 50, func(c Cell) float64 { return c.TwoNodes.P50 })
	r.UnderLoad = Recommend(r.Configs, r.Load, r.Cells)
}

// Recommend picks, from the load runs alone, the shortest VRRPv3 interval
// whose runs with keepalived's default scheduling had no false failover
// and whose longest advertisement gap stayed below half its master-down
// interval (a margin for worse neighbours than the run's), and gives the
// figures; the runs with vrrp_rt_priority are reported beside it. What
// one machine cannot load (loss and pauses of a VPC's network and
// hypervisor) is for the reader to weigh.
func Recommend(configs []Config, load []LoadRun, cells []Cell) string {
	if len(load) == 0 {
		return ""
	}
	cfg := func(key string) Config {
		for _, c := range configs {
			if c.Key == key {
				return c
			}
		}
		return Config{}
	}
	var best *LoadRun
	for i := range load {
		l := &load[i]
		c := cfg(l.Config)
		if c.Version != 3 || l.RTPriority != 0 || l.FalseFailovers() > 0 || l.MaxGap*2 >= l.MasterDown {
			continue
		}
		if best == nil || c.AdvertInt < cfg(best.Config).AdvertInt {
			best = l
		}
	}
	describe := func(l LoadRun) string {
		return fmt.Sprintf("%s s: %d false failovers, longest advertisement gap %s ms of a %s ms master-down interval",
			secs(cfg(l.Config).AdvertInt.Duration()), l.FalseFailovers(), num(l.MaxGap), num(l.MasterDown))
	}
	var why string
	if best == nil {
		why = "no VRRPv3 interval ran its load run without a false failover and with its longest advertisement gap below half the master-down interval; keep VRRPv2 advert_int 1 or give keepalived vrrp_rt_priority"
	} else {
		bc := cfg(best.Config)
		why = fmt.Sprintf("advert_int %s s: with both nodes busy (%d CPU hogs for %.0f s) it had no false failover and its longest gap between two advertisements was %s ms, under half its %s ms master-down interval",
			secs(bc.AdvertInt.Duration()), best.Hogs, best.Seconds, num(best.MaxGap), num(best.MasterDown))
		for _, c := range cells {
			if c.Config == best.Config && c.Fault == FaultCut && c.FirstGARP.N > 0 {
				why += fmt.Sprintf("; a node cut off is taken over in %s ms (p50, first gratuitous ARP)", num(c.FirstGARP.P50))
			}
		}
	}
	var shorter, rt []string
	for _, l := range load {
		c := cfg(l.Config)
		switch {
		case c.Version != 3:
		case l.RTPriority != 0:
			rt = append(rt, describe(l))
		case best == nil || c.AdvertInt < cfg(best.Config).AdvertInt:
			shorter = append(shorter, describe(l))
		}
	}
	if len(shorter) > 0 {
		why += "; shorter intervals under the same load: " + strings.Join(shorter, "; ")
	}
	if len(rt) > 0 {
		why += fmt.Sprintf("; with vrrp_rt_priority %d: %s", load[len(load)-1].RTPriority, strings.Join(rt, "; "))
	}
	return why
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
	rev := ""
	if r.Revision != "" {
		rev = ", havip-agent " + r.Revision
	}
	fmt.Fprintf(&b, "Measured %s on %d vCPU, %d GiB RAM, Linux %s, %s (`-G`), %s%s. Times on the wire in the switch namespace from the fault, p50 / p95 / max in ms; %d rounds per cell, the configurations alternating in blocks of %d, both nodes priority %d with nopreempt.\n\n",
		r.Date, r.Machine.CPUs, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Keepalived, r.Machine.Go, rev, r.Rounds, r.Block, r.Priority)
	b.WriteString("| configuration | fault | n | first gratuitous ARP | first cloud request | cloud points at it | VIP on two nodes | VIP off the old MASTER |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.Cells {
		label := c.Config
		if cfg, ok := r.config(c.Config); ok {
			label = cfg.Label()
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", label, FaultName(c.Fault), c.FirstGARP.N,
			triple(c.FirstGARP), triple(c.FirstRequest), triple(c.CloudPoints), triple(c.TwoNodes), triple(c.Released))
	}
	var gap float64
	for _, c := range r.Cells {
		gap = max(gap, c.SampleGap)
	}
	if len(r.Cells) > 0 {
		fmt.Fprintf(&b, "\nVIP on two nodes: both nodes' addresses dumped over netlink every 1 ms; the longest pause between two dumps in any round was %s ms.\n", num(gap))
	}
	for _, c := range r.Cells {
		if c.CheckDetect != nil && c.CheckDetect.N > 0 {
			label := c.Config
			if cfg, ok := r.config(c.Config); ok {
				label = cfg.Label()
			}
			fmt.Fprintf(&b, "\nHealth check, %s: service failing → track file written %s ms (not included above).\n", label, triple(*c.CheckDetect))
		}
	}
	if len(r.Load) > 0 {
		b.WriteString("\nFalse failovers with both nodes busy, no fault:\n\n")
		b.WriteString("| configuration | keepalived scheduling | runs × s | CPU hogs | false failovers | FAULT transitions | MASTER advertisements | longest gap | p99 gap | master-down interval |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, l := range r.Load {
			label := l.Config
			if cfg, ok := r.config(l.Config); ok {
				label = cfg.Label()
			}
			sched := "default (SCHED_OTHER)"
			if l.RTPriority > 0 {
				sched = fmt.Sprintf("vrrp_rt_priority %d", l.RTPriority)
			}
			per := l.Seconds
			if l.Runs > 0 {
				per /= float64(l.Runs)
			}
			fmt.Fprintf(&b, "| %s | %s | %d × %.0f | %d | %d | %d | %d | %s ms | %s ms | %s ms |\n", label, sched, max(l.Runs, 1), per, l.Hogs, l.FalseFailovers(),
				l.FaultTransitions, l.Adverts, num(l.MaxGap), num(l.P99Gap), num(l.MasterDown))
		}
	}
	if r.UnderLoad != "" {
		fmt.Fprintf(&b, "\nShortest interval without a false failover under this load: %s.\n", r.UnderLoad)
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

func triple(s Summary) string {
	if s.N == 0 {
		return "–"
	}
	return num(s.P50) + " / " + num(s.P95) + " / " + num(s.Max)
}

// num writes a millisecond figure with the precision it deserves.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
