package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options tunes the emulator. The zero value is usable.
type Options struct {
	// ClockOffset shifts the emulator clock (used for signature expiry and credential expiry)
	// relative to the machine clock, which is never touched.
	ClockOffset time.Duration
	// CredentialTTL is the lifetime of instance-role credentials minted by the metadata
	// service (default 1h).
	CredentialTTL time.Duration
	// IdempotencyTTL is how long a clientToken is remembered after its last use (default 24h).
	IdempotencyTTL time.Duration
	// MaxIdempotencyEntries caps the clientToken cache (default 10000; oldest evicted).
	MaxIdempotencyEntries int
	// MaxLogEntries caps each of the request and change logs (default 10000; oldest dropped).
	MaxLogEntries int
	// FaultSeed seeds the RNG of probabilistic faults (default 1).
	FaultSeed uint64
	// Now is the machine clock (default time.Now); tests may replace it.
	Now func() time.Time
	// RateLimit limits the API requests of each access key to this many per second, as an
	// account-wide quota does (a token bucket); a request over it is answered 429
	// RequestLimitExceeded with Retry-After. 0 takes the seed's rate_limit (none by default).
	// Metadata and admin requests are never limited.
	RateLimit float64
	// RateBurst is the bucket's size: how many requests may come at once. 0 takes the seed's
	// rate_burst, else the rate rounded up.
	RateBurst int
	// Latency is the round trip every API request takes: half before it is handled, half
	// before its answer is written. 0 takes the seed's latency (none by default). Metadata and
	// admin requests answer at once.
	Latency time.Duration
}

// Emulator is a strict, in-memory BCE API (HAVIP, route, EIP, metadata) with admin controls.
// It is safe for concurrent use.
type Emulator struct {
	opts Options
	log  *slog.Logger

	mu          sync.Mutex
	w           *world
	creds       map[string]*credential
	clockOffset time.Duration
	idem        map[string]*idemEntry
	idemOrder   []string
	faults      []*Fault
	faultSeq    int
	rng         *mrand.Rand
	idRNG       *mrand.Rand
	requests    ring[RequestRecord]
	changes     ring[ChangeRecord]
	logSeq      uint64
	// history holds the states that changes replaced, oldest first, for stale reads.
	history []pastWorld
	// haSwitch is what switchRouteHA swaps (Seed.HASwitch).
	haSwitch string
	// eipTransition is how long EIP binds and unbinds stay in progress (Seed.EIPTransition).
	eipTransition time.Duration
	// rateLimit, rateBurst and latency are Options' or the seed's; buckets hold the rate
	// limit's token bucket of each access key.
	rateLimit float64
	rateBurst int
	latency   time.Duration
	buckets   map[string]*bucket
}

type idemEntry struct {
	fingerprint string
	status      int
	body        []byte
	lastUsed    time.Time
}

// New builds an emulator from a seed. Seed errors name the seed file and line.
func New(seed Seed, opts Options, log *slog.Logger) (*Emulator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.CredentialTTL <= 0 {
		opts.CredentialTTL = time.Hour
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = 24 * time.Hour
	}
	if opts.MaxIdempotencyEntries <= 0 {
		opts.MaxIdempotencyEntries = 10000
	}
	if opts.MaxLogEntries <= 0 {
		opts.MaxLogEntries = 10000
	}
	if opts.FaultSeed == 0 {
		opts.FaultSeed = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Emulator{
		opts:        opts,
		log:         log,
		creds:       map[string]*credential{},
		clockOffset: opts.ClockOffset,
		idem:        map[string]*idemEntry{},
		rng:         mrand.New(mrand.NewPCG(opts.FaultSeed, opts.FaultSeed^0x9e3779b97f4a7c15)),
		idRNG:       mrand.New(mrand.NewPCG(opts.FaultSeed, 42)),
		requests:    ring[RequestRecord]{max: opts.MaxLogEntries},
		changes:     ring[ChangeRecord]{max: opts.MaxLogEntries},
		buckets:     map[string]*bucket{},
	}
	if err := e.load(&seed); err != nil {
		return nil, err
	}
	if err := e.setLimits(opts); err != nil {
		return nil, err
	}
	return e, nil
}

// nowLocked is the emulator clock: the machine clock plus the offset.
func (e *Emulator) nowLocked() time.Time { return e.opts.Now().Add(e.clockOffset).UTC() }

// Now answers the emulator clock.
func (e *Emulator) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nowLocked()
}

