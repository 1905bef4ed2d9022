package health

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root, or fails it under
// HAVIP_E2E=1, where every test must run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("HAVIP_E2E") == "1" {
		t.Fatal("this test needs root and HAVIP_E2E=1 is set")
	}
	t.Skip("needs root; HAVIP_E2E=1 makes this fatal")
}

func TestParseStatPPID(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "123 (sleep) S 45 123 123 0 -1", want: 45},
		{in: "123 (a b) c) S 7 123 123", want: 7},
		{in: "123 (x", wantErr: true},
		{in: "123 (x) S", wantErr: true},
		{in: "123 (x) S abc 1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseStatPPID([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStatPPID(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// startOwnGroup starts a sleeping child in a process group of its own.
func startOwnGroup(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		_ = cmd.Wait() // the kill is how it ends
	})
	return cmd.Process.Pid
}

func TestProcGroups(t *testing.T) {
	now := time.Now()
	g := NewProcGroups()
	g.Starting()
	g.Started(100)
	if !g.Contains(100, now) || g.Contains(101, now) {
		t.Error("a running group is not told from another")
	}
	g.Ended(100, now)
	if !g.Contains(100, now.Add(checkGroupLinger)) {
		t.Error("a group is forgotten as soon as its run ended")
	}
	if g.Contains(100, now.Add(checkGroupLinger+time.Millisecond)) {
		t.Error("a group is remembered past checkGroupLinger")
	}
	g.Starting()
	g.Started(200)
	g.Ended(200, now.Add(time.Minute))
	if len(g.recent) != 1 {
		t.Errorf("%d ended groups kept, want the old one pruned", len(g.recent))
	}

	// While a command is being started, its group is recognised by its
	// leader being a child of this process.
	pid := startOwnGroup(t)
	if g.Contains(pid, now) {
		t.Error("a child's group counts as a check's while no check starts")
	}
	g.Starting()
	if !g.Contains(pid, now) {
		t.Error("the group of a command being started is not recognised")
	}
	if g.Contains(os.Getpid(), now) {
		t.Error("the test's own group counts as a check's")
	}
	g.Started(0) // the start failed
	if g.Contains(pid, now) {
		t.Error("a failed start left its window open")
	}

	var none *ProcGroups
	none.Starting()
	none.Started(1)
	none.Ended(1, now)
	if none.Contains(1, now) {
		t.Error("a nil set contains a group")
	}
}

// TestIsCheckProcess runs an exec check whose command starts a child and
// waits: both are recognised as a check's while the run lasts, nothing
// else is, and the child is killed when the command exits.
func TestIsCheckProcess(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	release := filepath.Join(dir, "release")
	script := writeScript(t, dir, "check", `sleep 300 >/dev/null 2>&1 &
echo $$ $! > "$1.tmp" && mv "$1.tmp" "$1"
while [ ! -e "$2" ]; do sleep 0.01; done
`)
	s := Spec{Name: "db", Type: TypeExec, Command: []string{script, pids, release}, Interval: 50 * time.Millisecond,
		Timeout: 30 * time.Second, Rise: 1, Fall: 1, Initial: Failed, TrackValueFailed: 1}
	r, err := New([]Spec{s}, Options{
		CommandCheck: func(argv []string) error { return ValidateCommandWith(argv, fakeOwners(dir, nil)) },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, r)
	eventually(t, "the check to start", func() bool { return readFile(t, pids) != "" })
	f := strings.Fields(readFile(t, pids))
	if len(f) != 2 {
		t.Fatalf("pids file %q", f)
	}
	shell, _ := strconv.Atoi(f[0])
	child, _ := strconv.Atoi(f[1])
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })

	if !r.IsCheckProcess(shell) || !r.IsCheckProcess(child) {
		t.Errorf("IsCheckProcess(command %d) = %v, (its child %d) = %v; want both true",
			shell, r.IsCheckProcess(shell), child, r.IsCheckProcess(child))
	}
	other := startOwnGroup(t)
	for _, pid := range []int{os.Getpid(), other, 0, -1, 1} {
		if r.IsCheckProcess(pid) {
			t.Errorf("IsCheckProcess(%d) = true for a process that is not a check's", pid)
		}
	}
	var none *Runner
	if none.IsCheckProcess(shell) {
		t.Error("a nil Runner recognised a check")
	}

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the run to end", func() bool {
		st, _ := r.Status("db")
		return st.Checks > 0
	})
	eventually(t, "the command's child to be killed", func() bool { return !alive(child) })
	if r.IsCheckProcess(shell) {
		t.Errorf("the command %d still counts after its run was reaped", shell)
	}
}

func TestExecKillsLeftoverProcesses(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, dir, "leave", "sleep 300 >/dev/null 2>&1 &\necho $!\n")
	got := probeOnce(t, Spec{Name: "e", Type: TypeExec, Command: []string{script}, Timeout: 10 * time.Second})
	if !got.ok {
		t.Fatalf("probe = %+v, want ok", got)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(got.output))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	eventually(t, "the process the check left behind to be killed", func() bool { return !alive(pid) })
}

// capsChildEnv makes TestExecChecksRunWithoutAmbientCapabilities run its
// part inside the process that holds ambient capabilities.
const capsChildEnv = "HAVIP_HEALTH_CAPS_CHILD"

// capLines returns the Cap* fields of a /proc/PID/status text.
func capLines(status string) map[string]uint64 {
	out := map[string]uint64{}
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out
}

// TestExecChecksRunWithoutAmbientCapabilities runs the test binary again
// as nobody with ambient CAP_NET_ADMIN and CAP_NET_RAW, as the systemd
// unit runs the agent. There a plain child inherits both, while an exec
// check's command has no capabilities at all, and the process keeps its
// own.
func TestExecChecksRunWithoutAmbientCapabilities(t *testing.T) {
	const want = 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW
	printCaps := []string{"/bin/sh", "-c", "grep ^Cap /proc/self/status"}
	if os.Getenv(capsChildEnv) == "1" {
		self, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		if c := capLines(string(self)); c["CapEff"]&want != want || c["CapAmb"]&want != want {
			t.Fatalf("set-up: the test process lacks the capabilities: %v", c)
		}
		plain, err := exec.Command(printCaps[0], printCaps[1:]...).Output()
		if err != nil {
			t.Fatal(err)
		}
		if c := capLines(string(plain)); c["CapAmb"]&want != want {
			t.Fatalf("set-up: a plain child does not inherit the capabilities: %v", c)
		}
		// Several runs, so that more than one thread starts a command.
		for i := range 5 {
			o := execProber(printCaps, 10*time.Second, nil)(t.Context())
			if !o.ok {
				t.Fatalf("run %d: %+v", i, o)
			}
			c := capLines(o.output)
			if len(c) == 0 {
				t.Fatalf("run %d: no Cap lines in %q", i, o.output)
			}
			// CapInh stays, harmless without file capabilities: see
			// StartWithoutAmbientCaps.
			for _, k := range []string{"CapPrm", "CapEff", "CapAmb"} {
				if c[k] != 0 {
					t.Errorf("run %d: the check's command has %s %#x, want none", i, k, c[k])
				}
			}
		}
		self, err = os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		if c := capLines(string(self)); c["CapEff"]&want != want {
			t.Errorf("the process lost its own capabilities: %v", c)
		}
		return
	}

	requireRoot(t)
	// A copy that nobody may run, outside the build directory (0700).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "havip-health-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "health.test")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", capsChildEnv + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: nobody, Gid: nobody},
		AmbientCaps: []uintptr{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW},
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child test: %v\n%s", err, out)
	}
}
