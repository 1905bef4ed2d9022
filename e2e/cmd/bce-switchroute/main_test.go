package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// newWorld serves the rig's seed (HA pair rr-a/rr-b for 198.19.0.0/24,
// dcgw-n1 active) and writes its credentials.
func newWorld(t *testing.T) (*emulator.Emulator, string, string) {
	t.Helper()
	seed, err := emulator.ParseSeed(strings.NewReader(rig.Seed), "rig-seed")
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(seed, emulator.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	creds := filepath.Join(t.TempDir(), "creds.toml")
	if err := os.WriteFile(creds, []byte("access_key_id = \"ak-rig\"\nsecret_access_key = \"sk-rig-secret\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return emu, srv.URL, creds
}

func activeNextHop(emu *emulator.Emulator) string { return rig.RouteHolder(emu.State()) }

func TestRunSwitchesOnceThenLeavesAlone(t *testing.T) {
	emu, url, creds := newWorld(t)
	for _, tc := range []struct {
		name, selector, value, instance, wantOut, wantHop string
	}{
		{"switch to n2 by destination", "-destination", "198.19.0.0/24", "dcgw-n2", "switched", "i-n2"},
		{"already n2", "-destination", "198.19.0.0/24", "dcgw-n2", "already points at dcgw-n2", "i-n2"},
		{"back to n1 by rule id", "-rule", "rr-b", "dcgw-n1", "switched", "i-n1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run([]string{"-endpoint", url, "-credentials", creds, "-table", "rt-rig", "-next-hop", tc.instance, tc.selector, tc.value}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q, want it to contain %q", out.String(), tc.wantOut)
			}
			if got := activeNextHop(emu); got != tc.wantHop {
				t.Errorf("active next hop %s, want %s", got, tc.wantHop)
			}
		})
	}
	if got := rig.Switches(emu.Log()); got != 2 {
		t.Errorf("%d switches, want 2", got)
	}
}

func TestRunErrors(t *testing.T) {
	_, url, creds := newWorld(t)
	base := []string{"-endpoint", url, "-credentials", creds, "-table", "rt-rig"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no next hop", append(base, "-destination", "198.19.0.0/24"), "-next-hop is required"},
		{"nothing to switch", append(base, "-next-hop", "dcgw-n2"), "give at least one"},
		{"unknown destination", append(base, "-next-hop", "dcgw-n2", "-destination", "198.19.9.0/24"), "found 0 rules"},
		{"not in the pair", append(base, "-next-hop", "dcgw-other", "-destination", "198.19.0.0/24"), "in neither rule"},
		{"unknown rule", append(base, "-next-hop", "dcgw-n2", "-rule", "rr-z"), "rule rr-z: not in table"},
		{"bad credentials", []string{"-endpoint", url, "-credentials", "/nonexistent", "-table", "rt-rig", "-next-hop", "dcgw-n2", "-destination", "198.19.0.0/24"}, "credentials /nonexistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCredentialErrorsHideTheSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.toml")
	if err := os.WriteFile(path, []byte("access_key_id = \"ak\"\nsecret_access_key = \"sk-very-secret\"\nbogus = [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadCredentials(path)
	if err == nil || strings.Contains(err.Error(), "sk-very-secret") {
		t.Errorf("err %v: want an error without the secret", err)
	}
}
