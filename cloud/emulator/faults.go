package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// FaultKind names what an injected fault does.
type FaultKind string

// Fault kinds.
const (
	// FaultLatency stalls the request for Delay, then serves it normally.
	FaultLatency FaultKind = "latency"
	// FaultError answers Status/Code without applying the request (429 adds Retry-After).
	FaultError FaultKind = "error"
	// FaultDrop closes the connection without answering and without applying.
	FaultDrop FaultKind = "drop"
	// FaultLost applies the request, then closes the connection without answering.
	FaultLost FaultKind = "lost"
	// FaultWrongTypes applies the request and answers its JSON with every value's type changed.
	FaultWrongTypes FaultKind = "wrongTypes"
	// FaultHuge applies the request and answers its JSON padded to several MiB.
	FaultHuge FaultKind = "huge"
	// FaultWrongIDs applies the request and answers its JSON with every id replaced.
	FaultWrongIDs FaultKind = "wrongIds"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration string ("5s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Fault is an injected misbehaviour for one operation (exact name, "prefix.*" or "*").
// It applies to the next Count matching requests, or, when Count is 0, to each matching request
// with Probability (drawn from the emulator's seeded RNG).
type Fault struct {
	ID          int       `json:"id"`
	Operation   string    `json:"operation"`
	Kind        FaultKind `json:"kind"`
	Delay       Duration  `json:"delay,omitempty"`
	Status      int       `json:"status,omitempty"`
	Code        string    `json:"code,omitempty"`
	RetryAfter  int       `json:"retryAfter,omitempty"` // seconds, for 429
	Count       int       `json:"count,omitempty"`
	Probability float64   `json:"probability,omitempty"`
}

func (f *Fault) validate() error {
	switch f.Kind {
	case FaultLatency:
		if f.Delay <= 0 {
			return fmt.Errorf("fault %s needs a positive delay", f.Kind)
		}
	case FaultError:
		if f.Status == 0 {
			f.Status = 500
		}
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("fault error status %d is not 4xx/5xx", f.Status)
		}
		if f.Code == "" {
			switch f.Status {
			case 500:
				f.Code = "InternalError"
			case 503:
				f.Code = "ServiceUnavailable"
			case 429:
				f.Code = "RequestLimitExceeded"
			default:
				f.Code = "InternalError"
			}
		}
	case FaultDrop, FaultLost, FaultWrongTypes, FaultHuge, FaultWrongIDs:
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Operation == "" {
		return fmt.Errorf("fault needs an operation (name, prefix.* or *)")
	}
	if f.Count < 0 || f.Probability < 0 || f.Probability > 1 {
		return fmt.Errorf("fault count must be >= 0 and probability in [0,1]")
	}
	if f.Count == 0 && f.Probability == 0 {
		return fmt.Errorf("fault needs a count or a probability")
	}
	return nil
}

func (f *Fault) matches(op string) bool {
	switch {
	case f.Operation == "*":
		return true
	case strings.HasSuffix(f.Operation, ".*"):
		return strings.HasPrefix(op, strings.TrimSuffix(f.Operation, "*"))
	default:
		return f.Operation == op
	}
}

// AddFault installs a fault and answers its id.
func (e *Emulator) AddFault(f Fault) (int, error) {
	if err := f.validate(); err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faultSeq++
	f.ID = e.faultSeq
	e.faults = append(e.faults, &f)
	return f.ID, nil
}

// Faults answers the installed faults (with remaining counts).
func (e *Emulator) Faults() []Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Fault, 0, len(e.faults))
	for _, f := range e.faults {
		out = append(out, *f)
	}
	return out
}

// ClearFaults removes all faults.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

// takeFault picks the first fault that fires for op, consuming one count.
func (e *Emulator) takeFault(op string) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range e.faults {
		if !f.matches(op) {
			continue
		}
		if f.Count > 0 {
			f.Count--
			fired := *f
			if f.Count == 0 {
				e.faults = append(e.faults[:i:i], e.faults[i+1:]...)
			}
			return &fired
		}
		if e.rng.Float64() < f.Probability {
			fired := *f
			return &fired
		}
	}
	return nil
}

// hostile rewrites a successful JSON answer according to a hostile fault kind.
func hostile(kind FaultKind, body []byte) []byte {
	var v any
	if len(body) == 0 || json.Unmarshal(body, &v) != nil {
		v = map[string]any{}
	}
	switch kind {
	case FaultWrongTypes:
		v = wrongTypes(v)
		if m, ok := v.(map[string]any); ok && len(m) == 0 {
			v = []any{"unexpected"}
		}
	case FaultWrongIDs:
		v = wrongIDs("", v)
	case FaultHuge:
		m, ok := v.(map[string]any)
		if !ok {
			m = map[string]any{}
		}
		m["padding"] = strings.Repeat("x", 6<<20)
		v = m
	}
	out, _ := json.Marshal(v)
	return out
}

func wrongTypes(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = wrongTypes(x)
		}
		return t
	case []any:
		return map[string]any{"items": len(t)}
	case string:
		return 12345
	case float64:
		return fmt.Sprint(t)
	case bool:
		return fmt.Sprint(t)
	case nil:
		return []any{}
	}
	return v
}

func wrongIDs(key string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = wrongIDs(k, x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = wrongIDs(key, x)
		}
		return t
	case string:
		lk := strings.ToLower(key)
		if strings.HasSuffix(lk, "id") || strings.HasSuffix(lk, "ids") || strings.HasSuffix(lk, "marker") {
			if i := strings.IndexByte(t, '-'); i > 0 {
				return t[:i+1] + "wrong0" + t[i+1:]
			}
			return "wrong-" + t
		}
	}
	return v
}
