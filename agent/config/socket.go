package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// keySocket is the one key SocketPath reads.
const keySocket = "agent.socket"

// maxSocketPath is the longest path a unix socket address holds
// (sun_path less its terminating NUL).
const maxSocketPath = 107

// SocketPath returns the control socket named by the configuration file
// at path, for the client commands (check, notify, status), which need
// nothing else from it. It is lenient where Load is strict: unknown keys,
// wrong types and invalid values elsewhere, even a syntax error on another
// line, are ignored, so that a typo saved while the daemon runs does not
// break every vrrp_script and notify. A missing file, a missing key or an
// empty value gives DefaultSocket. Errors are a file Load would also refuse
// to read (not a regular file, larger than MaxFileSize, unreadable; a
// permission error wraps fs.ErrPermission) and a socket value that is not
// a usable absolute path, named by file:line.
func SocketPath(path string) (string, error) {
	src, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultSocket, nil
	}
	if err != nil {
		return "", err
	}
	sock, line, err := socketValue(path, string(src))
	if err != nil {
		return "", err
	}
	if sock == "" {
		return DefaultSocket, nil
	}
	if msg := socketProblem(sock); msg != "" {
		if line == 0 {
			line = indexLines(string(src)).line(keySocket)
		}
		return "", &Error{Problems: []Problem{{File: path, Line: line, Key: keySocket, Msg: msg}}}
	}
	return sock, nil
}

// socketValue finds agent.socket and the line it is written on (0 when
// unknown). The whole file is decoded first, into a document that has only
// that key, so that nothing else can fail; when the file does not parse,
// the line scanner finds the key and only its line is decoded.
func socketValue(name, src string) (string, int, error) {
	var doc struct {
		Agent struct {
			Socket string `toml:"socket"`
		} `toml:"agent"`
	}
	_, err := toml.Decode(src, &doc)
	var pe toml.ParseError
	switch {
	case err == nil:
		return doc.Agent.Socket, 0, nil
	case !errors.As(err, &pe):
		// A type error, which with this document can only be about
		// agent or agent.socket.
		return "", 0, decodeError(name, indexLines(src), err)
	}
	ix := indexLines(src)
	line, ok := ix.lines[keySocket]
	if !ok {
		return "", 0, nil
	}
	if pe.Position.Line == line {
		// The error is in the socket's own line (a duplicate key, say):
		// there is no value to trust.
		return "", line, decodeError(name, ix, err)
	}
	_, rest, _ := strings.Cut(strings.TrimSuffix(strings.Split(src, "\n")[line-1], "\r"), "=")
	var one struct {
		V string `toml:"v"`
	}
	if _, err := toml.Decode("v = "+rest, &one); err != nil {
		return "", line, &Error{Problems: []Problem{{File: name, Line: line, Key: keySocket, Msg: "is not a single-line string"}}}
	}
	return one.V, line, nil
}

// socketProblem says what makes s unusable as the control socket's path,
// or "" when nothing does.
func socketProblem(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Sprintf("%q contains a NUL byte", s)
	case !filepath.IsAbs(s):
		return fmt.Sprintf("%q is not an absolute path", s)
	case strings.HasSuffix(s, "/") || filepath.Clean(s) == "/":
		return fmt.Sprintf("%q names a directory, not a socket", s)
	case len(s) > maxSocketPath:
		return fmt.Sprintf("%q is longer than the %d bytes a unix socket path may have", s, maxSocketPath)
	}
	return ""
}
