package health

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// trackValue is what keepalived reads for a verdict: 0 is OK, anything
// else is multiplied by the track_file weight (or means FAULT at weight 0).
func trackValue(v Verdict, failed int) int {
	if v == Healthy {
		return 0
	}
	return failed
}

// writeTrackFile replaces path atomically with "value\n": keepalived
// watches the file with inotify and must never read a half-written value.
func writeTrackFile(path string, value int) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.WriteString(strconv.Itoa(value) + "\n"); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Persist the rename too, so a crash cannot bring back the old value.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
