package emulator

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/auth"
	bcehavip "github.com/baidubce/bce-sdk-go/services/havip"
)

func TestAuthErrors(t *testing.T) {
	emu, srv := newTest(t, Options{})
	get := func(cred *auth.BceCredentials, tamper func(*http.Request)) rawResp {
		return do(t, signedRequest(t, srv.URL, "GET", "/v1/havip/havip-seed1", map[string]string{"x": "a b/c"}, nil, cred, tamper))
	}
	if r := get(testCred, nil); r.status != 200 {
		t.Fatalf("good request got %d %s", r.status, r.body)
	}
	tests := []struct {
		name   string
		cred   *auth.BceCredentials
		tamper func(*http.Request)
		status int
		code   string
	}{
		{"unknown key", &auth.BceCredentials{AccessKeyId: "nope", SecretAccessKey: "sk-test"}, nil, 403, "InvalidAccessKeyId"},
		{"wrong secret", &auth.BceCredentials{AccessKeyId: "ak-test", SecretAccessKey: "wrong"}, nil, 400, "SignatureDoesNotMatch"},
		{"tampered query", testCred, func(r *http.Request) { r.URL.RawQuery = "x=other" }, 400, "SignatureDoesNotMatch"},
		{"tampered path", testCred, func(r *http.Request) { r.URL.Path = "/v1/havip/havip-other" }, 400, "SignatureDoesNotMatch"},
		{"tampered date", testCred, func(r *http.Request) { r.Header.Set("x-bce-date", "2020-01-01T00:00:00Z") }, 400, "SignatureDoesNotMatch"},
		{"tampered method", testCred, func(r *http.Request) { r.Method = "DELETE" }, 400, "SignatureDoesNotMatch"},
		{"missing header", testCred, func(r *http.Request) { r.Header.Del("Authorization") }, 400, "InvalidHTTPAuthHeader"},
		{"garbled header", testCred, func(r *http.Request) { r.Header.Set("Authorization", "bce-auth-v1/ak-test/garbage") }, 400, "InvalidHTTPAuthHeader"},
		{"bad timestamp", testCred, func(r *http.Request) {
			p := strings.Split(r.Header.Get("Authorization"), "/")
			p[2] = "yesterday"
			r.Header.Set("Authorization", strings.Join(p, "/"))
		}, 400, "InvalidHTTPAuthHeader"},
		{"host not signed", testCred, func(r *http.Request) {
			p := strings.Split(r.Header.Get("Authorization"), "/")
			p[4] = "x-bce-date"
			r.Header.Set("Authorization", strings.Join(p, "/"))
		}, 400, "InvalidHTTPAuthHeader"},
		{"sts without token", &auth.BceCredentials{AccessKeyId: "ak-sts", SecretAccessKey: "sk-sts"}, nil, 403, "InvalidSessionToken"},
		{"sts wrong token", &auth.BceCredentials{AccessKeyId: "ak-sts", SecretAccessKey: "sk-sts", SessionToken: "wrong"}, nil, 403, "InvalidSessionToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(tt.cred, tt.tamper)
			if r.status != tt.status || r.code() != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	if r := get(&auth.BceCredentials{AccessKeyId: "ak-sts", SecretAccessKey: "sk-sts", SessionToken: "token-sts"}, nil); r.status != 200 {
		t.Fatalf("sts request got %d %s", r.status, r.body)
	}

	// Expiry by the emulator clock only.
	emu.SetClockOffset(31 * time.Minute)
	if r := get(testCred, nil); r.status != 400 || r.code() != "RequestExpired" {
		t.Fatalf("expired got %d %s", r.status, r.body)
	}
	emu.SetClockOffset(0)
	if r := get(testCred, nil); r.status != 200 {
		t.Fatalf("after reset got %d %s", r.status, r.body)
	}
	// Unauthenticated requests never change state and are logged with their key.
	var sawKey bool
	for _, rec := range emu.Requests() {
		if rec.AccessKeyID == "nope" && rec.Code == "InvalidAccessKeyId" {
			sawKey = true
		}
	}
	if !sawKey {
		t.Fatal("log lacks the unknown key request")
	}
}

func TestSDKSessionCredentials(t *testing.T) {
	_, srv := newTest(t, Options{})
	c := havipClient(t, srv.URL)
	cred, err := auth.NewSessionBceCredentials("ak-sts", "sk-sts", "token-sts")
	if err != nil {
		t.Fatal(err)
	}
	c.Config.Credentials = cred
	if _, err := c.ListHaVip(&bcehavip.ListHaVipArgs{}); err != nil {
		t.Fatal(err)
	}
	c.Config.Credentials, _ = auth.NewSessionBceCredentials("ak-sts", "sk-sts", "forged")
	_, err = c.ListHaVip(&bcehavip.ListHaVipArgs{})
	wantServiceError(t, err, 403, "InvalidSessionToken")
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("a", 64)
	tests := []struct {
		in   string
		ok   bool
		ak   string
		hdrs int
	}{
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/1800/host;x-bce-date/" + sig, true, "ak", 2},
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/1800//" + sig, true, "ak", 0},
		{"bce-auth-v2/ak/2024-01-02T03:04:05Z/1800/host/" + sig, false, "", 0},
		{"bce-auth-v1//2024-01-02T03:04:05Z/1800/host/" + sig, false, "", 0},
		{"bce-auth-v1/ak/2024-01-02 03:04:05/1800/host/" + sig, false, "", 0},
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/-1/host/" + sig, false, "", 0},
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/01800/host/" + sig, false, "", 0},
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/1800/x-bce-date;host/" + sig, false, "", 0},
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/1800/Host/" + sig, false, "", 0},
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/1800/host/" + strings.ToUpper(sig), false, "", 0},
		{"bce-auth-v1/ak/2024-01-02T03:04:05Z/1800/host", false, "", 0},
		{"", false, "", 0},
	}
	for _, tt := range tests {
		a, err := ParseAuthorization(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%q: got err %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && (a.AccessKeyID != tt.ak || len(a.SignedHeaders) != tt.hdrs || a.Expiration != 1800*time.Second) {
			t.Errorf("%q: got %+v", tt.in, a)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("bce-auth-v1/ak/2024-01-02T03:04:05Z/1800/host;x-bce-date/" + strings.Repeat("0", 64))
	f.Add("bce-auth-v1/ak/2024-01-02T03:04:05Z/1800//" + strings.Repeat("f", 64))
	f.Add("bce-auth-v1/////")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuthorization(s)
		if err != nil {
			return
		}
		if a.AccessKeyID == "" || len(a.Signature) != 64 || a.Expiration <= 0 {
			t.Fatalf("accepted invalid %q: %+v", s, a)
		}
		// The prefix the signing key derives from must be exactly the first four parts.
		if !strings.HasPrefix(s, a.prefix+"/") {
			t.Fatalf("prefix %q not a prefix of %q", a.prefix, s)
		}
	})
}
