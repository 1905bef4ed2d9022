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

// LintConf checks parsed keepalived.conf against what the agent expects.
// It is pure: ReadConf does the I/O.
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
	instances := map[string]*confStmt{}
	groups := map[string]*confStmt{}
	notifiesAgent := false
	for _, s := range conf.stmts {
		switch {
		case s.keyword() == "global_defs":
			globals = append(globals, s.body...)
		case s.keyword() == "vrrp_instance" && len(s.words) >= 2:
			instances[s.words[1]] = s
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
		if in.Kind == ConfKindGroup {
			continue
		}
		for _, st := range s.body {
			if st.keyword() != "virtual_ipaddress" && st.keyword() != "virtual_ipaddress_excluded" {
				continue
			}
			for _, addr := range st.body {
				if len(addr.words) == 0 {
					continue
				}
				// "198.18.0.100/24 dev eth0" or a bare address.
				a, _, _ := strings.Cut(addr.words[0], "/")
				ip, err := netip.ParseAddr(a)
				if err == nil && slices.ContainsFunc(in.VIPs, func(v netip.Prefix) bool { return v.Addr() == ip }) {
					add(addr, false, "vrrp_instance %s also manages %s: the agent owns its VIPs; remove it from virtual_ipaddress", in.Name, addr.words[0])
				}
			}
		}
	}
	return out
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
