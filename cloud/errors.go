package cloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
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

// APIError is an error answered by the cloud API.
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
}

// Error implements error.
func (e *PendingError) Error() string { return e.Op + ": " + e.Reason }

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
