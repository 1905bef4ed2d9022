package health

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// FileOwner is what the command check needs to know about one file or
// directory.
type FileOwner struct {
	UID, GID uint32
	Mode     fs.FileMode
}

// OwnerLookup returns the owner and mode of a path that contains no
// symbolic links. ValidateCommandWith takes one so tests can run on files
// they cannot chown; StatOwner is the real one.
type OwnerLookup func(path string) (FileOwner, error)

// StatOwner looks path up with stat(2).
func StatOwner(path string) (FileOwner, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return FileOwner{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return FileOwner{}, fmt.Errorf("%s: no ownership information", path)
	}
	return FileOwner{UID: st.Uid, GID: st.Gid, Mode: fi.Mode()}, nil
}

// maxSymlinks matches the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// ValidateCommand refuses an exec check command that a non-root user could
// change: argv[0] must be an absolute path to an executable regular file,
// and neither that file nor any directory on the way to it (following
// symbolic links, including the directories holding the links) may be
// owned by a non-root user, group-writable with a non-root group, or
// writable by others. This is the rule of keepalived's
// enable_script_security.
//
// When argv[0] is a script interpreter (see interpreterFor: shells,
// python, perl, ruby, node, php, lua, tclsh, Rscript, and busybox running
// one of those), the script it is given is held to the same rule, except
// that it need not be executable: the script is the first argument that is
// not an option (or the one after "--"), skipping the values of the
// interpreter's options that take one. Program text given inline (sh -c,
// python -c, perl -e, ...) is accepted, since it is in the configuration
// file itself, and so are modules named by options (python -m, perl -M,
// node -r): they are looked up on the interpreter's own search path, and
// the environment of a check is fixed, so no PYTHONPATH or the like points
// elsewhere. Option values that name a file of code (bash --rcfile, php
// -c) are checked like the script. When unsure whether an option takes a
// value, the next argument is taken as the script, so that a script is
// never skipped: write such values attached (-Wignore) or set them inside
// the script. Programs that run another program named in their arguments
// (env, timeout, nice) are not followed: give the program itself.
func ValidateCommand(argv []string) error {
	return ValidateCommandWith(argv, StatOwner)
}

// ValidateCommandWith is ValidateCommand with the ownership lookup
// injected. Symbolic links are still resolved on the real file system.
func ValidateCommandWith(argv []string, lookup OwnerLookup) error {
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("command: empty")
	}
	name := argv[0]
	if !filepath.IsAbs(name) {
		return fmt.Errorf("command %q: must be an absolute path", name)
	}
	checked := map[string]bool{}
	secure := func(p string) error {
		if checked[p] {
			return nil
		}
		checked[p] = true
		o, err := lookup(p)
		if err != nil {
			return err
		}
		if why := insecure(o); why != "" {
			return fmt.Errorf("%s is %s", p, why)
		}
		return nil
	}

	resolved, err := resolve(name, secure)
	if err != nil {
		return fmt.Errorf("command %q: %w", name, err)
	}
	o, err := lookup(resolved)
	if err != nil {
		return fmt.Errorf("command %q: %w", name, err)
	}
	if !o.Mode.IsRegular() {
		return fmt.Errorf("command %q: %s is not a regular file", name, resolved)
	}
	if o.Mode.Perm()&0o111 == 0 {
		return fmt.Errorf("command %q: %s is not executable", name, resolved)
	}
	if err := secure(resolved); err != nil {
		return fmt.Errorf("command %q: %w", name, err)
	}

	in, args, ok := interpreterFor(filepath.Base(name), filepath.Base(resolved), argv[1:])
	if !ok {
		return nil
	}
	for _, code := range codeFiles(in, args) {
		if err := checkCodeFile(code, lookup, secure); err != nil {
			return fmt.Errorf("command %q: %s %q: %w", name, code.what, code.path, err)
		}
	}
	return nil
}

// checkCodeFile applies the argv[0] rule, but for the executable bit, to a
// file an interpreter reads.
func checkCodeFile(c codeFile, lookup OwnerLookup, secure func(string) error) error {
	if !filepath.IsAbs(c.path) {
		return errors.New("must be an absolute path (the first argument that is not an option is taken as the script; attach option values, as in -Wignore, or set them in the script)")
	}
	resolved, err := resolve(c.path, secure)
	if err != nil {
		return err
	}
	o, err := lookup(resolved)
	if err != nil {
		return err
	}
	if !o.Mode.IsRegular() {
		return fmt.Errorf("%s is not a regular file", resolved)
	}
	return secure(resolved)
}

// insecure says why an entry is writable by a non-root user, or "".
func insecure(o FileOwner) string {
	switch {
	case o.UID != 0:
		return fmt.Sprintf("owned by uid %d, not root", o.UID)
	case o.Mode.Perm()&0o002 != 0:
		return "writable by others"
	case o.Mode.Perm()&0o020 != 0 && o.GID != 0:
		return fmt.Sprintf("writable by group %d", o.GID)
	}
	return ""
}

// resolve walks path one component at a time like the kernel does,
// following symbolic links, and calls dirOK for every directory it looks
// into, so a link in a writable directory is caught even if its target is
// safe. It returns the resolved path.
func resolve(path string, dirOK func(dir string) error) (string, error) {
	todo := splitPath(path)
	cur := "/"
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		if err := dirOK(cur); err != nil {
			return "", err
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", fmt.Errorf("%s: not a directory", next)
			}
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", path)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		todo = append(splitPath(target), todo...)
	}
	return cur, nil
}

func splitPath(p string) []string {
	var out []string
	for c := range strings.SplitSeq(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}
