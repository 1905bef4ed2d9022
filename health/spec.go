package health

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Type is the kind of a check.
type Type string

// The check types.
const (
	// TypeTCP passes when a TCP connection to Target is accepted.
	TypeTCP Type = "tcp"
	// TypeHTTP passes when a GET of Target (http or https) answers with a
	// status in ExpectStatus and a body containing ExpectBody.
	TypeHTTP Type = "http"
	// TypeExec passes when Command exits with status 0.
	TypeExec Type = "exec"
)

// Defaults applied by Spec.WithDefaults.
const (
	DefaultInterval         = 2 * time.Second
	DefaultTimeout          = 1 * time.Second
	DefaultRise             = 2
	DefaultFall             = 3
	DefaultTrackValueFailed = 1
)

// Limits enforced by Spec.Validate.
const (
	// MinInterval keeps a misconfigured check from spinning.
	MinInterval = 10 * time.Millisecond
	// MaxRiseFall bounds rise and fall; larger values only hide outages.
	MaxRiseFall = 1000
	// MaxTrackValue is keepalived's largest weight magnitude; larger values
	// have no further effect.
	MaxTrackValue = 254
	maxNameLen    = 64
)

// Verdict is the state of a check after rise and fall are applied.
type Verdict int

// The verdicts. Unknown is the zero value and means "not set"; a running
// check is always Healthy or Failed.
const (
	Unknown Verdict = iota
	Healthy
	Failed
)

// String returns "unknown", "healthy" or "failed".
func (v Verdict) String() string {
	switch v {
	case Healthy:
		return "healthy"
	case Failed:
		return "failed"
	default:
		return "unknown"
	}
}

// MarshalText renders the verdict as its String, so status JSON reads well.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (v *Verdict) UnmarshalText(b []byte) error {
	p, err := ParseVerdict(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// ParseVerdict parses "healthy" or "failed" (the values of the initial
// setting) and "unknown".
func ParseVerdict(s string) (Verdict, error) {
	switch s {
	case "healthy":
		return Healthy, nil
	case "failed":
		return Failed, nil
	case "unknown":
		return Unknown, nil
	}
	return Unknown, fmt.Errorf("verdict %q: want healthy or failed", s)
}

// FieldError is a problem with one field of a Spec. Field is the
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

// Spec describes one check. The zero values of Interval, Timeout, Rise,
// Fall, Initial, ExpectStatus and TrackValueFailed are filled by
// WithDefaults.
type Spec struct {
	// Name identifies the check in status, logs and metrics.
	Name string
	Type Type
	// Target is HOST:PORT for tcp and a http or https URL for http.
	Target string
	// Command is the argv of an exec check; it runs without a shell.
	Command []string
	// Interval is the time between the starts of two runs; Timeout bounds
	// one run. Timeout may exceed Interval: runs never overlap, so a run
	// that takes longer than Interval is followed at once by the next.
	Interval, Timeout time.Duration
	// Rise consecutive passes make the verdict Healthy, Fall consecutive
	// failures make it Failed; until then the verdict is Initial.
	Rise, Fall int
	Initial    Verdict
	// ExpectStatus is the set of acceptable HTTP statuses (http only).
	ExpectStatus StatusRange
	// ExpectBody must occur in the first BodyLimit bytes of the body (http
	// only); empty accepts any body.
	ExpectBody string
	// TLSSkipVerify turns off certificate verification (https only).
	TLSSkipVerify bool
	// TrackFile, if set, receives the verdict for keepalived's track_file:
	// "0" when healthy, TrackValueFailed when failed.
	TrackFile        string
	TrackValueFailed int
}

// WithDefaults returns s with zero settings replaced by the defaults. The
// timeout default is shortened to half the interval when the interval is
// not longer than the default timeout: a timeout may exceed the interval
// only when it is configured, since a default one would stretch the
// cadence the operator chose (a hanging service would be detected only
// after Fall timeouts, not Fall intervals).
func (s Spec) WithDefaults() Spec {
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
		if s.Timeout >= s.Interval {
			s.Timeout = s.Interval / 2
		}
	}
	if s.Rise == 0 {
		s.Rise = DefaultRise
	}
	if s.Fall == 0 {
		s.Fall = DefaultFall
	}
	if s.Initial == Unknown {
		s.Initial = Failed
	}
	if s.Type == TypeHTTP && s.ExpectStatus.IsZero() {
		s.ExpectStatus = defaultStatus
	}
	if s.TrackValueFailed == 0 {
		s.TrackValueFailed = DefaultTrackValueFailed
	}
	return s
}

