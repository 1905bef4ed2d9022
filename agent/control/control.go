package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Operations.
const (
	OpNotify = "notify"
	OpStatus = "status"
	OpCheck  = "check"
	OpReload = "reload"
	// OpDrain drains instances (a planned switchover) and streams the
	// switchover's timeline until it is done.
	OpDrain = "drain"
	// OpResume lifts drains.
	OpResume = "resume"
)

// maxConns bounds the connections served at once; more wait in the
// kernel's backlog.
const maxConns = 16

// maxRequest bounds what the daemon reads from one client.
const maxRequest = 64 << 10

// Request is what a client sends.
type Request struct {
	Op string `json:"op"`
	// Args are notify's TYPE NAME STATE [PRIORITY], and the instances of
	// drain and resume (none: every instance).
	Args []string `json:"args,omitempty"`
	Name string   `json:"name,omitempty"` // check: the check's name
	// TimeoutMS and Force are drain's --timeout (0: the daemon's default)
	// and --force.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	Force     bool  `json:"force,omitempty"`
}

// Response is what the daemon answers. A drain answers first with any
// number of responses carrying only Progress, one line of its timeline
// each, then with the final one.
type Response struct {
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Status   json.RawMessage `json:"status,omitempty"`
	Verdict  string          `json:"verdict,omitempty"`
	Progress string          `json:"progress,omitempty"`
	// Lines are what a resume did, one line per instance.
	Lines []string `json:"lines,omitempty"`
}

// DrainRequest is a drain as the handler gets it.
type DrainRequest struct {
	// Instances are the names given; none means every instance.
	Instances []string
	// Timeout is how long to wait for another node to take over; 0 means
	// the daemon's default.
	Timeout time.Duration
	// Force keeps the drain when no other node takes over.
	Force bool
}

// drainSlack is how much longer than its timeout a drain's connection may
// last: the undoing and the final answer come after it.
const drainSlack = 30 * time.Second

// maxDrainTimeout bounds the timeout a client may ask for.
const maxDrainTimeout = time.Hour

// Handler carries requests out.
type Handler interface {
	Notify(args []string) error
	Status() any
	Check(name string) (verdict string, err error)
	// Reload reads the configuration file again and applies it.
	Reload() error
	// Drain drains instances and waits for the switchover, calling
	// progress with each line of its timeline; it returns when it is
	// done, has failed, or ctx ends (the client went away, the server
	// stops).
	Drain(ctx context.Context, r DrainRequest, progress func(line string)) error
	// Resume lifts drains at once and says what it did.
	Resume(instances []string) ([]string, error)
}

// readOnly reports whether an operation may be sent by socket group members.
func readOnly(op string) bool { return op == OpStatus || op == OpCheck }

// Server accepts control connections.
type Server struct {
	ln    *net.UnixListener
	path  string
	gid   int // -1: root only
	log   *slog.Logger
	wg    sync.WaitGroup
	inGrp func(uid, gid uint32) bool
	cred  func(*net.UnixConn) (*unix.Ucred, error)
	self  uint32
	// refuse, when set, names peers whose write requests are refused
	// whatever their uid: the daemon's own health checks and hooks.
	refuse func(pid int) bool
}

// RefuseWritesFrom makes the server refuse write requests from the
// processes f accepts (call before Serve). A health check or a hook runs
// as the daemon's own user, which may otherwise send anything (a hook
// that drained on a drain event would loop).
func (s *Server) RefuseWritesFrom(f func(pid int) bool) { s.refuse = f }

// Listen creates the socket at path: mode 0600, or 0660 with group when
// group is not empty. A stale socket left by a killed daemon is replaced;
// a live one means another daemon runs, which is an error.
func Listen(path, group string, log *slog.Logger) (*Server, error) {
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("socket_group %q: %w", group, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another havip-agent is running", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// Create the socket with no permissions for others from the start;
	// chmod afterwards would leave a window.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if gid >= 0 {
		// Only the group changes: the daemon may run as its own user,
		// which may set the group of its files to a group it belongs to.
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket: %w", err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket: %w", err)
		}
	}
	return &Server{ln: ln, path: path, gid: gid, log: log, inGrp: memberOf, cred: peerCred, self: uint32(os.Geteuid())}, nil
}

// Serve answers requests until ctx is done, then waits for open
// connections to finish.
func (s *Server) Serve(ctx context.Context, h Handler) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		s.ln.Close()
	}()
	sem := make(chan struct{}, maxConns)
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			s.wg.Wait()
			return
		}
		c, err := s.ln.AcceptUnix()
		if err != nil {
			<-sem
			if ctx.Err() == nil {
				s.log.Error("control socket accept failed", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			s.wg.Wait()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			s.handle(ctx, c, h)
		}()
	}
}

func (s *Server) handle(ctx context.Context, c *net.UnixConn, h Handler) {
	defer c.Close()
	// A deadline fails only on a closed connection, whose read or write
	// fails in turn; a client that went away gets no answer.
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	resp := s.answer(ctx, c, h)
	// A client that went away gets no answer.
	_ = writeResponse(c, resp)
}

// writeResponse writes one answer line.
func writeResponse(c *net.UnixConn, resp Response) error {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	b, _ := json.Marshal(resp)
	_, err := c.Write(append(b, '\n'))
	return err
}

