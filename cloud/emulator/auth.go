package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Authorization is a parsed bce-auth-v1 authorization string:
// bce-auth-v1/{accessKeyId}/{timestamp}/{expirationPeriodInSeconds}/{signedHeaders}/{signature}.
type Authorization struct {
	AccessKeyID   string
	Timestamp     time.Time
	Expiration    time.Duration
	SignedHeaders []string
	Signature     string

	// prefix is the authStringPrefix the signing key is derived from, exactly as sent.
	prefix string
}

// authTimeLayout is the ISO 8601 UTC form the SDK uses for the timestamp.
const authTimeLayout = "2006-01-02T15:04:05Z"

// ParseAuthorization parses a bce-auth-v1 authorization header value strictly: six
// slash-separated parts, a known version, a UTC timestamp, a positive expiration, lower-case
// sorted signed header names and a 64-hex-digit lower-case signature.
func ParseAuthorization(v string) (Authorization, error) {
	parts := strings.Split(v, "/")
	if len(parts) != 6 {
		return Authorization{}, fmt.Errorf("authorization has %d parts, want 6", len(parts))
	}
	if parts[0] != "bce-auth-v1" {
		return Authorization{}, errors.New("authorization version is not bce-auth-v1")
	}
	a := Authorization{AccessKeyID: parts[1], Signature: parts[5]}
	if a.AccessKeyID == "" || strings.ContainsAny(a.AccessKeyID, " \t") {
		return Authorization{}, errors.New("authorization has an empty or blank access key id")
	}
	ts, err := time.Parse(authTimeLayout, parts[2])
	if err != nil {
		return Authorization{}, fmt.Errorf("authorization timestamp %q is not yyyy-mm-ddThh:mm:ssZ", parts[2])
	}
	a.Timestamp = ts
	exp, err := strconv.Atoi(parts[3])
	if err != nil || exp <= 0 || exp > 7*24*3600 || strconv.Itoa(exp) != parts[3] {
		return Authorization{}, fmt.Errorf("authorization expiration %q is not a positive number of seconds", parts[3])
	}
	a.Expiration = time.Duration(exp) * time.Second
	if parts[4] != "" {
		a.SignedHeaders = strings.Split(parts[4], ";")
		for i, h := range a.SignedHeaders {
			if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " \t:") {
				return Authorization{}, fmt.Errorf("signed header %q is not a lower-case header name", h)
			}
			if i > 0 && a.SignedHeaders[i-1] >= h {
				return Authorization{}, errors.New("signed headers are not sorted and unique")
			}
		}
	}
	if len(a.Signature) != 64 || strings.Trim(a.Signature, "0123456789abcdef") != "" {
		return Authorization{}, errors.New("signature is not 64 lower-case hex digits")
	}
	a.prefix = strings.Join(parts[:4], "/")
	return a, nil
}

// uriEncode percent-encodes everything except RFC 3986 unreserved characters (and '/' when
// keepSlash), with upper-case hex digits, as the canonical-string rules require.
func uriEncode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && keepSlash) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// canonicalURI is "/" plus the percent-encoded path (slashes kept).
func canonicalURI(path string) string {
	return "/" + uriEncode(strings.TrimPrefix(path, "/"), true)
}

// canonicalQuery encodes every parameter except authorization as k=v, sorted.
func canonicalQuery(q url.Values) string {
	var items []string
	for k, vs := range q {
		if strings.EqualFold(k, "authorization") {
			continue
		}
		for _, v := range vs {
			items = append(items, uriEncode(k, false)+"="+uriEncode(v, false))
		}
	}
	sort.Strings(items)
	return strings.Join(items, "&")
}

// canonicalHeaders encodes the signed headers as name:value lines, sorted. The Host header is
// taken from the request line/Host field because net/http removes it from the header map.
func canonicalHeaders(r *http.Request, signed []string) string {
	items := make([]string, 0, len(signed))
	for _, h := range signed {
		var v string
		if h == "host" {
			v = r.Host
		} else {
			v = strings.Join(r.Header.Values(h), ",")
		}
		items = append(items, uriEncode(h, false)+":"+uriEncode(strings.TrimSpace(v), false))
	}
	sort.Strings(items)
	return strings.Join(items, "\n")
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// signature computes the bce-auth-v1 signature of r for a and the secret key sk.
func signature(r *http.Request, a Authorization, sk string) string {
	signingKey := hmacHex(sk, a.prefix)
	canonical := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.Path),
		canonicalQuery(r.URL.Query()),
		canonicalHeaders(r, a.SignedHeaders),
	}, "\n")
	return hmacHex(signingKey, canonical)
}

// authenticate checks the request's Authorization header against the known credentials and the
// emulator clock. It answers the access key id (even on some failures, for the log).
func (e *Emulator) authenticate(r *http.Request) (string, *apiError) {
	raw := r.Header.Get("Authorization")
	if raw == "" {
		return "", errf(400, "InvalidHTTPAuthHeader", "The HTTP authorization header is missing.")
	}
	a, err := ParseAuthorization(raw)
	if err != nil {
		return "", errf(400, "InvalidHTTPAuthHeader", "The HTTP authorization header is invalid: %v.", err)
	}
	has := func(h string) bool {
		i := sort.SearchStrings(a.SignedHeaders, h)
		return i < len(a.SignedHeaders) && a.SignedHeaders[i] == h
	}
	if !has("host") || !has("x-bce-date") {
		return a.AccessKeyID, errf(400, "InvalidHTTPAuthHeader", "The HTTP authorization header is invalid: host and x-bce-date must be signed.")
	}
	if r.Header.Get("x-bce-date") == "" {
		return a.AccessKeyID, errf(400, "InvalidHTTPAuthHeader", "The HTTP authorization header is invalid: the signed x-bce-date header is missing.")
	}
	e.mu.Lock()
	cred, ok := e.creds[a.AccessKeyID]
	now := e.nowLocked()
	e.mu.Unlock()
	if !ok {
		return a.AccessKeyID, errf(403, "InvalidAccessKeyId", "The Access Key ID you provided does not exist in our records.")
	}
	if now.After(a.Timestamp.Add(a.Expiration)) {
		return a.AccessKeyID, errf(400, "RequestExpired", "Request has expired. Timestamp date is %s.", a.Timestamp.Format(authTimeLayout))
	}
	if cred.sessionToken != "" {
		tok := r.Header.Get("x-bce-security-token")
		if tok == "" || !hmac.Equal([]byte(tok), []byte(cred.sessionToken)) {
			return a.AccessKeyID, errf(403, "InvalidSessionToken", "The security token is missing or does not match the access key.")
		}
		if !cred.expires.IsZero() && now.After(cred.expires) {
			return a.AccessKeyID, errf(403, "InvalidSessionToken", "The security token has expired.")
		}
	}
	want := signature(r, a, cred.secretAccessKey)
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return a.AccessKeyID, errf(400, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return a.AccessKeyID, nil
}
