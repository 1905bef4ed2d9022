package keepalived

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// ConfExpect is what the agent's configuration needs from keepalived.conf.
type ConfExpect struct {
	// FIFO is the agent's [keepalived] fifo.
	FIFO string
	// Instances are the agent's [[instance]] entries.
	Instances []ConfInstance
	// ScriptUserExists reports whether the user keepalived_script exists:
	// keepalived's default script user, which Debian does not create.
	ScriptUserExists bool
}

// ConfInstance is one instance the agent acts for.
type ConfInstance struct {
	Kind KindName // instance or group
	Name string
	VIPs []netip.Prefix
	// Shared is the instance's shared_vips: keepalived's virtual_ipaddress
	// lists the same VIPs and both add and remove them.
	Shared bool
	// DrainFile is the instance's drain_file, "" for none: keepalived must
	// watch it with track_file and weight 0.
	DrainFile string
}

// KindName is the agent configuration's word for a notification kind.
type KindName string

// The kinds an agent instance may have.
const (
	ConfKindInstance KindName = "instance"
	ConfKindGroup    KindName = "group"
)

// Finding is one problem found in keepalived.conf.
type Finding struct {
	File  string
	Line  int
	Error bool // false: a warning
	Msg   string
}

func (f Finding) String() string {
	sev := "warning"
	if f.Error {
		sev = "error"
	}
	if f.Line == 0 {
		// About the whole file: something it lacks.
		return fmt.Sprintf("%s: %s: %s", f.File, sev, f.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, sev, f.Msg)
}

// Conf is a parsed keepalived.conf, includes inlined.
type Conf struct{ stmts []*confStmt }

// confStmt is one statement of keepalived.conf: its words, where it is,
// and the block it opens, if any.
type confStmt struct {
	words []string
	file  string
	line  int
	body  []*confStmt
}

// maxIncludeDepth bounds include chains (and include loops).
const maxIncludeDepth = 8

// ReadConf reads keepalived.conf at path with its include files (glob
// patterns, relative to the including file's directory) and parses it.
func ReadConf(path string) (*Conf, error) {
	return readConf(path, 0)
}

func readConf(path string, depth int) (*Conf, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("%s: includes nested deeper than %d", path, maxIncludeDepth)
	}
	src, err := readConfFile(path)
	if err != nil {
		return nil, fmt.Errorf("keepalived config: %w", err)
	}
	return ParseConf(src, path, func(pattern string) (*Conf, error) {
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(filepath.Dir(path), pattern)
		}
		files, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("%s: include %q: %w", path, pattern, err)
		}
		out := &Conf{}
		for _, f := range files {
			c, err := readConf(f, depth+1)
			if err != nil {
				return nil, err
			}
			out.stmts = append(out.stmts, c.stmts...)
		}
		return out, nil
	})
}

// maxConfSize bounds each file of keepalived.conf: far above any real
// configuration, and a bound on what a wrong path can make us read.
const maxConfSize = 16 << 20

