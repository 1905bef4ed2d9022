package journal

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// absLayout is how WriteText shows a time that is not relative.
const absLayout = "2006-01-02T15:04:05.000Z07:00"

// phase is one phase timing of a transition, as WriteText shows it.
type phase struct {
	name string
	d    func(*Event) time.Duration
}

var phases = []phase{
	{"vips present", func(e *Event) time.Duration { return e.VIPsPresent }},
	{"first announcement", func(e *Event) time.Duration { return e.FirstAnnouncement }},
	{"cloud request sent", func(e *Event) time.Duration { return e.CloudRequestSent }},
	{"cloud confirmed", func(e *Event) time.Duration { return e.CloudConfirmed }},
}

// row is one line of WriteText's output.
type row struct {
	at       time.Time     // for the order
	rel      bool          // show d, not at
	d        time.Duration // since the transition
	instance string
	text     string
}

// termKey names the transition an event belongs to.
type termKey struct {
	instance   string
	generation uint64
}

// WriteText writes events for people, one line each, oldest first. A
// transition shows its absolute time, and its phase timings follow it as
// lines of their own (another event's phase timings are said on its
// line); an event of the same instance and generation as a
// transition in events shows its time relative to that transition
// ("+12ms"); any other event shows its absolute time. Text from the
// journal is shown with control characters replaced, so that a hostile
// message cannot drive the terminal.
func WriteText(w io.Writer, events []Event) {
	rows := textRows(events)
	timeW, instW := 0, 1
	for i := range rows {
		timeW = max(timeW, utf8.RuneCountInString(rows[i].timeText()))
		instW = max(instW, utf8.RuneCountInString(rows[i].instance))
	}
	var b strings.Builder
	for i := range rows {
		r := &rows[i]
		t := r.timeText()
		pad := strings.Repeat(" ", timeW-utf8.RuneCountInString(t))
		if r.rel {
			b.WriteString(pad + t)
		} else {
			b.WriteString(t + pad)
		}
		inst := r.instance
		if inst == "" {
			inst = "-"
		}
		b.WriteString("  " + inst + strings.Repeat(" ", instW-utf8.RuneCountInString(inst)) + "  " + r.text + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

func (r *row) timeText() string {
	if r.rel {
		if r.d < 0 {
			return formatDuration(r.d)
		}
		return "+" + formatDuration(r.d)
	}
	return r.at.Format(absLayout)
}

// textRows turns events into rows in the order of their times (the order
// of events where times are equal).
func textRows(events []Event) []row {
	terms := map[termKey]time.Time{}
	for i := range events {
		if e := &events[i]; e.Kind == KindTransition {
			terms[termKey{e.Instance, e.Generation}] = e.Time
		}
	}
	var rows []row
	for i := range events {
		e := &events[i]
		base, belongs := terms[termKey{e.Instance, e.Generation}]
		transition := e.Kind == KindTransition
		if e.Generation == 0 && !transition {
			belongs = false
		}
		r := row{at: e.Time, instance: clean(e.Instance), text: describe(e, belongs)}
		if belongs && !transition {
			r.rel, r.d = true, e.Time.Sub(base)
		}
		var inline []string
		var phaseRows []row
		for _, p := range phases {
			d := p.d(e)
			switch {
			case d == 0:
			case transition:
				phaseRows = append(phaseRows, row{at: e.Time.Add(d), rel: true, d: d, instance: r.instance, text: p.name})
			default:
				inline = append(inline, p.name+" phase: +"+formatDuration(d))
			}
		}
		if len(inline) > 0 {
			r.text += " (" + strings.Join(inline, ", ") + ")"
		}
		rows = append(rows, r)
		rows = append(rows, phaseRows...)
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.at.Compare(b.at) })
	return rows
}

// describe says what e records, in one line; belongs is whether e's time
// is shown relative to its transition (and its generation need not be said).
func describe(e *Event, belongs bool) string {
	var parts []string
	add := func(s ...string) {
		for _, x := range s {
			if x != "" {
				parts = append(parts, clean(x))
			}
		}
	}
	switch e.Kind {
	case KindTransition:
		add(string(e.From) + " -> " + string(e.To))
		if e.Generation != 0 {
			parts = append(parts, "generation "+strconv.FormatUint(e.Generation, 10))
		}
		if e.Source != "" {
			add("(" + e.Source + ")")
		}
	case KindCloudCall:
		add("cloud", e.Resource, e.Operation)
		switch {
		case e.Status != 0:
			parts = append(parts, strconv.Itoa(e.Status))
		case e.ErrorCode == "":
			parts = append(parts, "no answer")
		}
		add(e.ErrorCode)
	case KindCloudConfirmed:
		add("cloud confirmed", e.Resource)
	case KindHook:
		add("hook", e.Hook, e.Outcome)
	default:
		add(string(e.Kind), e.Resource)
	}
	if e.Kind != KindTransition && e.Generation != 0 && !belongs {
		parts = append(parts, "generation "+strconv.FormatUint(e.Generation, 10))
	}
	if e.Elapsed != 0 {
		parts = append(parts, "in "+formatDuration(e.Elapsed))
	}
	if e.Attempt > 1 {
		parts = append(parts, "attempt "+strconv.Itoa(e.Attempt))
	}
	if e.RequestID != "" {
		add("request-id " + e.RequestID)
	}
	if e.ClientToken != "" {
		add("token " + e.ClientToken)
	}
	s := strings.Join(parts, " ")
	if e.Message != "" {
		s += ": " + clean(e.Message)
	}
	return s
}

// formatDuration shows d short and readable: 27µs, 0.3ms, 12ms, 1.25s, 2m3s.
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < 100*time.Microsecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
	case d < 9950*time.Microsecond: // would round to 10.0ms
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	case d < time.Second-time.Millisecond/2: // would round to 1000ms
		return strconv.FormatInt(int64(d.Round(time.Millisecond)/time.Millisecond), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	}
	return d.Round(time.Second).String()
}

// clean replaces what a terminal would act on (control characters,
// invalid UTF-8) with '?'.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
