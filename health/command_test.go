package health

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeOwners answers like StatOwner for paths under root, with ownership
// forced to root (tests may not run as root) unless overridden, and
// reports every directory outside root as root-owned 0755, since the temp
// directory's ancestors (such as /tmp, mode 1777) would fail the check.
func fakeOwners(root string, override map[string]FileOwner) OwnerLookup {
	return func(p string) (FileOwner, error) {
		if o, ok := override[p]; ok {
			return o, nil
		}
		if p != root && !strings.HasPrefix(p, root+"/") {
			return FileOwner{Mode: os.ModeDir | 0o755}, nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			return FileOwner{}, err
		}
		return FileOwner{Mode: fi.Mode()}, nil
	}
}

// writeScript writes an executable script and returns its path.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is subject to umask; make it exact.
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateCommand(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ok := writeScript(t, root, "ok", "exit 0\n")
	noexec := writeScript(t, root, "noexec", "exit 0\n")
	if err := os.Chmod(noexec, 0o644); err != nil {
		t.Fatal(err)
	}
	worldw := writeScript(t, root, "worldw", "exit 0\n")
	if err := os.Chmod(worldw, 0o757); err != nil {
		t.Fatal(err)
	}
	groupw := writeScript(t, root, "groupw", "exit 0\n")
	if err := os.Chmod(groupw, 0o775); err != nil {
		t.Fatal(err)
	}
	userowned := writeScript(t, root, "userowned", "exit 0\n")
	// A writable directory holding a safe script.
	opendir := filepath.Join(root, "open")
	if err := os.Mkdir(opendir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(opendir, 0o777); err != nil {
		t.Fatal(err)
	}
	inopen := writeScript(t, opendir, "check", "exit 0\n")
	// A link in the writable directory pointing at a safe script, and a
	// safe link pointing into the writable directory.
	linkInOpen := filepath.Join(opendir, "link")
	if err := os.Symlink(ok, linkInOpen); err != nil {
		t.Fatal(err)
	}
	linkToOpen := filepath.Join(root, "link-to-open")
	if err := os.Symlink("open/check", linkToOpen); err != nil {
		t.Fatal(err)
	}
	goodLink := filepath.Join(root, "good-link")
	if err := os.Symlink("./ok", goodLink); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(root, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}

	lookup := fakeOwners(root, map[string]FileOwner{
		userowned: {UID: 1000, Mode: 0o755},
		groupw:    {GID: 100, Mode: 0o775},
	})
	tests := []struct {
		name string
		argv []string
		want string // substring of the error; empty: accepted
	}{
		{name: "ok", argv: []string{ok, "--quick"}},
		{name: "ok through safe link", argv: []string{goodLink}},
		{name: "ok with dot-dot", argv: []string{filepath.Join(sub, "..", "ok")}},
		{name: "empty", argv: nil, want: "empty"},
		{name: "relative", argv: []string{"ok"}, want: "absolute path"},
		{name: "missing", argv: []string{filepath.Join(root, "missing")}, want: "no such file"},
		{name: "directory", argv: []string{sub}, want: "not a regular file"},
		{name: "not executable", argv: []string{noexec}, want: "not executable"},
		{name: "world writable", argv: []string{worldw}, want: "writable by others"},
		{name: "group writable", argv: []string{groupw}, want: "writable by group 100"},
		{name: "user owned", argv: []string{userowned}, want: "owned by uid 1000"},
		{name: "writable parent", argv: []string{inopen}, want: opendir + " is writable by others"},
		{name: "link in writable dir", argv: []string{linkInOpen}, want: opendir + " is writable by others"},
		{name: "link into writable dir", argv: []string{linkToOpen}, want: opendir + " is writable by others"},
		{name: "symlink loop", argv: []string{loop}, want: "too many levels"},
		{name: "file as directory", argv: []string{filepath.Join(ok, "x")}, want: "not a directory"},
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

func TestValidateCommandRealLookup(t *testing.T) {
	// A world-writable directory fails with the real lookup, whoever owns
	// the temporary directory's ancestors.
	dir := t.TempDir()
	p := writeScript(t, dir, "check", "exit 0\n")
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := ValidateCommand([]string{p}); err == nil {
		t.Fatalf("ValidateCommand(%s) accepted a script in a world-writable directory", p)
	}
}
