package config

import (
	"fmt"
	"strings"
)

// Summary renders a short human-readable description of the configuration,
// printed by "havip-agent config check".
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: OK\n", c.Path)
	fmt.Fprintf(&b, "  keepalived fifo %s", c.Keepalived.FIFO)
	if c.Keepalived.PIDFile != "" {
		fmt.Fprintf(&b, ", liveness from %s (dead after %s)\n", c.Keepalived.PIDFile, c.Keepalived.DeadAfter.Duration)
	} else {
		b.WriteString(", liveness watch off\n")
	}
	if c.Metrics.Listen != "" {
		fmt.Fprintf(&b, "  metrics on http://%s/metrics\n", c.Metrics.Listen)
	}
	if c.Cloud.Enabled() {
		mode := ""
		if c.Cloud.DryRun {
			mode = " (dry run)"
		}
		fmt.Fprintf(&b, "  cloud bce region %s%s\n", c.Cloud.Region, mode)
	} else {
		b.WriteString("  cloud: none (local only)\n")
	}
	for _, in := range c.Instances {
		vips := make([]string, len(in.VIPs))
		for i, p := range in.VIPs {
			vips[i] = p.String()
		}
		fmt.Fprintf(&b, "  %s %s on %s: %s", in.Kind, in.Name, in.Interface, strings.Join(vips, ", "))
		if in.HAVIP != "" {
			fmt.Fprintf(&b, "; havip %s", in.HAVIP)
		}
		if n := len(in.Routes); n > 0 {
			fmt.Fprintf(&b, "; %d route(s)", n)
		}
		if len(in.Checks) > 0 {
			fmt.Fprintf(&b, "; checks %s", strings.Join(in.Checks, ", "))
		}
		if in.DrainFile != "" {
			fmt.Fprintf(&b, "; drain file %s", in.DrainFile)
		}
		b.WriteByte('\n')
	}
	for _, ch := range c.Checks {
		fmt.Fprintf(&b, "  check %s: %s every %s\n", ch.Name, ch.Type, ch.Interval.Duration)
	}
	for _, h := range c.HookSpecs() {
		events := "every event"
		if len(h.Events) > 0 {
			names := make([]string, len(h.Events))
			for i, e := range h.Events {
				names[i] = e.String()
			}
			events = strings.Join(names, ", ")
		}
		target := h.URL
		if h.Type != "http" {
			target = strings.Join(h.Argv, " ")
		}
		fmt.Fprintf(&b, "  hook %s: %s %s on %s, timeout %s\n", h.Name, h.Type, target, events, h.Timeout)
	}
	return b.String()
}
