package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Filter selects the events Read returns. The zero value selects all.
type Filter struct {
	// Instance keeps only the events of this instance.
	Instance string
	// Since keeps only the events at or after this time.
	Since time.Time
	// Last keeps only the newest Last events; 0 keeps all.
	Last int
}

func (f Filter) match(e *Event) bool {
	return (f.Instance == "" || e.Instance == f.Instance) && !e.Time.Before(f.Since)
}

// Read returns the events of the journal in dir that f selects, oldest
// first, and how many lines it skipped because they do not parse (a line
// torn by a crash, a line longer than MaxLineBytes, another program's
// writing). It needs only the files, not the daemon. A directory without a
// journal gives no events; a missing or unreadable one an error.
//
// Files rotated while Read runs are read once: Read opens them newest
// first, so a file renamed in between is recognised by its inode.
func Read(dir string, f Filter) ([]Event, int, error) {
	if f.Last < 0 {
		return nil, 0, fmt.Errorf("journal: Last %d is negative", f.Last)
	}
	files, err := openFiles(dir)
	defer func() {
		for _, fl := range files {
			fl.Close()
		}
	}()
	if err != nil {
		return nil, 0, err
	}
	keep := newTail(f.Last)
	skipped := 0
	// Oldest first: openFiles returns them newest first.
	for _, fl := range slices.Backward(files) {
		n, err := readLines(fl, MaxLineBytes, func(e *Event) {
			if f.match(e) {
				keep.add(*e)
			}
		})
		skipped += n
		if err != nil {
			return nil, skipped, fmt.Errorf("journal: %s: %w", fl.Name(), err)
		}
	}
	return keep.events(), skipped, nil
}

// openFiles opens the journal's files newest first: the current file,
// then history.1.jsonl, history.2.jsonl and on. A file seen already under
// another name (rotated in between) is left out.
func openFiles(dir string) ([]*os.File, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var rotated []int
	for _, de := range ents {
		if n, ok := rotatedIndex(de.Name()); ok {
			rotated = append(rotated, n)
		}
	}
	slices.Sort(rotated)
	names := []string{currentName}
	for _, n := range rotated {
		names = append(names, rotatedName(n))
	}
	type fileID struct{ dev, ino uint64 }
	seen := map[fileID]bool{}
	var files []*os.File
	for _, name := range names {
		p := filepath.Join(dir, name)
		// O_NONBLOCK: a FIFO put there must not hang the reader.
		fl, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return files, fmt.Errorf("journal: %w", err)
		}
		files = append(files, fl)
		fi, err := fl.Stat()
		if err != nil {
			return files, fmt.Errorf("journal: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return files, fmt.Errorf("journal: %s: not a regular file", p)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			id := fileID{uint64(st.Dev), st.Ino}
			if seen[id] {
				files = files[:len(files)-1]
				fl.Close()
				continue
			}
			seen[id] = true
		}
	}
	return files, nil
}

// readLines calls fn for every line of r that is an event and returns how
// many non-empty lines were not: lines that are not a JSON object with a
// time and a kind, and lines longer than maxLine bytes, which are skipped
// without being held in memory. The last line needs no newline.
func readLines(r io.Reader, maxLine int, fn func(*Event)) (skipped int, err error) {
	br := bufio.NewReaderSize(r, maxLine+1)
	long := false // in the middle of a line too long to keep
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !long {
				long = true
				skipped++
			}
			continue
		case long:
			// The end of the long line, already counted.
			long = false
		default:
			line = bytes.TrimSuffix(line, []byte{'\n'})
			if len(line) > maxLine {
				skipped++
			} else if len(line) > 0 {
				var e Event
				if parseEvent(line, &e) {
					fn(&e)
				} else {
					skipped++
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return skipped, nil
		}
		if err != nil {
			return skipped, err
		}
	}
}

// parseEvent decodes one line into e; false when it is not an event.
func parseEvent(line []byte, e *Event) bool {
	if line[0] != '{' {
		return false
	}
	if err := json.Unmarshal(line, e); err != nil {
		return false
	}
	return e.Kind != "" && !e.Time.IsZero()
}

// tail keeps all events, or the newest n when n > 0, in bounded memory.
type tail struct {
	n     int
	ring  []Event
	start int
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(e Event) {
	if t.n == 0 || len(t.ring) < t.n {
		t.ring = append(t.ring, e)
		return
	}
	t.ring[t.start] = e
	t.start = (t.start + 1) % t.n
}

// events returns what was kept, oldest first.
func (t *tail) events() []Event {
	return append(t.ring[t.start:len(t.ring):len(t.ring)], t.ring[:t.start]...)
}
