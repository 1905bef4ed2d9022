package rig

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestVRRPCheck(t *testing.T) {
	shared := []string{VIP + "/24"}
	for _, tc := range []struct {
		name string
		v    VRRP
		want string // "" for no error, else a part of it
	}{
		{"v2 whole seconds, agent-owned", VRRP{Version: 2, AdvertInt: time.Second, Priority: 100}, ""},
		{"v3 0.1 s shared", VRRP{Version: 3, AdvertInt: 100 * time.Millisecond, Priority: 100, SharedVIPs: shared}, ""},
		{"v3 with realtime priority", VRRP{Version: 3, AdvertInt: 200 * time.Millisecond, Priority: 254, SharedVIPs: shared, RTPriority: 50}, ""},
		{"v2 rounded", VRRP{Version: 2, AdvertInt: 500 * time.Millisecond, Priority: 100}, "whole seconds"},
		{"v3 without VIPs", VRRP{Version: 3, AdvertInt: 100 * time.Millisecond, Priority: 100}, "without virtual_ipaddress"},
		{"v3 finer than centiseconds", VRRP{Version: 3, AdvertInt: 105 * time.Millisecond, Priority: 100, SharedVIPs: shared}, "centiseconds"},
		{"version 4", VRRP{Version: 4, AdvertInt: time.Second, Priority: 100}, "version 4"},
		{"no interval", VRRP{Version: 2, Priority: 100}, "positive"},
		{"priority 255", VRRP{Version: 2, AdvertInt: time.Second, Priority: 255}, "priority 255"},
		{"realtime priority 100", VRRP{Version: 2, AdvertInt: time.Second, Priority: 100, RTPriority: 100}, "vrrp_rt_priority 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.v.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestAdvertIntString(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "1", 500 * time.Millisecond: "0.5", 100 * time.Millisecond: "0.1", 30 * time.Millisecond: "0.03"} {
		if got := (VRRP{AdvertInt: d}).AdvertIntString(); got != want {
			t.Errorf("%v: got %q, want %q", d, got, want)
		}
	}
}

// goldenVRRP are the configurations of the failover matrix.
var goldenVRRP = map[string]VRRP{
	"keepalived-v2-agent.conf.golden": {Version: 2, AdvertInt: time.Second, Priority: 100, TrackFile: "/run/rig/track/svc", NoPreempt: true},
	"keepalived-v3-shared.conf.golden": {Version: 3, AdvertInt: 100 * time.Millisecond, Priority: 100,
		SharedVIPs: []string{VIP + "/24"}, TrackFile: "/run/rig/track/svc", NoPreempt: true, RTPriority: 50},
}

func TestRenderKeepalivedVRRPGolden(t *testing.T) {
	for file, v := range goldenVRRP {
		got := RenderKeepalivedVRRP("n1", "198.18.0.11", "198.18.0.12", "/run/rig/keepalived.fifo", v)
		path := filepath.Join("testdata", file)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s differs (go test -update):\n%s", file, got)
		}
	}
}

// TestKeepalivedAcceptsVRRP checks the rendered configurations with
// keepalived's own parser (keepalived -t prints what it rounds or
// refuses): shared VIPs pass with exit 0 and nothing printed; agent-owned
// VIPs draw only keepalived 2.2's warning about an instance without a
// VIP (exit 5), which nothing but virtual_ipaddress silences.
func TestKeepalivedAcceptsVRRP(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("keepalived is not installed (apt-get install keepalived)")
		}
		t.Skip("keepalived is not installed")
	}
	dir := t.TempDir()
	for file, v := range goldenVRRP {
		v.TrackFile = filepath.Join(dir, "track")
		path := filepath.Join(dir, strings.TrimSuffix(file, ".golden"))
		conf := RenderKeepalivedVRRP("n1", "198.18.0.11", "198.18.0.12", filepath.Join(dir, "fifo"), v)
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("keepalived", "-t", "-f", path).CombinedOutput()
		if len(v.SharedVIPs) > 0 {
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("keepalived -t %s: %v: %s", file, err, out)
			}
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "(VI_1) No VIP specified; at least one is sensible" {
				t.Errorf("keepalived -t %s: %v: unexpected %q in:\n%s", file, err, l, out)
			}
		}
	}
}
