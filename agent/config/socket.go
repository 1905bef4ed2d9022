package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// keySocket is the one key SocketPath reads.
const keySocket = "agent.socket"

// maxSocketPath is the longest path a unix socket address holds
// (sun_path less its terminating NUL).
const maxSocketPath = 107

// SocketPath returns the control socket named by the configuration file
// at path, for the client commands (check, notify, status), which need
// nothing else from it; see agentPath for how leniently it reads the file.
// A missing file, key or value gives DefaultSocket.
func SocketPath(path string) (string, error) {
	return agentPath(path, "socket", DefaultSocket, socketProblem)
}

// socketValue finds agent.socket and the line it is written on.
func socketValue(name, src string) (string, int, error) { return agentValue(name, src, "socket") }

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
