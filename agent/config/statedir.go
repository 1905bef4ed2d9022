package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyStateDir is the one key StateDir reads.
const keyStateDir = "agent.state_dir"

// StateDir returns the state directory named by the configuration file at
// path, for the commands that read it without the daemon (history). Like
// SocketPath it is lenient where Load is strict: the rest of the file,
// even a syntax error on another line, is ignored. A missing file, a
// missing key or an empty value gives DefaultStateDir. Errors are a file
// Load would also refuse to read (a permission error wraps
// fs.ErrPermission) and a value that is not an absolute path, named by
// file:line.
func StateDir(path string) (string, error) {
	src, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultStateDir, nil
	}
	if err != nil {
		return "", err
	}
	dir, line, err := stateDirValue(path, string(src))
	if err != nil {
		return "", err
	}
	if dir == "" {
		return DefaultStateDir, nil
	}
	if msg := stateDirProblem(dir); msg != "" {
		if line == 0 {
			line = indexLines(string(src)).line(keyStateDir)
		}
		return "", &Error{Problems: []Problem{{File: path, Line: line, Key: keyStateDir, Msg: msg}}}
	}
	return dir, nil
}

// stateDirValue finds agent.state_dir and the line it is written on (0
// when unknown), as socketValue finds agent.socket: the whole file is
// decoded into a document that has only that key; when the file does not
// parse, only the key's own line is decoded.
func stateDirValue(name, src string) (string, int, error) {
	var doc struct {
		Agent struct {
			StateDir string `toml:"state_dir"`
		} `toml:"agent"`
	}
	_, err := toml.Decode(src, &doc)
	var pe toml.ParseError
	switch {
	case err == nil:
		return doc.Agent.StateDir, 0, nil
	case !errors.As(err, &pe):
		// A type error, which with this document can only be about
		// agent or agent.state_dir.
		return "", 0, decodeError(name, indexLines(src), err)
	}
	ix := indexLines(src)
	line, ok := ix.lines[keyStateDir]
	if !ok {
		return "", 0, nil
	}
	if pe.Position.Line == line {
		// The error is in the key's own line: there is no value to trust.
		return "", line, decodeError(name, ix, err)
	}
	_, rest, _ := strings.Cut(strings.TrimSuffix(strings.Split(src, "\n")[line-1], "\r"), "=")
	var one struct {
		V string `toml:"v"`
	}
	if _, err := toml.Decode("v = "+rest, &one); err != nil {
		return "", line, &Error{Problems: []Problem{{File: name, Line: line, Key: keyStateDir, Msg: "is not a single-line string"}}}
	}
	return one.V, line, nil
}

// stateDirProblem says what makes s unusable as the state directory, as
// Load's validation would, or "" when nothing does.
func stateDirProblem(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Sprintf("%q contains a NUL byte", s)
	case !filepath.IsAbs(s):
		return fmt.Sprintf("%q is not an absolute path", s)
	}
	return ""
}
