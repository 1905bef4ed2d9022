package keepalived

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func writeFIFO(t *testing.T, path, s string) {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestFIFOBatchAndPartial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.fifo")
	p, err := OpenFIFO(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := os.Stat(path)
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("mode %o, want 600", got)
	}
	// Written while nobody reads: the backlog arrives as one batch.
	writeFIFO(t, path, "INSTANCE \"A\" MASTER 100\nINSTANCE \"A\" BACKUP 100\nINSTANCE \"B\" MAS")
	lines, err := p.ReadBatch()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(lines); got != 2 {
		t.Fatalf("got %d lines, want 2: %+v", got, lines)
	}
	// The writer closing does not end the stream; the partial line completes.
	writeFIFO(t, path, "TER 100\n")
	lines, err = p.ReadBatch()
	if err != nil || len(lines) != 1 || string(lines[0].Data) != `INSTANCE "B" MASTER 100` {
		t.Fatalf("got %+v, %v", lines, err)
	}
}

func TestFIFOTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.fifo")
	p, err := OpenFIFO(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	writeFIFO(t, path, strings.Repeat("x", 3*MaxLineLength)+"\nINSTANCE \"A\" MASTER 1\n")
	var all []Line
	for len(all) < 2 {
		lines, err := p.ReadBatch()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, lines...)
	}
	if !all[0].TooLong || all[1].TooLong || string(all[1].Data) != `INSTANCE "A" MASTER 1` {
		t.Fatalf("got %+v", all)
	}
}

