package hooks

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// answer is what a fake receiver answers one request with; err stands
// for a request that got no answer, hang for one that never ends.
type answer struct {
	status     int
	retryAfter string
	err        error
	hang       bool
}

// fakeReceiver is an http.RoundTripper that answers from a script (the
// last answer repeats) and records when each request came.
type fakeReceiver struct {
	mu      sync.Mutex
	script  []answer
	times   []time.Time
	bodies  []string
	headers []http.Header
}

func (f *fakeReceiver) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	f.mu.Lock()
	a := f.script[min(len(f.times), len(f.script)-1)]
	f.times = append(f.times, time.Now())
	f.bodies = append(f.bodies, string(b))
	f.headers = append(f.headers, req.Header.Clone())
	f.mu.Unlock()
	if a.hang {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	if a.err != nil {
		return nil, a.err
	}
	h := http.Header{}
	if a.retryAfter != "" {
		h.Set("Retry-After", a.retryAfter)
	}
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(strings.NewReader("answer body")), Request: req}, nil
}

func (f *fakeReceiver) requests() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times...)
}

func httpHook(name string, retries int) Hook {
	return Hook{Name: name, Type: TypeHTTP, URL: "https://hooks.example/x?token=query-secret", Retries: retries,
		Timeout: time.Minute, BackoffMin: time.Second, BackoffMax: 4 * time.Second}
}

// runHTTPFake delivers one event to h through f and returns its status.
func runHTTPFake(t *testing.T, h Hook, f *fakeReceiver) Status {
	t.Helper()
	h = h.WithDefaults()
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	r := New([]Hook{h}, Options{HTTPClient: &http.Client{Transport: f}})
	r.Fire(transition("VI_1", 1, StateMaster))
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r.Status()[0]
}

func TestHTTPRetries(t *testing.T) {
	netErr := errors.New("connection refused")
	tests := []struct {
		name    string
		hook    Hook
		script  []answer
		result  Result
		outcome string
		// gaps are the waits between requests: exact, or within the
		// backoff's jitter range [gap/2, gap].
		gaps   []time.Duration
		jitter bool
	}{
		{name: "ok at once", hook: httpHook("h", 3), script: []answer{{status: 204}}, result: ResultOK, outcome: "ok"},
		{name: "fails twice then recovers", hook: httpHook("h", 3), script: []answer{{status: 503}, {status: 503}, {status: 200}},
			result: ResultOK, outcome: "ok [3 attempts]", gaps: []time.Duration{time.Second, 2 * time.Second}, jitter: true},
		{name: "network errors are retried", hook: httpHook("h", 3), script: []answer{{err: netErr}, {status: 200}},
			result: ResultOK, outcome: "ok [2 attempts]", gaps: []time.Duration{time.Second}, jitter: true},
		{name: "429 with Retry-After", hook: httpHook("h", 3), script: []answer{{status: 429, retryAfter: "7"}, {status: 200}},
			result: ResultOK, outcome: "ok [2 attempts]", gaps: []time.Duration{7 * time.Second}},
		{name: "no retry on 4xx", hook: httpHook("h", 3), script: []answer{{status: 400}}, result: ResultFailed, outcome: "HTTP 400"},
		{name: "no redirect", hook: httpHook("h", 3), script: []answer{{status: 302}}, result: ResultFailed, outcome: "HTTP 302"},
		{name: "retries run out", hook: httpHook("h", 2), script: []answer{{status: 500}}, result: ResultFailed,
			outcome: "HTTP 500 [3 attempts]", gaps: []time.Duration{time.Second, 2 * time.Second}, jitter: true},
		{name: "no retries configured", hook: httpHook("h", 0), script: []answer{{status: 503}}, result: ResultFailed, outcome: "HTTP 503"},
		{name: "Retry-After past the timeout", hook: httpHook("h", 3), script: []answer{{status: 503, retryAfter: "120"}},
			result: ResultFailed, outcome: "HTTP 503: no retry: the next one, in 2m0s, would start past the timeout"},
		{name: "a hanging receiver times out", hook: httpHook("h", 3), script: []answer{{hang: true}},
			result: ResultTimeout, outcome: "timed out after 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeReceiver{script: tt.script}
				st := runHTTPFake(t, tt.hook, f)
				if st.Last.Result != tt.result || st.LastOutcome != tt.outcome {
					t.Errorf("result %s, %q; want %s, %q", st.Last.Result, st.LastOutcome, tt.result, tt.outcome)
				}
				if strings.Contains(st.LastOutcome, "secret") {
					t.Errorf("the outcome shows the URL's query: %q", st.LastOutcome)
				}
				times := f.requests()
				if len(times) != len(tt.gaps)+1 {
					t.Fatalf("%d requests, want %d", len(times), len(tt.gaps)+1)
				}
				for i, want := range tt.gaps {
					got := times[i+1].Sub(times[i])
					if tt.jitter && (got < want/2 || got > want) || !tt.jitter && got != want {
						t.Errorf("wait %d: %v, want %v (jitter %v)", i+1, got, want, tt.jitter)
					}
				}
				if wantRuns := uint64(1); st.Runs != wantRuns || (st.Failures == 0) != (tt.result == ResultOK) {
					t.Errorf("status %+v", st)
				}
			})
		})
	}
}

