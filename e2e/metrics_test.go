package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/rig"
)

// TestIntegrationMetricsScrape scrapes a real daemon after a transition
// and checks the exposition with promtool.
func TestIntegrationMetricsScrape(t *testing.T) {
	c := newCoreRig(t)
	a := newAgent(t, c.rig, c.node, coreInstance+`
[metrics]
listen = "127.0.0.1:19112"
`)
	a.start()
	a.write(`INSTANCE "VI_1" MASTER 100`)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := rig.InNamespace(c.rig.Name(c.node), func() error {
				var err error
				conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
	get := func(path string) (int, string) {
		resp, err := client.Get("http://127.0.0.1:19112" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	var body string
	// A scrape gathers the collectors one by one while the actor goes on,
	// so it can see some of a transition's series before others.
	// The state gauge is set just before the transition counter, so wait
	// for the counter too rather than race the actor.
	eventually(t, "MASTER in the metrics", func() bool {
		_, body = get("/metrics")
		return strings.Contains(body, `havip_agent_vrrp_state{state="MASTER",vrrp_instance="VI_1"} 1`) &&
			strings.Contains(body, `havip_agent_transitions_total{state="MASTER",vrrp_instance="VI_1"} 1`) &&
			strings.Contains(body, `havip_agent_failover_phase_duration_seconds_count{phase="first_announcement",vrrp_instance="VI_1"} 1`) &&
			strings.Contains(body, `havip_agent_vip_present{vip="198.18.0.100/24",vrrp_instance="VI_1"} 1`)
	})
	for _, want := range []string{
		`havip_agent_build_info{`,
		`havip_agent_fifo_lines_read_total 1`,
		`go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("promtool is not installed (apt-get install prometheus)")
		}
		t.Skip("promtool is not installed")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
