package hooks

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validExec() Hook {
	return Hook{Name: "notify", Type: TypeExec, Argv: []string{"/usr/local/bin/notify", "--all"}}.WithDefaults()
}

func validHTTP() Hook {
	return Hook{Name: "pager", Type: TypeHTTP, URL: "https://hooks.example/failover", Retries: DefaultRetries}.WithDefaults()
}

func TestWithDefaults(t *testing.T) {
	got := Hook{Name: "a", Type: TypeHTTP, URL: "https://x"}.WithDefaults()
	if got.Timeout != DefaultTimeout || got.BackoffMin != DefaultBackoffMin || got.BackoffMax != DefaultBackoffMax || got.Retries != 0 {
		t.Errorf("http defaults: %+v", got)
	}
	got = Hook{Name: "a", Type: TypeHTTP, URL: "https://x", BackoffMin: time.Minute}.WithDefaults()
	if got.BackoffMax != time.Minute {
		t.Errorf("backoff_max with a long backoff_min: %v, want backoff_min", got.BackoffMax)
	}
	got = Hook{Name: "a", Type: TypeExec, Argv: []string{"/x"}, Timeout: time.Second}.WithDefaults()
	if got.Timeout != time.Second || got.BackoffMin != 0 {
		t.Errorf("exec defaults: %+v", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Hook)
		base   func() Hook
		// fields are the configuration keys the errors must name; none
		// means valid.
		fields []string
		want   string
	}{
		{name: "exec ok", base: validExec},
		{name: "http ok", base: validHTTP},
		{name: "http on loopback with headers", base: validHTTP, mutate: func(h *Hook) {
			h.URL, h.Headers = "http://127.0.0.1:8080/x", map[string]string{"X-Token": "s"}
		}},
		{name: "http localhost with headers", base: validHTTP, mutate: func(h *Hook) {
			h.URL, h.Headers = "http://localhost/x", map[string]string{"X-Token": "s"}
		}},
		{name: "plain http without headers", base: validHTTP, mutate: func(h *Hook) { h.URL = "http://relay.example/x" }},
		{name: "events", base: validExec, mutate: func(h *Hook) {
			h.Events = []Event{{Kind: KindTransition, To: StateMaster}, {Kind: KindCloudError}}
		}},

		{name: "no name", base: validExec, mutate: func(h *Hook) { h.Name = "" }, fields: []string{"name"}},
		{name: "bad name", base: validExec, mutate: func(h *Hook) { h.Name = "a b" }, fields: []string{"name"}, want: "letters"},
		{name: "long name", base: validExec, mutate: func(h *Hook) { h.Name = strings.Repeat("a", 65) }, fields: []string{"name"}},
		{name: "no type", base: validExec, mutate: func(h *Hook) { h.Type = "" }, fields: []string{"type", "command"}},
		{name: "bad type", base: validExec, mutate: func(h *Hook) { h.Type = "shell" }, fields: []string{"type", "command"}, want: "want exec or http"},
		{name: "no command", base: validExec, mutate: func(h *Hook) { h.Argv = nil }, fields: []string{"command"}},
		{name: "relative command", base: validExec, mutate: func(h *Hook) { h.Argv = []string{"notify"} }, fields: []string{"command"}, want: "absolute"},
		{name: "NUL", base: validExec, mutate: func(h *Hook) { h.Argv = []string{"/x", "a\x00b"} }, fields: []string{"command"}, want: "argument 1"},
		{name: "url on exec", base: validExec, mutate: func(h *Hook) { h.URL = "https://x" }, fields: []string{"url"}},
		{name: "retries on exec", base: validExec, mutate: func(h *Hook) { h.Retries = 1 }, fields: []string{"retries"}},
		{name: "headers on exec", base: validExec, mutate: func(h *Hook) { h.Headers = map[string]string{"A": "b"} }, fields: []string{"headers_file"}},
		{name: "ca on exec", base: validExec, mutate: func(h *Hook) { h.CAFile = "/etc/ca.pem" }, fields: []string{"ca_file"}},
		{name: "command on http", base: validHTTP, mutate: func(h *Hook) { h.Argv = []string{"/x"} }, fields: []string{"command"}},
		{name: "no url", base: validHTTP, mutate: func(h *Hook) { h.URL = "" }, fields: []string{"url"}},
		{name: "ftp", base: validHTTP, mutate: func(h *Hook) { h.URL = "ftp://x/y" }, fields: []string{"url"}, want: "scheme"},
		{name: "user info", base: validHTTP, mutate: func(h *Hook) { h.URL = "https://u:secret@x/y" }, fields: []string{"url"}, want: "user information"},
		{name: "no host", base: validHTTP, mutate: func(h *Hook) { h.URL = "https:///y" }, fields: []string{"url"}, want: "missing host"},
		{name: "headers in clear", base: validHTTP, mutate: func(h *Hook) {
			h.URL, h.Headers = "http://relay.example/x", map[string]string{"X-Token": "s"}
		}, fields: []string{"url"}, want: "in clear"},
		{name: "bad header name", base: validHTTP, mutate: func(h *Hook) { h.Headers = map[string]string{"X Token": "s"} }, fields: []string{"headers_file"}},
		{name: "header value with newline", base: validHTTP, mutate: func(h *Hook) { h.Headers = map[string]string{"X-Token": "s\r\nEvil: 1"} }, fields: []string{"headers_file"}, want: "control character"},
		{name: "reserved header", base: validHTTP, mutate: func(h *Hook) { h.Headers = map[string]string{"content-type": "text/plain"} }, fields: []string{"headers_file"}, want: "set by the agent"},
		{name: "negative retries", base: validHTTP, mutate: func(h *Hook) { h.Retries = -1 }, fields: []string{"retries"}},
		{name: "too many retries", base: validHTTP, mutate: func(h *Hook) { h.Retries = MaxRetries + 1 }, fields: []string{"retries"}},
		{name: "backoff", base: validHTTP, mutate: func(h *Hook) { h.BackoffMin, h.BackoffMax = time.Second, time.Millisecond }, fields: []string{"backoff_max"}},
		{name: "zero backoff", base: validHTTP, mutate: func(h *Hook) { h.BackoffMin = 0 }, fields: []string{"backoff_min"}},
		{name: "relative ca", base: validHTTP, mutate: func(h *Hook) { h.CAFile = "ca.pem" }, fields: []string{"ca_file"}},
		{name: "zero timeout", base: validExec, mutate: func(h *Hook) { h.Timeout = 0 }, fields: []string{"timeout"}},
		{name: "long timeout", base: validExec, mutate: func(h *Hook) { h.Timeout = time.Hour }, fields: []string{"timeout"}},
		{name: "bad event", base: validExec, mutate: func(h *Hook) { h.Events = []Event{{Kind: KindDrain}, {Kind: "failover"}} }, fields: []string{"events"}, want: "entry 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.base()
			if tt.mutate != nil {
				tt.mutate(&h)
			}
			err := h.Validate()
			got := fieldsOf(err)
			if !reflect.DeepEqual(got, tt.fields) {
				t.Fatalf("fields %v, want %v (err: %v)", got, tt.fields, err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q repeats a secret", err)
			}
		})
	}
}

