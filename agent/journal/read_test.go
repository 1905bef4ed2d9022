package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// line is a journal line for an event of instance at t0 plus sec seconds.
func line(instance string, sec int) string {
	return fmt.Sprintf(`{"v":1,"time":"%s","instance":"%s","kind":"transition","generation":%d}`+"\n",
		t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano), instance, sec)
}

func TestReadLines(t *testing.T) {
	good := strings.TrimSuffix(line("VI_1", 1), "\n")
	for _, tt := range []struct {
		name        string
		in          string
		maxLine     int
		wantParsed  int
		wantSkipped int
	}{
		{name: "empty", in: ""},
		{name: "one", in: good + "\n", wantParsed: 1},
		{name: "no final newline", in: good, wantParsed: 1},
		{name: "blank lines are nothing", in: "\n\n" + good + "\n\n", wantParsed: 1},
		{name: "torn", in: good + "\n" + good[:20], wantParsed: 1, wantSkipped: 1},
		{name: "not JSON", in: "hello\n" + good + "\n", wantParsed: 1, wantSkipped: 1},
		{name: "null", in: "null\n", wantSkipped: 1},
		{name: "empty object", in: "{}\n", wantSkipped: 1},
		{name: "no kind", in: `{"time":"2030-01-01T00:00:00Z"}` + "\n", wantSkipped: 1},
		{name: "no time", in: `{"kind":"hook"}` + "\n", wantSkipped: 1},
		{name: "trailing data", in: good + good + "\n", wantSkipped: 1},
		{name: "carriage return", in: good + "\r\n", wantParsed: 1},
		{name: "array", in: "[1]\n", wantSkipped: 1},
		{name: "unknown fields and kind, a newer version", in: `{"v":9,"time":"2030-01-01T00:00:00Z","kind":"future","x":{"y":1}}` + "\n", wantParsed: 1},
		{name: "too long", in: good + "\n" + strings.Repeat("a", 100) + "\n" + good + "\n", maxLine: 99, wantParsed: 2, wantSkipped: 1},
		{name: "too long at the end", in: good + "\n" + strings.Repeat("a", 200), maxLine: 99, wantParsed: 1, wantSkipped: 1},
		{name: "just fits", in: good + "\n", maxLine: len(good), wantParsed: 1},
		{name: "one byte too long", in: good + "\n", maxLine: len(good) - 1, wantSkipped: 1},
		{name: "one byte too long at the end", in: good, maxLine: len(good) - 1, wantSkipped: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			maxLine := tt.maxLine
			if maxLine == 0 {
				maxLine = MaxLineBytes
			}
			parsed := 0
			skipped, err := readLines(strings.NewReader(tt.in), maxLine, func(*Event) { parsed++ })
			if err != nil || parsed != tt.wantParsed || skipped != tt.wantSkipped {
				t.Errorf("got %d parsed, %d skipped, %v; want %d, %d", parsed, skipped, err, tt.wantParsed, tt.wantSkipped)
			}
		})
	}
}

