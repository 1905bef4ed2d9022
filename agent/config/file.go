package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize bounds what Load and SocketPath read: a configuration is a
// few kilobytes, and anything near this size is the wrong file.
const MaxFileSize = 1 << 20

// readFile reads a configuration file, refusing what is not a regular file
// and what is larger than MaxFileSize, so that a FIFO, a device or a huge
// file given by mistake neither hangs the reader nor fills its memory.
func readFile(path string) ([]byte, error) {
	// Stat before opening: opening a FIFO may block or release a waiting
	// writer, and opening some devices acts (a watchdog arms on open).
	fi, err := os.Stat(path)
	if err != nil {
		return nil, pathErr(path, err)
	}
	if err := checkRegular(path, fi); err != nil {
		return nil, err
	}
	// O_NONBLOCK keeps the open from blocking if the path became a FIFO
	// since the stat; O_NOCTTY keeps a terminal from becoming ours.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, pathErr(path, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, pathErr(path, err)
	}
	if err := checkRegular(path, fi); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, pathErr(path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: grew beyond %d bytes while being read", path, MaxFileSize)
	}
	return b, nil
}

// checkRegular refuses anything but a regular file of at most MaxFileSize.
func checkRegular(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: is %s, not a regular file", path, fileKind(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return fmt.Errorf("%s: is %d bytes, larger than the %d a configuration file may have", path, fi.Size(), MaxFileSize)
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "a special file"
	}
}

// pathErr names path once: the *fs.PathError's own copy of it is dropped,
// its cause is kept for errors.Is.
func pathErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", path, err)
}
