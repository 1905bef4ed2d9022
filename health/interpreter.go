package health

import "strings"

// optKind is how an interpreter's option takes its value.
type optKind int

const (
	// optFlag takes no value; options an interpreter table does not list
	// are flags.
	optFlag optKind = iota
	// optValue takes a value, attached (-Wignore, --opt=v) or as the next
	// argument.
	optValue
	// optAttached takes the rest of its cluster as a value, never the
	// next argument (perl -Mstrict). A letter whose syntax is uncertain is
	// listed so: the next argument is then taken as the script and
	// checked, never skipped.
	optAttached
	// optDigits takes the digits that follow it in its cluster, which
	// then goes on (perl -l0ne is -l0 -n -e).
	optDigits
	// optInline means the program is not a file: the value is program
	// text (sh -c), a module found on the interpreter's search path
	// (python -m), or standard input (sh -s). Nothing is left to check.
	optInline
	// optCode takes a value that is a file of code (bash --rcfile, php -c),
	// checked like the script; the scan goes on.
	optCode
	// optScript takes the script as its value (php -f); the scan ends.
	optScript
)

// interpreter is how one family of interpreters takes its program.
type interpreter struct {
	// plus: '+' starts an option too (sh +x).
	plus  bool
	short map[byte]optKind
	long  map[string]optKind
}

// The interpreter families ValidateCommand knows.
var (
	shellInterp = interpreter{plus: true,
		// -s reads the program from standard input, which is /dev/null.
		short: map[byte]optKind{'c': optInline, 's': optInline, 'o': optValue}}
	bashInterp = interpreter{plus: true,
		short: map[byte]optKind{'c': optInline, 's': optInline, 'o': optValue, 'O': optValue},
		long:  map[string]optKind{"--rcfile": optCode, "--init-file": optCode}}
	fishInterp = interpreter{
		short: map[byte]optKind{'c': optInline, 'C': optValue},
		long:  map[string]optKind{"--command": optInline, "--init-command": optValue}}
	pythonInterp = interpreter{
		short: map[byte]optKind{'c': optInline, 'm': optInline, 'W': optValue, 'X': optValue},
		long:  map[string]optKind{"--check-hash-based-pycs": optValue}}
	perlInterp = interpreter{
		short: map[byte]optKind{'e': optInline, 'E': optInline,
			'0': optDigits, 'C': optAttached, 'd': optAttached, 'D': optAttached, 'F': optAttached,
			'i': optAttached, 'I': optAttached, 'm': optAttached, 'M': optAttached, 'x': optAttached,
			'l': optDigits}}
	rubyInterp = interpreter{
		short: map[byte]optKind{'e': optInline,
			'0': optAttached, 'C': optAttached, 'E': optAttached, 'F': optAttached, 'I': optAttached,
			'K': optAttached, 'T': optAttached, 'W': optAttached, 'i': optAttached, 'r': optAttached, 'x': optAttached}}
	nodeInterp = interpreter{
		short: map[byte]optKind{'e': optInline, 'p': optInline, 'r': optValue, 'C': optValue},
		long: map[string]optKind{"--eval": optInline, "--print": optInline,
			"--require": optValue, "--import": optValue, "--loader": optValue, "--experimental-loader": optValue,
			"--conditions": optValue, "--input-type": optValue, "--title": optValue}}
	phpInterp = interpreter{
		short: map[byte]optKind{'r': optInline, 'f': optScript, 'F': optCode, 'c': optCode, 'z': optCode,
			'd': optValue, 'B': optValue, 'R': optValue, 'E': optValue},
		long: map[string]optKind{"--run": optInline, "--file": optScript, "--process-file": optCode,
			"--php-ini": optCode, "--zend-extension": optCode, "--define": optValue,
			"--process-begin": optValue, "--process-code": optValue, "--process-end": optValue}}
	luaInterp     = interpreter{short: map[byte]optKind{'e': optInline, 'l': optValue}}
	tclInterp     = interpreter{}
	rscriptInterp = interpreter{short: map[byte]optKind{'e': optInline}}
)

