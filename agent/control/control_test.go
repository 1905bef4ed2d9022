package control

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type handler struct {
	notified [][]string
	reloads  int
	// drains are the drain requests taken; drainWait, when set, blocks a
	// drain until it is closed or the drain's context ends.
	mu        sync.Mutex
	drains    []DrainRequest
	drainWait chan struct{}
	drainEnd  error
	resumed   [][]string
}

func (h *handler) Drain(ctx context.Context, r DrainRequest, progress func(string)) error {
	h.mu.Lock()
	h.drains = append(h.drains, r)
	wait := h.drainWait
	h.mu.Unlock()
	progress("+0.00s  VI_1  drained")
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			h.mu.Lock()
			h.drainEnd = context.Cause(ctx)
			h.mu.Unlock()
			return ctx.Err()
		}
	}
	progress("+1.00s  VI_1  left MASTER: now FAULT")
	if r.Force {
		return nil
	}
	return errors.New("not drained")
}

func (h *handler) Resume(names []string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resumed = append(h.resumed, names)
	return []string{"VI_1 resumed"}, nil
}

func (h *handler) Reload() error {
	h.reloads++
	return nil
}

func (h *handler) Notify(args []string) error {
	if len(args) == 0 {
		return errors.New("empty")
	}
	h.notified = append(h.notified, args)
	return nil
}
func (h *handler) Status() any { return map[string]string{"state": "MASTER"} }
func (h *handler) Check(name string) (string, error) {
	if name == "web" {
		return "healthy", nil
	}
	return "", errors.New("no check named " + name)
}

func serve(t *testing.T, uid uint32, gid int, member bool) (string, *handler) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	s, err := Listen(path, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.gid = gid
	s.self = 999
	s.cred = func(*net.UnixConn) (*unix.Ucred, error) { return &unix.Ucred{Uid: uid, Pid: 1}, nil }
	s.inGrp = func(uint32, uint32) bool { return member }
	h := &handler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path, h
}

func TestPermissions(t *testing.T) {
	notify := Request{Op: OpNotify, Args: []string{"INSTANCE", "VI_1", "MASTER"}}
	status := Request{Op: OpStatus}
	check := Request{Op: OpCheck, Name: "web"}
	for _, tt := range []struct {
		name    string
		uid     uint32
		gid     int
		member  bool
		req     Request
		allowed bool
	}{
		{"root notify", 0, -1, false, notify, true},
		{"root status", 0, -1, false, status, true},
		{"daemon's own user notify", 999, -1, false, notify, true},
		{"user notify", 1000, -1, false, notify, false},
		{"user status without group", 1000, -1, false, status, false},
		{"group member status", 1000, 50, true, status, true},
		{"group member check", 1000, 50, true, check, true},
		{"group member notify", 1000, 50, true, notify, false},
		{"non-member status", 1000, 50, false, status, false},
		{"root drain", 0, -1, false, Request{Op: OpDrain, Force: true}, true},
		{"root resume", 0, -1, false, Request{Op: OpResume}, true},
		{"group member drain", 1000, 50, true, Request{Op: OpDrain, Force: true}, false},
		{"group member resume", 1000, 50, true, Request{Op: OpResume}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := serve(t, tt.uid, tt.gid, tt.member)
			_, err := Do(context.Background(), path, tt.req)
			if tt.allowed && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.allowed && (err == nil || !strings.Contains(err.Error(), "permission denied")) {
				t.Errorf("got %v, want permission denied", err)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	path, h := serve(t, 0, -1, false)
	ctx := context.Background()
	if _, err := Do(ctx, path, Request{Op: OpNotify, Args: []string{"a"}}); err != nil || len(h.notified) != 1 {
		t.Errorf("notify: %v %v", err, h.notified)
	}
	if r, err := Do(ctx, path, Request{Op: OpStatus}); err != nil || string(r.Status) != `{"state":"MASTER"}` {
		t.Errorf("status: %s %v", r.Status, err)
	}
	if r, err := Do(ctx, path, Request{Op: OpCheck, Name: "web"}); err != nil || r.Verdict != "healthy" {
		t.Errorf("check: %+v %v", r, err)
	}
	if _, err := Do(ctx, path, Request{Op: "reboot"}); err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Errorf("unknown op: %v", err)
	}
	// Garbage instead of JSON.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("{\"op\": 1}\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if !strings.Contains(string(b), "bad request") {
		t.Errorf("garbage: %s", b)
	}
}

// Issue 11, item 16: a health check runs as the daemon's own user, which
// may send anything; its processes must not be able to change state.
func TestWritesFromHealthChecksRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	s, err := Listen(path, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.self = 999
	s.cred = func(*net.UnixConn) (*unix.Ucred, error) { return &unix.Ucred{Uid: 999, Pid: 4242}, nil }
	s.RefuseWritesFrom(func(pid int) bool { return pid == 4242 })
	h := &handler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, h); close(done) }()
	defer func() { cancel(); <-done }()
	for _, tt := range []struct {
		req     Request
		allowed bool
	}{
		{Request{Op: OpNotify, Args: []string{"INSTANCE", "VI_1", "MASTER"}}, false},
		{Request{Op: OpReload}, false},
		{Request{Op: OpDrain}, false},
		{Request{Op: OpResume}, false},
		{Request{Op: OpStatus}, true},
		{Request{Op: OpCheck, Name: "web"}, true},
	} {
		_, err := Do(context.Background(), path, tt.req)
		if (err == nil) != tt.allowed {
			t.Errorf("%s from a check: err %v, allowed %v", tt.req.Op, err, tt.allowed)
		}
	}
	if len(h.notified) != 0 || h.reloads != 0 || len(h.drains) != 0 || len(h.resumed) != 0 {
		t.Errorf("a check's request was carried out: %v, %d reloads", h.notified, h.reloads)
	}
}

