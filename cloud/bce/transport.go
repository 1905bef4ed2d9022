package bce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// Bounds of the answers read from the API. The SDK reads an error answer whole, so the bound
// is applied to the body before the SDK sees it.
const (
	// maxAnswer bounds a successful (JSON) answer.
	maxAnswer = 4 << 20
	// maxErrorAnswer bounds an error answer, documented as a small {"requestId","code","message"}.
	maxErrorAnswer = 64 << 10
)

// errAnswerTooLarge is the read error of an answer past its bound.
var errAnswerTooLarge = errors.New("answer too large")

// boundedTransport replaces every response body with one that fails once more than its bound
// has been read, and records that in the request's answerProbe. A body that announces more
// than its bound in Content-Length is not read at all.
type boundedTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	limit := int64(maxAnswer)
	if resp.StatusCode >= 400 {
		limit = maxErrorAnswer
	}
	probe, _ := req.Context().Value(probeKey{}).(*answerProbe)
	if probe == nil {
		probe = &answerProbe{}
	}
	// Each response of a redirect chain starts afresh: only the last one is read.
	probe.tooLarge.Store(false)
	probe.limit.Store(limit)
	b := &boundedBody{rc: resp.Body, limit: limit, probe: probe}
	if resp.ContentLength > limit {
		b.overflow()
	}
	resp.Body = b
	return resp, nil
}

// CloseIdleConnections passes the call on, so that http.Client.CloseIdleConnections still
// reaches the base transport.
func (t *boundedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// boundedClient returns hc, or a copy of it, whose transport bounds every answer.
func boundedClient(hc *http.Client) *http.Client {
	if _, ok := hc.Transport.(*boundedTransport); ok {
		return hc
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *hc
	c.Transport = &boundedTransport{base: base}
	return &c
}

// answerProbe tells one attempt whether its answer was cut at its bound: the SDK drops the
// read error of an error answer, and decodes what it got.
type answerProbe struct {
	tooLarge atomic.Bool
	limit    atomic.Int64
}

// probeKey is the context key of an attempt's *answerProbe.
type probeKey struct{}

func withProbe(ctx context.Context) (context.Context, *answerProbe) {
	p := &answerProbe{}
	return context.WithValue(ctx, probeKey{}, p), p
}

// err returns the error of an answer cut at its bound, nil if it was not.
func (p *answerProbe) err() error {
	if !p.tooLarge.Load() {
		return nil
	}
	return fmt.Errorf("%w: more than %d bytes, not read further", errAnswerTooLarge, p.limit.Load())
}

// boundedBody is a response body that reads at most limit bytes.
type boundedBody struct {
	rc    io.ReadCloser
	limit int64
	n     int64
	probe *answerProbe
	// done is set once the bound was passed: the rest of the answer is never read, and
	// closing the body drops the connection instead of draining it.
	done bool
}

func (b *boundedBody) overflow() {
	b.done = true
	b.probe.tooLarge.Store(true)
}

// Read implements io.Reader.
func (b *boundedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.probe.err()
	}
	// One byte past the bound tells a body of exactly limit bytes from a longer one.
	if room := b.limit + 1 - b.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.overflow()
		return n - int(b.n-b.limit), b.probe.err()
	}
	return n, err
}

// Close implements io.Closer.
func (b *boundedBody) Close() error { return b.rc.Close() }
