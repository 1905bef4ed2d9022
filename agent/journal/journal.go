package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/havip-agent/havip-agent/agent/vocab"
)

// Version is the format version Append writes into every event. Readers
// keep events of any version and ignore the fields they do not know.
const Version = 1

// Kind says what an event records.
type Kind string

// The kinds of event.
const (
	// KindTransition is a state change of an instance, with its phase
	// timings; Time is when the event that caused it was received.
	KindTransition Kind = "transition"
	// KindCloudCall is one mutating call to the cloud API and its answer.
	KindCloudCall Kind = "cloud_call"
	// KindCloudConfirmed is a cloud resource read back pointing at this node.
	KindCloudConfirmed Kind = "cloud_confirmed"
	// KindReclaim is a claim taken again after the cloud was found
	// pointing elsewhere.
	KindReclaim Kind = "reclaim"
	// KindConflict is another node found claiming what this node holds.
	KindConflict Kind = "conflict"
	// KindDrain is a planned switchover started on this node.
	KindDrain Kind = "drain"
	// KindResume is the end of a drain.
	KindResume Kind = "resume"
	// KindHook is one run of an event hook and its outcome.
	KindHook Kind = "hook"
	// KindJournal is a note of the journal itself: events it dropped, a
	// torn line it found.
	KindJournal Kind = "journal"
)

