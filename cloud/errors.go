package cloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Error codes of the BCE API that the classification below relies on.
const (
	CodeRequestExpired              = "RequestExpired"
	CodeInvalidAccessKeyID          = "InvalidAccessKeyId"
	CodeSignatureDoesNotMatch       = "SignatureDoesNotMatch"
	CodeAccessDenied                = "AccessDenied"
	CodeInvalidHTTPAuthHeader       = "InvalidHTTPAuthHeader"
	CodeIdempotentParameterMismatch = "IdempotentParameterMismatch"
)

// Bounds of the text an answer of the API may put into an error, so that a hostile or broken
// server cannot fill logs, status and metric labels.
const (
	MaxCodeLen      = 64
	MaxMessageLen   = 512
	MaxRequestIDLen = 128
	// MaxErrorLen bounds the whole message of an error returned by a Provider.
	MaxErrorLen = 2048
)

// Clamp returns s with every byte that is not part of a printable UTF-8 character (control
// characters, invalid UTF-8) replaced by '?', cut to at most limit bytes on a character boundary,
// "..." marking the cut. It returns s itself when s is already in bounds, and reads no more of
// s than it keeps.
func Clamp(s string, limit int) string {
	if len(s) <= limit && printable(s) {
		return s
	}
	const mark = "..."
	var b strings.Builder
	cut := 0 // the length of b when it last left room for the mark
	for i := 0; i < len(s); {
		r, n := decode(s[i:])
		i += n
		if b.Len()+utf8.RuneLen(r) > limit {
			return (b.String()[:cut] + mark)[:min(cut+len(mark), limit)]
		}
		b.WriteRune(r)
		if b.Len() <= limit-len(mark) {
			cut = b.Len()
		}
	}
	return b.String()
}

// decode returns the first character of s and its length in s, '?' for a byte that is not
// part of a printable UTF-8 character.
func decode(s string) (rune, int) {
	if c := s[0]; c < utf8.RuneSelf {
		if c < ' ' || c == 0x7f {
			return '?', 1
		}
		return rune(c), 1
	}
	r, n := utf8.DecodeRuneInString(s)
	if (r == utf8.RuneError && n == 1) || !unicode.IsPrint(r) {
		return '?', n
	}
	return r, n
}

// printable reports whether s is valid UTF-8 made of printable characters only.
func printable(s string) bool {
	for i := 0; i < len(s); {
		r, n := decode(s[i:])
		if r == '?' && s[i] != '?' {
			return false
		}
		i += n
	}
	return true
}

// APIError is an error answered by the cloud API. Its Code, Message and RequestID come from
// the server; NewAPIError clamps them.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	// Operation names the call, such as "havip.attach havip-abc".
	Operation string
	// RetryAfter is the server's Retry-After hint, zero if none.
	RetryAfter time.Duration
}