// FuzzReadLines: any bytes read without a panic, and every non-empty line
// is either an event or counted as skipped.
func FuzzReadLines(f *testing.F) {
	good := line("VI_1", 1)
	f.Add([]byte(good + good))
	f.Add([]byte(good + good[:30]))
	f.Add([]byte("\n\n{}\nnull\n\x00\x00"))
	f.Add([]byte(strings.Repeat("x", 300) + "\n" + good))
	f.Add([]byte(`{"v":1,"time":"2030-01-01T00:00:00Z","kind":"hook","elapsed_ns":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := 0
		for _, l := range bytes.Split(data, []byte{'\n'}) {
			if len(l) > 0 {
				lines++
			}
		}
		for _, maxLine := range []int{64, MaxLineBytes} {
			parsed := 0
			skipped, err := readLines(bytes.NewReader(data), maxLine, func(e *Event) {
				if e.Kind == "" || e.Time.IsZero() {
					t.Fatalf("an event without a kind or a time: %+v", e)
				}
				parsed++
			})
			if err != nil {
				t.Fatal(err)
			}
			if parsed+skipped != lines {
				t.Fatalf("max %d: %d parsed + %d skipped, but %d lines", maxLine, parsed, skipped, lines)
			}
		}
	})
}

// writeJournal writes the files of a journal by hand, name to content.
func writeJournal(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRead: the rotated files oldest first, then the current one; the
// filter; names that are not the journal's are left alone.
func TestRead(t *testing.T) {
	dir := writeJournal(t, map[string]string{
		"history.3.jsonl":      line("VI_1", 1) + line("VI_2", 2),
		"history.1.jsonl":      line("VI_1", 5) + "torn" + "\n" + line("VI_2", 6),
		"history.jsonl":        line("VI_1", 7) + line("VI_2", 8) + line("VI_1", 9),
		"history.01.jsonl":     line("X", 100),
		"history.jsonl.bak":    line("X", 101),
		"history.-1.jsonl":     line("X", 102),
		"history.jsonl.1.tmp":  line("X", 103),
		"other-history.jsonl":  line("X", 104),
		"history.0.jsonl":      line("X", 105),
		"history.1.jsonl.gz":   line("X", 106),
		"history.1.2.jsonl":    line("X", 107),
		"history.1a.jsonl":     line("X", 108),
		"history. 1.jsonl":     line("X", 109),
		"history.+1.jsonl":     line("X", 110),
		"history.99999.jsonl":  line("VI_3", 0),
		"HISTORY.jsonl":        line("X", 111),
		"history.jsonl~":       line("X", 112),
		"history..jsonl":       line("X", 113),
		"history.1.jsonl.part": line("X", 114),
	})
	for _, tt := range []struct {
		name        string
		f           Filter
		want        []uint64 // generations, which are the seconds
		wantSkipped int
	}{
		{name: "all", want: []uint64{0, 1, 2, 5, 6, 7, 8, 9}, wantSkipped: 1},
		{name: "instance", f: Filter{Instance: "VI_1"}, want: []uint64{1, 5, 7, 9}, wantSkipped: 1},
		{name: "since", f: Filter{Since: t0.Add(6 * time.Second)}, want: []uint64{6, 7, 8, 9}, wantSkipped: 1},
		{name: "last", f: Filter{Last: 3}, want: []uint64{7, 8, 9}, wantSkipped: 1},
		{name: "last, more than there are", f: Filter{Last: 100}, want: []uint64{0, 1, 2, 5, 6, 7, 8, 9}, wantSkipped: 1},
		{name: "last of an instance since", f: Filter{Instance: "VI_2", Since: t0.Add(time.Second), Last: 2}, want: []uint64{6, 8}, wantSkipped: 1},
		{name: "no match", f: Filter{Instance: "VI_9"}, wantSkipped: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			events, skipped := mustRead(t, dir, tt.f)
			var got []uint64
			for _, e := range events {
				got = append(got, e.Generation)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || skipped != tt.wantSkipped {
				t.Errorf("got %v, skipped %d; want %v, skipped %d", got, skipped, tt.want, tt.wantSkipped)
			}
		})
	}
}

// TestReadRotatedMeanwhile: a file seen under two names (the daemon
// rotated it while Read ran) is read once.
func TestReadRotatedMeanwhile(t *testing.T) {
	dir := writeJournal(t, map[string]string{"history.2.jsonl": line("VI_1", 1), "history.jsonl": line("VI_1", 2)})
	if err := os.Link(filepath.Join(dir, "history.jsonl"), filepath.Join(dir, "history.1.jsonl")); err != nil {
		t.Fatal(err)
	}
	events, _ := mustRead(t, dir, Filter{})
	if len(events) != 2 {
		t.Errorf("read %d events, want 2", len(events))
	}
}

func TestReadErrors(t *testing.T) {
	if events, skipped, err := Read(t.TempDir(), Filter{}); err != nil || events != nil || skipped != 0 {
		t.Errorf("empty directory: got %v, %d, %v; want nothing", events, skipped, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, _, err := Read(missing, Filter{}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing directory: got %v, want fs.ErrNotExist naming it", err)
	}
	if _, _, err := Read(t.TempDir(), Filter{Last: -1}); err == nil {
		t.Error("Last -1: no error")
	}
	if os.Geteuid() != 0 {
		dir := writeJournal(t, map[string]string{"history.jsonl": line("VI_1", 1)})
		if err := os.Chmod(filepath.Join(dir, "history.jsonl"), 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Read(dir, Filter{}); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("unreadable: got %v, want fs.ErrPermission", err)
		}
	}
}

// TestReadRoundTrip: every field Append writes reads back.
func TestReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir, Options{})
	want := Event{Version: Version, Time: t0, Instance: "VI_1", Kind: KindCloudCall, From: "BACKUP", To: "MASTER", Generation: 7, Source: "fifo",
		VIPsPresent: 1, FirstAnnouncement: 2, CloudRequestSent: 3, CloudConfirmed: 4, Operation: "switchRouteHA", Resource: "route/rt-1",
		Status: 200, ErrorCode: "X", RequestID: "r-1", ClientToken: "t-1", Attempt: 2, Hook: "h", Outcome: "ok", Elapsed: 5, Message: "m"}
	if err := j.Append(want); err != nil {
		t.Fatal(err)
	}
	j.Close()
	events, _ := mustRead(t, dir, Filter{})
	if len(events) != 1 || !events[0].Time.Equal(want.Time) {
		t.Fatalf("got %+v", events)
	}
	events[0].Time = want.Time
	if events[0] != want {
		t.Errorf("got %+v\nwant %+v", events[0], want)
	}
}
