package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Limits on what a check reads and keeps.
const (
	// BodyLimit is how much of an HTTP body is read and searched.
	BodyLimit = 64 << 10
	// OutputLimit is how much of an exec check's combined output is kept.
	OutputLimit = 4 << 10
	// maxRedirects bounds the redirects an HTTP check follows.
	maxRedirects = 3
	// execWaitDelay bounds the wait for output pipes after the command
	// exited or was killed, for children that left the process group.
	execWaitDelay = time.Second
)

// execEnv is the whole environment of exec checks: the agent's own
// environment (credentials, proxies) must not leak into scripts.
var execEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}

// outcome is what one probe reports; the runner adds timing.
type outcome struct {
	ok     bool
	msg    string
	output string
}

// prober runs one check once; ctx carries the check's timeout.
type prober func(ctx context.Context) outcome

// Probe runs the check s once, bounded by s.Timeout, outside any Runner;
// for a command that tests a check by hand. s should have passed Validate
// (and ValidateCommand for exec checks).
func Probe(ctx context.Context, s Spec) Result {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	start := time.Now()
	o := newProber(s, nil)(ctx)
	return Result{Time: start, Duration: time.Since(start), OK: o.ok, Message: o.msg, Output: o.output}
}

// newProber returns the prober for a validated spec; exec checks record
// their process groups in groups, which may be nil.
func newProber(s Spec, groups *ProcGroups) prober {
	switch s.Type {
	case TypeTCP:
		return tcpProber(s.Target)
	case TypeHTTP:
		return httpProber(s)
	case TypeExec:
		return execProber(s.Command, s.Timeout, groups)
	}
	return func(context.Context) outcome {
		return outcome{msg: fmt.Sprintf("unknown check type %q", string(s.Type))}
	}
}

func tcpProber(target string) prober {
	return func(ctx context.Context) outcome {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return outcome{msg: timeoutText(ctx, err)}
		}
		c.Close()
		return outcome{ok: true, msg: "connected"}
	}
}

func httpProber(s Spec) prober {
	// A client per check: no connection reuse (a pooled connection would
	// hide a server that no longer accepts), no proxy from the
	// environment, and its own TLS setting.
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{}).DialContext,
		DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{
			// Only when the check's configuration asks for it.
			InsecureSkipVerify: s.TLSSkipVerify,
		},
		MaxResponseHeaderBytes: BodyLimit,
	}
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
	want := s.ExpectStatus
	if want.IsZero() {
		want = defaultStatus
	}
	body := s.ExpectBody
	target := s.Target
	return func(ctx context.Context) outcome {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return outcome{msg: err.Error()}
		}
		req.Header.Set("User-Agent", "havip-agent-health")
		resp, err := client.Do(req)
		if err != nil {
			return outcome{msg: timeoutText(ctx, stripURL(err))}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, BodyLimit))
		if !want.Contains(resp.StatusCode) {
			return outcome{msg: fmt.Sprintf("HTTP %d, want %s", resp.StatusCode, want)}
		}
		if body != "" {
			if err != nil && !bytes.Contains(b, []byte(body)) {
				return outcome{msg: fmt.Sprintf("HTTP %d, reading body: %v", resp.StatusCode, timeoutText(ctx, err))}
			}
			if !bytes.Contains(b, []byte(body)) {
				return outcome{msg: fmt.Sprintf("HTTP %d, body does not contain %q", resp.StatusCode, body)}
			}
		}
		return outcome{ok: true, msg: fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
}

// stripURL drops the URL that net/http repeats in its errors; the check
// name already says which target failed.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// timeoutText turns the error of a cancelled operation into a short,
// stable message.
func timeoutText(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}

// CapWriter keeps the first limit bytes written and counts the rest, so a
// chatty script never blocks on a full pipe nor grows the agent's memory.
type CapWriter struct {
	limit   int
	buf     []byte
	dropped int64
}

// NewCapWriter returns a CapWriter that keeps the first limit bytes.
func NewCapWriter(limit int) *CapWriter { return &CapWriter{limit: limit} }

func (w *CapWriter) Write(p []byte) (int, error) {
	if room := w.limit - len(w.buf); room > 0 {
		n := min(room, len(p))
		w.buf = append(w.buf, p[:n]...)
		w.dropped += int64(len(p) - n)
	} else {
		w.dropped += int64(len(p))
	}
	return len(p), nil
}

func (w *CapWriter) String() string {
	s := strings.ToValidUTF8(string(w.buf), "\uFFFD")
	if w.dropped > 0 {
		s += fmt.Sprintf("\n[%d more bytes dropped]", w.dropped)
	}
	return s
}
