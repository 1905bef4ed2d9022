package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of ServerOptions. A scrape of the agent is one small GET answered
// in milliseconds, so every bound is generous for Prometheus and still short
// for a client that holds a connection without using it.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	// DefaultWriteTimeout leaves room for a Prometheus scrape_timeout of up
	// to half a minute.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout keeps a Prometheus keep-alive connection open
	// across scrape intervals of up to a minute.
	DefaultIdleTimeout    = 90 * time.Second
	DefaultMaxHeaderBytes = 8 << 10
	// DefaultMaxConns is far above what a few Prometheus servers and an
	// operator's curl need, and far below what exhausts the agent's file
	// descriptors.
	DefaultMaxConns        = 32
	DefaultShutdownTimeout = 2 * time.Second
)

// rejectLogInterval is the least time between two log lines about refused
// connections: a client that floods the port must not flood the journal.
const rejectLogInterval = time.Minute

// ServerOptions bounds the metrics server. A zero or negative field takes
// its Default value.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int

	// MaxConns is the most connections open at once; a connection beyond
	// it is closed as soon as it is accepted.
	MaxConns int

	// ShutdownTimeout bounds each of the two steps of stopping: the
	// graceful shutdown (in-flight requests finish) and, after the
	// remaining connections are closed, the wait for their goroutines.
	ShutdownTimeout time.Duration

	// Rejected is called for every connection closed because of MaxConns,
	// normally (*Metrics).ConnectionRejected. Nil counts nothing.
	Rejected func()
}

func (o ServerOptions) withDefaults() ServerOptions {
	dur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	dur(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	dur(&o.ReadTimeout, DefaultReadTimeout)
	dur(&o.WriteTimeout, DefaultWriteTimeout)
	dur(&o.IdleTimeout, DefaultIdleTimeout)
	dur(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	return o
}

// Server is the HTTP server of /metrics, /healthz and /readyz: bounded in
// time per connection and in the number of connections, and stopped and
// joined by cancelling the context given to Serve.
type Server struct {
	srv     *http.Server
	ln      *limitListener
	opts    ServerOptions
	conns   connGroup
	serving atomic.Bool
}

// Listen opens the TCP listener on addr (host:port; port 0 picks a free
// one) and returns a Server for h that has not started serving yet, so that
// the endpoint is known to accept connections before the caller reports
// readiness. Call Serve next.
func Listen(addr string, h http.Handler, log *slog.Logger, opts ServerOptions) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// net's error names the address already.
		return nil, err
	}
	return newServer(ln, h, log, opts), nil
}

func newServer(ln net.Listener, h http.Handler, log *slog.Logger, opts ServerOptions) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	s := &Server{opts: opts}
	s.ln = &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, opts.MaxConns),
		rejected: opts.Rejected,
		log:      log,
	}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Every connection's goroutine starts with StateNew and ends
		// right after StateClosed: counting them lets Serve join them.
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.add()
			case http.StateClosed, http.StateHijacked:
				s.conns.done()
			}
		},
	}
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests until ctx ends or serving fails, and returns only
// once the listener, every connection and every connection's goroutine are
// gone, or the bounds of ServerOptions.ShutdownTimeout have passed. When
// ctx ends it shuts down gracefully, closes what is left after
// ShutdownTimeout, and returns nil; it returns an error when serving failed
// (the listener broke) or when connections outlived the shutdown. Serve may
// be called once; with a ctx that has already ended it just closes.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("metrics server: Serve called twice")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()

	var serveErr error
	select {
	case err := <-errc:
		// Serve returned on its own: it has closed the listener; the
		// connections still open are closed below.
		serveErr = fmt.Errorf("metrics server on %s: %w", s.Addr(), err)
		errc = nil
	case <-ctx.Done():
	}

	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	err := s.srv.Shutdown(stopCtx)
	cancel()
	if err != nil {
		// In-flight requests outlived the grace: cut them.
		_ = s.srv.Close()
	}
	if errc != nil {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("metrics server on %s: %w", s.Addr(), err)
		}
	}

	joinCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if n := s.conns.wait(joinCtx); n > 0 {
		return errors.Join(serveErr, fmt.Errorf("metrics server on %s: connections still running %s after shutdown: %d", s.Addr(), s.opts.ShutdownTimeout, n))
	}
	return serveErr
}

// connGroup counts the connections whose goroutines are running, like a
// sync.WaitGroup whose wait gives up when its context ends.
type connGroup struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0 while someone waits
}

func (g *connGroup) add() {
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
}

func (g *connGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.zero != nil {
		close(g.zero)
		g.zero = nil
	}
}

// wait returns 0 once no connection is left, or the number still open when
// ctx ends first.
func (g *connGroup) wait(ctx context.Context) int {
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return 0
	}
	if g.zero == nil {
		g.zero = make(chan struct{})
	}
	zero := g.zero
	g.mu.Unlock()
	select {
	case <-zero:
		return 0
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.n
	}
}

// limitListener admits at most cap(slots) connections at once and closes
// any other as soon as it is accepted. Closing rather than waiting keeps
// the accept queue drained and tells a scraper at once that it was refused,
// instead of letting it time out behind connections that are held idle.
type limitListener struct {
	net.Listener
	slots    chan struct{}
	rejected func()
	log      *slog.Logger

	mu         sync.Mutex
	lastLog    time.Time
	unreported int
}

// Accept returns the next connection within the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.reject(c.RemoteAddr())
			_ = c.Close()
		}
	}
}

func (l *limitListener) reject(from net.Addr) {
	if l.rejected != nil {
		l.rejected()
	}
	l.mu.Lock()
	l.unreported++
	now := time.Now()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < rejectLogInterval {
		l.mu.Unlock()
		return
	}
	n := l.unreported
	l.lastLog, l.unreported = now, 0
	l.mu.Unlock()
	peer := ""
	if from != nil {
		peer = from.String()
	}
	l.log.Warn("metrics server refused connections: too many open",
		"limit", cap(l.slots), "refused", n, "last_from", peer,
		"next_report_after", rejectLogInterval)
}

// limitConn gives its slot back when closed, once however often it is
// closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
