package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/e2e/netns"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// promServer is a real Prometheus evaluating contrib's alert rules
// against the rig's agents, so a scenario can report the alerts an
// on-call person would have got.
type promServer struct {
	t    testing.TB
	base string
}

// startPrometheus runs Prometheus on loopback in the host namespace. The
// agents listen on loopback inside their own namespaces, so the test
// serves /NODE/metrics on loopback and forwards each to its node. Without
// the prometheus binary it skips, or fails under HAVIP_E2E=1.
func startPrometheus(t testing.TB, h *rig.HA, nodes ...string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("HAVIP_E2E") == "1" {
			t.Fatal("prometheus is not installed (apt-get install prometheus)")
		}
		t.Skip("prometheus is not installed")
	}
	mux := http.NewServeMux()
	for _, n := range nodes {
		target, _ := url.Parse("http://127.0.0.1:19112")
		p := httputil.NewSingleHostReverseProxy(target)
		p.Transport = &http.Transport{DisableKeepAlives: true, DialContext: h.DialIn(n)}
		mux.Handle("/"+n+"/metrics", http.StripPrefix("/"+n, p))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	rules, err := filepath.Abs("../contrib/prometheus/havip-agent.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [%q]\nscrape_configs:\n", rules)
	for _, n := range nodes {
		// instance names the node, as it would in a fleet.
		fmt.Fprintf(&cfg, "  - job_name: havip-agent-%s\n    metrics_path: /%s/metrics\n    static_configs:\n      - targets: [%q]\n        labels: {job: havip-agent}\n    relabel_configs:\n      - target_label: instance\n        replacement: %s\n      - target_label: job\n        replacement: havip-agent\n",
			n, n, ln.Addr().String(), n)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pl.Addr().String()
	pl.Close()
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	out := netns.StartT(t, cmd)
	p := &promServer{t: t, base: "http://" + addr}
	// Ready once both targets are up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := p.query(`count(up{job="havip-agent"} == 1)`)
		if err == nil && len(v) == 1 && v[0].Value == fmt.Sprint(len(nodes)) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: targets not up within 30 s (last: %v %v)\n%s", v, err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// promSample is one element of an instant vector.
type promSample struct {
	Labels map[string]string
	Value  string
}

func (p *promServer) query(q string) ([]promSample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	var out []promSample
	for _, r := range body.Data.Result {
		out = append(out, promSample{Labels: r.Metric, Value: fmt.Sprint(r.Value[1])})
	}
	return out, nil
}

// firedSince names the alerts that were firing at some point in the last
// d, sorted: from the ALERTS series Prometheus keeps for its rules.
func (p *promServer) firedSince(d time.Duration) []string {
	p.t.Helper()
	v, err := p.query(fmt.Sprintf(`count by (alertname) (max_over_time(ALERTS{alertstate="firing"}[%ds]))`, int(d.Seconds())+1))
	if err != nil {
		p.t.Errorf("prometheus: %v", err)
		return nil
	}
	var names []string
	for _, s := range v {
		names = append(names, s.Labels["alertname"])
	}
	sort.Strings(names)
	return names
}

// firing names the alerts firing now, sorted.
func (p *promServer) firing() []string {
	return p.firedSince(0)
}
