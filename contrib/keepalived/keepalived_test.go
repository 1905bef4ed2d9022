package keepalived_test

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/keepalived"
	"github.com/havip-agent/havip-agent/e2e/netns"
)

// agentOwnedExample is the VRRPv2 example without virtual_ipaddress.
const agentOwnedExample = "keepalived-vrrp2-agent-owned.conf"

// noVIPWarning is what keepalived 2.2 says of a VRRPv2 instance without
// virtual_ipaddress, from two checks in a row: nothing but an address in
// virtual_ipaddress, which keepalived then manages, silences it.
const noVIPWarning = "(VI_1) No VIP specified; at least one is sensible"

// TestExamplesParse runs "keepalived -t -f" on every example, inside a
// fresh namespace that has an eth0, so the interfaces the examples name
// exist whatever the machine has. keepalived -t prints every problem it
// finds, warnings included, as one line on stderr and then exits 5, so a
// clean example prints nothing and exits 0. The agent-owned VRRPv2
// example is the exception: keepalived 2.2 warns about every VRRPv2
// instance without a VIP, and exactly that warning is expected of it.
func TestExamplesParse(t *testing.T) {
	netns.Require(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed")
		}
		t.Skip("keepalived is not installed")
	}
	r := netns.NewT(t)
	if _, err := r.AddNS("kt"); err != nil {
		t.Fatal(err)
	}
	// A veth pair: dummy links need a module this kernel may lack.
	if err := r.Veth("kt", "eth0", "kt", "peer0"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.conf")
	if len(files) < 4 || !slices.Contains(files, agentOwnedExample) {
		t.Fatalf("found examples %v, want at least 4 with %s", files, agentOwnedExample)
	}
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		out, err := r.Command("kt", "keepalived", "-t", "-f", abs).CombinedOutput()
		var lines []string
		if s := strings.TrimSpace(string(out)); s != "" {
			lines = strings.Split(s, "\n")
		}
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if f == agentOwnedExample {
			if code != 5 || len(lines) == 0 || slices.ContainsFunc(lines, func(l string) bool { return l != noVIPWarning }) {
				t.Errorf("%s: exit %d, output:\n%s\nwant exit 5 and only %q", f, code, out, noVIPWarning)
			}
			continue
		}
		if code != 0 || len(lines) != 0 {
			t.Errorf("%s: exit %d, output:\n%s\nwant exit 0 and no output", f, code, out)
		}
	}
}

// TestIntegrationExamplesFIFOSurviveReload runs each example that uses
// vrrp_notify_fifo, reloads it (SIGHUP, as "systemctl reload keepalived"
// does) and stops it: the STOP line must still reach the FIFO. keepalived
// 2.2 silently drops its notify FIFO on a reload when vrrp_notify_fifo
// comes before script_user under enable_script_security and the default
// script user (keepalived_script) does not exist, which Debian's package
// does not create: the agent then hears nothing until keepalived restarts.
func TestIntegrationExamplesFIFOSurviveReload(t *testing.T) {
	netns.Require(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed")
		}
		t.Skip("keepalived is not installed")
	}
	files, _ := filepath.Glob("*.conf")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !usesFIFO(string(b)) {
			continue
		}
		n++
		t.Run(f, func(t *testing.T) { fifoSurvivesReload(t, string(b)) })
	}
	if n < 3 {
		t.Fatalf("%d examples set vrrp_notify_fifo, want at least 3", n)
	}
}

// usesFIFO reports whether a keepalived.conf sets vrrp_notify_fifo (not
// just mentions it in a comment).
func usesFIFO(conf string) bool {
	for _, l := range strings.Split(conf, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "vrrp_notify_fifo" {
			return true
		}
	}
	return false
}