// SetClockOffset shifts the emulator clock at run time.
func (e *Emulator) SetClockOffset(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clockOffset = d
}

// ClockOffset answers the current clock offset.
func (e *Emulator) ClockOffset() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clockOffset
}

// Log answers a copy of the request and change logs.
func (e *Emulator) Log() Log {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Log{Requests: e.requests.snapshot(), Changes: e.changes.snapshot()}
}

// Requests answers a copy of the request log.
func (e *Emulator) Requests() []RequestRecord { return e.Log().Requests }

// Changes answers a copy of the change log.
func (e *Emulator) Changes() []ChangeRecord { return e.Log().Changes }

// Handler answers the HTTP handler serving the API, the metadata service and the admin API.
func (e *Emulator) Handler() http.Handler { return http.HandlerFunc(e.serveHTTP) }

// Serve serves on l until ctx is done, then shuts down gracefully.
func (e *Emulator) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newIDLocked makes a fresh id like "havip-k3x9f0a2b7cd".
func (e *Emulator) newIDLocked(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	for i := range b {
		b[i] = alphabet[e.idRNG.IntN(len(alphabet))]
	}
	return prefix + "-" + string(b)
}

// call is one API request on its way through the pipeline.
type call struct {
	id     string
	op     string
	r      *http.Request
	body   []byte
	source string
	ak     string
	token  string
	// changes collects state changes to log with the request.
	changes []ChangeRecord
	// fault is the fault injected into the request, nil if none.
	fault *Fault
	// latency is the round trip the request models, 0 for none (metadata, admin).
	latency time.Duration
	// applied is when the handler ran, zero before: with latency, the time of its changes.
	applied time.Time
}

// change records a state change made by the current call (mu held).
func (c *call) change(resource, before, after, format string, args ...any) {
	c.changes = append(c.changes, ChangeRecord{
		Operation: c.op, Resource: resource, Before: before, After: after,
		Message: fmt.Sprintf(format, args...),
	})
}

// answer is what a handler produces: a status and a JSON body, or an error.
type answer struct {
	status int
	body   []byte
	err    *apiError
}

func okJSON(v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		return answer{err: errf(500, "InternalError", "marshal: %v", err)}
	}
	return answer{status: 200, body: b}
}

func okEmpty() answer { return answer{status: 200, body: []byte("{}")} }