func TestFIFOCloseUnblocks(t *testing.T) {
	p, err := OpenFIFO(filepath.Join(t.TempDir(), "k.fifo"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := p.ReadBatch(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	p.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("ReadBatch after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
}

func TestOpenFIFORefusesRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFIFO(path); err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Errorf("got %v", err)
	}
}

// Regression (issue 7, scenario 4): a FIFO removed and created again was
// never noticed, so keepalived's lines went to a pipe nobody read.
func TestFIFOReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.fifo")
	p, err := OpenFIFO(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Replaced() {
		t.Fatal("fresh FIFO reported replaced")
	}
	os.Remove(path)
	if !p.Replaced() {
		t.Error("removed FIFO not reported replaced")
	}
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if !p.Replaced() {
		t.Error("recreated FIFO not reported replaced")
	}
	q, err := OpenFIFO(path)
	if err != nil {
		t.Fatal(err)
	}
	if q.Replaced() {
		t.Error("reopened FIFO reported replaced")
	}
	q.Close()
	if !q.Closed() || p.Closed() {
		t.Error("Closed wrong")
	}
}

// TestLineSplitter: what split returns for lines at and around
// MaxLineLength, lines cut across reads, and bytes the parser must judge
// (invalid UTF-8, NUL, carriage returns), which the splitter passes on
// unchanged.
func TestLineSplitter(t *testing.T) {
	long := strings.Repeat("x", MaxLineLength)
	tests := []struct {
		name  string
		reads []string
		want  []Line
		// pending is the incomplete line kept after the last read.
		pending string
	}{
		{name: "empty", reads: []string{""}},
		{name: "empty lines", reads: []string{"\n\n"}, want: []Line{{Data: []byte{}}, {Data: []byte{}}}},
		{name: "two lines and a partial", reads: []string{"a\nb\nc"}, want: []Line{{Data: []byte("a")}, {Data: []byte("b")}}, pending: "c"},
		{name: "line across reads", reads: []string{"IN", "STANCE", " \"A\" MASTER 100\n"}, want: []Line{{Data: []byte(`INSTANCE "A" MASTER 100`)}}},
		{name: "newline alone", reads: []string{"abc", "\n", "d"}, want: []Line{{Data: []byte("abc")}}, pending: "d"},
		{name: "longest line", reads: []string{long + "\n"}, want: []Line{{Data: []byte(long)}}},
		{name: "longest line pending", reads: []string{long}, pending: long},
		{name: "one byte too long", reads: []string{long + "y\nok\n"}, want: []Line{{Data: []byte(long), TooLong: true}, {Data: []byte("ok")}}},
		{name: "too long across reads", reads: []string{long, "y", "zzz", "\nok\n"}, want: []Line{{Data: []byte(long), TooLong: true}, {Data: []byte("ok")}}},
		{name: "too long without newline yet", reads: []string{long + "yy"}, want: []Line{{Data: []byte(long), TooLong: true}}},
		{name: "too long then partial", reads: []string{long + "y\nab"}, want: []Line{{Data: []byte(long), TooLong: true}}, pending: "ab"},
		{name: "bytes passed on", reads: []string{"\xff\x00\r\n"}, want: []Line{{Data: []byte("\xff\x00\r")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s lineSplitter
			var got []Line
			for _, r := range tt.reads {
				got = append(got, s.split([]byte(r))...)
			}
			if !equalLines(got, tt.want) {
				t.Errorf("got %s, want %s", showLines(got), showLines(tt.want))
			}
			if string(s.partial) != tt.pending {
				t.Errorf("pending %q, want %q", s.partial, tt.pending)
			}
		})
	}
}

// showLines prints lines quoted, long ones cut short, TooLong ones marked.
func showLines(ls []Line) string {
	var b strings.Builder
	for _, l := range ls {
		if len(l.Data) > 40 {
			fmt.Fprintf(&b, "%q...(%d bytes)", l.Data[:32], len(l.Data))
		} else {
			fmt.Fprintf(&b, "%q", l.Data)
		}
		if l.TooLong {
			b.WriteString("(too long)")
		}
		b.WriteByte(' ')
	}
	return "[" + strings.TrimSpace(b.String()) + "]"
}

func equalLines(a, b []Line) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].TooLong != b[i].TooLong || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// shortReader returns data in reads whose lengths cycle through sizes, as
// a pipe returns whatever the writer had written so far; a size of zero
// reads all the caller's buffer holds.
type shortReader struct {
	data  []byte
	sizes []byte
	n     int
}

func (r *shortReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(r.sizes) > 0 {
		if s := int(r.sizes[r.n%len(r.sizes)]); s > 0 {
			n = min(n, s)
		}
		r.n++
	}
	n = copy(p[:n], r.data)
	r.data = r.data[n:]
	return n, nil
}

// splitReads feeds everything r returns to a fresh splitter through one
// reused buffer, as FIFO.read does, and returns the lines and the
// splitter's final state.
func splitReads(t *testing.T, r io.Reader) ([]Line, *lineSplitter) {
	t.Helper()
	var s lineSplitter
	var out []Line
	buf := make([]byte, 4*MaxLineLength)
	for {
		n, err := r.Read(buf)
		out = append(out, s.split(buf[:n])...)
		// Lines must not alias the read buffer the next read overwrites.
		clear(buf[:n])
		if len(s.partial) > MaxLineLength {
			t.Fatalf("pending line of %d bytes, above MaxLineLength", len(s.partial))
		}
		if err == io.EOF {
			return out, &s
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkAccounts walks the input along the lines delivered: each line is the
// start of an input line; a line that is not TooLong is all of it, no longer
// than MaxLineLength; a TooLong line is the first MaxLineLength bytes of a
// longer one, whose rest is dropped. What remains is the pending line, or,
// when the last line is TooLong and has no newline yet, is being dropped.
func checkAccounts(t *testing.T, in []byte, lines []Line, s *lineSplitter) {
	t.Helper()
	cur := 0
	dropping := false
	for k, l := range lines {
		rest := in[cur:]
		if !bytes.HasPrefix(rest, l.Data) || bytes.IndexByte(l.Data, '\n') >= 0 {
			t.Fatalf("line %d %q is not the start of the input line at offset %d", k, l.Data, cur)
		}
		end := bytes.IndexByte(rest, '\n')
		if l.TooLong {
			if len(l.Data) != MaxLineLength || (end >= 0 && end <= MaxLineLength) || (end < 0 && len(rest) <= MaxLineLength) {
				t.Fatalf("line %d marked TooLong: %d bytes delivered of an input line of %d", k, len(l.Data), end)
			}
			if end < 0 {
				cur, dropping = len(in), true
				continue
			}
			cur += end + 1
			continue
		}
		if end != len(l.Data) {
			t.Fatalf("line %d %q: delivered %d bytes of an input line of %d", k, l.Data, len(l.Data), end)
		}
		cur += end + 1
	}
	rest := in[cur:]
	switch {
	case dropping:
		if !s.discarding || len(s.partial) != 0 {
			t.Fatalf("the rest of an over-long last line is kept: discarding %v, pending %q", s.discarding, s.partial)
		}
	case s.discarding:
		t.Fatal("discarding after a complete line")
	case bytes.IndexByte(rest, '\n') >= 0:
		t.Fatalf("a complete line was not delivered: %q", rest)
	case !bytes.Equal(rest, s.partial):
		t.Fatalf("pending %q, want the unterminated tail %q", s.partial, rest)
	}
}

// FuzzFIFOSplit: splitting never panics, every line delivered is bounded,
// what is delivered, dropped and kept pending accounts for the input, and
// the lines do not depend on where the reads ended: random short reads,
// one-byte reads and one read of everything give the same lines and leave
// the same pending line.
func FuzzFIFOSplit(f *testing.F) {
	long := strings.Repeat("x", MaxLineLength)
	for _, seed := range []struct{ data, sizes string }{
		{"INSTANCE \"VI_1\" MASTER 100\nINSTANCE \"VI_1\" BACKUP 100\n", "\x05"},
		{"INSTANCE \"VI_1\" MAS", ""},
		{"\n\n\n", "\x01"},
		{"\xff\xfe\x00\r\nGROUP \"G\" FAULT\n", "\x02\x03"},
		{long + "\n", "\x00"},
		{long + "y\nINSTANCE \"A\" MASTER 1\n", "\xff\x01"},
		{long + "yyyy", "\x10"},
		{long + long + long + "\n" + long + "\nab", "\x07\xff\x00"},
		{strings.Repeat("ab\n", 300), "\x02"},
	} {
		f.Add([]byte(seed.data), []byte(seed.sizes))
	}
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		whole, ws := splitReads(t, &shortReader{data: data})
		checkAccounts(t, data, whole, ws)
		for name, r := range map[string]io.Reader{
			"short reads":    &shortReader{data: data, sizes: sizes},
			"one-byte reads": &shortReader{data: data, sizes: []byte{1}},
		} {
			got, s := splitReads(t, r)
			if !equalLines(got, whole) {
				t.Fatalf("%s: lines %s, want %s as from one read", name, showLines(got), showLines(whole))
			}
			if !bytes.Equal(s.partial, ws.partial) || s.discarding != ws.discarding {
				t.Fatalf("%s: pending %q (discarding %v), want %q (%v)", name, s.partial, s.discarding, ws.partial, ws.discarding)
			}
		}
	})
}
