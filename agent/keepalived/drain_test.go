package keepalived

import (
	"strings"
	"testing"
)

// drainConf is a VRRPv2 instance whose drain file keepalived watches with
// weight 0; the tests change it.
const drainConf = `global_defs {
    script_user root
    vrrp_notify_fifo /run/keepalived/havip-agent.fifo
}
track_file drain_VI_1 {
    file "/run/havip-agent/track/drain-VI_1"
    weight 0
}
vrrp_instance VI_1 {
    interface eth0
    track_file {
        drain_VI_1
    }
}
`

// drainGroupConf is a sync group of two instances.
const drainGroupConf = `global_defs {
    vrrp_notify_fifo /run/keepalived/havip-agent.fifo
}
vrrp_track_file drain_G {
    file /run/havip-agent/track/drain-G
    weight 0
}
vrrp_sync_group G {
    group { VI_A VI_B }
    track_file { drain_G }
}
vrrp_instance VI_A {
}
vrrp_instance VI_B {
}
`

func TestLintDrainFile(t *testing.T) {
	vi1 := []ConfInstance{{Kind: ConfKindInstance, Name: "VI_1", DrainFile: "/run/havip-agent/track/drain-VI_1"}}
	group := []ConfInstance{{Kind: ConfKindGroup, Name: "G", DrainFile: "/run/havip-agent/track/drain-G"}}
	for _, tc := range []struct {
		name      string
		conf      string
		instances []ConfInstance
		want      []string // finding prefixes
	}{
		{name: "watched with weight 0", conf: drainConf, instances: vi1},
		{name: "no drain file configured", conf: strings.Replace(drainConf, "drain-VI_1", "other", 1),
			instances: []ConfInstance{{Kind: ConfKindInstance, Name: "VI_1"}}},
		{name: "no block watches it", conf: strings.Replace(drainConf, "drain-VI_1", "other", 1), instances: vi1,
			want: []string{": error: no track_file block watches /run/havip-agent/track/drain-VI_1, the drain_file of the agent's instance \"VI_1\": havip-agent drain would change nothing; add\n    track_file drain_VI_1 {\n        file /run/havip-agent/track/drain-VI_1\n        weight 0\n    }\nand track_file { drain_VI_1 } in vrrp_instance VI_1"}},
		{name: "the instance does not track it", conf: strings.Replace(drainConf, "        drain_VI_1\n", "        nginx\n", 1), instances: vi1,
			want: []string{"k.conf:9: error: vrrp_instance VI_1 does not track /run/havip-agent/track/drain-VI_1, the drain_file of the agent's instance \"VI_1\" (track_file drain_VI_1 watches it): add track_file { drain_VI_1 } to it"}},
		{name: "block without weight: keepalived's default 1", conf: strings.Replace(drainConf, "    weight 0\n", "", 1), instances: vi1,
			want: []string{"k.conf:5: error: vrrp_instance VI_1 tracks the drain file /run/havip-agent/track/drain-VI_1 with weight 1: a drained node would only lose priority"}},
		{name: "block weight -50", conf: strings.Replace(drainConf, "    weight 0\n", "    weight -50\n", 1), instances: vi1,
			want: []string{"k.conf:7: error: vrrp_instance VI_1 tracks the drain file /run/havip-agent/track/drain-VI_1 with weight -50"}},
		{name: "the instance overrides the weight", conf: strings.Replace(drainConf, "        drain_VI_1\n", "        drain_VI_1 weight -20\n", 1), instances: vi1,
			want: []string{"k.conf:12: error: vrrp_instance VI_1 tracks the drain file /run/havip-agent/track/drain-VI_1 with weight -20"}},
		{name: "the instance overrides a wrong weight with 0", conf: strings.Replace(strings.Replace(drainConf, "    weight 0\n", "    weight -20\n", 1), "        drain_VI_1\n", "        drain_VI_1 weight 0\n", 1), instances: vi1},
		{name: "the same path written otherwise", conf: strings.Replace(drainConf, `"/run/havip-agent/track/drain-VI_1"`, "/run/havip-agent//track/./drain-VI_1", 1), instances: vi1},
		{name: "sync group tracks it", conf: drainGroupConf, instances: group},
		{name: "every member tracks it", conf: strings.Replace(strings.Replace(drainGroupConf, "    track_file { drain_G }\n", "", 1),
			"vrrp_instance VI_A {\n}\nvrrp_instance VI_B {\n}\n", "vrrp_instance VI_A {\n track_file { drain_G }\n}\nvrrp_instance VI_B {\n track_file { drain_G }\n}\n", 1), instances: group},
		{name: "one member does not track it", conf: strings.Replace(strings.Replace(drainGroupConf, "    track_file { drain_G }\n", "", 1),
			"vrrp_instance VI_A {\n}\n", "vrrp_instance VI_A {\n track_file { drain_G }\n}\n", 1), instances: group,
			want: []string{"k.conf:8: error: vrrp_sync_group G does not track /run/havip-agent/track/drain-G"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConf([]byte(tc.conf), "k.conf", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := LintConf(c, ConfExpect{FIFO: "/run/keepalived/havip-agent.fifo", Instances: tc.instances})
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings %q, want %d %q", len(got), got, len(tc.want), tc.want)
			}
			for i, f := range got {
				if !strings.HasPrefix(f.String(), tc.want[i]) {
					t.Errorf("finding %d:\ngot  %q\nwant prefix %q", i, f, tc.want[i])
				}
			}
		})
	}
}
