package health

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestInterpreterFor(t *testing.T) {
	tests := []struct {
		base, resolved string
		args           []string
		want           *interpreter // nil: not an interpreter
		wantArgs       []string
	}{
		{base: "sh", resolved: "dash", args: []string{"/x"}, want: &shellInterp, wantArgs: []string{"/x"}},
		{base: "check", resolved: "bash", args: []string{"/x"}, want: &bashInterp, wantArgs: []string{"/x"}},
		{base: "python3", resolved: "python3.11", want: &pythonInterp},
		{base: "python3.11", resolved: "python3.11", want: &pythonInterp},
		{base: "pypy3", resolved: "pypy3", want: &pythonInterp},
		{base: "perl5.36.0", resolved: "perl5.36.0", want: &perlInterp},
		{base: "ruby3.1", resolved: "ruby3.1", want: &rubyInterp},
		{base: "nodejs", resolved: "node", want: &nodeInterp},
		{base: "php8.2", resolved: "php8.2", want: &phpInterp},
		{base: "lua5.4", resolved: "lua5.4", want: &luaInterp},
		{base: "ksh93", resolved: "ksh93", want: &shellInterp},
		{base: "tclsh8.6", resolved: "tclsh8.6", want: &tclInterp},
		{base: "Rscript", resolved: "Rscript", want: &rscriptInterp},
		{base: "busybox", resolved: "busybox", args: []string{"sh", "/x"}, want: &shellInterp, wantArgs: []string{"/x"}},
		{base: "busybox", resolved: "busybox", args: []string{"ls", "/x"}},
		{base: "busybox", resolved: "busybox"},
		// A link named sh to busybox runs its sh applet.
		{base: "sh", resolved: "busybox", args: []string{"/x"}, want: &shellInterp, wantArgs: []string{"/x"}},
		{base: "ls", resolved: "busybox", args: []string{"sh"}},
		{base: "check-db", resolved: "check-db"},
		{base: "shellcheck", resolved: "shellcheck"},
		{base: "42", resolved: "42"},
		{base: "env", resolved: "env", args: []string{"python3", "/x"}},
	}
	for _, tt := range tests {
		in, args, ok := interpreterFor(tt.base, tt.resolved, tt.args)
		if ok != (tt.want != nil) || in != tt.want {
			t.Errorf("interpreterFor(%q, %q, %q) = %p, %v; want %p", tt.base, tt.resolved, tt.args, in, ok, tt.want)
			continue
		}
		if ok && !slices.Equal(args, tt.wantArgs) {
			t.Errorf("interpreterFor(%q, %q, %q) args = %q, want %q", tt.base, tt.resolved, tt.args, args, tt.wantArgs)
		}
	}
}

