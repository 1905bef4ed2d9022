package config

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/havip-agent/havip-agent/agent/journal"
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
	// DefaultHistoryMaxBytes and DefaultHistoryKeep bound the failover
	// history: at most (keep + 1) files of max_bytes.
	DefaultHistoryMaxBytes = journal.DefaultMaxBytes
	DefaultHistoryKeep     = journal.DefaultKeep
	// MaxHistoryMaxBytes bounds one file of the history.
	MaxHistoryMaxBytes = 1 << 30
)

func (c *Config) applyDefaults(md *toml.MetaData, ix *lineIndex) {
	a := &c.Agent
	setDefault(&a.StateDir, DefaultStateDir)
	setDefault(&a.Socket, DefaultSocket)
	setDefault(&a.LogLevel, "info")
	setDefault(&a.LogFormat, "text")
	setDefault(&a.OnStop, "keep")
	if !md.IsDefined("agent", "history_max_bytes") {
		a.HistoryMaxBytes = DefaultHistoryMaxBytes
	}
	if !md.IsDefined("agent", "history_keep") {
		a.HistoryKeep = DefaultHistoryKeep
	}
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

func setDefault[T ~string](s *T, def T) {
	if *s == "" {
		*s = def
	}
}

// ValidInterfaceName reports whether s is a name the kernel accepts
// (dev_valid_name: 1 to 15 bytes, not "." or "..", no '/', ':' or white
// space) made of printable ASCII only: the kernel would take other bytes,
// but a NUL cuts the name short in the kernel's eyes and other bytes are
// hostile in logs and metric labels.
func ValidInterfaceName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return false
		}
	}
	return true
}

// validInstanceName: 1 to 64 letters, digits or _.:- (keepalived's names,
// also used in file names and label values).
func validInstanceName(s string) bool { return cloud.ASCIIName(s, 1, 64, "_.:-") }

func (c *Config) validate(v *validator) {
	a := c.Agent
	requireAbs(v, "agent.state_dir", a.StateDir)
	if msg := socketProblem(a.Socket); msg != "" {
		v.add(keySocket, "%s", msg)
	}
	oneOf(v, "agent.log_level", a.LogLevel, "debug", "info", "warn", "error")
	oneOf(v, "agent.log_format", a.LogFormat, "text", "json")
	oneOf(v, "agent.on_stop", a.OnStop, "keep", "release")
	if n := a.HistoryMaxBytes; n < journal.MinMaxBytes || n > MaxHistoryMaxBytes {
		v.add("agent.history_max_bytes", "%d is out of range (%d to %d)", n, journal.MinMaxBytes, MaxHistoryMaxBytes)
	}
	if n := a.HistoryKeep; n < 0 || n > journal.MaxKeep {
		v.add("agent.history_keep", "%d is out of range (0 to %d)", n, journal.MaxKeep)
	}
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
	c.validatePaths(v)
	c.validateHooks(v)
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
			key := string(in.Kind) + "/" + in.Name
			if j, dup := names[key]; dup {
				v.add(p+".name", "%q is already used by instance[%d]", in.Name, j)
			}
			names[key] = i
		}
		oneOf(v, p+".kind", string(in.Kind), string(KindInstance), string(KindGroup))
		if in.Interface == "" {
			v.add(p+".interface", "is required")
		} else if !ValidInterfaceName(in.Interface) {
			v.add(p+".interface", "%q is not a valid interface name (1 to 15 printable ASCII characters, no '/', ':' or spaces, not \".\" or \"..\")", in.Interface)
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
			if why := vipProblem(pfx); why != "" {
				v.add(k, "%q cannot be a VIP: %s", s, why)
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
		c.validateDrainFile(v, p+".drain_file", in.DrainFile)
		c.validateInstanceCloud(v, p, in)
	}
	c.validateOneEIPPerNode(v)
}

func requireAbs(v *validator, key, path string) {
	switch {
	case strings.IndexByte(path, 0) >= 0:
		v.add(key, "%q contains a NUL byte", path)
	case !filepath.IsAbs(path):
		v.add(key, "%q is not an absolute path", path)
	}
}

// The widest VIP prefixes. A VIP's prefix becomes a connected route, so a
// wide one takes a large part of the address space off the node's gateway.
// No on-link network is wider than the largest block one organization
// holds: an IPv4 /8 (as 10.0.0.0/8, also the widest VPC), and in IPv6 less
// than a /16 (the largest operators hold about a /19, the registries /12).
const (
	minVIPBits4 = 8
	minVIPBits6 = 16
)

