package matrix

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/compare"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

func p(present bool, ms float64) Presence { return Presence{At: at(ms), Present: present} }

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a, b     []Presence
		from, to float64
		want     time.Duration
	}{
		{"never both", []Presence{p(true, -5), p(false, 10)}, []Presence{p(false, -5), p(true, 300)}, 0, 400, 0},
		{"handover touching", []Presence{p(true, -5), p(false, 300)}, []Presence{p(false, -5), p(true, 300)}, 0, 400, 0},
		{"old keeps it 40 ms", []Presence{p(true, -5), p(false, 340)}, []Presence{p(false, -5), p(true, 300)}, 0, 400, 40 * time.Millisecond},
		{"clipped at from", []Presence{p(true, -50)}, []Presence{p(true, -20)}, 0, 10, 10 * time.Millisecond},
		{"still both at the end", []Presence{p(true, -5)}, []Presence{p(false, -5), p(true, 100)}, 0, 150, 50 * time.Millisecond},
		{"two windows", []Presence{p(true, 0), p(false, 20), p(true, 50), p(false, 60)}, []Presence{p(true, 10), p(false, 55)}, 0, 100,
			15 * time.Millisecond},
		{"repeated state", []Presence{p(true, 0), p(true, 5), p(false, 10)}, []Presence{p(true, 0)}, 0, 20, 10 * time.Millisecond},
		{"empty", nil, []Presence{p(true, 0)}, 0, 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Overlap(tc.a, tc.b, at(tc.from), at(tc.to)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if got := Overlap(tc.b, tc.a, at(tc.from), at(tc.to)); got != tc.want {
				t.Errorf("swapped: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMasterDown(t *testing.T) {
	for _, tc := range []struct {
		version  int
		advert   time.Duration
		priority int
		want     time.Duration
	}{
		{2, time.Second, 100, 3*time.Second + 609375*time.Microsecond},
		{3, 100 * time.Millisecond, 100, 360937500},
		{3, 500 * time.Millisecond, 254, 1503906250},
	} {
		if got := MasterDown(tc.version, tc.advert, tc.priority); got != tc.want {
			t.Errorf("v%d %v prio %d: got %v, want %v", tc.version, tc.advert, tc.priority, got, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	keys := []string{"a", "b", "c"}
	for _, tc := range []struct {
		list    string
		want    []string
		wantErr string
	}{
		{"", keys, ""},
		{"c, a", []string{"a", "c"}, ""},
		{"b,b", []string{"b"}, ""},
		{"a,x", nil, `unknown "x" (known: a, b, c)`},
	} {
		got, err := Select(tc.list, keys)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: got error %v, want %q", tc.list, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.list, got, err, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 12; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(d)
	if got.N != 12 || got.P50 != 6 || got.P95 != 11 || got.Max != 12 || len(got.SamplesMS) != 12 || got.SamplesMS[0] != 12 {
		t.Errorf("got %+v", got)
	}
	if got := Summarize(nil); got.N != 0 {
		t.Errorf("empty: %+v", got)
	}
}

func TestNewCellSkipsUnseenAdvertisements(t *testing.T) {
	c := NewCell("v3-0.1s", FaultCut, []Round{{FirstAdvert: 0, FirstGARP: time.Millisecond}, {FirstAdvert: 2 * time.Millisecond, FirstGARP: 3 * time.Millisecond}})
	if c.FirstAdvert.N != 1 || c.FirstGARP.N != 2 || c.CheckDetect != nil {
		t.Errorf("got %+v", c)
	}
	if h := NewCell("v3-0.1s", FaultHealth, []Round{{CheckDetect: time.Millisecond}}); h.CheckDetect == nil || h.CheckDetect.N != 1 {
		t.Errorf("health cell: %+v", h)
	}
}

func TestGapsAndAdd(t *testing.T) {
	g := GapsOf([]time.Time{at(0), at(100), at(250), at(350)})
	if want := []time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 100 * time.Millisecond}; !reflect.DeepEqual(g, want) {
		t.Fatalf("gaps %v, want %v", g, want)
	}
	var l LoadRun
	var all []time.Duration
	l.Add(LoadRun{Config: "v3-0.1s", Seconds: 20, Hogs: 4, Adverts: 4, MasterDown: 360.9}, g, &all)
	l.Add(LoadRun{Config: "v3-0.1s", Seconds: 20, Hogs: 4, Adverts: 2, MasterTransitions: 2, BackupAdverts: 7, MasterDown: 360.9},
		[]time.Duration{400 * time.Millisecond}, &all)
	want := LoadRun{Config: "v3-0.1s", Runs: 2, Seconds: 40, RunsWithFalseFailover: 1, Hogs: 4, MasterTransitions: 2, BackupAdverts: 7,
		Adverts: 6, MaxGap: 400, P99Gap: 150, MasterDown: 360.9}
	if l != want {
		t.Errorf("got %+v\nwant %+v", l, want)
	}
}

func TestFalseFailovers(t *testing.T) {
	for _, tc := range []struct {
		l    LoadRun
		want int
	}{
		{LoadRun{}, 0},
		{LoadRun{MasterTransitions: 3, BackupAdverts: 40}, 3},
		{LoadRun{BackupAdverts: 4}, 1},
		{LoadRun{BackupAdverts: 9, RunsWithFalseFailover: 2}, 2},
	} {
		if got := tc.l.FalseFailovers(); got != tc.want {
			t.Errorf("%+v: got %d, want %d", tc.l, got, tc.want)
		}
	}
}

func loadRun(config string, rt, transitions int, maxGap, down float64) LoadRun {
	return LoadRun{Config: config, RTPriority: rt, Runs: 3, Seconds: 60, Hogs: 4, MasterTransitions: transitions, MaxGap: maxGap, MasterDown: down}
}

func TestRecommend(t *testing.T) {
	cut := []Cell{{Config: "v3-0.2s", Fault: FaultCut, FirstGARP: Summary{N: 12, P50: 610}}}
	for _, tc := range []struct {
		name  string
		load  []LoadRun
		wants []string
	}{
		{"no load runs", nil, []string{""}},
		{"shortest clean interval", []LoadRun{
			loadRun("v3-0.5s", 0, 0, 520, 1805), loadRun("v3-0.2s", 0, 0, 230, 722), loadRun("v3-0.1s", 0, 2, 400, 361),
			loadRun("v3-0.1s", 50, 0, 101, 361)},
			[]string{"advert_int 0.2 s:", "taken over in 610 ms", "shorter intervals under the same load: 0.1 s: 2 false failovers",
				"with vrrp_rt_priority 50: 0.1 s: 0 false failovers"}},
		{"a gap over half the master-down interval disqualifies", []LoadRun{
			loadRun("v3-0.5s", 0, 0, 520, 1805), loadRun("v3-0.2s", 0, 0, 400, 722)},
			[]string{"advert_int 0.5 s:", "shorter intervals under the same load: 0.2 s: 0 false failovers, longest advertisement gap 400 ms"}},
		{"none clean", []LoadRun{loadRun("v3-0.5s", 0, 1, 2000, 1805)},
			[]string{"no VRRPv3 interval", "keep VRRPv2 advert_int 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Recommend(Configs, tc.load, cut)
			for _, w := range tc.wants {
				if w == "" && got != "" || !strings.Contains(got, w) {
					t.Errorf("got %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func sampleReport() Report {
	ms := func(v ...float64) []Round {
		var out []Round
		for _, x := range v {
			d := time.Duration(x * float64(time.Millisecond))
			out = append(out, Round{FirstAdvert: d - 300*time.Microsecond, FirstGARP: d, FirstRequest: d + 2*time.Millisecond,
				CloudPoints: d + 3*time.Millisecond, Released: time.Millisecond, SampleGap: 2 * time.Millisecond, CheckDetect: 40 * time.Millisecond})
		}
		return out
	}
	r := Report{
		Date:     "2026-01-02",
		Machine:  compare.Machine{CPUs: 2, MemoryGiB: 4, Kernel: "6.1.0", Keepalived: "Keepalived v2.2.7", Go: "go1.26"},
		Revision: "abc1234",
		Rounds:   3, Block: 3, Priority: 100, Configs: Configs,
		Cells: []Cell{
			NewCell("v3-0.1s", FaultStop, ms(61, 62, 64)),
			NewCell("v3-0.1s", FaultCut, ms(270, 300, 330)),
			NewCell("v3-0.1s", FaultKill, ms(280, 290, 350)),
			NewCell("v2-1s", FaultHealth, ms(610, 610, 612)),
		},
		Load:  []LoadRun{loadRun("v3-0.1s", 0, 0, 130, 360.9), loadRun("v3-0.1s", 50, 0, 100.4, 360.9)},
		Notes: []string{"A note."},
	}
	r.Cells[2].TwoNodes = Summary{N: 3, P50: 0, P95: 12, Max: 12, SamplesMS: []float64{0, 0, 12}}
	return r
}

func TestFinishTargetsAndOrder(t *testing.T) {
	r := sampleReport()
	r.Finish()
	if r.Cells[0].Config != "v2-1s" || r.Cells[1].Fault != FaultStop || r.Cells[2].Fault != FaultKill || r.Cells[3].Fault != FaultCut {
		t.Errorf("order: %v %v %v %v", r.Cells[0].Config, r.Cells[1].Fault, r.Cells[2].Fault, r.Cells[3].Fault)
	}
	want := map[string]bool{
		"VRRPv3 0.1 s, node cut off → first gratuitous ARP":          true,
		"VRRPv3 0.1 s, graceful stop → first gratuitous ARP":         true,
		"VRRPv3 0.1 s, VIP on two nodes after a killed VRRP process": true,
	}
	if len(r.Targets) != len(want) {
		t.Fatalf("targets %+v", r.Targets)
	}
	for _, tg := range r.Targets {
		if met, ok := want[tg.Name]; !ok || met != tg.Met {
			t.Errorf("target %q met=%v", tg.Name, tg.Met)
		}
	}
	r.Cells[3].FirstGARP.P50 = 451
	r.Finish()
	for _, tg := range r.Targets {
		if strings.Contains(tg.Name, "cut off") && tg.Met {
			t.Errorf("451 ms met the 450 ms target")
		}
	}
}

func TestMerge(t *testing.T) {
	old := sampleReport()
	old.Finish()
	n := Report{Date: "2026-02-03", Revision: "def5678", Rounds: 12, Block: 4, Priority: 100,
		Cells: []Cell{NewCell("v3-0.1s", FaultKill, []Round{{FirstGARP: 5 * time.Millisecond}}), NewCell("v3-0.2s", FaultLink, []Round{{FirstGARP: time.Millisecond}})},
		Load:  []LoadRun{loadRun("v3-0.1s", 50, 1, 300, 360.9)}}
	old.Merge(n)
	if len(old.Cells) != 5 || old.cell("v3-0.1s", FaultKill).FirstGARP.P50 != 5 || old.cell("v3-0.2s", FaultLink) == nil {
		t.Errorf("cells after merge: %+v", old.Cells)
	}
	if len(old.Load) != 2 || old.Load[1].RTPriority != 50 || old.Load[1].MasterTransitions != 1 || old.Load[0].MasterTransitions != 0 {
		t.Errorf("load after merge: %+v", old.Load)
	}
	if old.Date != "2026-02-03" || old.Revision != "def5678" || old.Rounds != 12 {
		t.Errorf("header after merge: %s %s %d", old.Date, old.Revision, old.Rounds)
	}
}

func TestGolden(t *testing.T) {
	r := sampleReport()
	r.Finish()
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("the JSON does not read back: %v", err)
	}
	for file, got := range map[string]string{"matrix.md.golden": r.Markdown(), "matrix.json.golden": string(js)} {
		path := filepath.Join("testdata", file)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s differs (go test -update):\n%s", file, got)
		}
	}
}
