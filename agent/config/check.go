package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Check is one health check whose verdict keepalived acts on.
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
	TrackValueFailed *int     `toml:"track_value_failed"`
}

func (c *Check) applyDefaults() {
	c.Interval.orDefault(2 * time.Second)
	c.Timeout.orDefault(time.Second)
	if c.Rise == 0 {
		c.Rise = 2
	}
	if c.Fall == 0 {
		c.Fall = 3
	}
	setDefault(&c.Initial, "failed")
	if c.Type == "http" {
		setDefault(&c.ExpectStatus, "200-399")
	}
	if c.TrackValueFailed == nil {
		one := 1
		c.TrackValueFailed = &one
	}
}

func (c *Check) validate(v *validator, p string, names map[string]bool) {
	switch {
	case c.Name == "":
		v.add(p+".name", "is required")
	case !instanceName.MatchString(c.Name):
		v.add(p+".name", "%q is not a valid check name (letters, digits, _ . : -)", c.Name)
	case names[c.Name]:
		v.add(p+".name", "%q is used by another check", c.Name)
	}
	names[c.Name] = true
	oneOf(v, p+".type", c.Type, "tcp", "http", "exec")
	switch c.Type {
	case "tcp":
		if _, port, err := net.SplitHostPort(c.Target); err != nil || port == "" {
			v.add(p+".target", "%q is not HOST:PORT", c.Target)
		}
	case "http":
		u, err := url.Parse(c.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(p+".target", "%q is not an http or https URL", c.Target)
		}
	case "exec":
		if len(c.Command) == 0 {
			v.add(p+".command", "is required for type exec")
		}
	}
	if c.Type != "exec" && len(c.Command) > 0 {
		v.add(p+".command", "is only for type exec")
	}
	if c.Type == "exec" && c.Target != "" {
		v.add(p+".target", "is not used by type exec (use command)")
	}
	if c.Type != "http" && (c.ExpectBody != "" || c.ExpectStatus != "" || c.TLSSkipVerify) {
		v.add(p, "expect_status, expect_body and tls_skip_verify are for type http only")
	}
	if c.Type == "http" && !validStatusRange(c.ExpectStatus) {
		v.add(p+".expect_status", "%q is not a status range such as 200-399 or 200,204", c.ExpectStatus)
	}
	durRange(v, p+".interval", c.Interval.Duration, 10*time.Millisecond, time.Hour)
	durRange(v, p+".timeout", c.Timeout.Duration, time.Millisecond, time.Hour)
	if c.Timeout.Duration > c.Interval.Duration {
		v.add(p+".timeout", "%s is longer than interval %s", c.Timeout.Duration, c.Interval.Duration)
	}
	if c.Rise < 1 || c.Rise > 100 {
		v.add(p+".rise", "%d is out of range (1 to 100)", c.Rise)
	}
	if c.Fall < 1 || c.Fall > 100 {
		v.add(p+".fall", "%d is out of range (1 to 100)", c.Fall)
	}
	oneOf(v, p+".initial", c.Initial, "failed", "healthy")
	if c.TrackFile != "" {
		requireAbs(v, p+".track_file", c.TrackFile)
	}
	if c.TrackValueFailed != nil && (*c.TrackValueFailed < -254 || *c.TrackValueFailed > 254 || *c.TrackValueFailed == 0) {
		v.add(p+".track_value_failed", "%d is out of range (-254 to 254, not 0)", *c.TrackValueFailed)
	}
}

// validStatusRange accepts "200", "200-399" and comma-separated lists of
// those, with codes from 100 to 599.
func validStatusRange(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 100 || a > 599 {
			return false
		}
		if isRange {
			b, err := strconv.Atoi(hi)
			if err != nil || b < a || b > 599 {
				return false
			}
		}
	}
	return true
}

// CommandValidator checks an exec check's argv beyond its syntax (that it
// exists, is executable, and cannot be changed by a non-root user).
type CommandValidator func(argv []string) error

// ValidateCommands runs fn over every exec check and reports failures as
// positioned problems. It is separate from Load so that Load stays free of
// file-system checks on other files.
func (c *Config) ValidateCommands(fn CommandValidator) error {
	if fn == nil {
		return nil
	}
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
