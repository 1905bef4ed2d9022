package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeOnce runs the prober for s once with s.Timeout.
func probeOnce(t *testing.T, s Spec) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), s.Timeout)
	defer cancel()
	return newProber(s, nil)(ctx)
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	fail := writeScript(t, dir, "fail", "echo no\nexit 1\n")
	got := Probe(t.Context(), Spec{Name: "e", Type: TypeExec, Command: []string{fail}, Timeout: 10 * time.Second})
	if got.OK || got.Message != "exit status 1" || got.Output != "no\n" || got.Time.IsZero() || got.Duration <= 0 {
		t.Errorf("Probe() = %+v", got)
	}
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name   string
		target string
		ok     bool
		msg    string
	}{
		{name: "accepts", target: ln.Addr().String(), ok: true, msg: "connected"},
		{name: "refuses", target: closedAddr, msg: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "t", Type: TypeTCP, Target: tt.target, Timeout: 5 * time.Second}
			got := probeOnce(t, s)
			if got.ok != tt.ok || !strings.Contains(got.msg, tt.msg) {
				t.Errorf("probe = %+v, want ok=%v msg containing %q", got, tt.ok, tt.msg)
			}
		})
	}
}

func TestHTTPProbe(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "status: ready\n")
	})
	mux.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "sick", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/notfound", func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		// The probe stops reading at the limit; the rest may not be sent.
		_, _ = w.Write([]byte(strings.Repeat("x", BodyLimit)))
		_, _ = w.Write([]byte("ready"))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusMovedPermanently)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for handlers
	tlsSrv := httptest.NewUnstartedServer(mux)
	// The refused handshake is expected; keep it out of the test log.
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	defer tlsSrv.Close()

	range404 := func() StatusRange {
		r, err := ParseStatusRange("404")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}()

	tests := []struct {
		name    string
		target  string
		status  StatusRange
		body    string
		skip    bool
		timeout time.Duration
		ok      bool
		msg     string
	}{
		{name: "ok", target: srv.URL + "/ok", ok: true, msg: "HTTP 200"},
		{name: "body found", target: srv.URL + "/ok", body: "ready", ok: true, msg: "HTTP 200"},
		{name: "body missing", target: srv.URL + "/ok", body: "steady", msg: `body does not contain "steady"`},
		{name: "body past limit", target: srv.URL + "/big", body: "ready", msg: "body does not contain"},
		{name: "status 503", target: srv.URL + "/sick", msg: "HTTP 503, want 200-399"},
		{name: "status 404 expected", target: srv.URL + "/notfound", status: range404, ok: true, msg: "HTTP 404"},
		{name: "status 200 unexpected", target: srv.URL + "/ok", status: range404, msg: "HTTP 200, want 404"},
		{name: "redirect followed", target: srv.URL + "/moved", body: "ready", ok: true, msg: "HTTP 200"},
		{name: "redirect loop", target: srv.URL + "/loop", msg: "stopped after 3 redirects"},
		{name: "hang cut at timeout", target: srv.URL + "/hang", timeout: 200 * time.Millisecond, msg: "timed out"},
		{name: "https verified fails", target: tlsSrv.URL + "/ok", msg: "certificate"},
		{name: "https skip verify", target: tlsSrv.URL + "/ok", skip: true, ok: true, msg: "HTTP 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "h", Type: TypeHTTP, Target: tt.target, ExpectStatus: tt.status,
				ExpectBody: tt.body, TLSSkipVerify: tt.skip, Timeout: 5 * time.Second}
			if tt.timeout != 0 {
				s.Timeout = tt.timeout
			}
			got := probeOnce(t, s)
			if got.ok != tt.ok || !strings.Contains(got.msg, tt.msg) {
				t.Errorf("probe = %+v, want ok=%v msg containing %q", got, tt.ok, tt.msg)
			}
			if strings.Contains(got.msg, "127.0.0.1") {
				t.Errorf("message repeats the URL: %q", got.msg)
			}
		})
	}
}