func TestCodeFiles(t *testing.T) {
	script := func(p string) codeFile { return codeFile{what: "script", path: p} }
	tests := []struct {
		name string
		in   *interpreter
		args []string
		want []codeFile
	}{
		{name: "sh script", in: &shellInterp, args: []string{"/s.sh", "arg"}, want: []codeFile{script("/s.sh")}},
		{name: "sh flags", in: &shellInterp, args: []string{"-eu", "+x", "/s.sh"}, want: []codeFile{script("/s.sh")}},
		{name: "sh -o value", in: &shellInterp, args: []string{"-o", "errexit", "/s.sh"}, want: []codeFile{script("/s.sh")}},
		{name: "sh +o value", in: &shellInterp, args: []string{"+o", "noglob", "/s.sh"}, want: []codeFile{script("/s.sh")}},
		{name: "sh -eo cluster", in: &shellInterp, args: []string{"-eo", "errexit", "/s.sh"}, want: []codeFile{script("/s.sh")}},
		{name: "sh -c inline", in: &shellInterp, args: []string{"-c", "test -e /run/ok", "/not-a-script"}},
		{name: "sh -ec inline", in: &shellInterp, args: []string{"-ec", "true"}},
		{name: "sh -s stdin", in: &shellInterp, args: []string{"-s", "arg"}},
		{name: "sh - stdin", in: &shellInterp, args: []string{"-", "arg"}},
		{name: "sh --", in: &shellInterp, args: []string{"--", "-odd-name"}, want: []codeFile{script("-odd-name")}},
		{name: "sh nothing", in: &shellInterp},
		{name: "sh -C is a flag", in: &shellInterp, args: []string{"-C", "/s.sh"}, want: []codeFile{script("/s.sh")}},
		{name: "sh -o without value", in: &shellInterp, args: []string{"-o"}},
		{name: "relative script", in: &shellInterp, args: []string{"s.sh"}, want: []codeFile{script("s.sh")}},
		{name: "bash rcfile", in: &bashInterp, args: []string{"--rcfile", "/rc", "-O", "extglob", "/s.sh"},
			want: []codeFile{{what: "option --rcfile", path: "/rc"}, script("/s.sh")}},
		{name: "bash init-file attached", in: &bashInterp, args: []string{"--init-file=/rc", "--norc", "/s.sh"},
			want: []codeFile{{what: "option --init-file", path: "/rc"}, script("/s.sh")}},
		{name: "fish -C value", in: &fishInterp, args: []string{"-C", "set x 1", "/s.fish"}, want: []codeFile{script("/s.fish")}},
		{name: "python script", in: &pythonInterp, args: []string{"-u", "/c.py", "-v"}, want: []codeFile{script("/c.py")}},
		{name: "python -W value", in: &pythonInterp, args: []string{"-W", "ignore", "/c.py"}, want: []codeFile{script("/c.py")}},
		{name: "python -Wignore", in: &pythonInterp, args: []string{"-Wignore", "-X", "utf8", "/c.py"}, want: []codeFile{script("/c.py")}},
		{name: "python -c", in: &pythonInterp, args: []string{"-c", "import sys"}},
		{name: "python -Ic cluster", in: &pythonInterp, args: []string{"-Ic", "import sys"}},
		{name: "python -m", in: &pythonInterp, args: []string{"-m", "http.client", "/x"}},
		{name: "perl script", in: &perlInterp, args: []string{"-w", "/c.pl"}, want: []codeFile{script("/c.pl")}},
		{name: "perl -Mstrict", in: &perlInterp, args: []string{"-Mstrict", "-I/lib", "/c.pl"}, want: []codeFile{script("/c.pl")}},
		{name: "perl -e", in: &perlInterp, args: []string{"-MIO::Socket", "-e", "exit 0"}},
		{name: "perl -lne", in: &perlInterp, args: []string{"-lne", "print"}},
		{name: "perl -l0ne", in: &perlInterp, args: []string{"-l0ne", "print"}},
		{name: "perl -00 script", in: &perlInterp, args: []string{"-00", "/c.pl"}, want: []codeFile{script("/c.pl")}},
		{name: "perl -i.bak stops the cluster", in: &perlInterp, args: []string{"-i.bake", "/c.pl"}, want: []codeFile{script("/c.pl")}},
		// Unsure whether -I takes the next argument: it is checked as the
		// script, never skipped.
		{name: "perl -I separate", in: &perlInterp, args: []string{"-I", "/lib", "/c.pl"}, want: []codeFile{script("/lib")}},
		{name: "ruby -e", in: &rubyInterp, args: []string{"-rjson", "-e", "exit"}},
		{name: "ruby script", in: &rubyInterp, args: []string{"-W0", "/c.rb"}, want: []codeFile{script("/c.rb")}},
		{name: "node script", in: &nodeInterp, args: []string{"--max-old-space-size=64", "/c.js"}, want: []codeFile{script("/c.js")}},
		{name: "node -r value", in: &nodeInterp, args: []string{"-r", "dotenv/config", "/c.js"}, want: []codeFile{script("/c.js")}},
		{name: "node --eval", in: &nodeInterp, args: []string{"--eval=process.exit(0)"}},
		{name: "node -e", in: &nodeInterp, args: []string{"-e", "process.exit(0)"}},
		{name: "php -f", in: &phpInterp, args: []string{"-n", "-f", "/c.php", "--", "x"}, want: []codeFile{script("/c.php")}},
		{name: "php -c and script", in: &phpInterp, args: []string{"-c", "/php.ini", "-d", "x=1", "/c.php"},
			want: []codeFile{{what: "option -c", path: "/php.ini"}, script("/c.php")}},
		{name: "php -r", in: &phpInterp, args: []string{"-r", "exit(0);"}},
		{name: "php --file=", in: &phpInterp, args: []string{"--file=/c.php"}, want: []codeFile{script("/c.php")}},
		{name: "lua -e", in: &luaInterp, args: []string{"-l", "socket", "-e", "os.exit(0)"}},
		{name: "lua script", in: &luaInterp, args: []string{"-l", "socket", "/c.lua"}, want: []codeFile{script("/c.lua")}},
		{name: "tcl script", in: &tclInterp, args: []string{"/c.tcl"}, want: []codeFile{script("/c.tcl")}},
		{name: "Rscript -e", in: &rscriptInterp, args: []string{"--vanilla", "-e", "q()"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := codeFiles(tt.in, tt.args)
			if !slices.Equal(got, tt.want) {
				t.Errorf("codeFiles(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestValidateCommandInterpreter(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	sh := writeScript(t, root, "sh", "exit 0\n")
	py := writeScript(t, root, "python3.11", "exit 0\n")
	pyLink := filepath.Join(root, "python3")
	if err := os.Symlink("python3.11", pyLink); err != nil {
		t.Fatal(err)
	}
	php := writeScript(t, root, "php", "exit 0\n")
	check := writeScript(t, root, "check", "exit 0\n")
	// Scripts need not be executable.
	good := filepath.Join(root, "good.sh")
	if err := os.WriteFile(good, []byte("exit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	userScript := writeScript(t, root, "user.sh", "exit 0\n")
	worldScript := writeScript(t, root, "world.sh", "exit 0\n")
	if err := os.Chmod(worldScript, 0o646); err != nil {
		t.Fatal(err)
	}
	opendir := filepath.Join(root, "open")
	if err := os.Mkdir(opendir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(opendir, 0o777); err != nil {
		t.Fatal(err)
	}
	inOpen := writeScript(t, opendir, "x.sh", "exit 0\n")
	linkToOpen := filepath.Join(root, "link.sh")
	if err := os.Symlink("open/x.sh", linkToOpen); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	lookup := fakeOwners(root, map[string]FileOwner{userScript: {UID: 1000, Mode: 0o755}})

	tests := []struct {
		name string
		argv []string
		want string // substring of the error; empty: accepted
	}{
		{name: "script ok", argv: []string{sh, good, "arg"}},
		{name: "script through link ok", argv: []string{sh, "-e", filepath.Join(root, "good.sh")}},
		{name: "inline code ok", argv: []string{sh, "-c", "exit 0", userScript}},
		{name: "no script ok", argv: []string{sh}},
		{name: "user-owned script", argv: []string{sh, userScript},
			want: `command "` + sh + `": script "` + userScript + `": ` + userScript + " is owned by uid 1000"},
		{name: "world-writable script", argv: []string{sh, "-eu", worldScript}, want: worldScript + " is writable by others"},
		{name: "script in writable directory", argv: []string{sh, inOpen}, want: opendir + " is writable by others"},
		{name: "link into writable directory", argv: []string{sh, linkToOpen}, want: opendir + " is writable by others"},
		{name: "relative script", argv: []string{sh, "good.sh"}, want: `script "good.sh": must be an absolute path`},
		{name: "option value taken as script", argv: []string{py, "-X", "utf8", "-Q", "new", good}, want: `script "new": must be an absolute path`},
		{name: "missing script", argv: []string{sh, filepath.Join(root, "missing.sh")}, want: "no such file"},
		{name: "directory as script", argv: []string{sh, sub}, want: "not a regular file"},
		{name: "interpreter by resolved name", argv: []string{pyLink, userScript}, want: "owned by uid 1000"},
		{name: "php ini checked", argv: []string{php, "-c", userScript, good}, want: `option -c "` + userScript + `"`},
		{name: "php -f script", argv: []string{php, "-f", userScript}, want: "owned by uid 1000"},
		{name: "arguments of other programs are not files", argv: []string{check, userScript}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCommandWith(tt.argv, lookup)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateCommandWith(%q) = %v, want nil", tt.argv, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidateCommandWith(%q) = %v, want containing %q", tt.argv, err, tt.want)
			}
		})
	}
}
