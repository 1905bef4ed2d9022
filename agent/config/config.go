package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/havip-agent/havip-agent/agent/vocab"
)

// DefaultPath is where the daemon and the client commands look for the
// configuration when -config is not given.
const DefaultPath = "/etc/havip-agent/havip-agent.toml"

// Config is the whole configuration, with defaults applied.
type Config struct {
	// Path is the file the configuration was read from.
	Path       string     `toml:"-"`
	Agent      Agent      `toml:"agent"`
	Keepalived Keepalived `toml:"keepalived"`
	// Cloud is nil when the file has no [cloud] section: the agent then
	// runs local only.
	Cloud     *Cloud     `toml:"cloud"`
	Metrics   Metrics    `toml:"metrics"`
	Checks    []Check    `toml:"check"`
	Hooks     []Hook     `toml:"hook"`
	Instances []Instance `toml:"instance"`

	lines    *lineIndex
	warnings []string
}

// Agent holds the daemon's own settings.
type Agent struct {
	StateDir    string `toml:"state_dir"`
	Socket      string `toml:"socket"`
	SocketGroup string `toml:"socket_group"`
	LogLevel    string `toml:"log_level"`
	LogFormat   string `toml:"log_format"`
	OnStop      string `toml:"on_stop"`
	// HistoryMaxBytes and HistoryKeep bound the failover history in
	// StateDir: the size at which its file is rotated, and how many
	// rotated files are kept.
	HistoryMaxBytes int64 `toml:"history_max_bytes"`
	HistoryKeep     int   `toml:"history_keep"`
}

// Keepalived says where keepalived's notifications come from and how its
// liveness is watched.
type Keepalived struct {
	FIFO string `toml:"fifo"`
	// PIDFile names keepalived's VRRP process; empty turns the liveness
	// watch off.
	PIDFile   string   `toml:"pid_file"`
	DeadAfter Duration `toml:"dead_after"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the address of /metrics, /healthz and /readyz; empty
	// disables them.
	Listen string `toml:"listen"`
}

// Instance is one keepalived vrrp_instance (or vrrp_sync_group) whose VIPs
// the agent owns.
type Instance struct {
	Name         string     `toml:"name"`
	Kind         vocab.Kind `toml:"kind"`
	Interface    string     `toml:"interface"`
	VIPStrings   []string   `toml:"vips"`
	GARPCount    int        `toml:"garp_count"`
	GARPInterval Duration   `toml:"garp_interval"`
	GARPRefresh  Duration   `toml:"garp_refresh"`
	GARPReply    *bool      `toml:"garp_reply"`
	Checks       []string   `toml:"checks"`
	// SharedVIPs says keepalived also manages the VIPs (they are in its
	// virtual_ipaddress, as VRRPv3 requires): keepalived adds them just
	// before it reports MASTER and removes them just before it reports
	// anything else, so the agent lets address changes settle before it
	// acts on them.
	SharedVIPs bool `toml:"shared_vips"`
	// DrainFile is a track file keepalived watches (track_file, weight
	// 0): the agent keeps it at 0 and writes 1 while the instance is
	// drained, which puts it into FAULT (havip-agent drain).
	DrainFile string `toml:"drain_file"`

	HAVIP         string  `toml:"havip"`
	HAVIPBind     string  `toml:"havip_bind"`
	HAVIPPublicIP string  `toml:"havip_public_ip"`
	Routes        []Route `toml:"route"`
	EIPs          []EIP   `toml:"eip"`

	// VIPs are VIPStrings parsed.
	VIPs []netip.Prefix `toml:"-"`
}

// Route is a route rule that must lead to this node while it is MASTER.
type Route struct {
	Table       string `toml:"table"`
	Destination string `toml:"destination"`
	NextHop     string `toml:"next_hop"`
	NextHopType string `toml:"next_hop_type"`
	Mode        string `toml:"mode"`
}

// EIP is a public IP bound directly to the MASTER instance.
type EIP struct {
	Address string `toml:"address"`
}

// Kinds of keepalived notification sources, from the agent's vocabulary.
const (
	KindInstance = vocab.KindInstance
	KindGroup    = vocab.KindGroup
)

// Load reads and validates the file at path. It refuses anything but a
// regular file of at most MaxFileSize.
func Load(path string) (*Config, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse reads and validates a configuration held in memory; name is used
// in error messages.
func Parse(name string, src []byte) (*Config, error) {
	ix := indexLines(string(src))
	c := &Config{Path: name}
	md, err := toml.Decode(string(src), c)
	if err != nil {
		return nil, decodeError(name, ix, err)
	}
	v := &validator{file: name, ix: ix}
	if und := md.Undecoded(); len(und) > 0 {
		v.unknownKeys(und)
	}
	c.lines = ix
	c.applyDefaults(&md, ix)
	c.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	c.warnings = v.warningList()
	return c, nil
}

// Warnings lists what is valid but unwise in the configuration, each as
// "file:line: key: message": config check prints them, run logs them.
func (c *Config) Warnings() []string { return c.warnings }

func decodeError(name string, ix *lineIndex, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		key := pe.LastKey
		// Prefer the indexed path written on that line.
		for _, p := range ix.order {
			if ix.lines[p] == pe.Position.Line && stripIndexes(p) == key {
				key = p
				break
			}
		}
		msg := pe.Message
		if key != "" {
			return &Error{Problems: []Problem{{File: name, Line: pe.Position.Line, Key: key, Msg: msg}}}
		}
		return &Error{Problems: []Problem{{File: name, Line: pe.Position.Line, Msg: msg}}}
	}
	if m := decodeErrRe().FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		key := m[2]
		for _, p := range ix.order {
			if ix.lines[p] == line && stripIndexes(p) == key {
				key = p
				break
			}
		}
		msg := m[3]
		if t := badTypeRe().FindStringSubmatch(msg); t != nil {
			msg = fmt.Sprintf("wrong type: %s, want %s", t[1], t[2])
		}
		return &Error{Problems: []Problem{{File: name, Line: line, Key: key, Msg: msg}}}
	}
	return &Error{Problems: []Problem{{File: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}}
}

// Compiled on the first decode error, not at every command's start.
var (
	decodeErrRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)
	})
	badTypeRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^incompatible types: TOML value has type (\S+); destination has type (\S+)$`)
	})
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Key != "" {
		b.WriteString(": ")
		b.WriteString(p.Key)
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found in a configuration file.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

type validator struct {
	file     string
	ix       *lineIndex
	problems []Problem
	warnings []Problem
}

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, v.problem(key, format, args...))
}

