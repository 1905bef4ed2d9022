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
