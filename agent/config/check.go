package config

import (
	"errors"
	"fmt"

	"github.com/havip-agent/havip-agent/health"
)

// Check is one [[check]] section: a health check whose verdict keepalived
// acts on. Its meaning and validation belong to package health; this type
// only carries the file's keys.
type Check struct {
	Name             string   `toml:"name"`
	Type             string   `toml:"type"`
	Target           string   `toml:"target"`
	Command          []string `toml:"command"`
	Interval         Duration `toml:"interval"`
	Timeout          Duration `toml:"timeout"`
	Rise             int      `toml:"rise"`
	Fall             int      `toml:"fall"`
	Initial          string   `toml:"initial"`
	ExpectStatus     string   `toml:"expect_status"`
	ExpectBody       string   `toml:"expect_body"`
	TLSSkipVerify    bool     `toml:"tls_skip_verify"`
	TrackFile        string   `toml:"track_file"`
	TrackValueFailed int      `toml:"track_value_failed"`

	spec health.Spec
}

// Spec is the check as package health runs it, defaults applied.
func (c Check) Spec() health.Spec { return c.spec }

func (c *Check) validate(v *validator, p string, names map[string]bool) {
	s := health.Spec{
		Name: c.Name, Type: health.Type(c.Type), Target: c.Target, Command: c.Command,
		Interval: c.Interval.Duration, Timeout: c.Timeout.Duration, Rise: c.Rise, Fall: c.Fall,
		ExpectBody: c.ExpectBody, TLSSkipVerify: c.TLSSkipVerify, TrackFile: c.TrackFile,
		TrackValueFailed: c.TrackValueFailed,
	}
	if c.Initial != "" {
		iv, err := health.ParseVerdict(c.Initial)
		if err != nil || iv == health.Unknown {
			v.add(p+".initial", "%q is not one of failed, healthy", c.Initial)
		}
		s.Initial = iv
	}
	if c.ExpectStatus != "" {
		r, err := health.ParseStatusRange(c.ExpectStatus)
		if err != nil {
			v.add(p+".expect_status", "%v", err)
		}
		s.ExpectStatus = r
	}
	s = s.WithDefaults()
	if c.Name != "" && names[c.Name] {
		v.add(p+".name", "%q is used by another check", c.Name)
	}
	names[c.Name] = true
	for _, err := range unjoin(s.Validate()) {
		var fe *health.FieldError
		if errors.As(err, &fe) {
			v.add(p+"."+fe.Field, "%v", fe.Err)
		} else {
			v.add(p, "%v", err)
		}
	}
	c.spec = s
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// CommandValidator checks an exec check's argv beyond its syntax (that it
// exists, is executable, and cannot be changed by a non-root user).
type CommandValidator func(argv []string) error

// ValidateCommands runs fn over every exec check and reports failures as
// positioned problems. It is separate from Load so that loading stays free
// of checks on other files; config check and run call it with
// health.ValidateCommand.
func (c *Config) ValidateCommands(fn CommandValidator) error {
	v := &validator{file: c.Path, ix: c.lines}
	for i, ch := range c.Checks {
		if ch.Type == "exec" && len(ch.Command) > 0 {
			if err := fn(ch.Command); err != nil {
				v.add(fmt.Sprintf("check[%d].command", i), "%v", err)
			}
		}
	}
	return v.err()
}