// Event is one line of the journal. Only Time and Kind are always set;
// the rest is what the kind has to say.
type Event struct {
	// Version is the format version; Append sets it.
	Version int `json:"v"`
	// Time is when it happened; Append sets it when zero.
	Time     time.Time `json:"time"`
	Instance string    `json:"instance,omitempty"`
	Kind     Kind      `json:"kind"`

	// From and To are the states of a transition.
	From vocab.State `json:"from,omitempty"`
	To   vocab.State `json:"to,omitempty"`
	// Generation is the term the event belongs to; events of the same
	// instance and generation as a transition belong to it.
	Generation uint64 `json:"generation,omitempty"`
	// Source is where a transition came from (fifo, notify, ...).
	Source string `json:"source,omitempty"`

	// The phase timings, each counted from the transition's Time.
	VIPsPresent       time.Duration `json:"vips_present_ns,omitempty"`
	FirstAnnouncement time.Duration `json:"first_announcement_ns,omitempty"`
	CloudRequestSent  time.Duration `json:"cloud_request_sent_ns,omitempty"`
	CloudConfirmed    time.Duration `json:"cloud_confirmed_ns,omitempty"`

	// A cloud call: what was called on which resource, and the answer.
	Operation string `json:"operation,omitempty"`
	Resource  string `json:"resource,omitempty"`
	// Status is the HTTP status of the answer; 0 when none came.
	Status    int    `json:"status,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	// RequestID is the answer's x-bce-request-id, what Baidu support
	// asks for.
	RequestID   string `json:"request_id,omitempty"`
	ClientToken string `json:"client_token,omitempty"`
	Attempt     int    `json:"attempt,omitempty"`

	// A hook run: which hook and how it ended.
	Hook    string `json:"hook,omitempty"`
	Outcome string `json:"outcome,omitempty"`

	// Elapsed is how long the call or the hook took.
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	Message string        `json:"message,omitempty"`
}

// Bounds of what one event may carry, so that a line stays well within
// MaxLineBytes whatever the strings hold (JSON at most doubles them once
// control characters and invalid UTF-8 are replaced).
const (
	maxField   = 256
	maxMessage = 2048
)

// MaxLineBytes is the longest line Read accepts; longer lines are skipped.
// Append never writes one.
const MaxLineBytes = 64 << 10

// Defaults and bounds of Options.
const (
	DefaultMaxBytes = 1 << 20
	DefaultKeep     = 3
	// MinMaxBytes is the smallest MaxBytes: a file holds at least one line.
	MinMaxBytes = MaxLineBytes
	// MaxKeep bounds Keep, and with it the files Read opens.
	MaxKeep = 100
	// DefaultQueueLen is how many events may wait for the writer.
	DefaultQueueLen = 1024
)

// The files of a journal in its directory.
const (
	currentName = "history.jsonl"
	namePrefix  = "history."
	nameSuffix  = ".jsonl"
)

// Options are the settings of a journal. The zero value takes the defaults.
type Options struct {
	// MaxBytes is the size at which the current file is rotated.
	MaxBytes int64
	// Keep is how many rotated files are kept; 0 keeps none.
	Keep int
	// QueueLen is how many events may wait for the writer before Append
	// drops them.
	QueueLen int
	// Logger takes the journal's own troubles (write failures, drops).
	Logger *slog.Logger
	// Now stamps events appended without a time.
	Now func() time.Time

	// beforeWrite, for tests, runs on the writer before each event.
	beforeWrite func()
	// write, for tests, replaces the file's Write.
	write func(f *os.File, b []byte) (int, error)
}

// Errors of Append.
var (
	ErrClosed    = errors.New("journal: closed")
	ErrQueueFull = errors.New("journal: queue full, event dropped")
)

// Stats counts what a journal did since Open.
type Stats struct {
	// Written is the events written.
	Written uint64
	// Dropped is the events not written: the queue was full or the event
	// would not fit a line.
	Dropped uint64
	// Failed is the writes the file refused (a full disk, say).
	Failed uint64
}

// Journal appends events to the files in a directory.
type Journal struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu     sync.Mutex // guards closed, seq and sends on queue
	closed bool
	seq    uint64
	queue  chan queued

	// Flush waits on these for the writer.
	wmu     sync.Mutex
	wcond   *sync.Cond
	doneSeq uint64
	exited  bool

	written, dropped, failed atomic.Uint64

	done chan struct{}

	// Owned by the writer goroutine.
	file    *os.File
	size    int64
	torn    bool   // the file may end without a newline
	noted   uint64 // dropped events already noted in the journal
	failing bool   // the last write failed (logged once until one succeeds)
	buf     bytes.Buffer
	enc     *json.Encoder
}

type queued struct {
	e   Event
	seq uint64
}

// Open opens, creating it if needed, the journal in dir and starts its
// writer, which runs until Close. A last line torn by a crash is
// terminated, and noted in the journal, so that the next event starts on a
// line of its own; rotated files beyond opts.Keep are removed.
func Open(dir string, opts Options) (*Journal, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{dir: dir, opts: opts, log: opts.Logger, queue: make(chan queued, opts.QueueLen), done: make(chan struct{})}
	j.wcond = sync.NewCond(&j.wmu)
	j.enc = json.NewEncoder(&j.buf)
	j.enc.SetEscapeHTML(false)
	torn, err := j.openCurrent()
	if err != nil {
		return nil, err
	}
	if err := j.prune(); err != nil {
		j.file.Close()
		return nil, err
	}
	if torn {
		j.log.Warn("journal: the last line was torn by a crash; terminated it", "path", j.file.Name())
		j.queue <- queued{e: Event{Version: Version, Time: opts.Now(), Kind: KindJournal, Message: "the journal did not end with a newline: the agent stopped in the middle of a write"}, seq: 1}
		j.seq = 1
	}
	go j.run()
	return j, nil
}

func checkOptions(o *Options) error {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxBytes < MinMaxBytes {
		return fmt.Errorf("journal: MaxBytes %d is less than %d, the longest line", o.MaxBytes, MinMaxBytes)
	}
	if o.Keep < 0 || o.Keep > MaxKeep {
		return fmt.Errorf("journal: Keep %d is not between 0 and %d", o.Keep, MaxKeep)
	}
	if o.QueueLen == 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.QueueLen < 0 {
		return fmt.Errorf("journal: QueueLen %d is negative", o.QueueLen)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.write == nil {
		o.write = (*os.File).Write
	}
	return nil
}

// openCurrent opens history.jsonl for appending and terminates a torn last
// line; torn reports that it did.
func (j *Journal) openCurrent() (torn bool, err error) {
	p := filepath.Join(j.dir, currentName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return false, fmt.Errorf("journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return false, fmt.Errorf("journal: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return false, fmt.Errorf("journal: %s: not a regular file", p)
	}
	j.file, j.size = f, fi.Size()
	if j.size == 0 {
		return false, nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, j.size-1); err != nil {
		f.Close()
		return false, fmt.Errorf("journal: %s: %w", p, err)
	}
	if last[0] == '\n' {
		return false, nil
	}
	n, err := f.Write([]byte{'\n'})
	j.size += int64(n)
	if err != nil {
		f.Close()
		return false, fmt.Errorf("journal: %s: terminating a torn line: %w", p, err)
	}
	return true, nil
}

// prune removes the rotated files beyond Keep, left by a larger Keep.
func (j *Journal) prune() error {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for _, de := range ents {
		if n, ok := rotatedIndex(de.Name()); ok && n > j.opts.Keep {
			if err := os.Remove(filepath.Join(j.dir, de.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("journal: %w", err)
			}
		}
	}
	return nil
}

// rotatedName is the name of the n-th rotated file, 1 the newest.
func rotatedName(n int) string { return namePrefix + strconv.Itoa(n) + nameSuffix }

// rotatedIndex parses a rotated file's name as rotatedName writes it.
func rotatedIndex(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, nameSuffix); !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// Append queues e to be written and returns at once: it never waits for
// the disk. Time is set when zero, and Version always. It fails with
// ErrQueueFull when the writer is that far behind (the event is dropped,
// counted, and noted in the journal), and with ErrClosed after Close.
func (j *Journal) Append(e Event) error {
	if e.Time.IsZero() {
		e.Time = j.opts.Now()
	}
	e.Version = Version
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	select {
	case j.queue <- queued{e: e, seq: j.seq + 1}:
		j.seq++
		return nil
	default:
		j.dropped.Add(1)
		return ErrQueueFull
	}
}

// Flush waits until every event appended before it is written (or failed)
// or the journal is closed. It is for tests and shutdown, not for the
// failover path.
func (j *Journal) Flush() {
	j.mu.Lock()
	target := j.seq
	j.mu.Unlock()
	j.wmu.Lock()
	defer j.wmu.Unlock()
	for j.doneSeq < target && !j.exited {
		j.wcond.Wait()
	}
}

// Close writes what is queued, stops the writer and closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		<-j.done
		return nil
	}
	j.closed = true
	close(j.queue)
	j.mu.Unlock()
	<-j.done
	if err := j.file.Close(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Stats returns what the journal did since Open.
func (j *Journal) Stats() Stats {
	return Stats{Written: j.written.Load(), Dropped: j.dropped.Load(), Failed: j.failed.Load()}
}

// run is the writer: the only goroutine that touches the file.
func (j *Journal) run() {
	defer close(j.done)
	defer func() {
		j.wmu.Lock()
		j.exited = true
		j.wcond.Broadcast()
		j.wmu.Unlock()
	}()
	for q := range j.queue {
		if j.opts.beforeWrite != nil {
			j.opts.beforeWrite()
		}
		j.noteDrops()
		j.write(q.e)
		j.wmu.Lock()
		j.doneSeq = q.seq
		j.wcond.Broadcast()
		j.wmu.Unlock()
	}
	j.noteDrops()
}

// noteDrops writes a note of the events dropped since the last note.
func (j *Journal) noteDrops() {
	d := j.dropped.Load()
	if d == j.noted {
		return
	}
	n := d - j.noted
	j.noted = d
	j.log.Warn("journal: events dropped", "dropped", n)
	j.write(Event{Version: Version, Time: j.opts.Now(), Kind: KindJournal,
		Message: fmt.Sprintf("%d events dropped: the journal could not keep up or they were too long", n)})
}

// write writes e as one line, rotating first when the line would take the
// file past MaxBytes.
func (j *Journal) write(e Event) {
	clampEvent(&e)
	j.buf.Reset()
	if j.torn {
		// A failed write may have left part of a line: end it first, in
		// the same write, so that this event starts a line of its own.
		j.buf.WriteByte('\n')
	}
	if err := j.enc.Encode(&e); err != nil || j.buf.Len() > MaxLineBytes {
		// Cannot happen with clamped fields; drop it rather than write a
		// line no reader takes.
		j.dropped.Add(1)
		j.noted++ // this one is logged here, not noted
		j.log.Warn("journal: event not written: it does not fit a line", "kind", e.Kind, "instance", e.Instance, "err", err)
		return
	}
	if j.size > 0 && j.size+int64(j.buf.Len()) > j.opts.MaxBytes {
		j.rotate()
	}
	n, err := j.opts.write(j.file, j.buf.Bytes())
	j.size += int64(n)
	if err != nil {
		j.failed.Add(1)
		// A part of the line may have been written.
		j.torn = j.torn || n > 0
		if !j.failing {
			j.failing = true
			j.log.Warn("journal: write failed; events are lost until a write succeeds", "path", j.file.Name(), "err", err)
		}
		return
	}
	j.torn = false
	j.written.Add(1)
	if j.failing {
		j.failing = false
		j.log.Info("journal: writes succeed again", "path", j.file.Name(), "failed", j.failed.Load())
	}
}

// rotate makes the current file history.1.jsonl, shifting the older ones
// and letting the oldest beyond Keep go, and opens a new current file.
// When that fails the current file is emptied instead: the bound on disk
// use holds either way.
func (j *Journal) rotate() {
	cur := filepath.Join(j.dir, currentName)
	err := j.shift(cur)
	if err == nil {
		var f *os.File
		f, err = os.OpenFile(cur, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o640)
		if err == nil {
			j.file.Close()
			j.file, j.size, j.torn = f, 0, false
			return
		}
	}
	j.log.Warn("journal: rotation failed; emptying the current file", "path", cur, "err", err)
	if err := j.file.Truncate(0); err != nil {
		j.log.Warn("journal: cannot empty the current file", "path", cur, "err", err)
		return
	}
	j.size, j.torn = 0, false
}

// shift renames history.N.jsonl to N+1 for N from Keep-1 down to 1, then
// the current file to history.1.jsonl; with Keep 0 it removes the current
// file.
func (j *Journal) shift(cur string) error {
	if j.opts.Keep == 0 {
		return os.Remove(cur)
	}
	for n := j.opts.Keep - 1; n >= 1; n-- {
		err := os.Rename(filepath.Join(j.dir, rotatedName(n)), filepath.Join(j.dir, rotatedName(n+1)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.Rename(cur, filepath.Join(j.dir, rotatedName(1)))
}

// clampEvent bounds e's strings and makes them valid, printable UTF-8, so
// that its line stays within MaxLineBytes.
func clampEvent(e *Event) {
	for _, s := range []*string{&e.Instance, (*string)(&e.Kind), (*string)(&e.From), (*string)(&e.To), &e.Source, &e.Operation,
		&e.Resource, &e.ErrorCode, &e.RequestID, &e.ClientToken, &e.Hook, &e.Outcome} {
		*s = clamp(*s, maxField)
	}
	e.Message = clamp(e.Message, maxMessage)
}

// clamp replaces control characters and invalid UTF-8 in s with '?' and
// cuts it to at most limit bytes on a character boundary.
func clamp(s string, limit int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean && len(s) <= limit {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > limit {
			break
		}
		b.WriteRune(r)
		i += n
	}
	return b.String()
}