func fifoSurvivesReload(t *testing.T, conf string) {
	dir := t.TempDir()
	// Only the rig's range and this test's directory: the example's
	// addresses and /run paths are rewritten.
	conf = strings.NewReplacer(
		"/run/keepalived/havip-agent.fifo", filepath.Join(dir, "fifo"),
		"/run/havip-agent/track/", dir+"/",
		"192.168.0.", "198.18.0.",
	).Replace(conf)
	for _, name := range []string{"nginx", "db", "drain-VI_1", "drain-G_EDGE"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo, err := keepalived.OpenFIFO(filepath.Join(dir, "fifo"))
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		for {
			ls, err := fifo.ReadBatch()
			for _, l := range ls {
				lines <- string(l.Data)
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	t.Cleanup(func() { fifo.Close() })

	r := netns.NewT(t)
	if _, err := r.AddNS("kr"); err != nil {
		t.Fatal(err)
	}
	if err := r.Veth("kr", "eth0", "kr", "peer0"); err != nil {
		t.Fatal(err)
	}
	src := ""
	for _, l := range strings.Split(conf, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "unicast_src_ip" {
			src = f[1]
		}
	}
	if !strings.HasPrefix(src, "198.18.") {
		t.Fatalf("example's unicast_src_ip %q is not in 198.18.0.0/15 after rewriting", src)
	}
	if _, err := r.Exec("kr", "ip", "addr", "add", src+"/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	cmd := r.Command("kr", "keepalived", "-n", "-P", "-G", "-l", "-f", path,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"), "-c", filepath.Join(dir, "checkers.pid"))
	out := netns.StartT(t, cmd)
	// Every state keepalived announces from now on, until want is seen.
	wait := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("fifo closed before %s", want)
				}
				if strings.Contains(l, " "+want) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s line within 10 s\nkeepalived:\n%s", want, out.String())
			}
		}
	}
	wait("MASTER") // no peer answers: MASTER after about 3 adverts
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(time.Second) // the reload is done well within this
	cmd.Process.Signal(syscall.SIGTERM)
	wait("STOP")
}

// TestExamplesLint checks every example the way "havip-agent config check
// -keepalived" would, on a Debian machine (no keepalived_script user),
// against the agent configuration its comments describe.
func TestExamplesLint(t *testing.T) {
	vip := []netip.Prefix{netip.MustParsePrefix("192.168.0.100/24")}
	edge := []netip.Prefix{netip.MustParsePrefix("198.18.0.100/24"), netip.MustParsePrefix("198.18.0.101/24")}
	drain := "/run/havip-agent/track/drain-VI_1"
	shared := keepalived.ConfInstance{Kind: keepalived.ConfKindInstance, Name: "VI_1", VIPs: vip, Shared: true, DrainFile: drain}
	want := map[string][]keepalived.ConfInstance{
		"keepalived-node-a.conf": {shared},
		"keepalived-node-b.conf": {shared},
		agentOwnedExample:        {{Kind: keepalived.ConfKindInstance, Name: "VI_1", VIPs: vip, DrainFile: drain}},
		"notify-script.conf":     {shared},
		"sync-group.conf":        {{Kind: keepalived.ConfKindGroup, Name: "G_EDGE", VIPs: edge, Shared: true, DrainFile: "/run/havip-agent/track/drain-G_EDGE"}},
	}
	files, _ := filepath.Glob("*.conf")
	for _, f := range files {
		inst, ok := want[f]
		if !ok {
			t.Errorf("%s: new example; say which agent instances it serves", f)
			continue
		}
		c, err := keepalived.ReadConf(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range keepalived.LintConf(c, keepalived.ConfExpect{FIFO: "/run/keepalived/havip-agent.fifo", Instances: inst}) {
			// The notify example exists for those who cannot use the
			// FIFO; the warning that notify is unordered is its point.
			if f == "notify-script.conf" && !fd.Error && strings.Contains(fd.Msg, "notify") {
				continue
			}
			t.Errorf("%s", fd)
		}
	}
}

// TestExamplesLintRefusesMismatch: the examples' lint is not silent by
// accident; told the wrong sharing mode, it finds each example wrong.
func TestExamplesLintRefusesMismatch(t *testing.T) {
	vip := []netip.Prefix{netip.MustParsePrefix("192.168.0.100/24")}
	for f, shared := range map[string]bool{"keepalived-node-a.conf": false, agentOwnedExample: true} {
		c, err := keepalived.ReadConf(f)
		if err != nil {
			t.Fatal(err)
		}
		in := []keepalived.ConfInstance{{Kind: keepalived.ConfKindInstance, Name: "VI_1", VIPs: vip, Shared: shared}}
		fds := keepalived.LintConf(c, keepalived.ConfExpect{FIFO: "/run/keepalived/havip-agent.fifo", Instances: in})
		if !slices.ContainsFunc(fds, func(fd keepalived.Finding) bool { return fd.Error && strings.Contains(fd.Msg, "shared_vips") }) {
			t.Errorf("%s with shared_vips = %v: findings %v, want an error about shared_vips", f, shared, fds)
		}
	}
}