// Validate reports every problem of s, each as a *FieldError naming the
// configuration key, joined with errors.Join. It does not touch the file
// system; exec commands are checked by ValidateCommand.
func (s Spec) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}

	if msg := NameProblem(s.Name); msg != "" {
		bad("name", "%s", msg)
	}

	switch s.Type {
	case TypeTCP:
		if err := validateHostPort(s.Target); err != nil {
			bad("target", "%w", err)
		}
	case TypeHTTP:
		if err := validateURL(s.Target); err != nil {
			bad("target", "%w", err)
		} else if s.TLSSkipVerify && !strings.HasPrefix(strings.ToLower(s.Target), "https:") {
			bad("tls_skip_verify", "only for https targets")
		}
	case TypeExec:
		if s.Target != "" {
			bad("target", "not used by exec checks (use command)")
		}
		switch {
		case len(s.Command) == 0:
			bad("command", "must not be empty for exec checks")
		case !filepath.IsAbs(s.Command[0]):
			bad("command", "%q: must be an absolute path", s.Command[0])
		}
		for i, a := range s.Command {
			if strings.IndexByte(a, 0) >= 0 {
				bad("command", "argument %d contains a NUL byte", i)
			}
		}
	case "":
		bad("type", "must be set (tcp, http or exec)")
	default:
		bad("type", "%q: want tcp, http or exec", string(s.Type))
	}
	if s.Type != TypeExec && len(s.Command) > 0 {
		bad("command", "only for exec checks")
	}
	if s.Type != TypeHTTP {
		if !s.ExpectStatus.IsZero() {
			bad("expect_status", "only for http checks")
		}
		if s.ExpectBody != "" {
			bad("expect_body", "only for http checks")
		}
		if s.TLSSkipVerify {
			bad("tls_skip_verify", "only for http checks")
		}
	}

	switch {
	case s.Interval <= 0:
		bad("interval", "must be positive")
	case s.Interval < MinInterval:
		bad("interval", "%v is shorter than %v", s.Interval, MinInterval)
	}
	if s.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	if s.Rise < 1 || s.Rise > MaxRiseFall {
		bad("rise", "%d: must be between 1 and %d", s.Rise, MaxRiseFall)
	}
	if s.Fall < 1 || s.Fall > MaxRiseFall {
		bad("fall", "%d: must be between 1 and %d", s.Fall, MaxRiseFall)
	}
	if s.Initial != Healthy && s.Initial != Failed {
		bad("initial", "must be healthy or failed")
	}

	if s.TrackFile != "" {
		switch {
		case !filepath.IsAbs(s.TrackFile):
			bad("track_file", "%q: must be an absolute path", s.TrackFile)
		case strings.HasSuffix(s.TrackFile, "/") || filepath.Clean(s.TrackFile) == "/":
			bad("track_file", "%q: must name a file, not a directory", s.TrackFile)
		}
	}
	if s.TrackValueFailed < 1 || s.TrackValueFailed > MaxTrackValue {
		bad("track_value_failed", "%d: must be between 1 and %d", s.TrackValueFailed, MaxTrackValue)
	}
	return errors.Join(errs...)
}

// NameProblem says what is wrong with the name of a check or a hook, or ""
// when nothing is.
func NameProblem(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("longer than %d characters", maxNameLen)
	case !ValidName(name):
		return fmt.Sprintf("%q: use only letters, digits, '.', '_' and '-'", name)
	}
	return ""
}

// ValidName reports whether s uses only letters, digits, '.', '_' and '-':
// the names of checks and hooks, which appear in paths, labels and logs.
func ValidName(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

func validateHostPort(s string) error {
	if s == "" {
		return errors.New("must be HOST:PORT for tcp checks")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("%q: missing host", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q: port must be a number between 1 and 65535", s)
	}
	return nil
}

func validateURL(s string) error {
	_, err := ParseHTTPURL(s, "checks")
	return err
}

// ParseHTTPURL parses the URL of an http check or hook (what names them in
// the message): http or https, with a host and without user information,
// which would end up in status output and logs. Its errors never repeat a
// password.
func ParseHTTPURL(s, what string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("must be a http or https URL for http %s", what)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if u.User != nil {
		return nil, errors.New("URL must not contain user information")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q: missing host", s)
	}
	return u, nil
}