// Against a real server that fails twice with 503 and then recovers, the
// event is delivered once, with the headers and the JSON body.
func TestHTTPHookRecovers(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		mu.Lock()
		got = append(got, req)
		bodies = append(bodies, b)
		n := len(got)
		mu.Unlock()
		if n <= 2 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h := Hook{Name: "pager", Type: TypeHTTP, URL: srv.URL + "/failover", Retries: 3, Timeout: time.Minute,
		BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond, Headers: map[string]string{"X-Token": "t0ken"}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	r := New([]Hook{h}, Options{})
	r.Fire(transition("VI_1", 7, StateMaster))
	closeRunner(t, r)

	st := r.Status()[0]
	if st.Runs != 1 || st.Failures != 0 || st.Last.Result != ResultOK || st.Last.Attempts != 3 || st.Last.HTTPStatus != 204 {
		t.Errorf("status: %+v, last %+v", st, st.Last)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, req := range got {
		if req.Method != http.MethodPost || req.URL.Path != "/failover" || req.Header.Get("Content-Type") != "application/json" ||
			req.Header.Get("X-Token") != "t0ken" || req.Header.Get("User-Agent") != userAgent {
			t.Errorf("request %d: %s %s %v", i, req.Method, req.URL, req.Header)
		}
		var p Payload
		if err := json.Unmarshal(bodies[i], &p); err != nil || p.Hook != "pager" || p.Generation != 7 || p.To != StateMaster {
			t.Errorf("body %d %q: %+v, %v", i, bodies[i], p, err)
		}
	}
}

// TLS is verified by default: a server whose certificate the system does
// not trust is refused (and not retried); with its CA in ca_file it is
// reached.
func TestHTTPVerifiesTLS(t *testing.T) {
	var n int
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := func(name, caFile string) Hook {
		return Hook{Name: name, Type: TypeHTTP, URL: srv.URL, Retries: 3, CAFile: caFile, Timeout: time.Minute,
			BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}
	}
	r := New([]Hook{hook("default", ""), hook("with-ca", ca)}, Options{})
	r.Fire(transition("VI_1", 1, StateMaster))
	closeRunner(t, r)
	st := r.Status()
	if d := st[0].Last; d.Result != ResultError || d.Attempts != 1 || !strings.Contains(d.Error, "certificate") {
		t.Errorf("without the CA: %+v", d)
	}
	if c := st[1].Last; c.Result != ResultOK || c.Attempts != 1 {
		t.Errorf("with the CA: %+v", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 1 {
		t.Errorf("the server answered %d requests, want 1 (the one with the CA)", n)
	}
}

// A CA file that cannot be read fails every run with the reason.
func TestHTTPBadCAFile(t *testing.T) {
	for name, content := range map[string]string{"missing": "", "not PEM": "hello"} {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if content != "" {
			if err := os.WriteFile(ca, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r := New([]Hook{{Name: "h", Type: TypeHTTP, URL: "https://hooks.example/", CAFile: ca}}, Options{})
		r.Fire(transition("VI_1", 1, StateMaster))
		closeRunner(t, r)
		if st := r.Status()[0]; st.Last.Result != ResultError || !strings.Contains(st.LastOutcome, "ca_file") {
			t.Errorf("%s: %q", name, st.LastOutcome)
		}
	}
}