// vipProblem says why p cannot be a VIP, or "" when it can.
func vipProblem(p netip.Prefix) string {
	a := p.Addr()
	switch {
	case a.Zone() != "":
		return "it has a zone"
	case a.Is4In6():
		if p.Bits() >= 96 {
			return fmt.Sprintf("it is an IPv4-mapped IPv6 address (write it as %s/%d)", a.Unmap(), p.Bits()-96)
		}
		return "it is an IPv4-mapped IPv6 address (write it as IPv4)"
	case a.IsUnspecified():
		return "it is the unspecified address"
	case a.IsLoopback():
		return "it is a loopback address"
	case a.IsMulticast():
		return "it is a multicast address"
	case a.IsLinkLocalUnicast():
		// 169.254.169.254 among them: the metadata service.
		return "it is link-local: it is not routed beyond the link and the cloud cannot move it"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "it is the limited broadcast address"
	case a.Is4() && p.Bits() < minVIPBits4:
		return fmt.Sprintf("/%d is wider than /%d, the widest prefix an IPv4 VIP may have", p.Bits(), minVIPBits4)
	case a.Is6() && p.Bits() < minVIPBits6:
		return fmt.Sprintf("/%d is wider than /%d, the widest prefix an IPv6 VIP may have", p.Bits(), minVIPBits6)
	case a.Is4() && p.Bits() < 31 && a == p.Masked().Addr():
		// /31 (RFC 3021) and /32 have neither network nor broadcast address.
		return fmt.Sprintf("it is the network address of %s", p.Masked())
	case a.Is4() && p.Bits() < 31 && a == broadcast4(p):
		return fmt.Sprintf("it is the broadcast address of %s", p.Masked())
	}
	return ""
}

// broadcast4 is the last address of an IPv4 prefix.
func broadcast4(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	u := binary.BigEndian.Uint32(b[:]) | host
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// validatePaths refuses a path that serves two purposes: a track file
// written over keepalived's FIFO, the control socket, the configuration or
// another check's track file would break both, and a shared track file
// would carry two checks' verdicts in turn.
func (c *Config) validatePaths(v *validator) {
	type use struct{ key, what string }
	seen := map[string]use{}
	if abs, err := filepath.Abs(c.Path); err == nil && c.Path != "" {
		seen[abs] = use{what: "the configuration file itself"}
	}
	claim := func(key, what, path string) {
		if path == "" || !filepath.IsAbs(path) {
			return
		}
		clean := filepath.Clean(path)
		u, dup := seen[clean]
		if !dup {
			seen[clean] = use{key: key, what: key + " (" + what + ")"}
			return
		}
		// Point at the one written in the file when the later one is a
		// default.
		_, written := v.ix.lines[key]
		if _, other := v.ix.lines[u.key]; !written && other {
			v.add(u.key, "%q is also %s (%s): a path may serve one purpose", path, key, what)
			return
		}
		v.add(key, "%q is also %s: a path may serve one purpose", path, u.what)
	}
	claim("agent.state_dir", "the state directory", c.Agent.StateDir)
	claim(keySocket, "the control socket", c.Agent.Socket)
	claim("keepalived.fifo", "keepalived's notify FIFO", c.Keepalived.FIFO)
	claim("keepalived.pid_file", "keepalived's pid file", c.Keepalived.PIDFile)
	for i, ch := range c.Checks {
		claim(fmt.Sprintf("check[%d].track_file", i), "a track file", ch.TrackFile)
	}
	for i, in := range c.Instances {
		claim(fmt.Sprintf("instance[%d].drain_file", i), "a drain file", in.DrainFile)
	}
}

// privateDirs are directories the packaged unit makes private to the
// agent (PrivateTmp, PrivateDevices): a track file there is invisible to
// keepalived.
var privateDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

// validateDrainFile checks an instance's drain_file like a check's track
// file (an absolute path naming a file), and that keepalived can read it:
// not in the state directory, which is the agent's own, and (a warning,
// as a daemon run outside systemd sees them) not in a directory systemd
// makes private to the agent.
func (c *Config) validateDrainFile(v *validator, key, path string) {
	if path == "" {
		return
	}
	requireAbs(v, key, path)
	if !filepath.IsAbs(path) {
		return
	}
	clean := filepath.Clean(path)
	switch {
	case strings.HasSuffix(path, "/") || clean == "/":
		v.add(key, "%q must name a file, not a directory", path)
		return
	case within(clean, c.Agent.StateDir):
		v.add(key, "%q is inside agent.state_dir %s, the agent's own directory: put the track files keepalived reads elsewhere, such as /run/havip-agent/track/", path, c.Agent.StateDir)
		return
	}
	for _, d := range privateDirs {
		if within(clean, d) {
			v.warn(key, "%q is under %s, which the packaged systemd unit makes private to the agent (PrivateTmp, PrivateDevices): keepalived would not see it; use /run/havip-agent/track/", path, d)
			return
		}
	}
}

// within reports whether the clean path p lies inside directory dir.
func within(p, dir string) bool {
	if dir == "" || !filepath.IsAbs(dir) {
		return false
	}
	dir = filepath.Clean(dir)
	return p != dir && strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func oneOf(v *validator, key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
}