const maxBody = 1 << 20

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emulator/") {
		e.serveAdmin(w, r)
		return
	}
	c := &call{id: newRequestID(), r: r, token: r.URL.Query().Get("clientToken")}
	c.source, _, _ = net.SplitHostPort(r.RemoteAddr)
	w.Header().Set("x-bce-request-id", c.id)
	rec := RequestRecord{
		RequestID: c.id, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		ClientToken: c.token, Source: c.source,
	}
	finish := func(a answer, dropped bool) {
		if dropped {
			rec.Status = 0
		} else if a.err != nil {
			rec.Status, rec.Code = a.err.Status, a.err.Code
		} else {
			rec.Status = a.status
		}
		e.record(rec, c)
	}

	route, perr := e.route(r)
	c.op = route.op
	rec.Operation = route.op
	if !route.public {
		c.latency = e.latencyOf()
	}
	if c.latency > 0 {
		// The request's way there: the first half of the round trip.
		if !delay(r.Context(), c.latency/2) {
			finish(answer{}, true)
			return
		}
		rec.Received = e.Now()
	}
	if perr != nil {
		a := answer{err: perr}
		e.write(w, c, a)
		finish(a, false)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		a := answer{err: errf(400, "InvalidHTTPRequest", "There was an error in the body of your HTTP request.")}
		e.write(w, c, a)
		finish(a, false)
		return
	}
	c.body = body
	rec.BodyFields = bodyFields(body)
	if !route.public {
		ak, aerr := e.authenticate(r)
		c.ak, rec.AccessKeyID = ak, ak
		if aerr != nil {
			a := answer{err: aerr}
			e.write(w, c, a)
			finish(a, false)
			return
		}
		if ra, limited := e.throttle(ak); limited {
			w.Header().Set("Retry-After", strconv.Itoa(ra))
			a := answer{err: errf(http.StatusTooManyRequests, CodeThrottled, "Request rate limit exceeded for access key %s; retry after %d s.", ak, ra)}
			e.write(w, c, a)
			finish(a, false)
			return
		}
	}

	mutating := r.Method != http.MethodGet && r.Method != http.MethodHead
	f := e.takeFault(c.op, mutating)
	if f != nil {
		rec.Fault = string(f.Kind)
		switch f.Kind {
		case FaultLatency:
			t := time.NewTimer(time.Duration(f.Delay))
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				finish(answer{}, true)
				return
			}
		case FaultLate:
			// The client's going away does not stop the request: it is applied all the same.
			rec.Received = e.Now()
			time.Sleep(time.Duration(f.Delay))
		case FaultError:
			if f.Status == http.StatusTooManyRequests {
				ra := f.RetryAfter
				if ra <= 0 {
					ra = 1
				}
				w.Header().Set("Retry-After", strconv.Itoa(ra))
			}
			a := answer{err: errf(f.Status, f.Code, "Injected fault: %s.", f.Code)}
			e.write(w, c, a)
			finish(a, false)
			return
		case FaultDrop:
			// Logged before the connection drops: a client that sees the drop and looks
			// at the log must find the request in it.
			finish(answer{}, true)
			hijackClose(w)
			return
		}
	}

	a, replayed := e.execute(c, route, f)
	rec.Replayed = replayed
	rec.Applied = len(c.changes) > 0
	if f != nil {
		switch f.Kind {
		case FaultLost:
			finish(a, true)
			hijackClose(w)
			return
		case FaultLate:
			if r.Context().Err() != nil {
				rec.ClientGone = true
				finish(a, false)
				return
			}
		case FaultWrongTypes, FaultHuge, FaultWrongIDs:
			if a.err == nil {
				a.body = hostile(f.Kind, a.body)
			}
		}
	}
	e.write(w, c, a)
	finish(a, false)
}

// execute runs the handler under the state lock, with clientToken idempotency for mutations. A
// stale fault runs a read on a past state; the state a mutation replaces is kept for that.
func (e *Emulator) execute(c *call, rt routed, f *Fault) (answer, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.fault = f
	c.applied = e.nowLocked()
	e.settleLocked()
	mutating := c.r.Method != http.MethodGet && c.r.Method != http.MethodHead
	if !mutating {
		if f != nil && f.Kind == FaultStale {
			now := e.w
			e.w = e.staleWorldLocked(f)
			defer func() { e.w = now }()
		}
		return rt.handle(e, c), false
	}
	before := e.w.clone()
	defer func() {
		if len(c.changes) > 0 {
			e.rememberLocked(before)
		}
	}()
	if c.token == "" || rt.public {
		return rt.handle(e, c), false
	}
	now := e.nowLocked()
	fp := fingerprint(c.r, c.body)
	if ent, ok := e.idem[c.token]; ok && now.Sub(ent.lastUsed) < e.opts.IdempotencyTTL {
		ent.lastUsed = now
		if ent.fingerprint != fp {
			return answer{err: errf(403, "IdempotentParameterMismatch", "The request uses the same client token as a previous, but non-identical request.")}, false
		}
		return answer{status: ent.status, body: ent.body}, true
	}
	if len(c.token) > 64 {
		return answer{err: invalidParam("clientToken is longer than 64 characters.")}, false
	}
	a := rt.handle(e, c)
	// Only successes are remembered: a failed request changed nothing, so a retry with the
	// same token is evaluated afresh.
	if a.err == nil {
		if _, ok := e.idem[c.token]; !ok {
			e.idemOrder = append(e.idemOrder, c.token)
		}
		e.idem[c.token] = &idemEntry{fingerprint: fp, status: a.status, body: a.body, lastUsed: now}
		for len(e.idemOrder) > e.opts.MaxIdempotencyEntries {
			delete(e.idem, e.idemOrder[0])
			e.idemOrder = e.idemOrder[1:]
		}
	}
	return a, false
}

