package hooks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// permissive stands in for health.ValidateCommand: test files live in
// directories anyone may write.
func permissive([]string) error { return nil }

// helperArgv runs this test binary as a hook program doing what: it
// writes its environment (env), its standard input (stdin) or both to
// file.
func helperArgv(t *testing.T, what, file string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, "-test.run=^TestHelperHook$", "--", what, file}
}

// TestHelperHook is not a test: it is the program of the hooks that
// helperArgv describes.
func TestHelperHook(t *testing.T) {
	i := slices.Index(os.Args, "--")
	if i < 0 || len(os.Args) != i+3 {
		return
	}
	what, file := os.Args[i+1], os.Args[i+2]
	var out []byte
	switch what {
	case "env":
		out = []byte(strings.Join(os.Environ(), "\n") + "\n")
	case "stdin":
		b, err := bufio.NewReader(os.Stdin).ReadBytes(0)
		if len(b) == 0 && err != nil {
			os.Exit(3)
		}
		out = b
	}
	if err := os.WriteFile(file, out, 0o600); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

func newExecRunner(t *testing.T, opts Options, hooks ...Hook) *Runner {
	t.Helper()
	if opts.CheckExec == nil {
		opts.CheckExec = permissive
	}
	for i := range hooks {
		hooks[i] = hooks[i].WithDefaults()
	}
	if err := Validate(hooks); err != nil {
		t.Fatal(err)
	}
	r := New(hooks, opts)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func closeRunner(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// The exec hook's environment is the minimal one plus the event's, and
// nothing of the test's own.
func TestExecMinimalEnvironment(t *testing.T) {
	t.Setenv("HAVIP_SECRET_LEAK", "x")
	out := filepath.Join(t.TempDir(), "env")
	r := newExecRunner(t, Options{}, Hook{Name: "env", Type: TypeExec, Argv: helperArgv(t, "env", out), Timeout: time.Minute})
	r.Fire(Payload{Event: KindTransition, Instance: "VI_1", From: StateBackup, To: StateMaster, Generation: 3})
	closeRunner(t, r)
	if st := r.Status()[0]; st.Last == nil || st.Last.Result != ResultOK {
		t.Fatalf("run: %+v", st.Last)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(got)
	want := []string{"HAVIP_EVENT=transition", "HAVIP_FROM=BACKUP", "HAVIP_GENERATION=3", "HAVIP_HOOK=env",
		"HAVIP_INSTANCE=VI_1", "HAVIP_TO=MASTER", "LANG=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment\n got %q\nwant %q", got, want)
	}
}

// The payload reaches the program on its standard input.
func TestExecPayloadOnStdin(t *testing.T) {
	out := filepath.Join(t.TempDir(), "stdin")
	r := newExecRunner(t, Options{Node: Node{Hostname: "lb-a"}}, Hook{Name: "in", Type: TypeExec, Argv: helperArgv(t, "stdin", out)})
	r.Fire(Payload{Event: KindDrain, Instance: "VI_1", Generation: 9, Detail: "planned"})
	closeRunner(t, r)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("stdin %q: %v", b, err)
	}
	if p.Hook != "in" || p.Event != KindDrain || p.Generation != 9 || p.Node.Hostname != "lb-a" || p.Detail != "planned" {
		t.Errorf("payload: %+v", p)
	}
}

// A real program slower than the events sees every one of them, in
// order; none is killed.
func TestExecSlowHookSeesEveryEvent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "log")
	script := `cat >> "$0"; echo >> "$0"; sleep 0.2`
	r := newExecRunner(t, Options{}, Hook{Name: "slow", Type: TypeExec, Argv: []string{"/bin/sh", "-c", script, out}, Timeout: time.Minute})
	r.Fire(transition("VI_1", 1, StateBackup))
	// The next events come while the first run is under way.
	waitFile(t, out)
	for g := uint64(2); g <= 5; g++ {
		r.Fire(transition("VI_1", g, []State{StateMaster, StateBackup}[g%2]))
	}
	closeRunner(t, r)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var gens []uint64
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var p Payload
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		gens = append(gens, p.Generation)
	}
	if want := []uint64{1, 2, 3, 4, 5}; !reflect.DeepEqual(gens, want) {
		t.Errorf("the hook saw generations %v, want %v", gens, want)
	}
	if st := r.Status()[0]; st.Runs != 5 || st.Failures != 0 || st.Drops != 0 {
		t.Errorf("status: %+v", st)
	}
}

