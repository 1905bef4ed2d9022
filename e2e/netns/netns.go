package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Allowed is the only range tests may put on interfaces.
var Allowed = netip.MustParsePrefix("198.18.0.0/15")

// Require skips t unless it runs as root; with HAVIP_E2E=1 (CI) a missing
// privilege fails the test instead, so CI cannot pass by skipping.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("ip"); err != nil {
			t.Fatalf("iproute2 is needed for network namespace tests: %v", err)
		}
		return
	}
	if os.Getenv("HAVIP_E2E") == "1" {
		t.Fatal("HAVIP_E2E=1 but not running as root: network namespace tests cannot run")
	}
	t.Skip("needs root for network namespaces (set HAVIP_E2E=1 to make this a failure)")
}

// Rig is a set of namespaces that belong to one test.
type Rig struct {
	Prefix string

	mu     sync.Mutex
	spaces []string
	closed bool
}

var (
	live       sync.Map // *Rig -> struct{}
	signalOnce sync.Once
)

// NewT returns an empty rig whose teardown t's cleanup runs. Call Require
// first.
func NewT(t testing.TB) *Rig {
	t.Helper()
	r := New()
	t.Cleanup(r.Close)
	return r
}

// New returns an empty rig with a unique prefix. Its namespaces are
// removed by Close, and also when the process gets SIGINT, SIGTERM or
// SIGHUP; if the process is killed outright, the next process that
// creates a rig removes them.
func New() *Rig {
	b := make([]byte, 3)
	rand.Read(b)
	r := &Rig{Prefix: "hv" + hex.EncodeToString(b)}
	live.Store(r, struct{}{})
	r.claim()
	signalOnce.Do(func() {
		reapStale()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			s := <-ch
			live.Range(func(k, _ any) bool {
				k.(*Rig).Close()
				return true
			})
			fmt.Fprintf(os.Stderr, "netns: %s: namespaces removed\n", s)
			os.Exit(130)
		}()
	})
	return r
}

// Name is the full name of the rig's namespace short.
func (r *Rig) Name(short string) string { return r.Prefix + "-" + short }

// Run runs a command on the host and returns its combined output.
func Run(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// AddNS creates namespace short with loopback up and IPv6 off.
func (r *Rig) AddNS(short string) (string, error) {
	name := r.Name(short)
	if _, err := Run("ip", "netns", "add", name); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.spaces = append(r.spaces, name)
	r.mu.Unlock()
	if _, err := Run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	if _, err := r.Exec(short, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return "", err
	}
	return name, nil
}

// Exec runs a command inside namespace short and returns its output.
func (r *Rig) Exec(short string, args ...string) (string, error) {
	return Run(append([]string{"ip", "netns", "exec", r.Name(short)}, args...)...)
}

// Command prepares a command to run inside namespace short.
func (r *Rig) Command(short string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", r.Name(short)}, args...)...)
}

// IP runs "ip ARGS" inside namespace short.
func (r *Rig) IP(short string, args ...string) (string, error) {
	return Run(append([]string{"ip", "-n", r.Name(short)}, args...)...)
}

// Veth joins namespace a's interface ifA to namespace b's ifB, both up.
func (r *Rig) Veth(a, ifA, b, ifB string) error {
	tmpA, tmpB := r.Prefix+"a"+ifA, r.Prefix+"b"+ifB
	if len(tmpA) > 15 {
		tmpA = tmpA[:15]
	}
	if len(tmpB) > 15 {
		tmpB = tmpB[:15]
	}
	steps := [][]string{
		{"ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB},
		{"ip", "link", "set", tmpA, "netns", r.Name(a), "name", ifA},
		{"ip", "link", "set", tmpB, "netns", r.Name(b), "name", ifB},
		{"ip", "-n", r.Name(a), "link", "set", ifA, "up"},
		{"ip", "-n", r.Name(b), "link", "set", ifB, "up"},
	}
	for _, s := range steps {
		if _, err := Run(s...); err != nil {
			_, _ = Run("ip", "link", "del", tmpA)
			return err
		}
	}
	return nil
}

// Bridge creates bridge br in namespace short and enslaves ports.
func (r *Rig) Bridge(short, br string, ports ...string) error {
	if _, err := r.IP(short, "link", "add", br, "type", "bridge", "forward_delay", "0"); err != nil {
		return err
	}
	if _, err := r.IP(short, "link", "set", br, "up"); err != nil {
		return err
	}
	for _, p := range ports {
		if _, err := r.IP(short, "link", "set", p, "master", br); err != nil {
			return err
		}
	}
	return nil
}

// Addr puts cidr on ifname in namespace short; it must lie in Allowed.
func (r *Rig) Addr(short, ifname, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return err
	}
	if !Allowed.Contains(p.Addr()) {
		return fmt.Errorf("netns: %s is outside %s; tests may use no other addresses", cidr, Allowed)
	}
	_, err = r.IP(short, "addr", "add", cidr, "dev", ifname)
	return err
}

// Close kills every process left in the rig's namespaces and deletes
// them. It is safe to call more than once.
func (r *Rig) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	live.Delete(r)
	removeSpaces(r.spaces)
	os.Remove(filepath.Join(ownersDir(), r.Prefix))
}

// removeSpaces kills every process in the namespaces, then deletes them.
func removeSpaces(spaces []string) {
	for _, ns := range spaces {
		if out, err := Run("ip", "netns", "pids", ns); err == nil {
			for _, pid := range strings.Fields(out) {
				_, _ = Run("kill", "-9", pid)
			}
		}
	}
	for i := len(spaces) - 1; i >= 0; i-- {
		_, _ = Run("ip", "netns", "del", spaces[i])
	}
}

// A test process killed outright (SIGKILL, or SIGPIPE when the pipe
// reading its output closes) cannot run its teardown. Each rig records
// its owner, and the next test process removes the namespaces of rigs
// whose owner is gone.

func ownersDir() string { return filepath.Join(os.TempDir(), "havip-netns-owners") }

// owner identifies this process: its pid and its start time, so that a
// reused pid is not taken for the owner.
func owner(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The start time is field 22; the command name (field 2) may hold
	// spaces, so count from its closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return fmt.Sprintf("%d %s", pid, f[19])
}

func (r *Rig) claim() {
	if err := os.MkdirAll(ownersDir(), 0o700); err != nil {
		return
	}
	// Written whole (temp file and rename) so that a concurrent reap
	// never reads a half-written owner and takes the rig for stale.
	path := filepath.Join(ownersDir(), r.Prefix)
	if os.WriteFile(path+".tmp", []byte(owner(os.Getpid())), 0o600) == nil {
		_ = os.Rename(path+".tmp", path)
	}
}

// reapStale removes the namespaces of rigs whose owning process is gone.
func reapStale() {
	entries, err := os.ReadDir(ownersDir())
	if err != nil {
		return
	}
	out, err := Run("ip", "netns", "list")
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		path := filepath.Join(ownersDir(), e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(string(b), "%d", &pid); err == nil && pid > 0 && owner(pid) == string(b) {
			continue // the owner still runs
		}
		var stale []string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], e.Name()+"-") {
				stale = append(stale, f[0])
			}
		}
		removeSpaces(stale)
		if len(stale) > 0 {
			fmt.Fprintf(os.Stderr, "netns: removed %d namespaces left by a test process that was killed: %s\n", len(stale), strings.Join(stale, " "))
		}
		os.Remove(path)
	}
}
