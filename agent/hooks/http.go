package hooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// userAgent identifies the agent to a receiver.
const userAgent = "havip-agent-hook"

// maxRetryAfter bounds a Retry-After in seconds before it is turned into
// a duration, so a huge value cannot overflow; any value past the hook's
// timeout ends the retries anyway.
const maxRetryAfter = 24 * 60 * 60

// httpClient returns the client of an http hook: shared when the hook
// names no CA file and the caller gave one; otherwise a client of its
// own, verifying TLS against the system's roots plus the CA file, that
// does not follow redirects (a redirect would take the headers, usually a
// secret, elsewhere).
func httpClient(shared *http.Client, caFile string) (*http.Client, error) {
	if caFile == "" && shared != nil {
		return shared, nil
	}
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("the default HTTP transport is not an *http.Transport")
	}
	t = t.Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// runHTTP posts body to the hook's URL. A network error, a 5xx or a 429
// is retried up to Retries times after a growing, jittered backoff, or
// after the answer's Retry-After when it gives one; other answers are
// final. The hook's timeout bounds every attempt and wait: a wait that
// would end past it is not started.
func (r *Runner) runHTTP(ctx context.Context, h *hook, body []byte) (Run, string) {
	if h.setupErr != nil {
		return Run{Result: ResultError, Error: h.setupErr.Error()}, ""
	}
	var run Run
	var detail string
	for attempt := 0; ; attempt++ {
		run.Attempts = attempt + 1
		status, retryAfter, snippet, err := post(ctx, h, body)
		run.HTTPStatus, detail = status, snippet
		switch {
		case err != nil:
			run.Result, run.Error = ResultError, err.Error()
			if ctx.Err() != nil || !retryableError(err) {
				return run, detail
			}
		case status >= 200 && status < 300:
			run.Result, run.Error = ResultOK, ""
			return run, detail
		default:
			run.Result, run.Error = ResultFailed, ""
			if !retryableStatus(status) {
				return run, detail
			}
		}
		if attempt >= h.spec.Retries {
			return run, detail
		}
		wait := backoff(attempt, h.spec.BackoffMin, h.spec.BackoffMax, rand.Float64())
		if retryAfter >= 0 {
			wait = retryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			run.Error = fmt.Sprintf("no retry: the next one, in %v, would start past the timeout", wait.Round(time.Millisecond))
			return run, detail
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return run, detail
		case <-t.C:
		}
	}
}

// post sends one request. It returns the status, the Retry-After of the
// answer (-1 when it has none), the start of the body for the log, and
// the error of a request that got no answer.
func post(ctx context.Context, h *hook, body []byte) (int, time.Duration, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.spec.URL, bytes.NewReader(body))
	if err != nil {
		return 0, -1, "", fmt.Errorf("request: %w", stripURL(err))
	}
	for k, v := range h.spec.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, -1, "", stripURL(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, OutputLimit))
	ra := time.Duration(-1)
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		ra = d
	}
	return resp.StatusCode, ra, strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

// stripURL drops the URL from a *url.Error: its query may hold a secret.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// retryableStatus reports whether an answer with status may succeed when
// repeated: the receiver's own failures and rate limits.
func retryableStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// retryableError reports whether a request that got no answer may
// succeed when repeated: not when the receiver's certificate was refused.
func retryableError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &record):
		return false
	}
	return true
}

// backoff returns the wait before retry number attempt+1: min doubled
// attempt times, at most max, of which the upper half is scaled by
// jitter (in [0, 1)) so that agents retrying together spread out.
func backoff(attempt int, lo, hi time.Duration, jitter float64) time.Duration {
	d := lo
	for range attempt {
		if d >= hi/2 {
			d = hi
			break
		}
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// parseRetryAfter reads a Retry-After value: seconds, or an HTTP date
// (a date in the past is no wait). ok is false when v is empty or
// malformed.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(n, maxRetryAfter)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