// NewAPIError returns an APIError whose server-given fields are clamped with Clamp to
// MaxCodeLen, MaxMessageLen and MaxRequestIDLen.
func NewAPIError(op string, status int, code, message, requestID string) *APIError {
	return &APIError{StatusCode: status, Operation: op, Code: Clamp(code, MaxCodeLen),
		Message: Clamp(message, MaxMessageLen), RequestID: Clamp(requestID, MaxRequestIDLen)}
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Operation != "" {
		b.WriteString(e.Operation)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return b.String()
}

// TransportError is a failure to get an answer: connection refused or reset, a timed-out
// attempt, a broken response. The request may or may not have reached the server.
type TransportError struct {
	Operation string
	Err       error
}

// Error implements error.
func (e *TransportError) Error() string { return e.Operation + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// PermanentError is a failure that retrying cannot fix: a resource in an unsupported shape, a
// next hop that is not part of an HA pair, bad input.
type PermanentError struct {
	Op     string
	Reason string
}

// Error implements error.
func (e *PermanentError) Error() string {
	if e.Op == "" {
		return e.Reason
	}
	return e.Op + ": " + e.Reason
}

// PendingError says that the cloud has not (yet) reached the state a claim asked for, such as a
// route read back with a foreign next hop. Retrying later may succeed.
type PendingError struct {
	Op     string
	Reason string
	// Accepted reports that the cloud answered the claim's mutation with success, yet reading
	// the resource back does not show it applied (a switchRouteHA answered 200 whose pair is
	// still active elsewhere). Sending the mutation again at once is no cure: the caller
	// reports it and leaves further tries to its reclaim damping.
	Accepted bool
}

// Error implements error.
func (e *PendingError) Error() string { return e.Op + ": " + e.Reason }

// IsUnconfirmed reports whether err is a PendingError of a mutation the cloud accepted but does
// not show applied.
func IsUnconfirmed(err error) bool {
	var pe *PendingError
	return errors.As(err, &pe) && pe.Accepted
}

var authCodes = map[string]bool{
	CodeInvalidAccessKeyID:    true,
	CodeSignatureDoesNotMatch: true,
	CodeAccessDenied:          true,
	CodeInvalidHTTPAuthHeader: true,
	"OptInRequired":           true,
	"InvalidSessionToken":     true,
	"InvalidSecurityToken":    true,
	"OPERATION_DENY":          true,
}

var throttlingCodes = map[string]bool{
	"Throttling":           true,
	"ThrottlingException":  true,
	"TooManyRequests":      true,
	"RequestLimitExceeded": true,
	"RateLimitExceeded":    true,
	"Throttling.User":      true,
	"Throttling.Api":       true,
}

// documentedCodes are the error codes the API documents name: the common codes of every BCE
// API, and those of the calls and conventions the agent relies on.
var documentedCodes = map[string]bool{
	CodeAccessDenied:                true,
	"InappropriateJSON":             true,
	"InternalError":                 true,
	CodeInvalidAccessKeyID:          true,
	CodeInvalidHTTPAuthHeader:       true,
	"InvalidHTTPRequest":            true,
	"InvalidURI":                    true,
	"MalformedJSON":                 true,
	"InvalidVersion":                true,
	"PreconditionFailed":            true,
	CodeRequestExpired:              true,
	CodeIdempotentParameterMismatch: true,
	CodeSignatureDoesNotMatch:       true,
	"InvalidParameter":              true,
	"InternalException":             true,
	"InstanceNotFound":              true,
}

// KnownCode reports whether code is one of the fixed set of API error codes that may name an
// answer in metric labels: the documented codes and those the classification above relies on
// (authentication and throttling). Any other code is the server's free text.
func KnownCode(code string) bool {
	return documentedCodes[code] || authCodes[code] || throttlingCodes[code]
}

// IsAuth reports whether err is an authentication or authorisation failure.
func IsAuth(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && authCodes[ae.Code]
}

// IsExpired reports whether the server rejected the request as expired (RequestExpired), which
// a freshly signed request usually fixes.
func IsExpired(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == CodeRequestExpired
}

// IsThrottled reports whether the server asked the client to slow down.
func IsThrottled(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.StatusCode == 429 || throttlingCodes[ae.Code])
}

// IsPermanent reports whether retrying err cannot help: authentication and validation errors
// (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied, 4xx validation answers,
// IdempotentParameterMismatch), a PermanentError, a cancelled context.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if IsAuth(err) || ae.Code == CodeIdempotentParameterMismatch {
			return true
		}
		if IsExpired(err) || IsThrottled(err) {
			return false
		}
		// 408 Request Timeout and 409 Conflict (a concurrent operation on the resource) are
		// transient; every other 4xx is a verdict on the request itself.
		return ae.StatusCode >= 400 && ae.StatusCode < 500 && ae.StatusCode != 408 && ae.StatusCode != 409
	}
	return errors.Is(err, context.Canceled)
}

// IsRetryable reports whether sending the same request again may succeed: network errors and
// timed-out attempts, 5xx, 408, 409, throttling (429 and throttling codes), RequestExpired and
// PendingError.
func IsRetryable(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == 408 || ae.StatusCode == 409 ||
			IsThrottled(err) || IsExpired(err)
	}
	var te *TransportError
	var pe *PendingError
	var ne net.Error
	return errors.As(err, &te) || errors.As(err, &pe) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded)
}

// retryAfter returns the server's Retry-After hint carried by err, zero if none.
func retryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}