// fingerprint identifies a request for clientToken matching: method, path, query without the
// token, and body.
func fingerprint(r *http.Request, body []byte) string {
	q := r.URL.Query()
	q.Del("clientToken")
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", r.Method, r.URL.Path)
	for _, k := range keys {
		for _, v := range q[k] {
			fmt.Fprintf(h, "%s=%s&", url.QueryEscape(k), url.QueryEscape(v))
		}
	}
	h.Write([]byte("\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func (e *Emulator) write(w http.ResponseWriter, c *call, a answer) {
	// The answer's way back: the rest of the round trip. A client that left loses it.
	delay(c.r.Context(), c.latency-c.latency/2)
	body := a.body
	status := a.status
	if a.err != nil {
		status = a.err.Status
		body, _ = json.Marshal(map[string]string{"requestId": c.id, "code": a.err.Code, "message": a.err.Message})
	}
	ct := "application/json; charset=utf-8"
	if a.err == nil && len(body) > 0 && body[0] != '{' && body[0] != '[' && body[0] != '"' {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (e *Emulator) record(rec RequestRecord, c *call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.nowLocked()
	e.logSeq++
	rec.Seq, rec.Time = e.logSeq, now
	e.requests.add(rec)
	at := now
	if c.latency > 0 && !c.applied.IsZero() {
		// With latency the answer is recorded half a round trip after the change was made.
		at = c.applied
	}
	for _, ch := range c.changes {
		e.logSeq++
		ch.Seq, ch.Time, ch.RequestID, ch.Source, ch.AccessKeyID, ch.Fault = e.logSeq, at, c.id, c.source, c.ak, rec.Fault
		e.changes.add(ch)
		e.log.Info("state change", "op", ch.Operation, "resource", ch.Resource, "change", ch.Message, "source", c.source, "ak", c.ak)
	}
	e.log.Debug("request", "op", rec.Operation, "method", rec.Method, "path", rec.Path, "status", rec.Status, "code", rec.Code, "source", rec.Source)
}

// logChangesLocked records changes not caused by an API call (ARP observations).
func (e *Emulator) logChangesLocked(op string, chs []ChangeRecord) {
	now := e.nowLocked()
	for _, ch := range chs {
		e.logSeq++
		ch.Seq, ch.Time, ch.Operation = e.logSeq, now, op
		e.changes.add(ch)
		e.log.Info("state change", "op", op, "resource", ch.Resource, "change", ch.Message)
	}
}

// decodeBody decodes a JSON object body into v: syntax errors are MalformedJSON, type
// mismatches InappropriateJSON; unknown fields are ignored as the real API does.
func decodeBody(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return errf(400, "MalformedJSON", "The JSON you provided was not well-formed: the body is empty.")
	}
	if !json.Valid(body) {
		return errf(400, "MalformedJSON", "The JSON you provided was not well-formed.")
	}
	if t := bytes.TrimSpace(body); t[0] != '{' {
		return errf(400, "InappropriateJSON", "The JSON you provided was well-formed and valid, but not appropriate for this operation: want an object.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errf(400, "InappropriateJSON", "The JSON you provided was well-formed and valid, but not appropriate for this operation: %v.", err)
	}
	return nil
}
