package keepalived

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// FIFO reads keepalived's vrrp_notify_fifo.
//
// It is opened read-write so that the pipe never reports end-of-file when
// keepalived restarts and closes its end, and non-blocking so that a read
// can drain everything buffered at once: keepalived writes non-blocking and
// drops lines when the pipe is full, so the reader must never wait on the
// daemon's actions, and a batch read lets the caller act only on the latest
// state of each instance.
type FIFO struct {
	f     *os.File
	rc    syscall.RawConn
	buf   []byte
	lines lineSplitter
	// path, dev and ino identify the FIFO opened, for Replaced.
	path     string
	dev, ino uint64
	closed   atomic.Bool
}

// Line is one line read from the FIFO, without its newline.
type Line struct {
	Data []byte
	// TooLong is set when the line exceeded MaxLineLength; Data is then
	// its first MaxLineLength bytes.
	TooLong bool
}

// OpenFIFO opens the FIFO at path, creating it with mode 0600 when it does
// not exist. Any other kind of file at path is an error.
func OpenFIFO(path string) (*FIFO, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create fifo %s: %w", path, err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("fifo %s: %w", path, err)
	}
	if st.Mode().Type() != fs.ModeNamedPipe {
		return nil, fmt.Errorf("fifo %s: exists and is not a FIFO (%s); remove it or choose another path", path, st.Mode().Type())
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	// os.NewFile registers a non-blocking descriptor with the runtime
	// poller, so Read below parks the goroutine instead of a thread.
	f := os.NewFile(uintptr(fd), path)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fifo %s: %w", path, err)
	}
	var fst unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &fst) }); err != nil || serr != nil {
		f.Close()
		return nil, fmt.Errorf("fifo %s: %w", path, errors.Join(err, serr))
	}
	return &FIFO{f: f, rc: rc, buf: make([]byte, 64<<10), path: path, dev: uint64(fst.Dev), ino: uint64(fst.Ino)}, nil
}

// Close closes the FIFO; a blocked ReadBatch returns an error.
func (p *FIFO) Close() error {
	p.closed.Store(true)
	return p.f.Close()
}

// Closed reports whether Close was called: a read error then means the
// reader should stop, not retry.
func (p *FIFO) Closed() bool { return p.closed.Load() }

// Replaced reports whether the FIFO's path no longer names the pipe held
// open: it was removed, or removed and created again (keepalived creates
// a missing vrrp_notify_fifo when it starts). keepalived's lines then go
// to a pipe nobody reads, so the caller must open the path again.
func (p *FIFO) Replaced() bool {
	var st unix.Stat_t
	if err := unix.Stat(p.path, &st); err != nil {
		return errors.Is(err, unix.ENOENT)
	}
	return uint64(st.Dev) != p.dev || uint64(st.Ino) != p.ino
}

// ReadBatch waits until the pipe has data and returns every complete line
// then buffered. A partial last line is kept for the next call.
func (p *FIFO) ReadBatch() ([]Line, error) { return p.read(true) }

// Drain returns every complete line buffered now, without waiting: the
// backlog keepalived wrote while the agent was down.
func (p *FIFO) Drain() ([]Line, error) { return p.read(false) }

func (p *FIFO) read(wait bool) ([]Line, error) {
	var data []byte
	var rerr error
	err := p.rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), p.buf)
			if n > 0 {
				data = append(data, p.buf[:n]...)
			}
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				// Nothing (more) buffered: wait for readiness if we
				// have nothing yet, else hand the batch over.
				return len(data) > 0 || !wait
			case err != nil:
				rerr = err
				return true
			case n == 0:
				// Cannot happen while we hold a write end; treat it
				// like an error rather than spin.
				rerr = errors.New("unexpected end of file")
				return true
			}
			if len(data) > 1<<20 {
				// Bound one batch; the rest is read next time.
				return true
			}
		}
	})
	if err == nil {
		err = rerr
	}
	lines := p.lines.split(data)
	if err != nil {
		return lines, fmt.Errorf("read fifo %s: %w", p.f.Name(), err)
	}
	return lines, nil
}

// lineSplitter cuts the byte stream read from the FIFO into lines. It holds
// no descriptor, so the splitting can be tested (and fuzzed) apart from the
// pipe: what it returns depends only on the bytes fed so far, not on where
// the reads ended.
type lineSplitter struct {
	// partial is the start of a line that a read left incomplete.
	partial []byte
	// discarding is set while the rest of an over-long line is skipped.
	discarding bool
}

// split returns the lines that data completes, each a copy. A line longer
// than MaxLineLength is returned once, cut to its first MaxLineLength bytes
// and marked TooLong, as soon as it is known to be too long; the rest of it
// is dropped up to its newline. An incomplete last line is kept for the next
// call.
func (s *lineSplitter) split(data []byte) []Line {
	var out []Line
	for len(data) > 0 {
		var chunk []byte
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			chunk, data = data, nil
		} else {
			chunk, data = data[:i], data[i+1:]
		}
		if s.discarding {
			s.discarding = i < 0
			continue
		}
		s.partial = append(s.partial, chunk...)
		if len(s.partial) > MaxLineLength {
			out = append(out, Line{Data: bytes.Clone(s.partial[:MaxLineLength]), TooLong: true})
			s.partial = s.partial[:0]
			s.discarding = i < 0
			continue
		}
		if i >= 0 {
			out = append(out, Line{Data: bytes.Clone(s.partial)})
			s.partial = s.partial[:0]
		}
	}
	return out
}
