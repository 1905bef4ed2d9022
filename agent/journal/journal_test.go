package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/havip-agent/havip-agent/agent/vocab"
	"go.uber.org/goleak"
)

// childEnv names the directory a child process started by
// TestSIGKILLMidWrite appends to until it is killed.
const childEnv = "HAVIP_JOURNAL_TEST_CHILD"

// TestMain runs the child of TestSIGKILLMidWrite when asked to, and
// otherwise fails the tests if a writer goroutine outlives its journal.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		appendForever(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// appendForever appends events of a few hundred bytes to the journal in
// dir, rotating often, until the process is killed; "ready" on stdout says
// the first ones are written.
func appendForever(dir string) {
	j, err := Open(dir, Options{MaxBytes: MinMaxBytes, Keep: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	msg := strings.Repeat("m", 300)
	for i := 1; ; i++ {
		_ = j.Append(Event{Kind: KindCloudCall, Instance: "VI_1", Generation: uint64(i), Message: msg})
		if i%64 == 0 {
			j.Flush()
		}
		if i == 64 {
			fmt.Println("ready")
		}
	}
}

var t0 = time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)

// fixedNow returns a clock that advances a millisecond at every reading.
func fixedNow() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
}

func mustOpen(t *testing.T, dir string, opts Options) *Journal {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fixedNow()
	}
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func mustRead(t *testing.T, dir string, f Filter) ([]Event, int) {
	t.Helper()
	events, skipped, err := Read(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	return events, skipped
}

// journalFiles returns the sizes of the journal's files by name.
func journalFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, de := range ents {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		sizes[de.Name()] = fi.Size()
	}
	return sizes
}

