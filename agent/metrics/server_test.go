package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// patience bounds every wait in these tests; it is a hang guard, not a
// performance assertion.
const patience = 10 * time.Second

// shortOptions makes every server bound short enough for a test to see it.
func shortOptions(m *Metrics) ServerOptions {
	return ServerOptions{
		ReadHeaderTimeout: 200 * time.Millisecond,
		ReadTimeout:       500 * time.Millisecond,
		WriteTimeout:      500 * time.Millisecond,
		IdleTimeout:       200 * time.Millisecond,
		MaxConns:          4,
		ShutdownTimeout:   200 * time.Millisecond,
		Rejected:          m.ConnectionRejected,
	}
}

// serve starts s and returns a function that stops it and returns Serve's
// result; the test's cleanup stops it too.
func serve(t *testing.T, s *Server) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(patience):
				t.Fatalf("Serve did not return %s after its context ended", patience)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func listen(t *testing.T, h http.Handler, opts ServerOptions) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", h, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get scrapes path with a fresh client that keeps no connection.
func get(t *testing.T, s *Server, path string) (int, error) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: patience}
	resp, err := c.Get("http://" + s.Addr().String() + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr().String(), patience)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedByServer reads from c until the server closes it, failing the test
// if that takes longer than patience.
func closedByServer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(patience))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: still open after %s; the server does not close it", what, patience)
	}
}

// holds lists ways a client can hold a connection without letting go:
// never sending a request, sending half of one, or idling after one.
var holds = []struct {
	name string
	hold func(t *testing.T, c net.Conn)
}{
	{"silent", func(*testing.T, net.Conn) {}},
	{"partial header", func(t *testing.T, c net.Conn) {
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
	}},
	{"idle keep-alive", func(t *testing.T, c net.Conn) {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(patience))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /healthz = %d, close %v; want 200 on a kept connection", resp.StatusCode, resp.Close)
		}
		_ = c.SetReadDeadline(time.Time{})
	}},
}

// TestServerRefusesConnectionsOverLimit fills every connection slot with
// held connections (the server's own timeouts set far away) and shows that
// a further connection is closed at once, unserved, and counted, and that
// a scrape works again as soon as a slot is given back.
func TestServerRefusesConnectionsOverLimit(t *testing.T) {
	for _, tt := range holds {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMetrics()
			opts := shortOptions(m)
			opts.ReadHeaderTimeout, opts.ReadTimeout, opts.IdleTimeout = patience, patience, patience
			s := listen(t, m.Handler(nil), opts)
			serve(t, s)

			held := make([]net.Conn, opts.MaxConns)
			for i := range held {
				held[i] = dial(t, s)
				tt.hold(t, held[i])
			}
			// The kernel queues connections in order, so this one is
			// accepted after every held one.
			extra := dial(t, s)
			_, _ = io.WriteString(extra, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
			_ = extra.SetReadDeadline(time.Now().Add(patience))
			b, err := io.ReadAll(extra)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection over the limit neither served nor closed after %s", patience)
			}
			if len(b) > 0 {
				t.Fatalf("connection over the limit was served: %q", b)
			}
			if got := testutil.ToFloat64(m.connsRejected); got != 1 {
				t.Errorf("havip_agent_metrics_connections_rejected_total = %v, want 1", got)
			}

			// The slot is free once the server has read the close.
			held[0].Close()
			deadline := time.Now().Add(patience)
			for {
				code, err := get(t, s, "/metrics")
				if err == nil && code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("scrape after a held connection was closed = %d, %v; want 200", code, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestServerClosesHeldConnections shows that the server's timeouts close
// connections held open by a client, freeing their slots for a scrape.
func TestServerClosesHeldConnections(t *testing.T) {
	for _, tt := range holds {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMetrics()
			opts := shortOptions(m)
			s := listen(t, m.Handler(nil), opts)
			serve(t, s)
			held := make([]net.Conn, opts.MaxConns)
			for i := range held {
				held[i] = dial(t, s)
				tt.hold(t, held[i])
			}
			for i, c := range held {
				closedByServer(t, c, fmt.Sprintf("held connection %d", i))
			}
			if code, err := get(t, s, "/metrics"); err != nil || code != http.StatusOK {
				t.Fatalf("scrape after the held connections were closed = %d, %v; want 200", code, err)
			}
			if got := testutil.ToFloat64(m.connsRejected); got != 0 {
				t.Errorf("havip_agent_metrics_connections_rejected_total = %v, want 0", got)
			}
		})
	}
}

func TestServerMaxHeaderBytes(t *testing.T) {
	m := newTestMetrics()
	s := listen(t, m.Handler(nil), shortOptions(m))
	serve(t, s)
	c := dial(t, s)
	big := strings.Repeat("a", 4*DefaultMaxHeaderBytes)
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(patience))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET with a %d byte header = %d, want 431", len(big), resp.StatusCode)
	}
}

