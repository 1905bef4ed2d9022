package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// StateDir returns the state directory named by the configuration file at
// path, for the commands that read it without the daemon (history); see
// agentPath for how leniently it reads the file. A missing file, key or
// value gives DefaultStateDir.
func StateDir(path string) (string, error) {
	return agentPath(path, "state_dir", DefaultStateDir, stateDirProblem)
}

// stateDirValue finds agent.state_dir and the line it is written on.
func stateDirValue(name, src string) (string, int, error) { return agentValue(name, src, "state_dir") }

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
