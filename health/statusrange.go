package health

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// StatusRange is a set of HTTP status codes such as "200-399" or
// "200,204,300-399". The zero value is empty; WithDefaults replaces it by
// 200-399 for http checks.
type StatusRange struct {
	spans []statusSpan
}

type statusSpan struct{ lo, hi int }

var defaultStatus = StatusRange{spans: []statusSpan{{200, 399}}}

// ParseStatusRange parses a comma-separated list of codes ("200") and
// inclusive ranges ("200-399"). Codes must lie in 100..599.
func ParseStatusRange(s string) (StatusRange, error) {
	if strings.TrimSpace(s) == "" {
		return StatusRange{}, errors.New("status range: empty")
	}
	var r StatusRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return StatusRange{}, fmt.Errorf("status range %q: empty item", s)
		}
		lo, hi, isRange := strings.Cut(item, "-")
		if !isRange {
			hi = lo
		}
		l, err := parseCode(lo)
		if err != nil {
			return StatusRange{}, fmt.Errorf("status range %q: item %q: %w", s, item, err)
		}
		h, err := parseCode(hi)
		if err != nil {
			return StatusRange{}, fmt.Errorf("status range %q: item %q: %w", s, item, err)
		}
		if l > h {
			return StatusRange{}, fmt.Errorf("status range %q: item %q: %d is greater than %d", s, item, l, h)
		}
		r.spans = append(r.spans, statusSpan{l, h})
	}
	return r, nil
}

func parseCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	if len(s) != 3 {
		return 0, fmt.Errorf("%q is not a three-digit status code", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%q is not a three-digit status code", s)
	}
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("%d is outside 100..599", n)
	}
	return n, nil
}

// Contains reports whether code is in the set.
func (r StatusRange) Contains(code int) bool {
	for _, sp := range r.spans {
		if code >= sp.lo && code <= sp.hi {
			return true
		}
	}
	return false
}

// IsZero reports whether r is the empty zero value.
func (r StatusRange) IsZero() bool { return len(r.spans) == 0 }

// String renders r in the syntax ParseStatusRange accepts.
func (r StatusRange) String() string {
	var b strings.Builder
	for i, sp := range r.spans {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(sp.lo))
		if sp.hi != sp.lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(sp.hi))
		}
	}
	return b.String()
}

// MarshalText renders r like String.
func (r StatusRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses b with ParseStatusRange, so the range can be decoded
// straight from TOML or JSON.
func (r *StatusRange) UnmarshalText(b []byte) error {
	p, err := ParseStatusRange(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}
