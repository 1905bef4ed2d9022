// Package packaging_test checks what the packages ship: the systemd unit
// (systemd-analyze verify and security), the default configuration and the
// nfpm configuration.
package packaging_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/health"
)

const (
	unitFile   = "systemd/havip-agent.service"
	configFile = "havip-agent.toml"
	nfpmFile   = "nfpm.yaml"
)

// maxExposure bounds "systemd-analyze security" for the unit: the target
// is 2.0 or less. With systemd 252 the unit scores 1.8: the agent runs as
// its own user with CAP_NET_ADMIN and CAP_NET_RAW, and needs netlink,
// packet and IP sockets (about 1.0 that no setting can remove). Lower it
// when the unit improves; never raise it without a reason in the unit
// file.
const maxExposure = 2.0

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("systemd-analyze not on PATH and HAVIP_E2E=1 (apt-get install systemd)")
		}
		t.Skip("systemd-analyze not on PATH (apt-get install systemd); HAVIP_E2E=1 makes this fatal")
	}
	return p
}

func TestSystemdVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	// verify insists that ExecStart's program exists; point it at a stand-in
	// so that the unit can be checked before the binary is installed.
	dir := t.TempDir()
	bin := filepath.Join(dir, "havip-agent")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(b), "/usr/bin/havip-agent", bin)
	path := filepath.Join(dir, "havip-agent.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "havip-agent.service") {
			t.Errorf("systemd-analyze verify: %s", strings.TrimSpace(line))
		}
	}
}

var exposureRe = regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d)`)

func TestSystemdSecurity(t *testing.T) {
	sa := systemdAnalyze(t)
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", unitFile).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	got, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure level %.1f (bound %.1f)", got, maxExposure)
	if got > maxExposure {
		t.Errorf("exposure level %.1f, want at most %.1f\n%s", got, maxExposure, out)
	}
}

// unitValues returns the values of key in the unit, in order.
func unitValues(t *testing.T, key string) []string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vals []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == key {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

// TestUnitMatchesConfigDefaults ties the unit's paths to the defaults of
// package config, so that moving one without the other fails here.
func TestUnitMatchesConfigDefaults(t *testing.T) {
	execStart := strings.Join(unitValues(t, "ExecStart"), " ")
	if want := "-config " + config.DefaultPath; !strings.Contains(execStart, want) {
		t.Errorf("ExecStart=%s lacks %q", execStart, want)
	}
	rw := strings.Fields(strings.Join(unitValues(t, "ReadWritePaths"), " "))
	writable := func(p string) bool {
		for _, d := range rw {
			if p == d || strings.HasPrefix(p, strings.TrimPrefix(d, "-")+"/") {
				return true
			}
		}
		return false
	}
	for _, p := range []string{config.DefaultStateDir, config.DefaultSocket, config.DefaultFIFO} {
		if !writable(p) {
			t.Errorf("%s is not under ReadWritePaths=%v", p, rw)
		}
	}
	rt := strings.Fields(strings.Join(unitValues(t, "RuntimeDirectory"), " "))
	if dir := strings.TrimPrefix(filepath.Dir(config.DefaultSocket), "/run/"); !slices.Contains(rt, dir) {
		t.Errorf("RuntimeDirectory=%v does not create %s", rt, filepath.Dir(config.DefaultSocket))
	}
	// The FIFO belongs to the service user but lives in keepalived's
	// directory: tmpfiles.d makes it.
	tmp, err := os.ReadFile("tmpfiles.d/havip-agent.conf")
	if err != nil {
		t.Fatal(err)
	}
	if want := "p " + config.DefaultFIFO + " 0600 havip-agent havip-agent"; !strings.Contains(string(tmp), want) {
		t.Errorf("tmpfiles.d/havip-agent.conf lacks %q", want)
	}
	if u := unitValues(t, "User"); len(u) != 1 || u[0] != "havip-agent" {
		t.Errorf("User=%v, want havip-agent", u)
	}
	if sd := unitValues(t, "StateDirectory"); len(sd) != 1 || "/var/lib/"+sd[0] != config.DefaultStateDir {
		t.Errorf("StateDirectory=%v, want %s", sd, config.DefaultStateDir)
	}
}

func loadConfig(t *testing.T, name string, src []byte) {
	t.Helper()
	cfg, err := config.Parse(name, src)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := cfg.ValidateCommands(health.ValidateCommand); err != nil {
		t.Fatalf("%v", err)
	}
}

func TestShippedConfig(t *testing.T) {
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	loadConfig(t, configFile, b)
}

var (
	commentedKey   = regexp.MustCompile(`^# ([a-z_]+ = .*)$`)
	commentedTable = regexp.MustCompile(`^# (\[\[?[a-z.]+\]\]?)\s*$`)
)

// TestShippedConfigDocumentsRealKeys uncomments every documented key and
// table of the shipped configuration: the result must still load, so every
// key shown exists and every default shown is valid.
func TestShippedConfigDocumentsRealKeys(t *testing.T) {
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	n := 0
	for line := range strings.Lines(string(b)) {
		l := strings.TrimRight(line, "\n")
		if m := commentedKey.FindStringSubmatch(l); m != nil {
			l, n = m[1], n+1
		} else if m := commentedTable.FindStringSubmatch(l); m != nil {
			l, n = m[1], n+1
		}
		fmt.Fprintln(&out, l)
	}
	if n < 40 {
		t.Fatalf("only %d commented keys and tables found; has the format changed?", n)
	}
	loadConfig(t, configFile+" (uncommented)", []byte(out.String()))
}

// TestNFPMSources checks that every file nfpm.yaml packages exists.
func TestNFPMSources(t *testing.T) {
	b, err := os.ReadFile(nfpmFile)
	if err != nil {
		t.Fatal(err)
	}
	srcRe := regexp.MustCompile(`(?m)^\s*-?\s*src:\s*(\S+)\s*$`)
	n := 0
	for _, m := range srcRe.FindAllStringSubmatch(string(b), -1) {
		src := m[1]
		if strings.HasPrefix(src, "dist/") {
			continue // built by build.sh
		}
		n++
		// nfpm runs from the repository root (see build.sh).
		if _, err := os.Stat(filepath.Join("..", src)); err != nil {
			t.Errorf("%s: %v", nfpmFile, err)
		}
	}
	if n == 0 {
		t.Fatal("no src entries found")
	}
	for _, s := range []string{"postinstall.sh", "preremove.sh", "postremove.sh"} {
		fi, err := os.Stat(filepath.Join("scripts", s))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("scripts/%s is not executable", s)
		}
	}
}
