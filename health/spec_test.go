package health

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerdictText(t *testing.T) {
	for _, v := range []Verdict{Unknown, Healthy, Failed} {
		b, err := v.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Verdict
		if err := got.UnmarshalText(b); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", b, err)
		}
		if got != v {
			t.Errorf("round trip of %v: got %v", v, got)
		}
	}
	if _, err := ParseVerdict("sick"); err == nil {
		t.Error(`ParseVerdict("sick"): no error`)
	}
}

func TestParseStatusRange(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the result
		in200   bool
		in404   bool
		wantErr string
	}{
		{in: "200-399", want: "200-399", in200: true},
		{in: "200", want: "200", in200: true},
		{in: "200,204,300-399", want: "200,204,300-399", in200: true},
		{in: " 200 , 404 ", want: "200,404", in200: true, in404: true},
		{in: "400-499", want: "400-499", in404: true},
		{in: "", wantErr: "empty"},
		{in: "200,", wantErr: "empty item"},
		{in: "abc", wantErr: "three-digit"},
		{in: "99", wantErr: "three-digit"},
		{in: "600", wantErr: "outside 100..599"},
		{in: "399-200", wantErr: "greater than"},
		{in: "200-", wantErr: "three-digit"},
		{in: "+20", wantErr: "three-digit"},
		{in: "-20", wantErr: "three-digit"},
		{in: "200-300-400", wantErr: "three-digit"},
	}
	for _, tt := range tests {
		got, err := ParseStatusRange(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseStatusRange(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseStatusRange(%q): %v", tt.in, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("ParseStatusRange(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got.Contains(200) != tt.in200 || got.Contains(404) != tt.in404 {
			t.Errorf("ParseStatusRange(%q): Contains(200)=%v Contains(404)=%v", tt.in, got.Contains(200), got.Contains(404))
		}
	}
}

func FuzzParseStatusRange(f *testing.F) {
	for _, s := range []string{"200-399", "200", "200,204,300-399", "", ",", "1-2-3", "599-100", " 200 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseStatusRange(s)
		if err != nil {
			if !r.IsZero() {
				t.Fatalf("error %v with non-empty range %v", err, r)
			}
			return
		}
		if r.IsZero() {
			t.Fatalf("ParseStatusRange(%q): empty range without error", s)
		}
		// The rendering parses back to the same set.
		again, err := ParseStatusRange(r.String())
		if err != nil {
			t.Fatalf("ParseStatusRange(%q) = %q, which does not parse: %v", s, r, err)
		}
		if again.String() != r.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, r, again)
		}
		for code := 0; code < 700; code++ {
			if r.Contains(code) != again.Contains(code) {
				t.Fatalf("Contains(%d) differs after round trip of %q", code, s)
			}
			if r.Contains(code) && (code < 100 || code > 599) {
				t.Fatalf("%q contains %d", s, code)
			}
		}
	})
}

func TestStatusRangeText(t *testing.T) {
	var r StatusRange
	if err := r.UnmarshalText([]byte("200,300-302")); err != nil {
		t.Fatal(err)
	}
	b, _ := r.MarshalText()
	if string(b) != "200,300-302" {
		t.Errorf("MarshalText = %q", b)
	}
	if err := r.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(nope): no error")
	}
}

