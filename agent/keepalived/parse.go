package keepalived

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// State is a VRRP state as keepalived names it.
type State string

// The states keepalived reports. MasterRxLowerPri is still MASTER; the
// *Priority values report a priority change without a transition.
const (
	StateMaster           State = "MASTER"
	StateBackup           State = "BACKUP"
	StateFault            State = "FAULT"
	StateStop             State = "STOP"
	StateDeleted          State = "DELETED"
	StateMasterRxLowerPri State = "MASTER_RX_LOWER_PRI"
	StateMasterPriority   State = "MASTER_PRIORITY"
	StateBackupPriority   State = "BACKUP_PRIORITY"
)

// IsPriorityChange reports whether s only reports a new priority.
func (s State) IsPriorityChange() bool {
	return s == StateMasterPriority || s == StateBackupPriority
}

// Kind is what a notification is about.
type Kind string

// Kinds of notification that carry VRRP state.
const (
	KindInstance Kind = "INSTANCE"
	KindGroup    Kind = "GROUP"
)

// Event is one parsed notification.
type Event struct {
	Kind     Kind
	Name     string
	State    State
	Priority int // -1 when absent
}

// MaxLineLength bounds a FIFO line; keepalived's own lines are far shorter.
const MaxLineLength = 512

// Reason classifies a line that produced no event. The values are used as
// metric label values and in status.
type Reason string

// Reasons for ignoring a line.
const (
	ReasonMalformed    Reason = "malformed"
	ReasonTooLong      Reason = "too_long"
	ReasonInvalidUTF8  Reason = "invalid_utf8"
	ReasonUnknownState Reason = "unknown_state"
	ReasonNotVRRP      Reason = "not_vrrp" // VS and RS lines about virtual servers
	ReasonUnknownName  Reason = "unknown_instance"
)

// Reasons lists every Reason, for metrics and status.
var Reasons = []Reason{ReasonMalformed, ReasonTooLong, ReasonInvalidUTF8, ReasonUnknownState, ReasonNotVRRP, ReasonUnknownName}

// LineError says why a line was ignored.
type LineError struct {
	Reason Reason
	Detail string
}

func (e *LineError) Error() string { return string(e.Reason) + ": " + e.Detail }

// ReasonOf returns the reason carried by err, or ReasonMalformed.
func ReasonOf(err error) Reason {
	var le *LineError
	if errors.As(err, &le) {
		return le.Reason
	}
	return ReasonMalformed
}

func lineErr(r Reason, format string, args ...any) error {
	return &LineError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ParseLine parses one vrrp_notify_fifo line, without its newline:
//
//	INSTANCE "VI_1" MASTER 100
//	GROUP "G1" BACKUP 0
//
// VS and RS lines yield a LineError with ReasonNotVRRP.
func ParseLine(line []byte) (Event, error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > MaxLineLength {
		return Event{}, lineErr(ReasonTooLong, "%d bytes (limit %d)", len(line), MaxLineLength)
	}
	if !utf8.Valid(line) {
		return Event{}, lineErr(ReasonInvalidUTF8, "line is not valid UTF-8")
	}
	f, err := fields(line)
	if err != nil {
		return Event{}, err
	}
	return parseFields(f)
}

// ParseArgs parses the arguments keepalived passes to a notify script:
// TYPE NAME STATE [PRIORITY], with NAME unquoted.
func ParseArgs(args []string) (Event, error) {
	for _, a := range args {
		if !utf8.ValidString(a) {
			return Event{}, lineErr(ReasonInvalidUTF8, "argument is not valid UTF-8")
		}
	}
	return parseFields(args)
}

func parseFields(f []string) (Event, error) {
	if len(f) == 0 {
		return Event{}, lineErr(ReasonMalformed, "empty line")
	}
	kind := Kind(f[0])
	switch kind {
	case KindInstance, KindGroup:
	case "VS", "RS":
		return Event{}, lineErr(ReasonNotVRRP, "%s lines are about virtual servers", f[0])
	default:
		return Event{}, lineErr(ReasonMalformed, "unknown type %q (want INSTANCE or GROUP)", clip(f[0]))
	}
	if len(f) < 3 || len(f) > 4 {
		return Event{}, lineErr(ReasonMalformed, "want TYPE NAME STATE [PRIORITY], got %d fields", len(f))
	}
	ev := Event{Kind: kind, Name: f[1], State: State(f[2]), Priority: -1}
	if ev.Name == "" {
		return Event{}, lineErr(ReasonMalformed, "empty name")
	}
	switch ev.State {
	case StateMaster, StateBackup, StateFault, StateStop, StateDeleted,
		StateMasterRxLowerPri, StateMasterPriority, StateBackupPriority:
	default:
		return Event{}, lineErr(ReasonUnknownState, "unknown state %q", clip(f[2]))
	}
	if len(f) == 4 {
		p, err := strconv.Atoi(f[3])
		if err != nil || p < 0 || p > 255 {
			return Event{}, lineErr(ReasonMalformed, "priority %q is not 0 to 255", clip(f[3]))
		}
		ev.Priority = p
	}
	return ev, nil
}

// fields splits a line on spaces; a field may be double-quoted (names are),
// and quotes cannot be escaped, matching what keepalived writes.
func fields(line []byte) ([]string, error) {
	var out []string
	for i := 0; i < len(line); {
		switch line[i] {
		case ' ', '\t':
			i++
		case '"':
			end := bytes.IndexByte(line[i+1:], '"')
			if end < 0 {
				return nil, lineErr(ReasonMalformed, "unterminated quote")
			}
			out = append(out, string(line[i+1:i+1+end]))
			i += end + 2
			if i < len(line) && line[i] != ' ' && line[i] != '\t' {
				return nil, lineErr(ReasonMalformed, "text after closing quote")
			}
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' {
				if line[j] == '"' {
					return nil, lineErr(ReasonMalformed, "quote inside a word")
				}
				j++
			}
			out = append(out, string(line[i:j]))
			i = j
		}
		if len(out) > 8 {
			return nil, lineErr(ReasonMalformed, "too many fields")
		}
	}
	return out, nil
}

// clip keeps error messages short whatever the input.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