// TestRotation: the files stay within MaxBytes each and Keep in number,
// and what is kept is the newest events, in order, without a gap.
func TestRotation(t *testing.T) {
	msg := strings.Repeat("x", 900) // about a kilobyte a line
	for _, tt := range []struct {
		name      string
		keep      int
		events    int
		wantFiles []string
	}{
		{name: "no rotation yet", keep: 2, events: 20, wantFiles: []string{"history.jsonl"}},
		{name: "keep none", keep: 0, events: 300, wantFiles: []string{"history.jsonl"}},
		{name: "keep one", keep: 1, events: 300, wantFiles: []string{"history.1.jsonl", "history.jsonl"}},
		{name: "keep three, two rotations", keep: 3, events: 150, wantFiles: []string{"history.1.jsonl", "history.2.jsonl", "history.jsonl"}},
		{name: "keep three, many rotations", keep: 3, events: 1000, wantFiles: []string{"history.1.jsonl", "history.2.jsonl", "history.3.jsonl", "history.jsonl"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			j := mustOpen(t, dir, Options{MaxBytes: MinMaxBytes, Keep: tt.keep})
			for i := 1; i <= tt.events; i++ {
				if err := j.Append(Event{Kind: KindCloudCall, Instance: "VI_1", Generation: uint64(i), Message: msg}); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			sizes := journalFiles(t, dir)
			var names []string
			var total int64
			for name, size := range sizes {
				names = append(names, name)
				total += size
				if size > MinMaxBytes {
					t.Errorf("%s: %d bytes, more than MaxBytes %d", name, size, MinMaxBytes)
				}
			}
			if got, want := strings.Join(sortedCopy(names), " "), strings.Join(tt.wantFiles, " "); got != want {
				t.Errorf("files: got %s, want %s", got, want)
			}
			if bound := int64(tt.keep+1) * MinMaxBytes; total > bound {
				t.Errorf("%d bytes in all, more than (Keep+1)*MaxBytes %d", total, bound)
			}
			events, skipped := mustRead(t, dir, Filter{})
			if skipped != 0 || len(events) == 0 {
				t.Fatalf("read %d events, skipped %d", len(events), skipped)
			}
			for i, e := range events {
				if want := uint64(tt.events - len(events) + 1 + i); e.Generation != want {
					t.Fatalf("event %d is number %d, want %d: the newest, in order, without a gap", i, e.Generation, want)
				}
			}
			if tt.keep > 0 && tt.events > 100 && len(events) < tt.keep*50 {
				t.Errorf("only %d events kept with Keep %d", len(events), tt.keep)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// TestOpenPrunes: a smaller Keep removes the rotated files beyond it.
func TestOpenPrunes(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"history.1.jsonl", "history.2.jsonl", "history.3.jsonl", "history.7.jsonl", "history.01.jsonl", "other.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	j := mustOpen(t, dir, Options{Keep: 2})
	j.Close()
	var names []string
	for name := range journalFiles(t, dir) {
		names = append(names, name)
	}
	if got, want := strings.Join(sortedCopy(names), " "), "history.01.jsonl history.1.jsonl history.2.jsonl history.jsonl other.txt"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestRotationFails: when the current file cannot be renamed it is emptied,
// so that the journal still stays within its bound.
func TestRotationFails(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the rotated file goes: rename fails.
	if err := os.MkdirAll(filepath.Join(dir, "history.1.jsonl", "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	j := mustOpen(t, dir, Options{MaxBytes: MinMaxBytes, Keep: 1})
	for i := 1; i <= 300; i++ {
		if err := j.Append(Event{Kind: KindHook, Generation: uint64(i), Message: strings.Repeat("y", 900)}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	if size := journalFiles(t, dir)["history.jsonl"]; size > MinMaxBytes {
		t.Errorf("history.jsonl: %d bytes, more than MaxBytes", size)
	}
	// Read refuses what is not a regular file.
	if _, _, err := Read(dir, Filter{}); err == nil || !strings.HasSuffix(err.Error(), "history.1.jsonl: not a regular file") {
		t.Errorf("Read: got %v, want it to refuse the directory", err)
	}
	os.RemoveAll(filepath.Join(dir, "history.1.jsonl"))
	events, skipped := mustRead(t, dir, Filter{})
	if skipped != 0 || len(events) == 0 || events[len(events)-1].Generation != 300 {
		t.Errorf("read %d events, skipped %d; want the newest last", len(events), skipped)
	}
}

func TestOpenOptions(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{MaxBytes: 1000}, "journal: MaxBytes 1000 is less than 65536, the longest line"},
		{Options{Keep: -1}, "journal: Keep -1 is not between 0 and 100"},
		{Options{Keep: MaxKeep + 1}, "journal: Keep 101 is not between 0 and 100"},
		{Options{QueueLen: -1}, "journal: QueueLen -1 is negative"},
	} {
		_, err := Open(t.TempDir(), tt.opts)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%+v: got %v, want %q", tt.opts, err, tt.want)
		}
	}
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "history.jsonl"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.HasSuffix(err.Error(), "history.jsonl: not a regular file") {
		t.Errorf("a FIFO: got %v", err)
	}
	dir = t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "history.jsonl")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Error("a symlink: Open followed it")
	}
}

// TestTornLine: a journal whose last line a crash tore takes the next event
// on a line of its own; the torn line is skipped and counted.
func TestTornLine(t *testing.T) {
	complete := `{"v":1,"time":"2030-01-01T00:00:00Z","kind":"transition","instance":"VI_1"}`
	for _, tt := range []struct {
		name        string
		content     string
		wantKinds   string // of the events read after Open and one Append
		wantSkipped int
	}{
		{name: "empty", content: "", wantKinds: "hook"},
		{name: "ends with a newline", content: complete + "\n", wantKinds: "transition hook"},
		{name: "torn in the middle", content: complete + "\n" + complete[:40], wantKinds: "transition journal hook", wantSkipped: 1},
		{name: "torn alone", content: complete[:10], wantKinds: "journal hook", wantSkipped: 1},
		{name: "whole line, newline lost", content: complete, wantKinds: "transition journal hook"},
		{name: "zeroes after a power loss", content: complete + "\n\x00\x00\x00\x00", wantKinds: "transition journal hook", wantSkipped: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(tt.content), 0o640); err != nil {
				t.Fatal(err)
			}
			j := mustOpen(t, dir, Options{})
			if err := j.Append(Event{Kind: KindHook, Hook: "pager", Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
			j.Close()
			events, skipped := mustRead(t, dir, Filter{})
			var kinds []string
			for _, e := range events {
				kinds = append(kinds, string(e.Kind))
			}
			if got := strings.Join(kinds, " "); got != tt.wantKinds || skipped != tt.wantSkipped {
				t.Errorf("got %s, skipped %d; want %s, skipped %d", got, skipped, tt.wantKinds, tt.wantSkipped)
			}
			if last := events[len(events)-1]; last.Hook != "pager" {
				t.Errorf("the appended event was lost: %+v", last)
			}
		})
	}
}

// TestConcurrentAppend: events appended from several goroutines each land
// whole on a line of their own.
func TestConcurrentAppend(t *testing.T) {
	const writers, each = 8, 200
	dir := t.TempDir()
	j := mustOpen(t, dir, Options{QueueLen: writers * each})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := j.Append(Event{Kind: KindCloudCall, Instance: fmt.Sprintf("VI_%d", w), Generation: uint64(i + 1), Message: strings.Repeat("z", 100*w)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	j.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(raw, []byte{'\n'}); n != writers*each {
		t.Errorf("%d lines, want %d", n, writers*each)
	}
	events, skipped := mustRead(t, dir, Filter{})
	if skipped != 0 || len(events) != writers*each {
		t.Fatalf("read %d events, skipped %d; want %d, 0", len(events), skipped, writers*each)
	}
	next := map[string]uint64{}
	for _, e := range events {
		next[e.Instance]++
		if e.Generation != next[e.Instance] {
			t.Fatalf("%s: event %d after %d: one writer's events out of order", e.Instance, e.Generation, next[e.Instance]-1)
		}
	}
	if s := j.Stats(); s.Written != writers*each || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestAppendNeverWaits: with the writer stuck, Append still returns at
// once; what does not fit the queue is dropped, counted and noted.
func TestAppendNeverWaits(t *testing.T) {
	dir := t.TempDir()
	stuck, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	j := mustOpen(t, dir, Options{QueueLen: 2, beforeWrite: func() {
		once.Do(func() { close(stuck); <-release })
	}})
	if err := j.Append(Event{Kind: KindHook, Generation: 1}); err != nil {
		t.Fatal(err)
	}
	<-stuck // the writer holds event 1
	for i := uint64(2); i <= 3; i++ {
		if err := j.Append(Event{Kind: KindHook, Generation: i}); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	for i := uint64(4); i <= 6; i++ {
		if err := j.Append(Event{Kind: KindHook, Generation: i}); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("event %d: got %v, want ErrQueueFull", i, err)
		}
	}
	close(release)
	j.Close()
	if err := j.Append(Event{Kind: KindHook}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	events, _ := mustRead(t, dir, Filter{})
	var got []string
	for _, e := range events {
		if e.Kind == KindJournal {
			got = append(got, e.Message)
		} else {
			got = append(got, fmt.Sprint(e.Generation))
		}
	}
	if want := "3 events dropped: the journal could not keep up or they were too long|1|2|3"; strings.Join(got, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(got, "|"), want)
	}
	if s := j.Stats(); s.Written != 4 || s.Dropped != 3 {
		t.Errorf("stats %+v", s)
	}
}

// TestFailedWrite: after a write that left part of a line (a full disk),
// the next event still starts a line of its own.
func TestFailedWrite(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	j := mustOpen(t, dir, Options{write: func(f *os.File, b []byte) (int, error) {
		calls++
		if calls == 1 {
			n, _ := f.Write(b[:len(b)/2])
			return n, syscall.ENOSPC
		}
		return f.Write(b)
	}})
	for i := uint64(1); i <= 3; i++ {
		if err := j.Append(Event{Kind: KindReclaim, Generation: i}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	events, skipped := mustRead(t, dir, Filter{})
	if len(events) != 2 || events[0].Generation != 2 || events[1].Generation != 3 || skipped != 1 {
		t.Errorf("got %+v, skipped %d; want events 2 and 3, one line skipped", events, skipped)
	}
	if s := j.Stats(); s.Failed != 1 || s.Written != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestFlush: what was appended before Flush is readable after it, while
// the journal stays open.
func TestFlush(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir, Options{})
	for i := uint64(1); i <= 50; i++ {
		if err := j.Append(Event{Kind: KindConflict, Generation: i}); err != nil {
			t.Fatal(err)
		}
	}
	j.Flush()
	if events, _ := mustRead(t, dir, Filter{}); len(events) != 50 {
		t.Errorf("read %d events after Flush, want 50", len(events))
	}
	j.Close()
	j.Flush() // returns at once once closed
}

// TestAppendClamps: whatever the strings hold, the line fits and reads
// back as printable text.
func TestAppendClamps(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir, Options{})
	huge := strings.Repeat("\x00\"\\\xff\u2028", MaxLineBytes)
	e := Event{Kind: KindCloudCall, Instance: huge, From: vocab.State(huge), To: vocab.State(huge), Source: huge, Operation: huge, Resource: huge,
		ErrorCode: huge, RequestID: huge, ClientToken: huge, Hook: huge, Outcome: huge, Message: huge}
	if err := j.Append(e); err != nil {
		t.Fatal(err)
	}
	j.Close()
	events, skipped := mustRead(t, dir, Filter{})
	if len(events) != 1 || skipped != 0 {
		t.Fatalf("read %d, skipped %d", len(events), skipped)
	}
	got := events[0]
	if len(got.Message) > maxMessage || len(got.RequestID) > maxField || strings.ContainsRune(got.Message, 0) || !utf8.ValidString(got.Message) {
		t.Errorf("not clamped: message %d bytes, request id %d", len(got.Message), len(got.RequestID))
	}
	if got.Version != Version || !got.Time.After(t0) {
		t.Errorf("version %d, time %v: Append sets them", got.Version, got.Time)
	}
}

// TestSIGKILLMidWrite: a process killed while it appends leaves a journal
// that reads, and whose next event lands on its own line.
func TestSIGKILLMidWrite(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	// Kill it after a rotation or two, so that it may die in one too.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "history.2.jsonl")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never rotated twice")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait() // reports the kill
	killed = true

	events, skipped := mustRead(t, dir, Filter{})
	if len(events) == 0 || skipped > 1 {
		t.Fatalf("after the kill: %d events, %d skipped; want some, at most the one torn line", len(events), skipped)
	}
	j := mustOpen(t, dir, Options{MaxBytes: MinMaxBytes, Keep: 2})
	if err := j.Append(Event{Kind: KindTransition, Instance: "VI_1", From: "BACKUP", To: "MASTER"}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	after, skipped2 := mustRead(t, dir, Filter{})
	if skipped2 != skipped {
		t.Errorf("skipped %d lines after the next Append, %d before: the append joined a torn line", skipped2, skipped)
	}
	if last := after[len(after)-1]; last.Kind != KindTransition {
		t.Errorf("the last event is %+v, want the transition appended after the kill", last)
	}
	t.Logf("%d events, %d torn line(s) after SIGKILL", len(events), skipped)
}
