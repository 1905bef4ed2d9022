package keepalived

import (
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
	os.WriteFile(path, nil, 0o600)
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
