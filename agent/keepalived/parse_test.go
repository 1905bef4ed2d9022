package keepalived

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseLine(t *testing.T) {
	for _, tt := range []struct {
		in     string
		want   Event
		reason Reason
	}{
		{in: `INSTANCE "VI_1" MASTER 100`, want: Event{KindInstance, "VI_1", StateMaster, 100}},
		{in: `GROUP "G1" BACKUP 0`, want: Event{KindGroup, "G1", StateBackup, 0}},
		{in: `INSTANCE "VI 2" FAULT 0`, want: Event{KindInstance, "VI 2", StateFault, 0}},
		{in: `INSTANCE "VI_1" STOP`, want: Event{KindInstance, "VI_1", StateStop, -1}},
		{in: "INSTANCE \"VI_1\" BACKUP 50\r", want: Event{KindInstance, "VI_1", StateBackup, 50}},
		{in: `INSTANCE VI_1 MASTER_RX_LOWER_PRI 100`, want: Event{KindInstance, "VI_1", StateMasterRxLowerPri, 100}},
		{in: `INSTANCE "VI_1" MASTER_PRIORITY 90`, want: Event{KindInstance, "VI_1", StateMasterPriority, 90}},
		{in: `INSTANCE "VI_1" DELETED 0`, want: Event{KindInstance, "VI_1", StateDeleted, 0}},
		{in: `VS "10.0.0.1:80" UP`, reason: ReasonNotVRRP},
		{in: `RS "x" DOWN`, reason: ReasonNotVRRP},
		{in: ``, reason: ReasonMalformed},
		{in: `INSTANCE`, reason: ReasonMalformed},
		{in: `INSTANCE "VI_1" MASTER 100 extra`, reason: ReasonMalformed},
		{in: `INSTANCE "VI_1 MASTER 100`, reason: ReasonMalformed},
		{in: `INSTANCE "VI_1"MASTER 100`, reason: ReasonMalformed},
		{in: `INSTANCE "" MASTER 100`, reason: ReasonMalformed},
		{in: `INSTANCE "VI_1" LEADER 100`, reason: ReasonUnknownState},
		{in: `INSTANCE "VI_1" MASTER 256`, reason: ReasonMalformed},
		{in: `INSTANCE "VI_1" MASTER -1`, reason: ReasonMalformed},
		{in: `HELLO "VI_1" MASTER 1`, reason: ReasonMalformed},
		{in: "INSTANCE \"VI_\xff\" MASTER 1", reason: ReasonInvalidUTF8},
		{in: `INSTANCE "` + strings.Repeat("x", 600) + `" MASTER 1`, reason: ReasonTooLong},
	} {
		got, err := ParseLine([]byte(tt.in))
		if tt.reason != "" {
			if err == nil {
				t.Errorf("ParseLine(%q) = %+v, want %s error", tt.in, got, tt.reason)
			} else if r := ReasonOf(err); r != tt.reason {
				t.Errorf("ParseLine(%q) reason = %s (%v), want %s", tt.in, r, err, tt.reason)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	got, err := ParseArgs([]string{"INSTANCE", "VI_1", "MASTER", "100"})
	if want := (Event{KindInstance, "VI_1", StateMaster, 100}); err != nil || got != want {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	if _, err := ParseArgs([]string{"INSTANCE", "VI_1"}); err == nil {
		t.Error("short args accepted")
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{`INSTANCE "VI_1" MASTER 100`, `GROUP "G" BACKUP 0`, `VS "a" UP`, `"`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseLine(b)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatal("error without reason")
			}
			return
		}
		if ev.Name == "" || !utf8.ValidString(ev.Name) || (ev.Kind != KindInstance && ev.Kind != KindGroup) {
			t.Fatalf("bad event %+v from %q", ev, b)
		}
		if ev.Priority < -1 || ev.Priority > 255 {
			t.Fatalf("priority %d", ev.Priority)
		}
	})
}
