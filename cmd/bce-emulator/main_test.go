package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

func TestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bce-emulator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	seed := filepath.Join(dir, "seed.toml")
	if err := os.WriteFile(seed, []byte("region = \"bj\"\n[[credential]]\naccess_key_id = \"ak\"\nsecret_access_key = \"sk\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-seed", seed, "-log", filepath.Join(dir, "log.json"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout) // drains the pipe until the kill
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatal("no URL line")
	}
	url := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+`).FindString(line)
	if url == "" {
		t.Fatalf("no URL in %q", line)
	}
	resp, err := http.Get(url + "/_emulator/state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("state got %d", resp.StatusCode)
	}
	resp, err = http.Get(url + "/v1/havip")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 { // unsigned
		t.Fatalf("unsigned got %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

func TestBadSeed(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.toml")
	if err := os.WriteFile(seed, []byte("region = \"bj\"\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"-seed", seed}, io.Discard, io.Discard)
	if err == nil || !regexp.MustCompile(`seed.toml:2: unknown key "bogus"`).MatchString(err.Error()) {
		t.Fatalf("got %v", err)
	}
}

// TestLimitFlags: -rate-limit, -rate-burst and -latency reach the emulator (it logs them), and
// a value out of range is refused before anything is served.
func TestLimitFlags(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.toml")
	if err := os.WriteFile(seed, []byte("region = \"bj\"\nrate_limit = 5\n[[credential]]\naccess_key_id = \"ak\"\nsecret_access_key = \"sk\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"-rate-limit", "-1"}, {"-rate-burst", "-2"}, {"-latency", "-1s"}, {"-latency", "1h"}} {
		if err := run(append([]string{"-seed", seed}, bad...), io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(dir, "bce-emulator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "log.json")
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-seed", seed, "-log", logPath, "-rate-burst", "7", "-latency", "20ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if !bufio.NewScanner(stdout).Scan() {
		t.Fatal("no URL line")
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"msg":"API limits","rate_limit":5,"rate_burst":7,"latency":"20ms"`).Match(b) {
		t.Fatalf("log does not show the seed's rate and the flags' burst and latency:\n%s", b)
	}
}
