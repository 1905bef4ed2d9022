package emulator

import (
	"encoding/json"
	"fmt"
	"slices"
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
	// FaultLate applies a mutating request Delay after it was received, whether or not the
	// client is still waiting: a client that gave up loses the answer, not the change, as with
	// a real cloud that cannot recall a request already sent. Reads never fire it.
	FaultLate FaultKind = "late"
	// FaultTransition applies an EIP bind or unbind at once but leaves the EIP binding or
	// unbinding for Delay, as the asynchronous EIP API does. Reads never fire it.
	FaultTransition FaultKind = "transition"
	// FaultStale answers a read from the state as it was Age ago, or before the last Mutations
	// changes, as an eventually consistent API does. Mutating requests never fire it.
	FaultStale FaultKind = "stale"
)

// Bounds of the fault parameters, so that no fault holds a request or the state history
// without limit.
const (
	maxLateDelay = time.Minute
	maxStaleAge  = 10 * time.Minute
	// maxHistory is how many past states the emulator keeps for stale reads.
	maxHistory = 256
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
// with Probability (drawn from the emulator's seeded RNG). With a Window it is removed that long
// after it was added; a Window without Count and Probability applies to every matching request
// until then.
type Fault struct {
	ID          int       `json:"id"`
	Operation   string    `json:"operation"`
	Kind        FaultKind `json:"kind"`
	Delay       Duration  `json:"delay,omitempty"` // latency, late and transition
	Status      int       `json:"status,omitempty"`
	Code        string    `json:"code,omitempty"`
	RetryAfter  int       `json:"retryAfter,omitempty"` // seconds, for 429
	Age         Duration  `json:"age,omitempty"`        // stale: how old the state served is
	Mutations   int       `json:"mutations,omitempty"`  // stale: how many changes the state served misses
	Count       int       `json:"count,omitempty"`
	Probability float64   `json:"probability,omitempty"`
	Window      Duration  `json:"window,omitempty"`

	// expires is when a fault with a Window is removed (machine clock).
	expires time.Time
}

func (f *Fault) validate() error {
	if f.Kind != FaultStale && (f.Age != 0 || f.Mutations != 0) {
		return fmt.Errorf("fault %s: age and mutations are for stale faults", f.Kind)
	}
	switch f.Kind {
	case FaultLatency:
		if f.Delay <= 0 {
			return fmt.Errorf("fault %s needs a positive delay", f.Kind)
		}
	case FaultLate, FaultTransition:
		if f.Delay <= 0 || time.Duration(f.Delay) > maxLateDelay {
			return fmt.Errorf("fault %s needs a delay in (0, %s]", f.Kind, maxLateDelay)
		}
	case FaultStale:
		switch {
		case (f.Age != 0) == (f.Mutations != 0):
			return fmt.Errorf("fault %s needs either an age or a number of mutations", f.Kind)
		case f.Age < 0 || time.Duration(f.Age) > maxStaleAge:
			return fmt.Errorf("fault %s age must be in (0, %s]", f.Kind, maxStaleAge)
		case f.Mutations < 0 || f.Mutations > maxHistory:
			return fmt.Errorf("fault %s mutations must be in [1, %d]", f.Kind, maxHistory)
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
	if f.Count < 0 || f.Probability < 0 || f.Probability > 1 || f.Window < 0 {
		return fmt.Errorf("fault count and window must be >= 0 and probability in [0,1]")
	}
	if f.Count == 0 && f.Probability == 0 && f.Window == 0 {
		return fmt.Errorf("fault needs a count, a probability or a window")
	}
	return nil
}

// firesOn reports whether a fault of this kind can fire for a request of the method: a late
// read would only be latency, and a stale write means nothing.
func (f *Fault) firesOn(mutating bool) bool {
	switch f.Kind {
	case FaultLate, FaultTransition:
		return mutating
	case FaultStale:
		return !mutating
	}
	return true
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
	f.expires = time.Time{}
	if f.Window > 0 {
		f.expires = e.opts.Now().Add(time.Duration(f.Window))
	}
	e.faults = append(e.faults, &f)
	return f.ID, nil
}

// Faults answers the installed faults (with remaining counts).
func (e *Emulator) Faults() []Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expireFaultsLocked()
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

// expireFaultsLocked removes the faults whose window has passed.
func (e *Emulator) expireFaultsLocked() {
	now := e.opts.Now()
	e.faults = slices.DeleteFunc(e.faults, func(f *Fault) bool { return !f.expires.IsZero() && !now.Before(f.expires) })
}

// takeFault picks the first fault that fires for op, consuming one count.
func (e *Emulator) takeFault(op string, mutating bool) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expireFaultsLocked()
	for i, f := range e.faults {
		if !f.matches(op) || !f.firesOn(mutating) {
			continue
		}
		if f.Count == 0 && f.Probability == 0 {
			fired := *f // every request within the window
			return &fired
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