func fieldsOf(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	var walk func(error)
	walk = func(e error) {
		var fe *FieldError
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		}
	}
	walk(err)
	return out
}

func TestValidateList(t *testing.T) {
	a, b := validExec(), validHTTP()
	if err := Validate([]Hook{a, b}); err != nil {
		t.Fatalf("valid hooks: %v", err)
	}
	b.Name = a.Name
	err := Validate([]Hook{a, b})
	if err == nil || !strings.Contains(err.Error(), `hook 2: name "notify" is already used by hook 1`) {
		t.Errorf("duplicate names: %v", err)
	}
	b.Timeout = -1
	err = Validate([]Hook{a, b})
	if err == nil || !strings.Contains(err.Error(), `hook 2 ("notify"): timeout: must be positive`) {
		t.Errorf("a bad hook is not named: %v", err)
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		in      string
		want    Event
		wantErr string
	}{
		{in: "transition", want: Event{Kind: KindTransition}},
		{in: "transition:MASTER", want: Event{Kind: KindTransition, To: StateMaster}},
		{in: "transition:fault", want: Event{Kind: KindTransition, To: StateFault}},
		{in: "transition:STOP", want: Event{Kind: KindTransition, To: StateStop}},
		{in: "cloud_claimed", want: Event{Kind: KindCloudClaimed}},
		{in: "cloud_confirmed", want: Event{Kind: KindCloudConfirmed}},
		{in: "cloud_error", want: Event{Kind: KindCloudError}},
		{in: "conflict", want: Event{Kind: KindConflict}},
		{in: "drain", want: Event{Kind: KindDrain}},
		{in: "resume", want: Event{Kind: KindResume}},
		{in: "failover", wantErr: `"failover": unknown event; want one of transition, cloud_claimed`},
		{in: "Transition", wantErr: "unknown event"},
		{in: "transition:LEADER", wantErr: `unknown state "LEADER"`},
		{in: "transition:", wantErr: "no state after the colon"},
		{in: "drain:MASTER", wantErr: "only transition takes a state"},
	}
	for _, tt := range tests {
		got, err := ParseEvent(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEvent(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEvent(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if again, err := ParseEvent(got.String()); err != nil || again != got {
			t.Errorf("ParseEvent(%q.String()) = %v, %v", tt.in, again, err)
		}
	}
}

func TestParseEvents(t *testing.T) {
	got, err := ParseEvents([]string{"drain", "", "transition:BACKUP", "nope"})
	if want := []Event{{Kind: KindDrain}, {Kind: KindTransition, To: StateBackup}}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "entry 2: empty event") || !strings.Contains(err.Error(), `entry 4: "nope"`) {
		t.Errorf("errors: %v", err)
	}
}

func TestSelects(t *testing.T) {
	master := &Payload{Event: KindTransition, From: StateBackup, To: StateMaster}
	backup := &Payload{Event: KindTransition, From: StateMaster, To: StateBackup}
	cloudErr := &Payload{Event: KindCloudError, To: StateMaster}
	tests := []struct {
		name string
		sel  []Event
		p    *Payload
		want bool
	}{
		{"empty takes all", nil, cloudErr, true},
		{"any transition", []Event{{Kind: KindTransition}}, backup, true},
		{"transition to master", []Event{{Kind: KindTransition, To: StateMaster}}, master, true},
		{"not to backup", []Event{{Kind: KindTransition, To: StateMaster}}, backup, false},
		{"kind mismatch", []Event{{Kind: KindTransition}}, cloudErr, false},
		{"second entry", []Event{{Kind: KindDrain}, {Kind: KindCloudError}}, cloudErr, true},
		{"state only narrows transitions", []Event{{Kind: KindTransition, To: StateMaster}}, cloudErr, false},
	}
	for _, tt := range tests {
		if got := selects(tt.sel, tt.p); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestHookEnv(t *testing.T) {
	p := &Payload{Hook: "h", Event: KindTransition, Instance: "VI_1", From: StateBackup, To: StateMaster, Generation: 7}
	got := hookEnv([]string{"PATH=/bin", "HAVIP_TO=FAULT", "LANG=C"}, p)
	want := []string{"PATH=/bin", "LANG=C", "HAVIP_HOOK=h", "HAVIP_EVENT=transition", "HAVIP_INSTANCE=VI_1",
		"HAVIP_FROM=BACKUP", "HAVIP_TO=MASTER", "HAVIP_GENERATION=7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env\n got %q\nwant %q", got, want)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	tests := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{0, 0, 50 * time.Millisecond},
		{0, 0.999999999, 100 * time.Millisecond},
		{1, 0, 100 * time.Millisecond},
		{2, 0.5, 300 * time.Millisecond},
		{3, 0, 400 * time.Millisecond},
		{4, 0, 500 * time.Millisecond},
		{5, 0, 500 * time.Millisecond},
		{1000, 0.999999999, time.Second},
	}
	for _, tt := range tests {
		got := backoff(tt.attempt, lo, hi, tt.jitter)
		if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("backoff(%d, jitter %v) = %v, want %v", tt.attempt, tt.jitter, got, tt.want)
		}
	}
	if got := backoff(62, time.Nanosecond, time.Duration(1<<62), 0); got <= 0 {
		t.Errorf("a long run of doublings overflowed: %v", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{"99999999999999999999", 0, false},
		{"9999999999", maxRetryAfter * time.Second, true},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"Fri, 01 May 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Fri, 01 May 2026 11:00:00 GMT", 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "Fri, 01 May 2026 12:00:30 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "-1"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 {
			t.Errorf("parseRetryAfter(%q) = %v, a negative wait", s, d)
		}
		if !ok && d != 0 {
			t.Errorf("parseRetryAfter(%q) = %v with ok false", s, d)
		}
	})
}

func TestRunOutcome(t *testing.T) {
	tests := []struct {
		run  Run
		want string
	}{
		{Run{Result: ResultOK}, "ok"},
		{Run{Result: ResultOK, HTTPStatus: 204, Attempts: 3}, "ok [3 attempts]"},
		{Run{Result: ResultFailed, ExitCode: 3}, "exit status 3"},
		{Run{Result: ResultFailed, ExitCode: -1, Error: "signal: terminated"}, "failed: signal: terminated"},
		{Run{Result: ResultFailed, HTTPStatus: 404, Attempts: 1}, "HTTP 404"},
		{Run{Result: ResultFailed, HTTPStatus: 503, Attempts: 2, Error: "no retry: the next one, in 30s, would start past the timeout"},
			"HTTP 503: no retry: the next one, in 30s, would start past the timeout [2 attempts]"},
		{Run{Result: ResultTimeout, timeout: 5 * time.Second}, "timed out after 5s"},
		{Run{Result: ResultTimeout, timeout: 5 * time.Second, HTTPStatus: 503, Attempts: 4}, "timed out after 5s (last HTTP 503) [4 attempts]"},
		{Run{Result: ResultError, Error: "refused: command: empty"}, "error: refused: command: empty"},
		{Run{Result: ResultStopped}, "stopped at shutdown"},
	}
	for _, tt := range tests {
		if got := tt.run.Outcome(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.run, got, tt.want)
		}
	}
}
