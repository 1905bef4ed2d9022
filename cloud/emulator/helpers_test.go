package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/baidubce/bce-sdk-go/auth"
	"github.com/baidubce/bce-sdk-go/bce"
	bcehttp "github.com/baidubce/bce-sdk-go/http"
	bceeip "github.com/baidubce/bce-sdk-go/services/eip"
	bcehavip "github.com/baidubce/bce-sdk-go/services/havip"
	bcevpc "github.com/baidubce/bce-sdk-go/services/vpc"
	"github.com/baidubce/bce-sdk-go/util"
)

var testCred = &auth.BceCredentials{AccessKeyId: "ak-test", SecretAccessKey: "sk-test"}

// newTest starts an emulator from testdata/seed.toml behind an httptest server.
func newTest(t *testing.T, opts Options) (*Emulator, *httptest.Server) {
	t.Helper()
	f, err := os.Open("testdata/seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seed, err := ParseSeed(f, "testdata/seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	emu, err := New(seed, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	return emu, srv
}

func noRetry(c *bce.BceClientConfiguration) {
	c.Retry = bce.NewNoRetryPolicy()
	c.ConnectionTimeoutInMillis = 30 * 1000
}

func vpcClient(t *testing.T, url string) *bcevpc.Client {
	t.Helper()
	c, err := bcevpc.NewClient("ak-test", "sk-test", url)
	if err != nil {
		t.Fatal(err)
	}
	noRetry(c.Config)
	return c
}

func havipClient(t *testing.T, url string) *bcehavip.Client {
	t.Helper()
	c, err := bcehavip.NewClient("ak-test", "sk-test", url)
	if err != nil {
		t.Fatal(err)
	}
	noRetry(c.Config)
	return c
}

func eipClient(t *testing.T, url string) *bceeip.Client {
	t.Helper()
	c, err := bceeip.NewClient("ak-test", "sk-test", url)
	if err != nil {
		t.Fatal(err)
	}
	noRetry(c.Config)
	return c
}

// wantServiceError checks that err is a BCE service error with status and code.
func wantServiceError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var se *bce.BceServiceError
	if !errors.As(err, &se) {
		t.Fatalf("got error %v (%T), want service error %d %s", err, err, status, code)
	}
	if se.StatusCode != status || se.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", se.StatusCode, se.Code, se.Message, status, code)
	}
}

// rawResp is a decoded answer of a raw request.
type rawResp struct {
	status int
	header http.Header
	body   []byte
}

func (r rawResp) code() string {
	var e struct{ Code string }
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

// signedRequest builds a request signed by the SDK's own signer; tamper may modify it after
// signing.
func signedRequest(t *testing.T, base, method, path string, params map[string]string, body []byte, cred *auth.BceCredentials, tamper func(*http.Request)) *http.Request {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	var req bcehttp.Request
	req.SetMethod(method)
	req.SetUri(path)
	req.SetProtocol("http")
	req.SetHost(host)
	for k, v := range params {
		req.SetParam(k, v)
	}
	req.SetHeader("Host", host)
	req.SetHeader("x-bce-date", util.FormatISO8601Date(util.NowUTCSeconds()))
	req.SetHeader("Content-Type", "application/json;charset=utf-8")
	if len(body) > 0 {
		req.SetHeader("Content-Length", itoa(len(body)))
	}
	(&auth.BceV1Signer{}).Sign(&req, cred, &auth.SignOptions{HeadersToSign: auth.DEFAULT_HEADERS_TO_SIGN, ExpireSeconds: 1800})
	url := base + path
	if qs := req.QueryString(); qs != "" {
		url += "?" + qs
	}
	hr, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.Headers() {
		if strings.EqualFold(k, "Host") || strings.EqualFold(k, "Content-Length") {
			continue
		}
		hr.Header.Set(k, v)
	}
	if tamper != nil {
		tamper(hr)
	}
	return hr
}

func do(t *testing.T, hr *http.Request) rawResp {
	t.Helper()
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResp{status: resp.StatusCode, header: resp.Header, body: b}
}

func signedDo(t *testing.T, base, method, path string, params map[string]string, body []byte) rawResp {
	t.Helper()
	return do(t, signedRequest(t, base, method, path, params, body, testCred, nil))
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// countChanges counts change records whose message contains s.
func countChanges(emu *Emulator, s string) int {
	n := 0
	for _, c := range emu.Changes() {
		if strings.Contains(c.Message, s) {
			n++
		}
	}
	return n
}

// jsonInto decodes an answer body.
func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }
