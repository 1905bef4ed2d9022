package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/havip-agent/havip-agent/cloud"
)

// Defaults for keys the file leaves out.
const (
	DefaultStateDir     = "/var/lib/havip-agent"
	DefaultSocket       = "/run/havip-agent/agent.sock"
	DefaultFIFO         = "/run/keepalived/havip-agent.fifo"
	DefaultPIDFile      = "/run/keepalived/vrrp.pid"
	DefaultDeadAfter    = 2 * time.Second
	DefaultGARPCount    = 5
	DefaultGARPInterval = 200 * time.Millisecond
	DefaultGARPRefresh  = 60 * time.Second
	// DefaultMetricsListen is loopback only: exposing metrics beyond the
	// node is the operator's choice. 19112 is outside the Prometheus
	// port allocations (see package metrics).
	DefaultMetricsListen = "127.0.0.1:19112"
)

func (c *Config) applyDefaults(md *toml.MetaData, ix *lineIndex) {
	a := &c.Agent
	setDefault(&a.StateDir, DefaultStateDir)
	setDefault(&a.Socket, DefaultSocket)
	setDefault(&a.LogLevel, "info")
	setDefault(&a.LogFormat, "text")
	setDefault(&a.OnStop, "keep")
	k := &c.Keepalived
	setDefault(&k.FIFO, DefaultFIFO)
	// An explicit pid_file = "" turns the watch off, so only a missing key
	// takes the default.
	if !md.IsDefined("keepalived", "pid_file") {
		k.PIDFile = DefaultPIDFile
	}
	k.DeadAfter.orDefault(DefaultDeadAfter)
	if !md.IsDefined("metrics", "listen") {
		c.Metrics.Listen = DefaultMetricsListen
	}
	for i := range c.Instances {
		in := &c.Instances[i]
		setDefault(&in.Kind, KindInstance)
		if _, written := ix.lines[fmt.Sprintf("instance[%d].garp_count", i)]; !written && in.GARPCount == 0 {
			in.GARPCount = DefaultGARPCount
		}
		in.GARPInterval.orDefault(DefaultGARPInterval)
		in.GARPRefresh.orDefault(DefaultGARPRefresh)
		if in.GARPReply == nil {
			t := true
			in.GARPReply = &t
		}
		if in.HAVIP != "" {
			setDefault(&in.HAVIPBind, "attach")
		}
		for j := range in.Routes {
			setDefault(&in.Routes[j].NextHopType, "custom")
			setDefault(&in.Routes[j].Mode, "auto")
		}
	}
	if c.Cloud != nil {
		c.Cloud.applyDefaults()
	}
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// ifaceName follows the kernel's rules (dev_valid_name): 1 to 15 bytes, not
// "." or "..", no '/', ':' or white space.
// ValidInterfaceName reports whether s is a name the kernel accepts.
func ValidInterfaceName(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/: \t\n\v\f\r") && s != "." && s != ".."
}

// validInstanceName: 1 to 64 letters, digits or _.:- (keepalived's names,
// also used in file names and label values).
func validInstanceName(s string) bool { return cloud.ASCIIName(s, 1, 64, "_.:-") }

func (c *Config) validate(v *validator) {
	a := c.Agent
	requireAbs(v, "agent.state_dir", a.StateDir)
	requireAbs(v, "agent.socket", a.Socket)
	oneOf(v, "agent.log_level", a.LogLevel, "debug", "info", "warn", "error")
	oneOf(v, "agent.log_format", a.LogFormat, "text", "json")
	oneOf(v, "agent.on_stop", a.OnStop, "keep", "release")
	requireAbs(v, "keepalived.fifo", c.Keepalived.FIFO)
	if c.Keepalived.PIDFile != "" {
		requireAbs(v, "keepalived.pid_file", c.Keepalived.PIDFile)
	}
	if c.Keepalived.DeadAfter.Duration < 100*time.Millisecond {
		v.add("keepalived.dead_after", "%s is too short (at least 100ms)", c.Keepalived.DeadAfter.Duration)
	}
	if c.Metrics.Listen != "" {
		if _, err := netip.ParseAddrPort(c.Metrics.Listen); err != nil {
			v.add("metrics.listen", "%q is not IP:PORT", c.Metrics.Listen)
		}
	}
	c.validateCloud(v)
	checks := map[string]bool{}
	for i := range c.Checks {
		c.Checks[i].validate(v, fmt.Sprintf("check[%d]", i), checks)
	}
	if len(c.Instances) == 0 {
		v.add("instance", "at least one [[instance]] is required")
	}
	names := map[string]int{}
	vipOwner := map[netip.Addr]string{}
	for i := range c.Instances {
		in := &c.Instances[i]
		p := fmt.Sprintf("instance[%d]", i)
		switch {
		case in.Name == "":
			v.add(p+".name", "is required")
		case !validInstanceName(in.Name):
			v.add(p+".name", "%q is not a keepalived instance name (letters, digits, _ . : -, at most 64)", in.Name)
		default:
			key := in.Kind + "/" + in.Name
			if j, dup := names[key]; dup {
				v.add(p+".name", "%q is already used by instance[%d]", in.Name, j)
			}
			names[key] = i
		}
		oneOf(v, p+".kind", in.Kind, KindInstance, KindGroup)
		if in.Interface == "" {
			v.add(p+".interface", "is required")
		} else if !ValidInterfaceName(in.Interface) {
			v.add(p+".interface", "%q is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)", in.Interface)
		}
		if len(in.VIPStrings) == 0 {
			v.add(p+".vips", "at least one VIP is required")
		}
		in.VIPs = nil
		for j, s := range in.VIPStrings {
			k := fmt.Sprintf("%s.vips[%d]", p, j)
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				if _, aerr := netip.ParseAddr(s); aerr == nil {
					v.add(k, "%q has no prefix length (write it as %s/24 or /64)", s, s)
				} else {
					v.add(k, "%q is not an IP prefix", s)
				}
				continue
			}
			if pfx.Addr().Zone() != "" || pfx.Addr().IsUnspecified() || pfx.Addr().IsMulticast() || pfx.Addr().IsLoopback() {
				v.add(k, "%q cannot be a VIP", s)
				continue
			}
			if o, dup := vipOwner[pfx.Addr()]; dup {
				v.add(k, "%s is listed twice (also in %s)", pfx.Addr(), o)
				continue
			}
			vipOwner[pfx.Addr()] = k
			in.VIPs = append(in.VIPs, pfx)
		}
		if in.GARPCount < 1 || in.GARPCount > 100 {
			v.add(p+".garp_count", "%d is out of range (1 to 100)", in.GARPCount)
		}
		if d := in.GARPInterval.Duration; d < time.Millisecond || d > time.Minute {
			v.add(p+".garp_interval", "%s is out of range (1ms to 1m)", d)
		}
		if d := in.GARPRefresh.Duration; d != 0 && d < time.Second {
			v.add(p+".garp_refresh", "%s is too short (at least 1s, or 0s to disable)", d)
		}
		for j, ch := range in.Checks {
			if !checks[ch] {
				v.add(fmt.Sprintf("%s.checks[%d]", p, j), "no [[check]] is named %q", ch)
			}
		}
		c.validateInstanceCloud(v, p, in)
	}
}

func requireAbs(v *validator, key, path string) {
	if !filepath.IsAbs(path) {
		v.add(key, "%q is not an absolute path", path)
	}
}

func oneOf(v *validator, key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
}