func (s *Server) answer(ctx context.Context, c *net.UnixConn, h Handler) Response {
	cred, err := s.cred(c)
	if err != nil {
		return Response{Error: "cannot read peer credentials: " + err.Error()}
	}
	var req Request
	dec := json.NewDecoder(io.LimitReader(c, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Response{Error: "bad request: " + err.Error()}
	}
	// Root (keepalived's notify programs, an operator) and the daemon's
	// own user may do anything; the socket group only read.
	allowed := cred.Uid == 0 || cred.Uid == s.self || (s.gid >= 0 && readOnly(req.Op) && s.inGrp(cred.Uid, uint32(s.gid)))
	if allowed && !readOnly(req.Op) && s.refuse != nil && s.refuse(int(cred.Pid)) {
		s.log.Warn("control request from a health check or hook refused", "op", req.Op, "pid", cred.Pid)
		return Response{Error: fmt.Sprintf("permission denied: a health check or hook may not send %q", req.Op)}
	}
	if !allowed {
		s.log.Warn("control request refused", "op", req.Op, "uid", cred.Uid, "pid", cred.Pid)
		return Response{Error: fmt.Sprintf("permission denied: uid %d may not send %q", cred.Uid, req.Op)}
	}
	switch req.Op {
	case OpNotify:
		if err := h.Notify(req.Args); err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true}
	case OpStatus:
		b, err := json.Marshal(h.Status())
		if err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true, Status: b}
	case OpReload:
		if err := h.Reload(); err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true}
	case OpCheck:
		v, err := h.Check(req.Name)
		if err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true, Verdict: v}
	case OpDrain:
		return s.drain(ctx, c, h, req)
	case OpResume:
		lines, err := h.Resume(req.Args)
		if err != nil {
			return Response{Error: err.Error(), Lines: lines}
		}
		return Response{OK: true, Lines: lines}
	}
	return Response{Error: fmt.Sprintf("unknown op %q", req.Op)}
}

// drain runs a drain, writing its timeline to the client as it comes. The
// drain's context ends when the client closes the connection or the server
// stops.
func (s *Server) drain(ctx context.Context, c *net.UnixConn, h Handler, req Request) Response {
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout < 0 || timeout > maxDrainTimeout {
		return Response{Error: fmt.Sprintf("drain: timeout %s is not between 0 and %s", timeout, maxDrainTimeout)}
	}
	wait := timeout
	if wait == 0 {
		wait = maxDrainTimeout
	}
	_ = c.SetDeadline(time.Now().Add(wait + drainSlack))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The client sends nothing more: a read returns when it goes away.
	go func() {
		var b [1]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				cancel(errors.New("the client went away"))
				return
			}
		}
	}()
	progress := func(line string) {
		if err := writeResponse(c, Response{Progress: line}); err != nil {
			cancel(errors.New("the client went away"))
		}
		// Every line proves the client is there: the connection may last.
		_ = c.SetDeadline(time.Now().Add(wait + drainSlack))
	}
	err := h.Drain(ctx, DrainRequest{Instances: req.Args, Timeout: timeout, Force: req.Force}, progress)
	if err != nil {
		return Response{Error: err.Error()}
	}
	return Response{OK: true}
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	err = rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil {
		return nil, err
	}
	return cred, cerr
}

// memberOf reports whether the user uid belongs to group gid, as primary
// or supplementary group.
func memberOf(uid, gid uint32) bool {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return false
	}
	ids, err := u.GroupIds()
	if err != nil {
		return u.Gid == strconv.FormatUint(uint64(gid), 10)
	}
	for _, id := range append(ids, u.Gid) {
		if id == strconv.FormatUint(uint64(gid), 10) {
			return true
		}
	}
	return false
}

// Stream sends one request whose answer streams (drain): onProgress, when
// not nil, is called with each progress line as it comes, then the final
// answer is returned as Do returns it.
func Stream(ctx context.Context, path string, req Request, onProgress func(line string)) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, fmt.Errorf("%w at %s: %w", ErrUnreachable, path, errors.Unwrap(err))
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return Response{}, fmt.Errorf("%w at %s: %w", ErrUnreachable, path, err)
		}
	}
	// A cancelled context closes the connection, which ends the wait.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("%w at %s: %w", ErrUnreachable, path, err)
	}
	dec := json.NewDecoder(io.LimitReader(c, 16<<20))
	for {
		var resp Response
		if err := dec.Decode(&resp); err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return Response{}, context.Cause(ctx)
			}
			return Response{}, fmt.Errorf("%w at %s: reading answer: %w", ErrUnreachable, path, err)
		}
		if resp.Progress != "" && !resp.OK && resp.Error == "" {
			if onProgress != nil {
				onProgress(resp.Progress)
			}
			continue
		}
		if !resp.OK {
			return resp, errors.New(resp.Error)
		}
		return resp, nil
	}
}

// ErrUnreachable wraps failures to reach the daemon.
var ErrUnreachable = errors.New("havip-agent daemon is not reachable")

// Do sends one request to the daemon at path and returns its answer. A
// daemon that is not running yields an error wrapping ErrUnreachable. The
// progress lines of a streamed answer are skipped.
func Do(ctx context.Context, path string, req Request) (Response, error) {
	return Stream(ctx, path, req, nil)
}