// interpreterNames maps a program's base name, less a version suffix
// (python3.11, perl5.36.0, php8.2), to its family.
var interpreterNames = map[string]*interpreter{
	"sh": &shellInterp, "ash": &shellInterp, "dash": &shellInterp, "zsh": &shellInterp,
	"ksh": &shellInterp, "mksh": &shellInterp, "pdksh": &shellInterp, "yash": &shellInterp,
	"posh": &shellInterp, "csh": &shellInterp, "tcsh": &shellInterp,
	"bash": &bashInterp, "fish": &fishInterp,
	"python": &pythonInterp, "pypy": &pythonInterp,
	"perl": &perlInterp, "ruby": &rubyInterp,
	"node": &nodeInterp, "nodejs": &nodeInterp,
	"php": &phpInterp, "lua": &luaInterp, "luajit": &luaInterp,
	"tclsh": &tclInterp, "wish": &tclInterp, "Rscript": &rscriptInterp,
}

// busybox runs the applet named by its first argument.
const busyboxName = "busybox"

// interpreterByName returns the family of a program's base name, allowing
// a version suffix of digits and dots.
func interpreterByName(base string) (*interpreter, bool) {
	name := strings.TrimRight(base, "0123456789.")
	if name == "" {
		return nil, false
	}
	in, ok := interpreterNames[name]
	return in, ok
}

// interpreterFor says whether a command runs an interpreter, given the
// base name of argv[0] as written and as resolved (/bin/sh may be dash,
// python3 may be python3.11), and returns its family and the arguments it
// parses.
func interpreterFor(base, resolvedBase string, args []string) (*interpreter, []string, bool) {
	if in, ok := interpreterByName(base); ok {
		return in, args, true
	}
	switch {
	case base == busyboxName:
		if len(args) == 0 {
			return nil, nil, false
		}
		in, ok := interpreterByName(args[0])
		return in, args[1:], ok
	case resolvedBase == busyboxName:
		// A link to busybox runs the applet of the link's name, which is
		// not an interpreter's.
		return nil, nil, false
	}
	in, ok := interpreterByName(resolvedBase)
	return in, args, ok
}

// codeFile is an argument that names a file an interpreter runs.
type codeFile struct {
	// what says what the argument is in error messages: "script" or
	// "option -c".
	what string
	path string
}

// codeFiles returns the files of code that an interpreter of family in
// reads when given args: its script, if any, and the values of options
// that name a file of code. It is a pure function of its arguments.
func codeFiles(in *interpreter, args []string) []codeFile {
	var out []codeFile
	for i := 0; i < len(args); i++ {
		a := args[i]
		// next consumes the next argument as an option's value.
		next := func() (string, bool) {
			if i+1 >= len(args) {
				return "", false
			}
			i++
			return args[i], true
		}
		switch {
		case a == "--":
			if v, ok := next(); ok {
				out = append(out, codeFile{what: "script", path: v})
			}
			return out
		case a == "-":
			// The program comes from standard input, which is /dev/null.
			return out
		case strings.HasPrefix(a, "--"):
			name, val, attached := strings.Cut(a, "=")
			kind := in.long[name]
			if kind == optFlag || kind == optAttached {
				continue
			}
			if kind == optInline {
				return out
			}
			if !attached {
				if val, attached = next(); !attached {
					return out
				}
			}
			switch kind {
			case optCode:
				out = append(out, codeFile{what: "option " + name, path: val})
			case optScript:
				return append(out, codeFile{what: "script", path: val})
			}
		case a[0] == '-' || (in.plus && a[0] == '+'):
			// A cluster of one-letter options, such as -eu or -lne.
		cluster:
			for j := 1; j < len(a); j++ {
				kind := in.short[a[j]]
				switch kind {
				case optFlag:
					continue
				case optAttached:
					break cluster
				case optDigits:
					for j+1 < len(a) && a[j+1] >= '0' && a[j+1] <= '9' {
						j++
					}
					continue
				case optInline:
					return out
				}
				val := a[j+1:]
				if val == "" {
					v, ok := next()
					if !ok {
						return out
					}
					val = v
				}
				switch kind {
				case optCode:
					out = append(out, codeFile{what: "option " + a[:1] + string(a[j]), path: val})
				case optScript:
					return append(out, codeFile{what: "script", path: val})
				}
				break cluster
			}
		default:
			return append(out, codeFile{what: "script", path: a})
		}
	}
	return out
}
