package metadata

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testSecret = "SECRETsecretSECRET"
	testToken  = "TOKENtokenTOKEN"
)

func newServer(t *testing.T, routes map[string]string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		body, ok := routes[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL, srv.Client())
}

func TestInstanceID(t *testing.T) {
	tests := []struct {
		name, body, want string
		wantErr          bool
	}{
		{name: "ok", body: "i-7vEtzxRc\n", want: "i-7vEtzxRc"},
		{name: "html", body: "<html>oops</html>", wantErr: true},
		{name: "empty", body: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newServer(t, map[string]string{"/1.0/meta-data/instance-shortid": tt.body})
			got, err := c.InstanceID(context.Background())
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("InstanceID() = %q, %v; want %q, err %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "/1.0/meta-data/instance-shortid") {
				t.Fatalf("error %q does not name the path", err)
			}
		})
	}
	c := newServer(t, nil)
	if _, err := c.InstanceID(context.Background()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("InstanceID() on 404: %v", err)
	}
}

func TestRoleCredentials(t *testing.T) {
	doc := fmt.Sprintf(`{"accessKeyId":"AKrole","secretAccessKey":%q,"sessionToken":%q,"expiration":"2030-01-02T03:04:05Z"}`, testSecret, testToken)
	c := newServer(t, map[string]string{
		"/1.0/meta-data/iam/security-credentials/":           "agent-role\n",
		"/1.0/meta-data/iam/security-credentials/agent-role": doc,
	})
	rc, err := c.RoleCredentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rc.Role != "agent-role" || rc.AccessKeyID != "AKrole" || rc.SecretAccessKey() != testSecret || rc.SessionToken() != testToken ||
		!rc.Expiration.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("RoleCredentials() = %v", rc)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "c", rc)
	type holder struct{ c RoleCredentials }
	for _, s := range []string{fmt.Sprintf("%v", rc), fmt.Sprintf("%+v", rc), fmt.Sprintf("%#v", rc), fmt.Sprintf("%s", rc),
		fmt.Sprintf("%+v", holder{rc}), fmt.Sprintf("%#v", holder{rc}), fmt.Sprint(&rc), buf.String()} {
		if strings.Contains(s, testSecret) || strings.Contains(s, testToken) {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestRoleCredentialsErrors(t *testing.T) {
	tests := []struct {
		name   string
		routes map[string]string
		want   string
	}{
		{"no role", map[string]string{"/1.0/meta-data/iam/security-credentials/": ""}, "no role"},
		{"bad role", map[string]string{"/1.0/meta-data/iam/security-credentials/": "../x"}, "not a role name"},
		{"missing doc", map[string]string{"/1.0/meta-data/iam/security-credentials/": "r"}, "HTTP 404"},
		{"bad json", map[string]string{"/1.0/meta-data/iam/security-credentials/": "r",
			"/1.0/meta-data/iam/security-credentials/r": `{"secretAccessKey":"` + testSecret}, "malformed JSON"},
		{"missing fields", map[string]string{"/1.0/meta-data/iam/security-credentials/": "r",
			"/1.0/meta-data/iam/security-credentials/r": `{"secretAccessKey":"` + testSecret + `"}`}, "missing accessKeyId, sessionToken, expiration"},
		{"bad expiration", map[string]string{"/1.0/meta-data/iam/security-credentials/": "r",
			"/1.0/meta-data/iam/security-credentials/r": `{"accessKeyId":"a","secretAccessKey":"` + testSecret + `","sessionToken":"t","expiration":"tomorrow"}`}, "not RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newServer(t, tt.routes).RoleCredentials(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	c := newServer(t, map[string]string{"/1.0/meta-data/instance-shortid": strings.Repeat("a", maxBody+10)})
	if _, err := c.InstanceID(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

func FuzzParseRoleCredentials(f *testing.F) {
	f.Add([]byte(`{"accessKeyId":"a","secretAccessKey":"s","sessionToken":"t","expiration":"2030-01-02T03:04:05Z"}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := ParseRoleCredentials(b)
		if err != nil {
			if rc.SecretAccessKey() != "" {
				t.Fatal("credentials returned with an error")
			}
			return
		}
		if rc.AccessKeyID == "" || rc.SecretAccessKey() == "" || rc.SessionToken() == "" || rc.Expiration.IsZero() {
			t.Fatalf("accepted incomplete credentials: %v", rc)
		}
	})
}

func FuzzParseInstanceID(f *testing.F) {
	f.Add([]byte("i-7vEtzxRc\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseInstanceID(b)
		if err == nil && (!strings.HasPrefix(id, "i-") || strings.ContainsAny(id, " \n/")) {
			t.Fatalf("accepted %q", id)
		}
	})
}

// A huge answer, a failure or a success, announced or streamed, costs at most the bound: the
// client reads a bounded number of bytes and returns a short error.
func TestHugeAnswerBounded(t *testing.T) {
	const huge = 256 << 20
	tests := []struct {
		name    string
		status  int
		chunked bool
		path    string
	}{
		{"failure announced", 500, false, instanceIDPath},
		{"failure streamed", 404, true, rolePath},
		{"success announced", 200, false, instanceIDPath},
		{"success streamed", 200, true, rolePath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tt.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(huge))
				}
				w.WriteHeader(tt.status)
				chunk := []byte(strings.Repeat("i", 32<<10))
				for left := huge; left > 0; left -= len(chunk) {
					if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			var read atomic.Int64
			hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &countingConn{Conn: c, read: &read}, nil
			}}}
			c := New(srv.URL, hc)
			var err error
			if tt.path == rolePath {
				_, err = c.RoleCredentials(context.Background())
			} else {
				_, err = c.InstanceID(context.Background())
			}
			if err == nil || len(err.Error()) > 200 {
				t.Fatalf("err = %.300v, want a short error", err)
			}
			if n := read.Load(); n > maxBody+1<<20 {
				t.Fatalf("read %d bytes from the service, want at most %d", n, maxBody+1<<20)
			}
		})
	}
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