func validSpec(typ Type) Spec {
	s := Spec{Name: "web", Type: typ, Interval: 2 * time.Second, Timeout: time.Second,
		Rise: 2, Fall: 3, Initial: Failed, TrackValueFailed: 1}
	switch typ {
	case TypeTCP:
		s.Target = "127.0.0.1:80"
	case TypeHTTP:
		s.Target = "http://127.0.0.1:80/healthz"
		s.ExpectStatus = defaultStatus
	case TypeExec:
		s.Command = []string{"/usr/local/bin/check-db", "--quick"}
	}
	return s
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		mod  func(*Spec)
		want string // substring of the error; empty: valid
	}{
		{name: "tcp ok", typ: TypeTCP},
		{name: "http ok", typ: TypeHTTP},
		{name: "https skip verify ok", typ: TypeHTTP, mod: func(s *Spec) { s.Target = "https://[::1]:8443/"; s.TLSSkipVerify = true }},
		{name: "exec ok", typ: TypeExec},
		{name: "track file ok", typ: TypeTCP, mod: func(s *Spec) { s.TrackFile = "/run/havip-agent/track/web"; s.TrackValueFailed = 254 }},
		{name: "empty name", typ: TypeTCP, mod: func(s *Spec) { s.Name = "" }, want: "name: must not be empty"},
		{name: "bad name", typ: TypeTCP, mod: func(s *Spec) { s.Name = "a b" }, want: "name: \"a b\""},
		{name: "long name", typ: TypeTCP, mod: func(s *Spec) { s.Name = strings.Repeat("a", 65) }, want: "name: longer"},
		{name: "no type", typ: TypeTCP, mod: func(s *Spec) { s.Type = "" }, want: "type: must be set"},
		{name: "bad type", typ: TypeTCP, mod: func(s *Spec) { s.Type = "icmp" }, want: `type: "icmp"`},
		{name: "tcp no target", typ: TypeTCP, mod: func(s *Spec) { s.Target = "" }, want: "target: must be HOST:PORT"},
		{name: "tcp no port", typ: TypeTCP, mod: func(s *Spec) { s.Target = "127.0.0.1" }, want: "target:"},
		{name: "tcp bad port", typ: TypeTCP, mod: func(s *Spec) { s.Target = "127.0.0.1:http" }, want: "target: \"127.0.0.1:http\": port"},
		{name: "tcp port 0", typ: TypeTCP, mod: func(s *Spec) { s.Target = "127.0.0.1:0" }, want: "port must be"},
		{name: "tcp no host", typ: TypeTCP, mod: func(s *Spec) { s.Target = ":80" }, want: "missing host"},
		{name: "tcp with command", typ: TypeTCP, mod: func(s *Spec) { s.Command = []string{"/bin/true"} }, want: "command: only for exec"},
		{name: "tcp with expect_status", typ: TypeTCP, mod: func(s *Spec) { s.ExpectStatus = defaultStatus }, want: "expect_status: only for http"},
		{name: "tcp with expect_body", typ: TypeTCP, mod: func(s *Spec) { s.ExpectBody = "ok" }, want: "expect_body: only for http"},
		{name: "http bad scheme", typ: TypeHTTP, mod: func(s *Spec) { s.Target = "ftp://127.0.0.1/" }, want: "target: \"ftp://127.0.0.1/\": scheme"},
		{name: "http no host", typ: TypeHTTP, mod: func(s *Spec) { s.Target = "http:///x" }, want: "missing host"},
		{name: "http bad url", typ: TypeHTTP, mod: func(s *Spec) { s.Target = "http://[::1" }, want: "target: invalid URL"},
		{name: "http skip verify on http", typ: TypeHTTP, mod: func(s *Spec) { s.TLSSkipVerify = true }, want: "tls_skip_verify: only for https"},
		{name: "exec no command", typ: TypeExec, mod: func(s *Spec) { s.Command = nil }, want: "command: must not be empty"},
		{name: "exec relative", typ: TypeExec, mod: func(s *Spec) { s.Command = []string{"check-db"} }, want: "absolute path"},
		{name: "exec with target", typ: TypeExec, mod: func(s *Spec) { s.Target = "x" }, want: "target: not used"},
		{name: "zero interval", typ: TypeTCP, mod: func(s *Spec) { s.Interval = 0 }, want: "interval: must be positive"},
		{name: "tiny interval", typ: TypeTCP, mod: func(s *Spec) { s.Interval = time.Millisecond; s.Timeout = time.Microsecond }, want: "interval: 1ms is shorter"},
		{name: "zero timeout", typ: TypeTCP, mod: func(s *Spec) { s.Timeout = 0 }, want: "timeout: must be positive"},
		{name: "timeout equal interval", typ: TypeTCP, mod: func(s *Spec) { s.Timeout = s.Interval }},
		{name: "timeout above interval", typ: TypeExec, mod: func(s *Spec) { s.Interval, s.Timeout = time.Second, time.Minute }},
		{name: "negative timeout", typ: TypeTCP, mod: func(s *Spec) { s.Timeout = -time.Second }, want: "timeout: must be positive"},
		{name: "rise 0", typ: TypeTCP, mod: func(s *Spec) { s.Rise = 0 }, want: "rise: 0"},
		{name: "fall huge", typ: TypeTCP, mod: func(s *Spec) { s.Fall = 1001 }, want: "fall: 1001"},
		{name: "initial unknown", typ: TypeTCP, mod: func(s *Spec) { s.Initial = Unknown }, want: "initial: must be healthy or failed"},
		{name: "relative track", typ: TypeTCP, mod: func(s *Spec) { s.TrackFile = "track/web" }, want: "track_file: \"track/web\""},
		{name: "track dir", typ: TypeTCP, mod: func(s *Spec) { s.TrackFile = "/run/x/" }, want: "track_file: \"/run/x/\": must name a file"},
		{name: "track value 0", typ: TypeTCP, mod: func(s *Spec) { s.TrackValueFailed = 0 }, want: "track_value_failed: 0"},
		{name: "track value 255", typ: TypeTCP, mod: func(s *Spec) { s.TrackValueFailed = 255 }, want: "track_value_failed: 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec(tt.typ)
			if tt.mod != nil {
				tt.mod(&s)
			}
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want containing %q", err, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Errorf("Validate() = %v, not a *FieldError", err)
			}
		})
	}
}

