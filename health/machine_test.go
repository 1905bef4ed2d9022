package health

import "testing"

func TestMachine(t *testing.T) {
	// Results are '+' (pass) and '-' (failure); verdicts after each
	// result are 'H' (healthy) and 'F' (failed).
	tests := []struct {
		name       string
		rise, fall int
		initial    Verdict
		results    string
		want       string
	}{
		{name: "rise 2 from failed", rise: 2, fall: 3, initial: Failed, results: "++++", want: "FHHH"},
		{name: "fall 3 from healthy", rise: 2, fall: 3, initial: Healthy, results: "----", want: "HHFF"},
		{name: "flapping never rises", rise: 2, fall: 3, initial: Failed, results: "+-+-+-", want: "FFFFFF"},
		{name: "flapping never falls", rise: 2, fall: 3, initial: Healthy, results: "--+--+", want: "HHHHHH"},
		{name: "full cycle", rise: 2, fall: 3, initial: Failed, results: "++---++", want: "FHHHFFH"},
		{name: "rise 1 fall 1", rise: 1, fall: 1, initial: Failed, results: "+-+-", want: "HFHF"},
		{name: "initial failed stays on failures", rise: 2, fall: 3, initial: Failed, results: "-", want: "F"},
		{name: "initial healthy stays on passes", rise: 2, fall: 3, initial: Healthy, results: "+", want: "H"},
		{name: "initial healthy needs fall even before any pass", rise: 5, fall: 2, initial: Healthy, results: "-+--", want: "HHHF"},
		{name: "initial failed needs rise even before any failure", rise: 3, fall: 1, initial: Failed, results: "++-+++", want: "FFFFFH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := machine{rise: tt.rise, fall: tt.fall, verdict: tt.initial}
			var got []byte
			prev := tt.initial
			for i, r := range tt.results {
				changed := m.observe(r == '+')
				if changed != (m.verdict != prev) {
					t.Errorf("result %d: changed = %v, verdict %v -> %v", i, changed, prev, m.verdict)
				}
				prev = m.verdict
				if m.passes > 0 && m.fails > 0 {
					t.Errorf("result %d: passes %d and fails %d both non-zero", i, m.passes, m.fails)
				}
				got = append(got, m.verdict.String()[0]-'a'+'A')
			}
			if string(got) != tt.want {
				t.Errorf("verdicts = %s, want %s", got, tt.want)
			}
		})
	}
}
