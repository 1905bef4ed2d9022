package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// record is what is persisted per instance.
type record struct {
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	State      State     `json:"state"`
	Generation uint64    `json:"generation"`
	Since      time.Time `json:"since"`
}

// store keeps one small JSON file per instance in the state directory.
// A restart must not fall back to an older state: a MASTER that restarts
// with BACKUP on record would remove the VIP it holds.
type store struct {
	dir string
}

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) path(kind, name string) string {
	return filepath.Join(s.dir, kind+"-"+name+".json")
}

// load returns the record of an instance; a missing file is not an error
// (the state is unknown), a damaged one is reported and ignored by the
// caller.
func (s *store) load(kind, name string) (record, bool, error) {
	b, err := os.ReadFile(s.path(kind, name))
	if errors.Is(err, fs.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, false, fmt.Errorf("%s: %w", s.path(kind, name), err)
	}
	switch r.State {
	case StateMaster, StateBackup, StateFault, StateStop, StateDeleted:
	default:
		return record{}, false, fmt.Errorf("%s: unknown state %q", s.path(kind, name), r.State)
	}
	return r, true, nil
}

// save writes the record atomically: a temporary file renamed over the old
// one. It does not fsync, which costs milliseconds; sync does that after
// the announcements.
func (s *store) save(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := s.path(r.Kind, r.Name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// sync makes a saved record durable.
func (s *store) sync(kind, name string) error {
	for _, p := range []string{s.path(kind, name), s.dir} {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("sync state: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync state: %w", err)
		}
	}
	return nil
}