// warn records something that does not stop the configuration from
// loading.
func (v *validator) warn(key, format string, args ...any) {
	v.warnings = append(v.warnings, v.problem(key, format, args...))
}

func (v *validator) problem(key, format string, args ...any) Problem {
	return Problem{File: v.file, Line: v.ix.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (v *validator) warningList() []string {
	sort.SliceStable(v.warnings, func(i, j int) bool { return v.warnings[i].Line < v.warnings[j].Line })
	out := make([]string, len(v.warnings))
	for i, w := range v.warnings {
		out[i] = w.String()
	}
	return out
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
	return &Error{Problems: v.problems}
}

func (v *validator) unknownKeys(keys []toml.Key) {
	unknown := map[string]bool{}
	for _, k := range keys {
		unknown[k.String()] = true
	}
	seen := map[string]bool{}
	for _, p := range v.ix.order {
		s := stripIndexes(p)
		if unknown[s] && !v.ix.elems[p] {
			v.add(p, "unknown key")
			seen[s] = true
		}
	}
	for _, k := range keys {
		// Keys the scanner did not find (exotic syntax) are still reported.
		if !seen[k.String()] && !coveredByParent(k, unknown) {
			v.problems = append(v.problems, Problem{File: v.file, Key: k.String(), Msg: "unknown key"})
		}
	}
}

// coveredByParent reports whether an unknown key lies inside an unknown
// table, which is reported once.
func coveredByParent(k toml.Key, unknown map[string]bool) bool {
	for i := len(k) - 1; i > 0; i-- {
		if unknown[toml.Key(k[:i]).String()] {
			return true
		}
	}
	return false
}

// Duration is a time.Duration written as a Go duration string ("200ms").
type Duration struct {
	time.Duration
	set bool
}

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use Go syntax such as \"200ms\" or \"2s\")", string(b))
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", string(b))
	}
	d.Duration, d.set = v, true
	return nil
}

// MarshalText renders the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

func (d *Duration) orDefault(def time.Duration) {
	if !d.set {
		d.Duration = def
	}
}
