package bce

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
)

// hugeAnswer is what a hostile or broken server claims to send: far more than any bound.
const hugeAnswer = 256 << 20

// hugeServer answers every request with status and a valid JSON document of hugeAnswer bytes
// (an error document whose message is the filler), streamed from one small buffer so that
// the test allocates nothing of that size. With chunked the length is not announced. written
// counts the bytes the server managed to write.
func hugeServer(t *testing.T, status int, chunked bool) (srv *httptest.Server, written *atomic.Int64) {
	t.Helper()
	written = &atomic.Int64{}
	const prefix, suffix = `{"code":"InternalError","requestId":"req-huge","message":"`, `"}`
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-bce-request-id", "req-huge")
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(hugeAnswer))
		}
		w.WriteHeader(status)
		chunk := []byte(strings.Repeat("a", 32<<10))
		write := func(b []byte) bool {
			n, err := w.Write(b)
			written.Add(int64(n))
			return err == nil
		}
		if !write([]byte(prefix)) {
			return
		}
		for left := hugeAnswer - len(prefix) - len(suffix); left > 0; left -= len(chunk) {
			if !write(chunk[:min(left, len(chunk))]) {
				return
			}
		}
		write([]byte(suffix))
	}))
	t.Cleanup(srv.Close)
	return srv, written
}

// countingClient is an HTTP client that counts the bytes it reads from its connections.
func countingClient() (*http.Client, *atomic.Int64) {
	read := &atomic.Int64{}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: conn, read: read}, nil
		},
	}}, read
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func hugeClient(t *testing.T, endpoint string, hc *http.Client, onRequest func(op, code string, d time.Duration)) *Client {
	t.Helper()
	creds, err := NewCredentials("AKtest", testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), Options{Endpoint: endpoint, EIPEndpoint: endpoint, InstanceID: "i-self",
		MaxAttempts: 1, Timeout: time.Minute, HTTPClient: hc, OnRequest: onRequest}, StaticCredentials(creds), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A huge answer, error or success, announced or not, is cut at its bound: the client reads a
// bounded number of bytes from the server, allocates a bounded amount of memory, and returns
// a short error that counts as malformed.
func TestHugeAnswerBounded(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		chunked  bool
		maxRead  int64
		wantPerm bool // whether retrying the answer's request is pointless
	}{
		{name: "error announced", status: 500, maxRead: 1 << 20},
		{name: "error streamed", status: 500, chunked: true, maxRead: 1 << 20},
		{name: "rejection streamed", status: 400, chunked: true, maxRead: 1 << 20, wantPerm: true},
		{name: "success announced", status: 200, maxRead: maxAnswer + 1<<20, wantPerm: true},
		{name: "success streamed", status: 200, chunked: true, maxRead: maxAnswer + 1<<20, wantPerm: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := hugeServer(t, tt.status, tt.chunked)
			hc, read := countingClient()
			var codes []string
			c := hugeClient(t, srv.URL, hc, func(_, code string, _ time.Duration) { codes = append(codes, code) })
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := c.Observe(context.Background(), havipRes("havip-1", ""))
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("a huge answer was accepted")
			}
			if n := read.Load(); n > tt.maxRead {
				t.Errorf("read %d bytes from the server, want at most %d", n, tt.maxRead)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
				t.Errorf("allocated %d bytes for one answer", n)
			}
			if len(err.Error()) > cloud.MaxErrorLen {
				t.Errorf("error of %d bytes: %.200s...", len(err.Error()), err)
			}
			if got := cloud.IsPermanent(err); got != tt.wantPerm {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.wantPerm)
			}
			var ae *cloud.APIError
			if tt.status >= 400 && (!errors.As(err, &ae) || ae.StatusCode != tt.status) {
				t.Errorf("err %v does not carry the HTTP status %d", err, tt.status)
			}
			if len(codes) != 1 || codes[0] != CodeMalformed {
				t.Errorf("request codes %q, want [%s]", codes, CodeMalformed)
			}
		})
	}
}

// The Client's own HTTP client bounds the answers too: the server gets to write little more
// than what the socket buffers hold.
func TestHugeErrorAnswerBoundedOwnClient(t *testing.T) {
	srv, written := hugeServer(t, 503, true)
	c := hugeClient(t, srv.URL, nil, nil)
	_, err := c.Observe(context.Background(), havipRes("havip-1", ""))
	if err == nil || len(err.Error()) > cloud.MaxErrorLen {
		t.Fatalf("err = %.300v", err)
	}
	srv.Close() // waits for the handler, which ends when the client has hung up
	if n := written.Load(); n > 64<<20 {
		t.Fatalf("the server wrote %d bytes of one answer", n)
	}
}