// readConfFile reads one file of keepalived.conf, refusing anything but a
// regular file of at most maxConfSize, so that a FIFO or a device named by
// mistake (or matched by an include pattern) neither blocks nor fills
// memory.
func readConfFile(path string) ([]byte, error) {
	// Stat first: opening a FIFO can block and opening some devices acts.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regularConf(path, fi); err != nil {
		return nil, err
	}
	// O_NONBLOCK in case the path became a FIFO since the stat.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regularConf(path, fi); err != nil {
		return nil, err
	}
	src, err := io.ReadAll(io.LimitReader(f, maxConfSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxConfSize {
		return nil, fmt.Errorf("%s: grew beyond %d bytes while being read", path, maxConfSize)
	}
	return src, nil
}

func regularConf(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	if fi.Size() > maxConfSize {
		return fmt.Errorf("%s: %d bytes, more than the %d a keepalived configuration file may have here", path, fi.Size(), maxConfSize)
	}
	return nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

// ParseConf parses keepalived.conf's block structure: words separated by
// blanks, "{" and "}" as words of their own, "#" or "!" starting a
// comment, double quotes grouping a word. include statements are replaced
// by what include returns (nil include: kept as statements). Unbalanced
// braces are an error naming the line.
func ParseConf(src []byte, file string, include func(pattern string) (*Conf, error)) (*Conf, error) {
	root := &confStmt{}
	stack := []*confStmt{root}
	var open []int // line of each open brace
	for i, line := range strings.Split(string(src), "\n") {
		n := i + 1
		words := confWords(line)
		var cur *confStmt
		for _, w := range words {
			top := stack[len(stack)-1]
			switch w {
			case "{":
				if cur == nil {
					// A brace on a line of its own opens the block of
					// the statement before it.
					if len(top.body) == 0 {
						return nil, fmt.Errorf("%s:%d: \"{\" without a keyword", file, n)
					}
					cur = top.body[len(top.body)-1]
				}
				stack = append(stack, cur)
				open = append(open, n)
				cur = nil
			case "}":
				if len(stack) == 1 {
					return nil, fmt.Errorf("%s:%d: \"}\" closes nothing", file, n)
				}
				stack = stack[:len(stack)-1]
				open = open[:len(open)-1]
				cur = nil
			default:
				if cur == nil {
					cur = &confStmt{file: file, line: n}
					top.body = append(top.body, cur)
				}
				cur.words = append(cur.words, w)
			}
		}
		top := stack[len(stack)-1]
		if include != nil && len(top.body) > 0 {
			last := top.body[len(top.body)-1]
			if last.line == n && len(last.words) == 2 && last.words[0] == "include" && last.body == nil {
				inc, err := include(last.words[1])
				if err != nil {
					return nil, err
				}
				top.body = append(top.body[:len(top.body)-1], inc.stmts...)
			}
		}
	}
	if len(stack) > 1 {
		return nil, fmt.Errorf("%s:%d: \"{\" is never closed", file, open[len(open)-1])
	}
	return &Conf{stmts: root.body}, nil
}

// confWords splits one line into words.
func confWords(line string) []string {
	var words []string
	var b strings.Builder
	inWord, quoted := false, false
	flush := func() {
		if inWord {
			words = append(words, b.String())
			b.Reset()
			inWord = false
		}
	}
	for _, r := range line {
		switch {
		case quoted:
			if r == '"' {
				quoted = false
				continue
			}
			b.WriteRune(r)
		case r == '"':
			quoted, inWord = true, true
		case (r == '#' || r == '!') && !inWord:
			flush()
			return words
		case r == ' ' || r == '\t' || r == '\r':
			flush()
		case r == '{' || r == '}':
			flush()
			words = append(words, string(r))
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return words
}

// LintConf checks parsed keepalived.conf against what the agent expects:
// that the agent hears keepalived's transitions, that keepalived's VIPs
// match the agent's (the same prefixes when shared, none of them when the
// agent owns them), and what keepalived itself would refuse or round
// (a VRRPv3 instance without VIPs, a fractional VRRPv2 advert_int). It is
// pure: ReadConf does the I/O.
func LintConf(conf *Conf, exp ConfExpect) []Finding {
	var out []Finding
	add := func(s *confStmt, isErr bool, format string, args ...any) {
		f := Finding{Error: isErr, Msg: fmt.Sprintf(format, args...)}
		if s != nil {
			f.File, f.Line = s.file, s.line
		}
		out = append(out, f)
	}
	var globals []*confStmt
	var vrrpStmts []*confStmt
	instances := map[string]*confStmt{}
	groups := map[string]*confStmt{}
	notifiesAgent := false
	for _, s := range conf.stmts {
		switch {
		case s.keyword() == "global_defs":
			globals = append(globals, s.body...)
		case s.keyword() == "vrrp_instance" && len(s.words) >= 2:
			instances[s.words[1]] = s
			vrrpStmts = append(vrrpStmts, s)
		case s.keyword() == "vrrp_sync_group" && len(s.words) >= 2:
			groups[s.words[1]] = s
		}
	}
	for _, blk := range []map[string]*confStmt{instances, groups} {
		for _, s := range blk {
			if agentNotify(s) != nil {
				notifiesAgent = true
			}
		}
	}

	var fifo, scriptUser, security *confStmt
	order := map[*confStmt]int{}
	for i, s := range globals {
		order[s] = i
		switch s.keyword() {
		case "vrrp_notify_fifo":
			fifo = s
		case "script_user":
			if scriptUser == nil {
				scriptUser = s
			}
		case "enable_script_security":
			security = s
		}
	}
	fifoIsAgents := fifo != nil && len(fifo.words) >= 2 && (exp.FIFO == "" || filepath.Clean(fifo.words[1]) == filepath.Clean(exp.FIFO))
	switch {
	case fifo == nil && !notifiesAgent:
		add(nil, true, "no vrrp_notify_fifo in global_defs and no notify program calling havip-agent: the agent hears no transition")
	case fifo != nil && len(fifo.words) < 2:
		add(fifo, true, "vrrp_notify_fifo names no path")
	case fifo != nil && exp.FIFO != "" && filepath.Clean(fifo.words[1]) != filepath.Clean(exp.FIFO):
		add(fifo, true, "vrrp_notify_fifo is %s but the agent reads [keepalived] fifo = %s", fifo.words[1], exp.FIFO)
	}
	// keepalived resolves the FIFO's user when it reads vrrp_notify_fifo;
	// under enable_script_security a missing default user then makes a
	// reload drop the FIFO, with only a log line.
	if fifo != nil && security != nil && !exp.ScriptUserExists && (scriptUser == nil || order[scriptUser] > order[fifo]) {
		add(fifo, true, "vrrp_notify_fifo comes before script_user, with enable_script_security and no keepalived_script user: keepalived drops the FIFO on every reload and the agent hears nothing more; put script_user above it")
	}
	gv, gwhy := globalVersion(globals)
	vrrps := map[string]*vrrpInst{}
	var vrrpOrder []*vrrpInst
	for _, s := range vrrpStmts {
		v := readVRRP(s, gv, gwhy)
		vrrpOrder = append(vrrpOrder, v)
		vrrps[v.name] = v
	}
	trackDefs := trackFileDefs(conf.stmts)
	// managed maps each vrrp_instance to the agent instance it serves.
	managed := map[*vrrpInst]ConfInstance{}
	for _, in := range exp.Instances {
		var s *confStmt
		switch in.Kind {
		case ConfKindGroup:
			s = groups[in.Name]
			if s == nil {
				add(nil, true, "no vrrp_sync_group %s, which the agent's instance %q (kind group) needs", in.Name, in.Name)
				continue
			}
		default:
			s = instances[in.Name]
			if s == nil {
				add(nil, true, "no vrrp_instance %s, which the agent's instance %q needs", in.Name, in.Name)
				continue
			}
		}
		if n := agentNotify(s); n != nil {
			// keepalived starts one notify process per event, and their
			// arguments carry no sequence: two events close together can
			// reach the agent in either order.
			what := fmt.Sprintf("%s %s", s.keyword(), in.Name)
			if fifoIsAgents {
				add(n, false, "%s also calls havip-agent through %s: notify programs run concurrently and reach the agent in any order, so a late one can undo the FIFO's order (a MASTER after a BACKUP leaves the agent MASTER); remove it, the FIFO is the ordered path", what, n.keyword())
			} else {
				add(n, false, "%s tells the agent only through %s: notify programs run concurrently and reach the agent in any order (a MASTER then a BACKUP can leave the agent MASTER); set vrrp_notify_fifo %s in global_defs, the ordered path", what, n.keyword(), fifoHint(exp.FIFO))
			}
		} else if fifo == nil && notifiesAgent {
			add(s, true, "%s %s has no notify calling havip-agent and there is no vrrp_notify_fifo: the agent hears none of its transitions", s.keyword(), in.Name)
		}
		var members []*vrrpInst
		if in.Kind == ConfKindGroup {
			members = groupMembers(s, vrrps)
		} else {
			members = []*vrrpInst{vrrps[in.Name]}
		}
		for _, m := range members {
			managed[m] = in
		}
		out = append(out, lintVIPs(s, in, members)...)
		if in.DrainFile != "" {
			out = append(out, lintDrainFile(s, in, members, trackDefs)...)
		}
	}
	for _, v := range vrrpOrder {
		out = append(out, lintVRRP(v, managed[v])...)
	}
	return out
}

// vrrpVersion is a VRRP protocol version as keepalived numbers it.
type vrrpVersion int

// The VRRP versions keepalived speaks.
const (
	vrrpV2 vrrpVersion = 2
	vrrpV3 vrrpVersion = 3
)

// Keywords of keepalived.conf that LintConf reads more than once.
const (
	kwVIPs         = "virtual_ipaddress"
	kwExcludedVIPs = "virtual_ipaddress_excluded"
	kwVersion      = "version"      // in vrrp_instance
	kwVRRPVersion  = "vrrp_version" // in global_defs
	kwAdvertInt    = "advert_int"
	kwNoTrack      = "no_track" // option of a virtual_ipaddress entry
)

// vrrpInst is what LintConf reads of one vrrp_instance block.
type vrrpInst struct {
	stmt *confStmt
	name string
	// version is the one keepalived runs; why says what decided it, for
	// the messages.
	version vrrpVersion
	why     string
	// vips are the virtual_ipaddress entries, evips the
	// virtual_ipaddress_excluded ones: keepalived adds both while MASTER
	// and removes both otherwise, but only vips count as the VIPs it
	// requires of a VRRPv3 instance.
	vips, evips []confVIP
	// vipBlock is the first virtual_ipaddress statement, if any.
	vipBlock *confStmt
	advert   *confStmt
	// misplaced is a vrrp_version statement in the instance, which
	// keepalived ignores there (the instance keyword is version).
	misplaced *confStmt
	// bad are address entries keepalived cannot parse.
	bad []*confStmt
}

// confVIP is one address entry of virtual_ipaddress: the prefix keepalived
// adds, and whether the entry gave no prefix length (keepalived then adds
// a host prefix).
type confVIP struct {
	p    netip.Prefix
	stmt *confStmt
	bare bool
	// inst is the vrrp_instance that lists it.
	inst string
}

// globalVersion is the VRRP version global_defs sets for every instance:
// the last valid vrrp_version, VRRPv2 without one.
func globalVersion(globals []*confStmt) (vrrpVersion, string) {
	v, why := vrrpV2, "by default"
	for _, s := range globals {
		if s.keyword() != kwVRRPVersion || len(s.words) < 2 {
			continue
		}
		if n, ok := parseVersion(s.words[1]); ok {
			v, why = n, fmt.Sprintf("by global_defs vrrp_version at %s:%d", s.file, s.line)
		}
	}
	return v, why
}

func parseVersion(w string) (vrrpVersion, bool) {
	switch w {
	case "2":
		return vrrpV2, true
	case "3":
		return vrrpV3, true
	}
	return 0, false
}

// readVRRP reads one vrrp_instance block. An instance's own version wins
// over global_defs; without one, IPv6 VIPs make it VRRPv3, as VRRPv2
// carries only IPv4.
func readVRRP(s *confStmt, global vrrpVersion, globalWhy string) *vrrpInst {
	v := &vrrpInst{stmt: s, name: s.words[1]}
	var own *confStmt
	for _, st := range s.body {
		switch st.keyword() {
		case kwVIPs, kwExcludedVIPs:
			if st.keyword() == kwVIPs && v.vipBlock == nil {
				v.vipBlock = st
			}
			for _, e := range st.body {
				if len(e.words) == 0 {
					continue
				}
				cv, ok := parseConfVIP(e.words[0])
				if !ok {
					v.bad = append(v.bad, e)
					continue
				}
				cv.stmt, cv.inst = e, v.name
				if st.keyword() == kwVIPs {
					v.vips = append(v.vips, cv)
				} else {
					v.evips = append(v.evips, cv)
				}
			}
		case kwVersion:
			if len(st.words) >= 2 {
				if _, ok := parseVersion(st.words[1]); ok {
					own = st
				}
			}
		case kwVRRPVersion:
			v.misplaced = st
		case kwAdvertInt:
			v.advert = st
		}
	}
	switch {
	case own != nil:
		v.version, _ = parseVersion(own.words[1])
		v.why = fmt.Sprintf("by its version at %s:%d", own.file, own.line)
	case len(v.vips) > 0 && v.vips[0].p.Addr().Is6():
		v.version, v.why = vrrpV3, "because its VIPs are IPv6"
	default:
		v.version, v.why = global, globalWhy
	}
	return v
}

// parseConfVIP reads the address word of a virtual_ipaddress entry
// ("198.18.0.100/24 dev eth0 ..." or a bare "198.18.0.100").
func parseConfVIP(w string) (confVIP, bool) {
	if strings.Contains(w, "/") {
		p, err := netip.ParsePrefix(w)
		return confVIP{p: p}, err == nil
	}
	a, err := netip.ParseAddr(w)
	if err != nil || a.Zone() != "" {
		return confVIP{}, false
	}
	return confVIP{p: netip.PrefixFrom(a, a.BitLen()), bare: true}, true
}

// String is the entry as the findings show it.
func (c confVIP) String() string {
	if c.bare {
		return fmt.Sprintf("%s (no prefix length: keepalived adds %s)", c.p.Addr(), c.p)
	}
	return c.p.String()
}

// groupMembers returns the vrrp_instances a vrrp_sync_group names, in its
// order; names with no vrrp_instance are left out.
func groupMembers(g *confStmt, vrrps map[string]*vrrpInst) []*vrrpInst {
	var out []*vrrpInst
	for _, st := range g.body {
		if st.keyword() != "group" {
			continue
		}
		for _, m := range st.body {
			for _, w := range m.words {
				if v := vrrps[w]; v != nil {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// lintVIPs compares the addresses keepalived manages for an agent instance
// (s: its vrrp_instance, or its vrrp_sync_group with members) with the
// agent's VIPs. Shared, they must be the same prefixes; agent-owned,
// keepalived must not manage any of them.
func lintVIPs(s *confStmt, in ConfInstance, members []*vrrpInst) []Finding {
	var out []Finding
	add := func(at *confStmt, format string, args ...any) {
		out = append(out, Finding{File: at.file, Line: at.line, Error: true, Msg: fmt.Sprintf(format, args...)})
	}
	what := fmt.Sprintf("%s %s", s.keyword(), in.Name)
	// lister names the vrrp_instance of an entry, and its group.
	lister := func(k confVIP) string {
		if s.keyword() == "vrrp_instance" {
			return what
		}
		return fmt.Sprintf("vrrp_instance %s (of %s)", k.inst, what)
	}
	var kept []confVIP
	var vipBlock *confStmt
	v3NoVIPs := false
	for _, m := range members {
		kept = append(append(kept, m.vips...), m.evips...)
		if vipBlock == nil {
			vipBlock = m.vipBlock
		}
		if m.version == vrrpV3 && len(m.vips) == 0 {
			// lintVRRP reports it, with the fix.
			v3NoVIPs = true
		}
	}
	if !in.Shared {
		for _, k := range kept {
			if slices.ContainsFunc(in.VIPs, func(p netip.Prefix) bool { return p.Addr() == k.p.Addr() }) {
				add(k.stmt, "%s lists the agent's VIP %s, but the agent's instance %q does not set shared_vips: set shared_vips = true for it in havip-agent.toml (keepalived and the agent then both manage the VIPs, as VRRPv3 needs), or remove the address here (agent-owned VIPs, VRRPv2 only)", lister(k), k.p.Addr(), in.Name)
			}
		}
		return out
	}
	if len(kept) == 0 {
		if !v3NoVIPs {
			add(s, "the agent's instance %q sets shared_vips = true but %s has no virtual_ipaddress: list the agent's VIPs (%s) in virtual_ipaddress, or set shared_vips = false (agent-owned VIPs, VRRPv2 only)", in.Name, what, prefixList(in.VIPs))
		}
		return out
	}
	matched := make([]bool, len(in.VIPs))
	for _, k := range kept {
		i := slices.Index(in.VIPs, k.p)
		if i < 0 {
			i = slices.IndexFunc(in.VIPs, func(p netip.Prefix) bool { return p.Addr() == k.p.Addr() })
			if i >= 0 {
				add(k.stmt, "%s lists %s but the agent's instance %q has %s: keepalived and the agent must add the same prefix; write %s here, or %q in vips in havip-agent.toml", lister(k), k, in.Name, in.VIPs[i], in.VIPs[i], k.p)
			}
		}
		if i >= 0 {
			matched[i] = true
			// keepalived tracks a VIP's deletion by default: it gives up
			// MASTER at once, where the agent would put the address back.
			if !slices.Contains(k.stmt.words[1:], kwNoTrack) {
				out = append(out, Finding{File: k.stmt.file, Line: k.stmt.line, Msg: fmt.Sprintf("%s lists %s without no_track: when the address is deleted from the interface keepalived leaves MASTER (it sends priority 0 and the peer takes over) instead of letting the agent put it back; add no_track to the entry", lister(k), k.p)})
			}
			continue
		}
		add(k.stmt, "%s lists %s, which the agent's instance %q does not have (vips = %s): keepalived and the agent must manage the same addresses; add %q to vips in havip-agent.toml, or remove it here", lister(k), k, in.Name, prefixList(in.VIPs), k.p)
	}
	at := vipBlock
	if at == nil {
		at = s
	}
	for i, p := range in.VIPs {
		if !matched[i] {
			add(at, "the agent's instance %q has the VIP %s, which %s does not list: keepalived and the agent must manage the same addresses; add %s to virtual_ipaddress, or remove it from vips in havip-agent.toml", in.Name, p, what, p)
		}
	}
	return out
}

// prefixList shows prefixes the way havip-agent.toml writes them.
func prefixList(ps []netip.Prefix) string {
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = fmt.Sprintf("%q", p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// lintVRRP reports what keepalived itself refuses or changes in one
// vrrp_instance; in is the agent instance it serves, if any.
func lintVRRP(v *vrrpInst, in ConfInstance) []Finding {
	var out []Finding
	add := func(at *confStmt, format string, args ...any) {
		out = append(out, Finding{File: at.file, Line: at.line, Error: true, Msg: fmt.Sprintf(format, args...)})
	}
	for _, b := range v.bad {
		add(b, "%q in vrrp_instance %s is not an address: keepalived skips the entry", b.words[0], v.name)
	}
	if m := v.misplaced; m != nil {
		add(m, "vrrp_version is a global_defs keyword: keepalived ignores it in vrrp_instance %s, which stays VRRPv%d (%s); write version %s here, or move it to global_defs", v.name, v.version, v.why, strings.Join(m.words[1:], " "))
	}
	if v.version == vrrpV3 && len(v.vips) == 0 {
		switch {
		case in.Name == "":
			add(v.stmt, "vrrp_instance %s is VRRPv3 (%s) and has no virtual_ipaddress: keepalived refuses it (\"No VIP specified; at least one is required\"); give it a virtual_ipaddress", v.name, v.why)
		case in.Shared:
			add(v.stmt, "vrrp_instance %s is VRRPv3 (%s) and has no virtual_ipaddress: keepalived refuses it (\"No VIP specified; at least one is required\"); put the agent's VIPs (%s) in virtual_ipaddress", v.name, v.why, prefixList(in.VIPs))
		default:
			add(v.stmt, "vrrp_instance %s is VRRPv3 (%s) and has no virtual_ipaddress: keepalived refuses it (\"No VIP specified; at least one is required\"); put the agent's VIPs (%s) in virtual_ipaddress (shared mode) and set shared_vips = true for instance %q in havip-agent.toml, or run VRRPv2 (agent-owned VIPs, whole-second adverts)", v.name, v.why, prefixList(in.VIPs), in.Name)
		}
	}
	if a := v.advert; a != nil && len(a.words) >= 2 && v.version == vrrpV2 {
		if us, ok := parseInterval(a.words[1]); ok && us < 256*usPerSecond && us%usPerSecond != 0 {
			// keepalived rounds half up, and never to zero.
			s := max((us+usPerSecond/2)/usPerSecond, 1)
			add(a, "advert_int %s in vrrp_instance %s, which is VRRPv2 (%s): keepalived rounds a VRRPv2 interval to whole seconds and runs at %d s; for sub-second adverts use VRRPv3 (version 3 in the instance or vrrp_version 3 in global_defs) with the VIPs in virtual_ipaddress and shared_vips = true in havip-agent.toml, or write advert_int %d", a.words[1], v.name, v.why, s, s)
		}
	}
	return out
}

// usPerSecond is keepalived's timer resolution: it reads advert_int in
// microseconds.
const usPerSecond = 1_000_000

// parseInterval reads a decimal number of seconds ("1", "0.2", "1.50") in
// microseconds, as keepalived does; false for anything it would refuse.
func parseInterval(w string) (int64, bool) {
	ip, fp, _ := strings.Cut(w, ".")
	if ip == "" && fp == "" || len(ip) > 6 || len(fp) > 6 {
		return 0, false
	}
	var us int64
	for _, r := range ip {
		if r < '0' || r > '9' {
			return 0, false
		}
		us = us*10 + int64(r-'0')
	}
	us *= usPerSecond
	scale := int64(usPerSecond / 10)
	for _, r := range fp {
		if r < '0' || r > '9' {
			return 0, false
		}
		us += int64(r-'0') * scale
		scale /= 10
	}
	return us, true
}

// agentNotify returns the first notify statement of an instance or sync
// group block (notify, notify_master, notify_backup, notify_fault,
// notify_stop, ...) that runs havip-agent, or nil.
func agentNotify(s *confStmt) *confStmt {
	for _, st := range s.body {
		if strings.HasPrefix(st.keyword(), "notify") && strings.Contains(strings.Join(st.words[1:], " "), "havip-agent") {
			return st
		}
	}
	return nil
}

// fifoHint names the FIFO to set: the agent's, when it is known.
func fifoHint(fifo string) string {
	if fifo == "" {
		return "to the agent's [keepalived] fifo"
	}
	return fifo
}

func (s *confStmt) keyword() string {
	if len(s.words) == 0 {
		return ""
	}
	return s.words[0]
}
