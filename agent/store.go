package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/agent/vocab"
)

// record is what is persisted per instance.
type record struct {
	Kind       vocab.Kind `json:"kind"`
	Name       string     `json:"name"`
	State      State      `json:"state"`
	Generation uint64     `json:"generation"`
	Since      time.Time  `json:"since"`
	// BootID and Keepalived say under which boot and which keepalived
	// process the state was written: a state is authority only while
	// both still hold (see restorable).
	BootID     string               `json:"boot_id,omitempty"`
	Keepalived *keepalived.Identity `json:"keepalived,omitempty"`
}

// store keeps one small JSON file per instance in the state directory.
// A restart must not fall back to an older state: a MASTER that restarts
// with BACKUP on record would remove the VIP it holds.
//
// The record is written in place, padded to a fixed size, with one
// pwrite on a file kept open: a write and rename is far slower on the
// failover path (the README has the figures). A write torn by
// a crash leaves a record that does not parse, which load reports and the
// daemon treats as unknown: it leaves the addresses alone, which is safe.
//
// fsync runs on a goroutine of its own (requestSync): a disk that takes
// seconds to sync must not hold up the next transition or the watchdog.
type store struct {
	dir   string
	mu    sync.Mutex
	files map[string]*os.File
	// dirty holds the paths whose records await an fsync.
	dirty  map[string]bool
	wake   chan struct{}
	done   chan struct{}
	closed chan struct{}
	// onSync, when set, is told the outcome of every background sync.
	onSync func(path string, err error)
	// syncFn replaces the fsync in tests (a slow disk).
	syncFn func(*os.File) error
}

// recordSize is the fixed size of a record on disk.
const recordSize = 512

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	s := &store{dir: dir, files: map[string]*os.File{}, dirty: map[string]bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), closed: make(chan struct{}),
		syncFn: (*os.File).Sync}
	go s.syncLoop()
	return s, nil
}

// close stops the sync goroutine after a last sync of what is dirty, and
// closes the record files.
func (s *store) close() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		<-s.closed
		return
	default:
	}
	close(s.done)
	s.mu.Unlock()
	<-s.closed
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, f := range s.files {
		f.Close()
		delete(s.files, k)
	}
}

// requestSync asks the sync goroutine to make the record durable; it
// never blocks.
func (s *store) requestSync(kind vocab.Kind, name string) {
	s.mu.Lock()
	s.dirty[s.path(kind, name)] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *store) syncLoop() {
	defer close(s.closed)
	for {
		select {
		case <-s.wake:
			s.syncDirty()
		case <-s.done:
			s.syncDirty()
			return
		}
	}
}

func (s *store) syncDirty() {
	s.mu.Lock()
	paths := make([]string, 0, len(s.dirty))
	for p := range s.dirty {
		paths = append(paths, p)
	}
	clear(s.dirty)
	s.mu.Unlock()
	for _, p := range paths {
		err := s.syncPath(p)
		if s.onSync != nil {
			s.onSync(p, err)
		}
	}
}

func (s *store) syncPath(p string) error {
	s.mu.Lock()
	f, ok := s.files[p]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	if err := s.syncFn(f); err != nil {
		return fmt.Errorf("sync state %s: %w", p, err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	return nil
}

// open opens (creating) the record file of an instance ahead of its first
// save, so that the failover path finds it open; a file longer than a
// record (an older or damaged one) is cut to one record.
func (s *store) open(kind vocab.Kind, name string) error {
	_, err := s.file(kind, name)
	return err
}

func (s *store) file(kind vocab.Kind, name string) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.path(kind, name)
	if f, ok := s.files[p]; ok {
		return f, nil
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", p)
	} else if fi.Size() > recordSize {
		if err := f.Truncate(recordSize); err != nil {
			f.Close()
			return nil, err
		}
	}
	s.files[p] = f
	return f, nil
}

func (s *store) path(kind vocab.Kind, name string) string {
	return filepath.Join(s.dir, string(kind)+"-"+name+".json")
}

// load returns the record of an instance; a missing file is not an error
// (the state is unknown), a damaged one is reported and ignored by the
// caller.
func (s *store) load(kind vocab.Kind, name string) (record, bool, error) {
	p := s.path(kind, name)
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return record{}, false, fmt.Errorf("%s: not a regular file", p)
	}
	// A record is one block; anything past it was never written by save.
	b, err := io.ReadAll(io.LimitReader(f, recordSize))
	if err != nil {
		return record{}, false, fmt.Errorf("%s: %w", p, err)
	}
	b = bytes.TrimRight(b, " \n\x00")
	if len(b) == 0 {
		// Created ahead of its first save (open): nothing on record.
		return record{}, false, nil
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, false, fmt.Errorf("%s: %w", p, err)
	}
	if r.Kind != kind || r.Name != name {
		return record{}, false, fmt.Errorf("%s: holds the record of %s %q, not of %s %q", p, r.Kind, r.Name, kind, name)
	}
	switch r.State {
	case StateMaster, StateBackup, StateFault, StateStop, StateDeleted:
	default:
		return record{}, false, fmt.Errorf("%s: unknown state %q", s.path(kind, name), r.State)
	}
	return r, true, nil
}

// save writes the record in place. It does not fsync, which costs
// milliseconds; sync does that after the announcements.
func (s *store) save(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(b) >= recordSize {
		return fmt.Errorf("save state: record of %d bytes", len(b))
	}
	buf := make([]byte, recordSize)
	copy(buf, b)
	for i := len(b); i < recordSize-1; i++ {
		buf[i] = ' '
	}
	buf[recordSize-1] = '\n'
	f, err := s.file(r.Kind, r.Name)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// sync makes a saved record durable now (tests and shutdown; the
// failover path uses requestSync).
func (s *store) sync(kind vocab.Kind, name string) error {
	if _, err := s.file(kind, name); err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	return s.syncPath(s.path(kind, name))
}

// generationFloor is where the generations of an instance restart when
// its record is missing, damaged or from another boot: a generation from
// the wall clock in milliseconds, so that a clientToken (derived from the
// generation) already used within the cloud's idempotency window is not
// used again for a different request.
func generationFloor(now time.Time, r record) uint64 {
	return max(r.Generation, uint64(max(now.UnixMilli(), 0)))
}