// An error answer's code, message and request id are clamped in length and to printable
// characters, and a code outside the fixed set is reported as "other".
func TestAPIErrorClamped(t *testing.T) {
	code := "Evil\x1b[31m" + strings.Repeat("X", 5000)
	msg := "line one\nline two\x00\x07" + strings.Repeat("m", 40<<10)
	rid := strings.Repeat("r", 1000) + "\r\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg, "requestId": rid})
	}))
	defer srv.Close()
	var codes []string
	c := hugeClient(t, srv.URL, nil, func(_, code string, _ time.Duration) { codes = append(codes, code) })
	_, err := c.Observe(context.Background(), havipRes("havip-1", ""))
	var ae *cloud.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %.300v, want an APIError", err)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"code", ae.Code, cloud.MaxCodeLen}, {"message", ae.Message, cloud.MaxMessageLen}, {"request id", ae.RequestID, cloud.MaxRequestIDLen}, {"error", err.Error(), cloud.MaxErrorLen}} {
		if len(f.v) > f.max || strings.ContainsFunc(f.v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("%s not clamped to %d printable bytes: %q", f.name, f.max, f.v)
		}
	}
	if !strings.HasPrefix(ae.Message, "line one?line two??mmm") {
		t.Errorf("message %q", ae.Message)
	}
	if len(codes) != 1 || codes[0] != CodeOther {
		t.Errorf("request codes %q, want [%s]", codes, CodeOther)
	}
}

// A plain-http endpoint to a host that is not loopback is warned about, naming the key.
func TestEndpointWarnings(t *testing.T) {
	tests := []struct {
		endpoint, eip string
		want          []string
	}{
		{"https://bcc.bj.baidubce.com", "https://eip.bj.baidubce.com", nil},
		{"http://127.0.0.1:8080", "http://[::1]:8080", nil},
		{"http://localhost:8080", "http://127.3.0.1", nil},
		{"http://bcc.bj.baidubce.com", "https://eip.bj.baidubce.com", []string{"cloud.endpoint http://bcc.bj.baidubce.com is plain http"}},
		{"https://bcc.bj.baidubce.com", "HTTP://198.18.0.1:80", []string{"cloud.eip_endpoint HTTP://198.18.0.1:80 is plain http"}},
	}
	for _, tt := range tests {
		got := EndpointWarnings(Options{Endpoint: tt.endpoint, EIPEndpoint: tt.eip})
		if len(got) != len(tt.want) {
			t.Errorf("EndpointWarnings(%s, %s) = %q, want %d warning(s)", tt.endpoint, tt.eip, got, len(tt.want))
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tt.want[i]) {
				t.Errorf("warning %q, want it to start with %q", got[i], tt.want[i])
			}
		}
	}
	lb, logger := newLogBuffer()
	creds, _ := NewCredentials("AKtest", testSecret, "")
	if _, err := New(context.Background(), Options{Endpoint: "http://198.18.0.1", EIPEndpoint: "https://198.18.0.1", InstanceID: "i-self"},
		StaticCredentials(creds), logger); err != nil {
		t.Fatal(err)
	}
	if s := lb.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "cloud.endpoint http://198.18.0.1 is plain http") {
		t.Fatalf("New logged:\n%s", s)
	}
}

// What a Provider call returns quotes the cloud's answers; it is clamped in length and to
// printable characters, and the errors keep their classification.
func TestProviderResultsClamped(t *testing.T) {
	f := newFakeBCE(t)
	long := strings.Repeat("z", 100<<10)
	f.rules = []vpc.RouteRule{
		{RouteRuleId: "rr-1", RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "10.1.0.0/16", NexthopType: "custom",
			NexthopId: "i-\x1b]0;" + long},
		{RouteRuleId: "rr-2\n" + long, RouteTableId: "rt-1", SourceAddress: "0.0.0.0/0", DestinationAddress: "10.2.0.0/16", NexthopType: "custom",
			NexthopId: "i-other", PathType: "ha:active"},
	}
	c, _ := f.client(t, nil)
	check := func(what, s string, limit int) {
		t.Helper()
		if len(s) > limit || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("%s not clamped to %d printable bytes: %.200q", what, limit, s)
		}
	}
	o, err := c.Observe(context.Background(), routeRes("rt-1", "10.1.0.0/16", ""))
	if err != nil {
		t.Fatal(err)
	}
	check("Current", o.Current, maxIDLen)
	check("Detail", o.Detail, cloud.MaxErrorLen)
	_, err = c.Claim(context.Background(), routeRes("rt-1", "10.2.0.0/16", ""), tokenBase)
	if err == nil || !cloud.IsPermanent(err) {
		t.Fatalf("err = %.200v, want a permanent error", err)
	}
	check("error", err.Error(), cloud.MaxErrorLen)
	var pe *cloud.PermanentError
	if !errors.As(err, &pe) {
		t.Fatalf("the clamped error lost its PermanentError: %T", err)
	}
	rep := c.Preflight(context.Background(), []cloud.Resource{routeRes("rt-1", "10.1.0.0/16", ""), routeRes("rt-1", "10.2.0.0/16", "")})
	for _, ch := range rep.Checks {
		check("preflight "+ch.Name, ch.Detail, cloud.MaxErrorLen)
	}
}