func TestExecProbe(t *testing.T) {
	dir := t.TempDir()
	pass := writeScript(t, dir, "pass", "echo all good\nexit 0\n")
	fail := writeScript(t, dir, "fail", "echo db down >&2\nexit 3\n")
	args := writeScript(t, dir, "args", "[ \"$1\" = '--quick' ] && [ \"$2\" = 'a b' ]\n")
	env := writeScript(t, dir, "env", "env | sort\n")
	chatty := writeScript(t, dir, "chatty", "i=0\nwhile [ $i -lt 3000 ]; do echo \"line $i of a chatty health check\"; i=$((i+1)); done\n")

	tests := []struct {
		name string
		argv []string
		ok   bool
		msg  string
		out  string
	}{
		{name: "pass", argv: []string{pass}, ok: true, msg: "exit status 0", out: "all good\n"},
		{name: "fail", argv: []string{fail}, msg: "exit status 3", out: "db down\n"},
		{name: "argv without shell", argv: []string{args, "--quick", "a b"}, ok: true, msg: "exit status 0"},
		{name: "minimal environment", argv: []string{env}, ok: true, out: "LANG=C\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n"},
		{name: "missing", argv: []string{filepath.Join(dir, "missing")}, msg: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := probeOnce(t, Spec{Name: "e", Type: TypeExec, Command: tt.argv, Timeout: 10 * time.Second})
			if got.ok != tt.ok || !strings.Contains(got.msg, tt.msg) {
				t.Errorf("probe = %+v, want ok=%v msg containing %q", got, tt.ok, tt.msg)
			}
			// The shell may add PWD and SHLVL; nothing of the agent's.
			if tt.name == "minimal environment" {
				for line := range strings.Lines(got.output) {
					k, _, _ := strings.Cut(strings.TrimSpace(line), "=")
					switch k {
					case "LANG", "PATH", "PWD", "SHLVL", "_":
					default:
						t.Errorf("unexpected variable in the environment: %q", line)
					}
				}
				for line := range strings.Lines(tt.out) {
					if !strings.Contains(got.output, line) {
						t.Errorf("environment lacks %q: %q", line, got.output)
					}
				}
				return
			}
			if tt.out != "" && got.output != tt.out {
				t.Errorf("output = %q, want %q", got.output, tt.out)
			}
		})
	}

	t.Run("output capped", func(t *testing.T) {
		got := probeOnce(t, Spec{Name: "e", Type: TypeExec, Command: []string{chatty}, Timeout: 10 * time.Second})
		if !got.ok {
			t.Fatalf("probe = %+v, want ok", got)
		}
		kept, note, found := strings.Cut(got.output, "\n[")
		if !found || !strings.HasSuffix(note, "more bytes dropped]") {
			t.Fatalf("output lacks the dropped note: ...%q", got.output[max(0, len(got.output)-80):])
		}
		if len(kept) != OutputLimit {
			t.Errorf("kept %d bytes, want %d", len(kept), OutputLimit)
		}
		if !strings.HasPrefix(kept, "line 0 of") {
			t.Errorf("output does not start with the first line: %q", kept[:20])
		}
	})

	t.Run("hang kills the process group", func(t *testing.T) {
		pidFile := filepath.Join(dir, "child.pid")
		hang := writeScript(t, dir, "hang", "sleep 1000 &\necho $! > \"$1\"\necho started\nsleep 1000\n")
		got := probeOnce(t, Spec{Name: "e", Type: TypeExec, Command: []string{hang, pidFile}, Timeout: 300 * time.Millisecond})
		if got.ok || !strings.Contains(got.msg, "timed out") {
			t.Errorf("probe = %+v, want a timeout", got)
		}
		if got.output != "started\n" {
			t.Errorf("output = %q, want the output before the kill", got.output)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("child %d of the timed-out check is still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// alive reports whether pid runs; a zombie awaiting its reaper counts as
// dead.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}
