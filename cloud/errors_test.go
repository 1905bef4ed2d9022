package cloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestClassification(t *testing.T) {
	tests := []struct {
		name                        string
		err                         error
		retryable, permanent, expir bool
	}{
		{"nil", nil, false, false, false},
		{"500", &APIError{StatusCode: 500, Code: "InternalError"}, true, false, false},
		{"503", &APIError{StatusCode: 503}, true, false, false},
		{"429", &APIError{StatusCode: 429}, true, false, false},
		{"throttling code", &APIError{StatusCode: 400, Code: "RequestLimitExceeded"}, true, false, false},
		{"expired", &APIError{StatusCode: 400, Code: CodeRequestExpired}, true, false, true},
		{"409", &APIError{StatusCode: 409, Code: "Conflict"}, true, false, false},
		{"bad ak", &APIError{StatusCode: 403, Code: CodeInvalidAccessKeyID}, false, true, false},
		{"bad sig", &APIError{StatusCode: 400, Code: CodeSignatureDoesNotMatch}, false, true, false},
		{"denied", &APIError{StatusCode: 403, Code: CodeAccessDenied}, false, true, false},
		{"mismatch", &APIError{StatusCode: 403, Code: CodeIdempotentParameterMismatch}, false, true, false},
		{"validation", &APIError{StatusCode: 400, Code: "InvalidParameter"}, false, true, false},
		{"not found", &APIError{StatusCode: 404, Code: "NoSuchObject"}, false, true, false},
		{"transport", &TransportError{Operation: "x", Err: errors.New("reset")}, true, false, false},
		{"net.Error", &net.OpError{Op: "dial", Err: errors.New("refused")}, true, false, false},
		{"pending", &PendingError{Op: "x", Reason: "y"}, true, false, false},
		{"permanent", &PermanentError{Reason: "y"}, false, true, false},
		{"wrapped 500", fmt.Errorf("claim: %w", &APIError{StatusCode: 500}), true, false, false},
		{"canceled", context.Canceled, false, true, false},
		{"deadline", context.DeadlineExceeded, true, false, false},
		{"unknown", errors.New("x"), false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRetryable(tt.err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if got := IsPermanent(tt.err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			if got := IsExpired(tt.err); got != tt.expir {
				t.Errorf("IsExpired = %v, want %v", got, tt.expir)
			}
		})
	}
}

func TestAPIErrorString(t *testing.T) {
	e := &APIError{StatusCode: 403, Code: "AccessDenied", Message: "no", RequestID: "r-1", Operation: "havip.get havip-1"}
	if got, want := e.Error(), "havip.get havip-1: HTTP 403 AccessDenied: no (request id r-1)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestToken(t *testing.T) {
	a := Token("gen-7/havip/havip-1", "havip.attach/i-1")
	if len(a) != TokenLen {
		t.Fatalf("len = %d, want %d", len(a), TokenLen)
	}
	if a != Token("gen-7/havip/havip-1", "havip.attach/i-1") {
		t.Fatal("Token is not deterministic")
	}
	for _, other := range []string{Token("gen-8/havip/havip-1", "havip.attach/i-1"), Token("gen-7/havip/havip-1", "havip.detach/i-1"),
		Token("gen-7/havip/havip-1havip.attach/i-1", ""), Token("gen-7/havip/havip-", "1havip.attach/i-1")} {
		if other == a {
			t.Fatalf("distinct inputs share token %s", a)
		}
	}
	// A known answer pins the scheme: changing it would break idempotency across an upgrade.
	// (printf 'b\0a' | sha256sum | cut -c1-32)
	if got, want := Token("b", "a"), "397c5716bfd1b6d60c89561958a0a977"; got != want {
		t.Fatalf("Token(b, a) = %s, want %s", got, want)
	}
}

func TestResourceKey(t *testing.T) {
	tests := []struct {
		r    Resource
		want string
	}{
		{Resource{Kind: KindHAVIP, HAVIP: &HAVIPSpec{ID: "havip-abc"}}, "havip/havip-abc"},
		{Resource{Kind: KindRoute, Route: &RouteSpec{Table: "rt-1", Destination: "0.0.0.0/0"}}, "route/rt-1/0.0.0.0/0"},
		{Resource{Kind: KindEIP, EIP: &EIPSpec{Address: "1.2.3.4"}}, "eip/1.2.3.4"},
		{Resource{Kind: KindEIP}, "eip/?"},
	}
	for _, tt := range tests {
		if got := tt.r.Key(); got != tt.want {
			t.Errorf("Key() = %q, want %q", got, tt.want)
		}
	}
	if err := (Resource{Kind: KindRoute, Route: &RouteSpec{Table: "rt", Destination: "d", Mode: "weird"}}).Validate(); !IsPermanent(err) {
		t.Errorf("Validate(bad mode) = %v, want a permanent error", err)
	}
}

func TestClamp(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, ""},
		{"plain text", 10, "plain text"},
		{"plain text!", 10, "plain t..."},
		{"a\nb\x00c\x7fd", 20, "a?b?c?d"},
		{"bad \xff\xfe utf8", 20, "bad ?? utf8"},
		{"ünïcödé", 20, "ünïcödé"},
		{"ünïcödé", 8, "ünï..."},              // cut on a character boundary
		{"\u0085next line", 20, "?next line"}, // a C1 control character
		{"\ufffd is printable", 20, "\ufffd is printable"},
		{"abcdef", 2, ".."},
		{"\x1b[31mred", 64, "?[31mred"},
	}
	for _, tt := range tests {
		got := Clamp(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("Clamp(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if len(got) > tt.max {
			t.Errorf("Clamp(%q, %d) = %q is longer than %d", tt.in, tt.max, got, tt.max)
		}
	}
}

func TestNewAPIErrorClamps(t *testing.T) {
	e := NewAPIError("op", 500, strings.Repeat("C", 1000), "m\n"+strings.Repeat("m", 10000), "r\x00")
	if len(e.Code) > MaxCodeLen || len(e.Message) > MaxMessageLen || e.RequestID != "r?" || !strings.HasPrefix(e.Message, "m?m") {
		t.Fatalf("NewAPIError = %+v", e)
	}
	if e := NewAPIError("op", 400, CodeRequestExpired, "expired", "req-1"); !IsExpired(e) || e.Error() != "op: HTTP 400 RequestExpired: expired (request id req-1)" {
		t.Fatalf("a short error changed: %v", e)
	}
}

func TestKnownCode(t *testing.T) {
	for code, want := range map[string]bool{
		CodeRequestExpired: true, "InternalError": true, "InvalidParameter": true, CodeAccessDenied: true,
		"Throttling.User": true, "OPERATION_DENY": true, "InvalidSessionToken": true,
		"": false, "other": false, "internalerror": false, "Evil\x1b[31m": false, "HaVipNotFound" + strings.Repeat("x", 100): false,
	} {
		if got := KnownCode(code); got != want {
			t.Errorf("KnownCode(%q) = %v, want %v", code, got, want)
		}
	}
}

func FuzzClamp(f *testing.F) {
	f.Add("plain", 10)
	f.Add("a\nb\xffc\u0085ü", 5)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = limit & 0xfff
		got := Clamp(s, limit)
		if len(got) > limit {
			t.Fatalf("Clamp(%q, %d) = %q: longer than %d", s, limit, got, limit)
		}
		if !printable(got) {
			t.Fatalf("Clamp(%q, %d) = %q: not printable", s, limit, got)
		}
		if Clamp(got, limit) != got {
			t.Fatalf("Clamp(%q, %d) = %q changes again", s, limit, got)
		}
	})
}
