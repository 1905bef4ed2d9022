package hooks

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/health"
	"golang.org/x/net/http/httpguts"
)

// Type is the kind of a hook.
type Type string

// The hook types.
const (
	// TypeExec runs a program with the payload on its standard input.
	TypeExec Type = "exec"
	// TypeHTTP posts the payload to a URL.
	TypeHTTP Type = "http"
)

// Defaults applied by Hook.WithDefaults. Retries has no default here: zero
// means a single attempt, and a configuration that leaves the key out
// gives DefaultRetries itself.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultRetries    = 3
	DefaultBackoffMin = 250 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
)

// Limits enforced by Hook.Validate.
const (
	// MaxRetries bounds the attempts of an http hook: a receiver that is
	// down stays down for longer than retries can bridge.
	MaxRetries = 10
	// MaxTimeout bounds how long one run may hold its queue.
	MaxTimeout = 10 * time.Minute
)

// Hook describes one configured hook. The zero values of Timeout,
// BackoffMin and BackoffMax are filled by WithDefaults.
type Hook struct {
	// Name identifies the hook in status, logs, metrics and the payload.
	Name string
	Type Type
	// Events selects what the hook runs for; empty selects everything.
	Events []Event
	// Timeout bounds one run: the process's life for exec, every attempt
	// and the waits between them for http.
	Timeout time.Duration

	// Argv is the program and its arguments (exec); no shell runs it.
	Argv []string

	// URL receives the POST (http).
	URL string
	// Headers are added to every request (http), for example a token; the
	// caller reads them from a file only root can read.
	Headers map[string]string
	// Retries is how many times a failed delivery is repeated (http).
	Retries int
	// BackoffMin and BackoffMax bound the wait before a retry, which
	// doubles from BackoffMin with every attempt (http).
	BackoffMin, BackoffMax time.Duration
	// CAFile names a PEM file of certificates trusted for the URL in
	// addition to the system's (http). Verification is never turned off.
	CAFile string
}

// FieldError is a problem with one field of a Hook. Field is the
// configuration key (for example "timeout"), so a caller can point at the
// right line of the file.
type FieldError struct {
	Field string
	Err   error
}

// Error returns "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// WithDefaults returns h with zero settings replaced by the defaults.
func (h Hook) WithDefaults() Hook {
	if h.Timeout == 0 {
		h.Timeout = DefaultTimeout
	}
	if h.Type == TypeHTTP {
		if h.BackoffMin == 0 {
			h.BackoffMin = DefaultBackoffMin
		}
		if h.BackoffMax == 0 {
			h.BackoffMax = max(DefaultBackoffMax, h.BackoffMin)
		}
	}
	return h
}

// Validate reports every problem of h, each as a *FieldError naming the
// configuration key, joined with errors.Join. It does not touch the file
// system: the program of an exec hook is checked by Options.CheckExec
// before every run, and the CA file is read by New.
func (h Hook) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}

	if msg := health.NameProblem(h.Name); msg != "" {
		bad("name", "%s", msg)
	}

	switch h.Type {
	case TypeExec:
		switch {
		case len(h.Argv) == 0:
			bad("command", "must not be empty for exec hooks")
		case !filepath.IsAbs(h.Argv[0]):
			bad("command", "%q: must be an absolute path", h.Argv[0])
		}
		for i, a := range h.Argv {
			if strings.IndexByte(a, 0) >= 0 {
				bad("command", "argument %d contains a NUL byte", i)
			}
		}
	case TypeHTTP:
		if err := validateURL(h.URL, len(h.Headers) > 0); err != nil {
			bad("url", "%w", err)
		}
		if err := validateHeaders(h.Headers); err != nil {
			bad("headers_file", "%w", err)
		}
		if h.Retries < 0 || h.Retries > MaxRetries {
			bad("retries", "%d: must be between 0 and %d", h.Retries, MaxRetries)
		}
		if h.BackoffMin <= 0 {
			bad("backoff_min", "must be positive")
		}
		if h.BackoffMax < h.BackoffMin {
			bad("backoff_max", "%v is shorter than backoff_min %v", h.BackoffMax, h.BackoffMin)
		}
		if h.CAFile != "" && !filepath.IsAbs(h.CAFile) {
			bad("ca_file", "%q: must be an absolute path", h.CAFile)
		}
	case "":
		bad("type", "must be set (exec or http)")
	default:
		bad("type", "%q: want exec or http", string(h.Type))
	}
	if h.Type != TypeExec && len(h.Argv) > 0 {
		bad("command", "only for exec hooks")
	}
	if h.Type != TypeHTTP {
		if h.URL != "" {
			bad("url", "only for http hooks")
		}
		if len(h.Headers) > 0 {
			bad("headers_file", "only for http hooks")
		}
		if h.Retries != 0 {
			bad("retries", "only for http hooks")
		}
		if h.CAFile != "" {
			bad("ca_file", "only for http hooks")
		}
	}

	switch {
	case h.Timeout <= 0:
		bad("timeout", "must be positive")
	case h.Timeout > MaxTimeout:
		bad("timeout", "%v is longer than %v", h.Timeout, MaxTimeout)
	}
	for i, e := range h.Events {
		if err := e.validate(); err != nil {
			bad("events", "entry %d: %w", i+1, err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks every hook and that their names are unique. The errors
// name the hook by its position and name.
func Validate(hs []Hook) error {
	var errs []error
	seen := map[string]int{}
	for i, h := range hs {
		if err := h.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("hook %d (%q): %w", i+1, h.Name, err))
		}
		if first, dup := seen[h.Name]; dup && h.Name != "" {
			errs = append(errs, fmt.Errorf("hook %d: name %q is already used by hook %d", i+1, h.Name, first))
		} else {
			seen[h.Name] = i + 1
		}
	}
	return errors.Join(errs...)
}

// validateURL accepts http and https URLs without user information. With
// headers, plain http is accepted only to a loopback address, since the
// headers usually carry a secret.
func validateURL(s string, headers bool) error {
	u, err := health.ParseHTTPURL(s, "hooks")
	if err != nil {
		return err
	}
	if headers && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q: headers would cross the network in clear; use https", u.Redacted())
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// reservedHeaders are set by the runner; a configured value would break
// the request or contradict the body.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Transfer-Encoding", "Host", "Connection"}

func validateHeaders(hs map[string]string) error {
	var errs []error
	names := make([]string, 0, len(hs))
	for k := range hs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			errs = append(errs, fmt.Errorf("header %q: not a valid header name", k))
		case slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, k) }):
			errs = append(errs, fmt.Errorf("header %q: set by the agent", k))
		case !httpguts.ValidHeaderFieldValue(hs[k]):
			// The value is not repeated: it is usually a secret.
			errs = append(errs, fmt.Errorf("header %q: the value holds a control character", k))
		}
	}
	return errors.Join(errs...)
}