// TestServerStopsAndJoins ends Serve's context while a scraper keeps an idle
// connection, another connection is silent and a request is in flight, and
// shows that Serve returns, the port is closed and no goroutine is left.
func TestServerStopsAndJoins(t *testing.T) {
	base := runtime.NumGoroutine()

	m := newTestMetrics()
	inHandler := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", m.Handler(nil))
	var handlerDone atomic.Bool
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		// Until the server cuts the connection, and then some, so that
		// a Serve that does not wait for its handlers returns first.
		<-r.Context().Done()
		time.Sleep(100 * time.Millisecond)
		handlerDone.Store(true)
	})
	s := listen(t, mux, shortOptions(m))
	stop := serve(t, s)

	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: patience}
	resp, err := client.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	silent := dial(t, s)
	var slow sync.WaitGroup
	slow.Go(func() {
		if resp, err := client.Get("http://" + s.Addr().String() + "/slow"); err == nil {
			resp.Body.Close()
		}
	})
	<-inHandler

	if err := stop(); err != nil {
		t.Fatalf("Serve after its context ended = %v, want nil", err)
	}
	if !handlerDone.Load() {
		t.Error("Serve returned before the handler of an open connection did")
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), patience); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Serve returned", s.Addr())
	}

	slow.Wait()
	tr.CloseIdleConnections()
	silent.Close()
	deadline := time.Now().Add(patience)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Serve returned, %d before it started:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// TestServerFinishesInFlightScrape: a scrape that is being answered when
// Serve's context ends still gets its answer.
func TestServerFinishesInFlightScrape(t *testing.T) {
	m := newTestMetrics()
	release, inHandler := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
		m.Handler(nil).ServeHTTP(w, r)
	})
	opts := shortOptions(m)
	opts.ShutdownTimeout = patience
	s := listen(t, mux, opts)
	stop := serve(t, s)
	var code int
	var err error
	var client sync.WaitGroup
	client.Go(func() { code, err = get(t, s, "/metrics") })
	<-inHandler

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Shutdown has begun once the listener is closed.
	deadline := time.Now().Add(patience)
	for {
		c, err := net.DialTimeout("tcp", s.Addr().String(), patience)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open after Serve's context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	client.Wait()
	if err != nil || code != http.StatusOK {
		t.Errorf("scrape in flight during shutdown = %d, %v; want 200", code, err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

// TestServerReportsConnectionsOutlivingShutdown: a handler that ignores
// its request's cancellation cannot make Serve hang; Serve says so.
func TestServerReportsConnectionsOutlivingShutdown(t *testing.T) {
	m := newTestMetrics()
	release, inHandler := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(inHandler)
		<-release
	})
	s := listen(t, h, shortOptions(m))
	stop := serve(t, s)
	var client sync.WaitGroup
	defer client.Wait()
	client.Go(func() { _, _ = get(t, s, "/") })
	<-inHandler

	err := stop()
	close(release)
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("Serve with a stuck handler = %v, want an error naming the open connection", err)
	}
}

