package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/agent/control"
)

// TestHelperProcess is the daemon of TestSignals, run in a process of its
// own so that signals reach it.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("HAVIP_HELPER_PROCESS") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(context.Background(), args, os.Stdout, os.Stderr))
}

func daemonStatus(t *testing.T, sock string) (agent.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := control.Do(ctx, sock, control.Request{Op: control.OpStatus})
	if err != nil {
		return agent.Status{}, err
	}
	var s agent.Status
	err = json.Unmarshal(resp.Status, &s)
	return s, err
}

// Item 6: SIGHUP killed the daemon (Go's default) and systemd counted it
// as a clean exit; SIGPIPE on a log pipe whose reader went away killed it
// too. SIGHUP and "havip-agent reload" now reload, and a refused file
// leaves the daemon running with "reload" exiting 1.
func TestSignals(t *testing.T) {
	cfg := writeConfig(t, goodConfig+"[metrics]\nlisten = \"\"\n")
	dir := filepath.Dir(cfg)
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "--", "run", "-config", cfg)
	cmd.Env = append(os.Environ(), "HAVIP_HELPER_PROCESS=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waited := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
		}
	})
	up := func() bool {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := daemonStatus(t, sock); err == nil {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}
	if !up() {
		t.Fatal("daemon did not start")
	}
	// The log's reader goes away; the next log line gets EPIPE.
	stderr.Close()
	go func() {
		defer close(waited)
		exited <- cmd.Wait()
	}()

	// A valid change: VI_2 appears.
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(goodConfig, "DIR", dir)+"[metrics]\nlisten = \"\"\n[[instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\nvips = [\"198.18.0.102/24\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var s agent.Status
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s, err = daemonStatus(t, sock); err == nil && s.Reload != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Reload == nil || !s.Reload.OK || len(s.Instances) != 2 {
		t.Fatalf("after SIGHUP: reload %+v, %d instances (err %v)", s.Reload, len(s.Instances), err)
	}
	select {
	case err := <-exited:
		t.Fatalf("daemon exited after SIGHUP and a broken log pipe: %v", err)
	default:
	}

	// An invalid file is refused whole; reload exits 1 with file:line.
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(goodConfig, "DIR", dir)+"[metrics]\nlisten = \"\"\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd("reload", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "havip-agent.toml:13") {
		t.Errorf("reload of an invalid file: exit %d, %q", code, errOut)
	}
	if s, err = daemonStatus(t, sock); err != nil || s.Reload == nil || s.Reload.OK || len(s.Instances) != 2 {
		t.Errorf("after a refused reload: %+v, %d instances, %v", s.Reload, len(s.Instances), err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("no exit after SIGTERM")
	}
}
