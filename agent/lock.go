package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning is returned by New when another daemon holds the
// state directory.
var ErrAlreadyRunning = errors.New("another havip-agent is running")

// lockFile is the name of the lock in the state directory.
const lockFile = "lock"

// lockStateDir takes an exclusive lock in dir, held until the returned
// function is called (or the process ends). Two daemons must never run
// on one node: the second would drain the FIFO of the first.
func lockStateDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		b := make([]byte, 32)
		if n, _ := f.ReadAt(b, 0); n > 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s: it holds %s", ErrAlreadyRunning, holder, p)
		}
		return nil, fmt.Errorf("state_dir: lock %s: %w", p, err)
	}
	// The pid is for the message of a second daemon; the lock itself is
	// the flock, released by the kernel however this process ends.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// bootIDFile is the marker readBootID keeps in the runtime directory.
const bootIDFile = "boot-id"

// readBootID returns this boot's id: the kernel's, or where /proc hides
// it (systemd's ProcSubset=pid) an id kept in runDir, a tmpfs such as
// /run that a reboot empties. "" when neither can be had.
func readBootID(runDir string) string {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id
		}
	}
	if runDir == "" {
		return ""
	}
	p := filepath.Join(runDir, bootIDFile)
	if b, err := os.ReadFile(p); err == nil {
		return "run:" + strings.TrimSpace(string(b))
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return ""
	}
	id := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		// Another start made it first: use that one.
		if b, err := os.ReadFile(p); err == nil {
			return "run:" + strings.TrimSpace(string(b))
		}
		return ""
	}
	defer f.Close()
	if _, err := f.WriteString(id + "\n"); err != nil {
		return ""
	}
	return "run:" + id
}
