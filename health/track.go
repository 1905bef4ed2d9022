package health

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Keeping a track file's verdict across a restart of the agent.
const (
	// trackRestartGrace is how long the agent may be down with its track
	// files still trusted: it covers a restart by systemd after a crash, a
	// watchdog kill with its stop timeout, a package upgrade's try-restart
	// and a few of those in a row. A longer absence is a deliberate stop
	// (maintenance), after which the service may have changed, so the
	// check starts from its configured initial verdict as on a first start.
	trackRestartGrace = 5 * time.Minute
	// trackTouchEvery is how often a running check refreshes the
	// modification time of a track file that already holds its verdict,
	// so that the time says when the verdict was last confirmed rather than
	// when it last changed. Only the time changes; the content, which is
	// what keepalived reads, stays.
	trackTouchEvery = 10 * time.Second
	// trackReadLimit bounds what is read from a track file at start; a
	// valid one holds at most four bytes ("254\n").
	trackReadLimit = 16
)

// trackMaxAge is how old a track file may be for its verdict to be kept at
// start. While the agent runs, the file's time lags the last confirmation
// by at most trackTouchEvery plus the gap between two results, which is
// below two intervals and two timeouts (the jitter is 5%); the restart
// itself may take trackRestartGrace.
func trackMaxAge(s Spec) time.Duration {
	return trackRestartGrace + trackTouchEvery + 2*(s.Interval+s.Timeout)
}

// trackValue is what keepalived reads for a verdict: 0 is OK, anything
// else is multiplied by the track_file weight (or means FAULT at weight 0).
func trackValue(v Verdict, failed int) int {
	if v == Healthy {
		return 0
	}
	return failed
}

// trackContent is the exact content the agent writes for value.
func trackContent(value int) string { return strconv.Itoa(value) + "\n" }

// parseTrackValue parses a track file's content as the agent writes it: a
// number between 0 and MaxTrackValue without sign or leading zeros, with
// at most one trailing newline.
func parseTrackValue(b []byte) (int, bool) {
	s := string(b)
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > MaxTrackValue {
		return 0, false
	}
	return v, true
}

// keptVerdict decides whether a track file's verdict survives a restart:
// content as read, mod its modification time, boot the time this boot
// began. It returns Healthy or Failed, or Unknown with the reason why the
// file is not used. A file from before this boot says nothing about the
// service now, whatever its age; a time far ahead of now means the clock
// was stepped back and the age is unknown.
func keptVerdict(content []byte, mod, now, boot time.Time, maxAge time.Duration) (Verdict, error) {
	v, ok := parseTrackValue(content)
	switch {
	case !ok:
		return Unknown, fmt.Errorf("content %q is not a track value", content)
	case mod.Before(boot):
		return Unknown, fmt.Errorf("written before this boot (%s, boot at %s)", mod.Format(time.RFC3339), boot.Format(time.RFC3339))
	case now.Sub(mod) > maxAge:
		return Unknown, fmt.Errorf("last written or confirmed %v ago, more than %v", now.Sub(mod).Round(time.Second), maxAge)
	case mod.Sub(now) > maxAge:
		return Unknown, fmt.Errorf("modification time %s is ahead of the clock", mod.Format(time.RFC3339))
	case v == 0:
		return Healthy, nil
	default:
		return Failed, nil
	}
}

// readTrackFile returns the first bytes of the regular file at path and
// its modification time. It neither follows a symbolic link nor waits on
// a FIFO or device put in the file's place.
func readTrackFile(path string) ([]byte, time.Time, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, time.Time{}, fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, trackReadLimit))
	if err != nil {
		return nil, time.Time{}, err
	}
	return b, fi.ModTime(), nil
}

// bootTime returns the wall-clock time at which this boot began, from
// CLOCK_BOOTTIME, which counts suspended time too.
func bootTime() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	return time.Now().Round(0).Add(-time.Duration(ts.Nano())), nil
}

// writeTrackFile replaces path atomically with "value\n": keepalived
// watches the file with inotify and must never read a half-written value.
func writeTrackFile(path string, value int) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return WriteFileAtomic(path, []byte(trackContent(value)), 0o644)
}

// WriteFileAtomic replaces path with b through a synced temporary file in
// the same directory and a synced rename, so that neither a reader (such as
// keepalived watching a track file) nor a crash sees half of it, and a crash
// cannot bring back the old content.
func WriteFileAtomic(path string, b []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
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
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
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

// touchTrackFile sets the modification time of the track file at path,
// which must be a regular file (the agent's own), to t.
func touchTrackFile(path string, t time.Time) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New(path + " is not a regular file")
	}
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: path, Err: err}
	}
	return nil
}
