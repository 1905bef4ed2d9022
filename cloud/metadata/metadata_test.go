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
	want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct{ name, doc string }{
		{"secretAccessKey", fmt.Sprintf(`{"accessKeyId":"AKrole","secretAccessKey":%q,"sessionToken":%q,"createTime":"2030-01-02T02:04:05Z","expiration":"2030-01-02T03:04:05Z","userId":"u"}`, testSecret, testToken)},
		{"accessKeySecret", fmt.Sprintf(`{"accessKeyId":"AKrole","accessKeySecret":%q,"sessionToken":%q,"expiration":"2030-01-02T11:04:05+08:00"}`, testSecret, testToken)},
		{"both spellings agree", fmt.Sprintf(`{"accessKeyId":"AKrole","accessKeySecret":%q,"secretAccessKey":%q,"sessionToken":%q,"expiration":"2030-01-02T03:04:05Z"}`, testSecret, testSecret, testToken)},
		{"capitalised", fmt.Sprintf(`{"AccessKeyId":"AKrole","SecretAccessKey":%q,"SessionToken":%q,"Expiration":"2030-01-02T03:04:05Z"}`, testSecret, testToken)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newServer(t, map[string]string{RoleCredentialsPath: tt.doc})
			rc, err := c.RoleCredentials(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rc.AccessKeyID != "AKrole" || rc.SecretAccessKey() != testSecret || rc.SessionToken() != testToken || !rc.Expiration.Equal(want) {
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
		})
	}
}

// The old path (a role-name step under /1.0/meta-data/iam/security-credentials/) is not asked.
func TestRoleCredentialsPath(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	_, err := New(srv.URL, srv.Client()).RoleCredentials(context.Background())
	if err == nil || !strings.Contains(err.Error(), RoleCredentialsPath+": HTTP 404") {
		t.Fatalf("err = %v", err)
	}
	if len(paths) != 1 || paths[0] != "/latest/meta-data/sts-credential" {
		t.Fatalf("asked %q, want only /latest/meta-data/sts-credential", paths)
	}
}

// An answer that cannot be used is described by the field names it held, never by a value.
func TestRoleCredentialsErrors(t *testing.T) {
	const exp = `"expiration":"2030-01-02T03:04:05Z"`
	tests := []struct {
		name, doc, want string
	}{
		{"bad json", `{"secretAccessKey":"` + testSecret, "malformed JSON"},
		{"not an object", `["` + testSecret + `"]`, "not a JSON object"},
		{"missing fields", `{"secretAccessKey":"` + testSecret + `","Token":"` + testToken + `"}`,
			"missing or empty accessKeyId, sessionToken, expiration (the answer held the fields: Token, secretAccessKey)"},
		{"aws shape", `{"Code":"Success","AccessKeyId":"a","SecretAccessKey":"` + testSecret + `","Token":"` + testToken + `","Expiration":"2030-01-02T03:04:05Z"}`,
			"missing or empty sessionToken (the answer held the fields: AccessKeyId, Code, Expiration, SecretAccessKey, Token)"},
		{"empty secret", `{"accessKeyId":"a","secretAccessKey":"","sessionToken":"` + testToken + `",` + exp + `}`, "missing or empty secretAccessKey (or accessKeySecret)"},
		{"secret not a string", `{"accessKeyId":"a","secretAccessKey":{"v":"` + testSecret + `"},"sessionToken":"t",` + exp + `}`, "field secretAccessKey is not a string"},
		{"spellings disagree", `{"accessKeyId":"a","secretAccessKey":"` + testSecret + `","accessKeySecret":"` + testSecret + `x","sessionToken":"t",` + exp + `}`, "disagree"},
		{"twice", `{"accessKeyId":"a","AccessKeyID":"b","secretAccessKey":"` + testSecret + `","sessionToken":"t",` + exp + `}`, "field accessKeyId appears twice"},
		{"bad expiration", `{"accessKeyId":"a","secretAccessKey":"` + testSecret + `","sessionToken":"t","expiration":"` + testToken + `"}`, "field expiration is not an RFC 3339 time"},
		{"empty", `{}`, "the answer held the fields: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newServer(t, map[string]string{RoleCredentialsPath: tt.doc}).RoleCredentials(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testToken) {
				t.Fatalf("error leaks a value: %v", err)
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
	f.Add([]byte(`{"AccessKeyId":"a","accessKeySecret":"s","sessionToken":"t","expiration":"2030-01-02T03:04:05+08:00"}`))
	f.Add([]byte(`{"accessKeyId":"a","secretAccessKey":"s1","accessKeySecret":"s2"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := ParseRoleCredentials(b)
		if err != nil {
			if rc.SecretAccessKey() != "" {
				t.Fatal("credentials returned with an error")
			}
			if len(err.Error()) > 4096 {
				t.Fatalf("error of %d bytes", len(err.Error()))
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
		{"failure streamed", 404, true, RoleCredentialsPath},
		{"success announced", 200, false, instanceIDPath},
		{"success streamed", 200, true, RoleCredentialsPath},
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
			if tt.path == RoleCredentialsPath {
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