// More clients than the server serves at once wait, and are all answered.
func TestConnectionsBounded(t *testing.T) {
	path, _ := serve(t, 0, -1, false)
	errs := make(chan error, 4*maxConns)
	for range 4 * maxConns {
		go func() {
			_, err := Do(context.Background(), path, Request{Op: OpStatus})
			errs <- err
		}()
	}
	for range 4 * maxConns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// A drain streams its timeline line by line, then its outcome; the
// request's instances, timeout and force reach the handler; resume
// answers its lines at once.
func TestDrainStreams(t *testing.T) {
	path, h := serve(t, 0, -1, false)
	ctx := context.Background()
	var lines []string
	_, err := Stream(ctx, path, Request{Op: OpDrain, Args: []string{"VI_1"}, TimeoutMS: 1500}, func(l string) { lines = append(lines, l) })
	if err == nil || err.Error() != "not drained" {
		t.Errorf("drain: %v, want the handler's error", err)
	}
	if strings.Join(lines, "|") != "+0.00s  VI_1  drained|+1.00s  VI_1  left MASTER: now FAULT" {
		t.Errorf("progress %q", lines)
	}
	lines = nil
	if _, err := Stream(ctx, path, Request{Op: OpDrain, Force: true}, func(l string) { lines = append(lines, l) }); err != nil || len(lines) != 2 {
		t.Errorf("forced drain: %v, %q", err, lines)
	}
	h.mu.Lock()
	got := h.drains
	h.mu.Unlock()
	if len(got) != 2 || strings.Join(got[0].Instances, ",") != "VI_1" || got[0].Timeout != 1500*time.Millisecond || got[0].Force ||
		len(got[1].Instances) != 0 || got[1].Timeout != 0 || !got[1].Force {
		t.Errorf("drain requests %+v", got)
	}
	if _, err := Stream(ctx, path, Request{Op: OpDrain, TimeoutMS: -1}, func(string) {}); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("negative timeout: %v", err)
	}
	r, err := Do(ctx, path, Request{Op: OpResume, Args: []string{"VI_1"}})
	if err != nil || strings.Join(r.Lines, "|") != "VI_1 resumed" {
		t.Errorf("resume: %+v, %v", r, err)
	}
}

// A client that goes away while a drain waits ends the drain's context,
// so that nothing waits for a reader that is gone.
func TestDrainClientGone(t *testing.T) {
	path, h := serve(t, 0, -1, false)
	h.drainWait = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := Stream(ctx, path, Request{Op: OpDrain}, func(string) { once.Do(func() { close(first) }) })
		done <- err
	}()
	<-first
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Stream after cancel: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		end := h.drainEnd
		h.mu.Unlock()
		if end != nil {
			if !strings.Contains(end.Error(), "went away") {
				t.Errorf("drain ended by %v", end)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the drain did not end when its client went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
