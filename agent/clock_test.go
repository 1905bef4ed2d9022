package agent

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// wallTimeSources are the only places in the daemon's code that make a
// time.Time without a monotonic reading, each with the reason it may.
// Everything else that times something (timers, tickers, deadlines,
// backoffs, durations measured) starts from time.Now or a timer, which Go
// runs on the monotonic clock, so a wall-clock step (NTP, an operator's
// date -s) cannot fire, stall or stretch it.
var wallTimeSources = map[string]string{
	// The metadata service states when role credentials expire as a wall
	// time; comparing it with the wall clock is the point.
	"cloud/metadata/metadata.go: time.Parse": "credential expiry is a wall time",
	// Formatting only.
	"cloud/bce/credentials.go: UTC": "formats the expiry for a log line",
	// The boot's wall time, compared with track files' modification
	// times, which are wall times too.
	"health/track.go: Round(0)": "boot time against file mtimes",
}

// TestWallClockInventory fails when the daemon's code gains a new source
// of wall-clock-only times: such a time must not feed a timer or a
// duration, and the new entry must say why it does not.
func TestWallClockInventory(t *testing.T) {
	wallFuncs := map[string]bool{"Parse": true, "ParseInLocation": true, "Unix": true, "UnixMilli": true, "UnixMicro": true, "Date": true}
	// Methods that return a copy without the monotonic reading.
	stripping := map[string]bool{"UTC": true, "Local": true, "In": true}
	found := map[string]bool{}
	for _, dir := range []string{".", "../cloud", "../health", "../cmd/havip-agent"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "emulator" {
				return filepath.SkipDir // the cloud's clock, not the agent's
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			rel := filepath.ToSlash(filepath.Clean(filepath.Join("agent", path)))
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, isPkg := sel.X.(*ast.Ident)
				switch {
				case isPkg && pkg.Name == "time" && wallFuncs[sel.Sel.Name]:
					found[rel+": time."+sel.Sel.Name] = true
				case !(isPkg && pkg.Name == "time") && stripping[sel.Sel.Name] && len(call.Args) <= 1:
					found[rel+": "+sel.Sel.Name] = true
				case sel.Sel.Name == "Round" && len(call.Args) == 1:
					if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Value == "0" {
						found[rel+": Round(0)"] = true
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for k := range found {
		got = append(got, k)
	}
	sort.Strings(got)
	for _, k := range got {
		if _, ok := wallTimeSources[k]; !ok {
			t.Errorf("%s makes a wall-clock-only time: keep timers and durations on time.Now, or add it to wallTimeSources with the reason", k)
		}
	}
	for k := range wallTimeSources {
		if !found[k] {
			t.Errorf("wallTimeSources lists %s, which is gone: remove the entry", k)
		}
	}
}
