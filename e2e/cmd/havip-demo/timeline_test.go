package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud/emulator"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	t0        = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	testNodes = []nodeInfo{
		{Name: "n1", MAC: "02:00:00:00:00:11", IP: "198.18.0.11", Instance: "i-n1", Gateway: "dcgw-n1"},
		{Name: "n2", MAC: "02:00:00:00:00:12", IP: "198.18.0.12", Instance: "i-n2", Gateway: "dcgw-n2"},
	}
)

// at is t0 plus ms milliseconds.
func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

// pings are requests every 10 ms from fromMS on with seq counting from
// seq, answered by mac (none when "") at +1 ms.
func pings(fromMS float64, seq uint16, n int, mac string) []echo {
	var out []echo
	for i := range n {
		t := fromMS + float64(i)*10
		out = append(out, echo{At: at(t), Seq: seq + uint16(i)})
		if mac != "" {
			out = append(out, echo{At: at(t + 1), Seq: seq + uint16(i), Reply: true, MAC: mac})
		}
	}
	return out
}

func join[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// cloudFailover is the emulator's log of n2 taking over at fromMS.
func cloudFailover(fromMS float64) emulator.Log {
	return emulator.Log{
		Requests: []emulator.RequestRecord{
			{Time: at(-500), Source: "198.18.0.11", Method: "GET", Operation: "havip.detail"},
			{Time: at(fromMS + 1), Source: "198.18.0.12", Method: "GET", Operation: "havip.detail"},
			{Time: at(fromMS + 2), Source: "198.18.0.12", Method: "GET", Operation: "route.rule.list"},
			{Time: at(fromMS + 3), Source: "198.18.0.12", Method: "PUT", Operation: emulator.OpRouteRuleSwitch},
		},
		Changes: []emulator.ChangeRecord{
			{Time: at(fromMS + 0.5), Operation: "arp", Resource: havipID, Before: "i-n1", After: "i-n2", Message: "havip havip-rig master i-n1 -> i-n2 (arp from 02:00:00:00:00:12)"},
			{Time: at(fromMS + 3), Operation: emulator.OpRouteRuleSwitch, Resource: "rr-a", Before: "dcgw-n1", After: "dcgw-n2", Message: "route rr-a/rr-b 198.19.0.0/24 active dcgw-n1 -> dcgw-n2"},
		},
	}
}

func TestTimelineGolden(t *testing.T) {
	tests := []struct {
		name string
		p    phase
		s    snapshot
	}{{
		// n1 cut off: it drops the VIP at once (FAULT), n2 takes over
		// after three advertisements and a skew; the pings in between
		// are lost.
		name: "cutoff",
		p:    phase{Fault: "n1's switch port down", Start: t0, End: at(1700), Old: "n1", New: "n2"},
		s: snapshot{
			Nodes: testNodes,
			VIP: map[string][]presence{
				"n1": {{at(-5000), true}, {at(0.4), false}},
				"n2": {{at(-5000), false}, {at(660), true}},
			},
			Echoes: join(pings(-30, 1, 3, testNodes[0].MAC), pings(0, 4, 67, ""), pings(670, 71, 100, testNodes[1].MAC)),
			GARPs:  []garp{{at(-4000), testNodes[0].MAC}, {at(660.1), testNodes[1].MAC}},
			Agent: []agentEvent{
				{Node: "n1", To: "MASTER", Source: "fifo", Received: at(-4000), Generation: 1},
				{Node: "n1", To: "FAULT", Source: "fifo", Received: at(0.7), Generation: 2},
				{Node: "n2", To: "MASTER", Source: "fifo", Received: at(660.3), Generation: 2},
			},
			Cloud: cloudFailover(660),
		},
	}, {
		// A graceful stop where n1 still answers two pings and keeps the
		// VIP while n2 already has it.
		name: "overlap",
		p:    phase{Fault: "SIGTERM to n1's keepalived", Start: t0, End: at(1200), Old: "n1", New: "n2"},
		s: snapshot{
			Nodes: testNodes,
			VIP: map[string][]presence{
				"n1": {{at(-5000), true}, {at(125.5), false}},
				"n2": {{at(-5000), false}, {at(122), true}},
			},
			Echoes: join(pings(-20, 1, 4, testNodes[0].MAC), pings(20, 5, 10, ""), pings(123, 15, 50, testNodes[1].MAC)),
			GARPs:  []garp{{at(122.1), testNodes[1].MAC}},
			Agent: []agentEvent{
				{Node: "n1", To: "STOP", Source: "fifo", Received: at(0.5), Generation: 2},
				{Node: "n2", To: "MASTER", Source: "fifo", Received: at(122.2), Generation: 2},
				{Node: "n1", To: "FAULT", Source: "liveness", Received: at(1010), Generation: 3},
			},
			Cloud: cloudFailover(122),
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			render(&b, tc.p, explain(tc.p, tc.s))
			golden := filepath.Join("testdata", tc.name+".golden")
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
		})
	}
}

func TestHoldingAndOverlap(t *testing.T) {
	p := phase{Start: t0, End: at(100)}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	tests := []struct {
		name    string
		a, b    []presence
		wantA   []window
		wantTwo []window
	}{
		{"handover without overlap",
			[]presence{{at(-10), true}, {at(5), false}},
			[]presence{{at(-10), false}, {at(50), true}},
			[]window{{0, ms(5)}}, nil},
		{"overlap",
			[]presence{{at(-10), true}, {at(52), false}},
			[]presence{{at(-10), false}, {at(50), true}},
			[]window{{0, ms(52)}}, []window{{ms(50), ms(52)}}},
		{"both throughout",
			[]presence{{at(-10), true}},
			[]presence{{at(-10), true}},
			[]window{{0, ms(100)}}, []window{{0, ms(100)}}},
		{"changes after the end are ignored",
			[]presence{{at(-10), false}, {at(150), true}},
			[]presence{{at(-10), true}},
			nil, nil},
		{"twice",
			[]presence{{at(-10), true}, {at(10), false}, {at(20), true}, {at(30), false}},
			[]presence{{at(-10), true}, {at(25), false}},
			[]window{{0, ms(10)}, {ms(20), ms(30)}}, []window{{0, ms(10)}, {ms(20), ms(25)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ha, hb := holding(tc.a, p), holding(tc.b, p)
			if !reflect.DeepEqual(ha, tc.wantA) {
				t.Errorf("holding = %v, want %v", ha, tc.wantA)
			}
			if got := overlap(ha, hb); !reflect.DeepEqual(got, tc.wantTwo) {
				t.Errorf("overlap = %v, want %v", got, tc.wantTwo)
			}
		})
	}
}

func TestLost(t *testing.T) {
	mac := testNodes[0].MAC
	tests := []struct {
		name   string
		echoes []echo
		served uint16
		ok     bool
		want   int
	}{
		{"gap counted by sequence, also requests never on the wire",
			join(pings(-20, 1, 2, mac), pings(100, 40, 1, mac)), 40, true, 37},
		{"a late reply is not lost",
			join(pings(-20, 1, 2, mac), []echo{{At: at(50), Seq: 5, Reply: true, MAC: mac}}, pings(100, 10, 1, mac)), 10, true, 6},
		{"wrap", join([]echo{{At: at(-1), Seq: 0xfffe, Reply: true}}, pings(100, 2, 1, mac)), 2, true, 3},
		{"not served", pings(-20, 1, 2, mac), 0, false, 0},
		{"no reply before the fault", pings(100, 40, 1, mac), 40, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lost(tc.echoes, t0, tc.served, tc.ok); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSeen(t *testing.T) {
	tests := []struct {
		name    string
		s       []presence
		present bool
		at      time.Time
		want    []presence
	}{
		{"first", nil, true, at(1), []presence{{at(1), true}}},
		{"a change", []presence{{at(1), true}}, false, at(5), []presence{{at(1), true}, {at(5), false}}},
		{"the same later", []presence{{at(1), true}, {at(5), false}}, false, at(6), []presence{{at(1), true}, {at(5), false}}},
		{"the same earlier wins", []presence{{at(1), true}, {at(5), false}}, false, at(4), []presence{{at(1), true}, {at(4), false}}},
		{"never before the previous change", []presence{{at(1), true}, {at(5), false}}, false, at(0.5), []presence{{at(1), true}, {at(5), false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := seen(append([]presence(nil), tc.s...), tc.present, tc.at); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