func TestSpecValidateReportsAll(t *testing.T) {
	s := validSpec(TypeTCP)
	s.Rise, s.Fall = 0, 0
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "rise:") || !strings.Contains(err.Error(), "fall:") {
		t.Fatalf("Validate() = %v, want both rise and fall", err)
	}
}

func TestSpecValidateHidesPassword(t *testing.T) {
	for _, target := range []string{"http://user:s3cret@127.0.0.1/", "http://user:s3cret@[::1/"} {
		s := validSpec(TypeHTTP)
		s.Target = target
		err := s.Validate()
		if err == nil {
			t.Fatalf("%s: no error", target)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	got := Spec{Name: "web", Type: TypeHTTP, Target: "http://127.0.0.1/"}.WithDefaults()
	if got.Interval != DefaultInterval || got.Timeout != DefaultTimeout || got.Rise != DefaultRise ||
		got.Fall != DefaultFall || got.Initial != Failed || got.ExpectStatus.String() != "200-399" ||
		got.TrackValueFailed != 1 {
		t.Errorf("WithDefaults() = %+v", got)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	// A default timeout never stretches the interval the operator chose.
	for _, tt := range []struct {
		interval, timeout, want time.Duration
	}{
		{interval: 500 * time.Millisecond, want: 250 * time.Millisecond},
		{interval: time.Second, want: 500 * time.Millisecond},
		{interval: 1500 * time.Millisecond, want: time.Second},
		{interval: time.Minute, want: DefaultTimeout},
		{interval: time.Second, timeout: 5 * time.Second, want: 5 * time.Second},
	} {
		got := Spec{Name: "web", Type: TypeTCP, Target: "127.0.0.1:1", Interval: tt.interval, Timeout: tt.timeout}.WithDefaults()
		if got.Timeout != tt.want {
			t.Errorf("interval %v, timeout %v: WithDefaults().Timeout = %v, want %v", tt.interval, tt.timeout, got.Timeout, tt.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("interval %v, timeout %v: %v", tt.interval, tt.timeout, err)
		}
	}
	tcp := Spec{Type: TypeTCP}.WithDefaults()
	if !tcp.ExpectStatus.IsZero() {
		t.Errorf("tcp check got expect_status %v", tcp.ExpectStatus)
	}
}