// The timeout kills the whole process group: the script and the child it
// started are both gone.
func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	script := `sleep 1000 & echo $! > "$0"; echo $$ >> "$0"; wait`
	r := newExecRunner(t, Options{}, Hook{Name: "hang", Type: TypeExec, Argv: []string{"/bin/sh", "-c", script, pids}, Timeout: 500 * time.Millisecond})
	r.Fire(transition("VI_1", 1, StateMaster))
	closeRunner(t, r)
	st := r.Status()[0]
	if st.Last == nil || st.Last.Result != ResultTimeout || st.LastOutcome != "timed out after 500ms" {
		t.Errorf("run: %+v, %q", st.Last, st.LastOutcome)
	}
	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		t.Fatalf("pids file %q", b)
	}
	for _, f := range fields {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
	}
}

// waitGone fails unless process pid is gone or a zombie soon: a killed
// child reparented to an init that reaps late still counts as ended.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// What the program leaves running in its group when it exits is killed
// too.
func TestExecLeftoversKilled(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	script := `sleep 1000 > /dev/null 2>&1 & echo $! > "$0"`
	r := newExecRunner(t, Options{}, Hook{Name: "bg", Type: TypeExec, Argv: []string{"/bin/sh", "-c", script, pids}})
	r.Fire(transition("VI_1", 1, StateMaster))
	closeRunner(t, r)
	if st := r.Status()[0]; st.Last == nil || st.Last.Result != ResultOK {
		t.Fatalf("run: %+v", st.Last)
	}
	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

func TestExecExitStatus(t *testing.T) {
	var logs syncBuffer
	r := newExecRunner(t, Options{Logger: newTextLogger(&logs)},
		Hook{Name: "fail", Type: TypeExec, Argv: []string{"/bin/sh", "-c", "echo broken >&2; exit 3"}})
	r.Fire(transition("VI_1", 1, StateFault))
	closeRunner(t, r)
	st := r.Status()[0]
	if st.Failures != 1 || st.Last.Result != ResultFailed || st.Last.ExitCode != 3 || st.LastOutcome != "exit status 3" {
		t.Errorf("status: %+v", st)
	}
	if !strings.Contains(logs.String(), "output=\"broken\\n\"") {
		t.Errorf("the output is not logged:\n%s", logs.String())
	}
}

// The default check is the one of exec health checks: a program in a
// directory anyone may write is refused, and so is a relative one.
func TestExecDefaultCheckRefuses(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(prog), 0o777); err != nil {
		t.Fatal(err)
	}
	r := New([]Hook{{Name: "unsafe", Type: TypeExec, Argv: []string{prog}}}, Options{})
	r.Fire(transition("VI_1", 1, StateMaster))
	closeRunner(t, r)
	st := r.Status()[0]
	if st.Last.Result != ResultError || !strings.HasPrefix(st.LastOutcome, "error: refused: command") {
		t.Errorf("run of a program others can change: %q", st.LastOutcome)
	}
}

// Close ends a run that outlasts its context, and every goroutine of the
// runner returns.
func TestExecCloseKillsAndStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	pids := filepath.Join(t.TempDir(), "pids")
	script := `echo $$ > "$0"; exec sleep 1000`
	r := New([]Hook{{Name: "hang", Type: TypeExec, Argv: []string{"/bin/sh", "-c", script, pids}, Timeout: 5 * time.Minute}},
		Options{CheckExec: permissive})
	for g := uint64(1); g <= 3; g++ {
		r.Fire(transition("VI_1", g, StateMaster))
	}
	waitFile(t, pids)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err == nil {
		t.Error("Close ended a run but returned no error")
	}
	st := r.Status()[0]
	if st.Runs != 1 || st.Last.Result != ResultStopped || st.Drops != 2 || st.Running != 0 || st.Queued != 0 {
		t.Errorf("status after Close: %+v", st)
	}
	b, _ := os.ReadFile(pids)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// While a hook runs, its processes are recognised as a hook's, so the
// control socket can refuse them.
func TestIsHookProcess(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	script := `sleep 1000 & echo $! > "$0"; wait`
	r := newExecRunner(t, Options{}, Hook{Name: "hang", Type: TypeExec, Argv: []string{"/bin/sh", "-c", script, pids}, Timeout: 5 * time.Minute})
	r.Fire(transition("VI_1", 1, StateMaster))
	waitFile(t, pids)
	b, _ := os.ReadFile(pids)
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsHookProcess(child) {
		t.Error("the hook's child is not recognised")
	}
	if r.IsHookProcess(os.Getpid()) {
		t.Error("the agent itself is taken for a hook")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = r.Close(ctx)
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