type brokenListener struct {
	net.Listener
	err    error
	closed chan struct{}
	once   sync.Once
}

func (l *brokenListener) Accept() (net.Conn, error) { return nil, l.err }

func (l *brokenListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// TestServerReportsServeError: when accepting fails for good, Serve returns
// the error at once, without waiting for its context, and closes the
// listener.
func TestServerReportsServeError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errBroken := errors.New("listener broken")
	bl := &brokenListener{Listener: ln, err: errBroken, closed: make(chan struct{})}
	m := newTestMetrics()
	s := newServer(bl, m.Handler(nil), nil, shortOptions(m))
	done := make(chan error, 1)
	go func() { done <- s.Serve(t.Context()) }()
	select {
	case err := <-done:
		if !errors.Is(err, errBroken) {
			t.Fatalf("Serve = %v, want it to wrap %v", err, errBroken)
		}
		if !strings.Contains(err.Error(), ln.Addr().String()) {
			t.Errorf("Serve error %q does not name the address %s", err, ln.Addr())
		}
	case <-time.After(patience):
		t.Fatalf("Serve did not report the broken listener within %s", patience)
	}
	select {
	case <-bl.closed:
	default:
		t.Error("listener not closed after Serve failed")
	}
}

// TestServerServeTwice: Serve with a context that has ended closes the
// server; a second Serve is refused.
func TestServerServeTwice(t *testing.T) {
	m := newTestMetrics()
	s := listen(t, m.Handler(nil), shortOptions(m))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Serve(ctx); err != nil {
		t.Fatalf("Serve with an ended context = %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), patience); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Serve returned", s.Addr())
	}
	if err := s.Serve(t.Context()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Serve = %v, want an error", err)
	}
}

func TestServerListenError(t *testing.T) {
	m := newTestMetrics()
	s := listen(t, m.Handler(nil), ServerOptions{})
	serve(t, s)
	_, err := Listen(s.Addr().String(), m.Handler(nil), nil, ServerOptions{})
	if err == nil || !strings.Contains(err.Error(), s.Addr().String()) {
		t.Errorf("Listen on a busy address = %v, want an error naming it", err)
	}
}

// TestServerRejectLogIsBounded: a flood of refused connections is counted
// one by one but logged once per rejectLogInterval.
func TestServerRejectLogIsBounded(t *testing.T) {
	m := newTestMetrics()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	opts := shortOptions(m)
	opts.MaxConns = 1
	opts.ReadHeaderTimeout = patience
	s, err := Listen("127.0.0.1:0", m.Handler(nil), log, opts)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	dial(t, s)
	const refused = 5
	for range refused {
		c := dial(t, s)
		closedByServer(t, c, "connection over the limit")
	}
	if got := testutil.ToFloat64(m.connsRejected); got != refused {
		t.Errorf("rejected connections = %v, want %d", got, refused)
	}
	if n := strings.Count(logs.String(), "refused connections"); n != 1 {
		t.Errorf("%d log lines for %d refused connections, want 1:\n%s", n, refused, logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestServerOptionsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   ServerOptions
		want ServerOptions
	}{
		{"zero", ServerOptions{}, ServerOptions{
			ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout,
			WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout,
			MaxHeaderBytes: DefaultMaxHeaderBytes, MaxConns: DefaultMaxConns,
			ShutdownTimeout: DefaultShutdownTimeout,
		}},
		{"negative", ServerOptions{ReadTimeout: -1, MaxConns: -1}, ServerOptions{
			ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout,
			WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout,
			MaxHeaderBytes: DefaultMaxHeaderBytes, MaxConns: DefaultMaxConns,
			ShutdownTimeout: DefaultShutdownTimeout,
		}},
		{"set", ServerOptions{
			ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4,
			MaxHeaderBytes: 5, MaxConns: 6, ShutdownTimeout: 7,
		}, ServerOptions{
			ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4,
			MaxHeaderBytes: 5, MaxConns: 6, ShutdownTimeout: 7,
		}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: withDefaults() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
