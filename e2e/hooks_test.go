package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/hooks"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// TestIntegrationHookSlowSeesEveryEvent: an exec hook that takes a second
// per run, given five transitions in well under a second, runs for every
// one of them, in order, one run at a time: a newer event never kills or
// overtakes a running hook. A second hook, run by the MASTER transitions,
// tries to change the daemon's state through the control socket and is
// refused, as a health check is. The transitions themselves are not
// delayed: each is on the interface long before the slow hook gets to it.
func TestIntegrationHookSlowSeesEveryEvent(t *testing.T) {
	c := newCoreRig(t)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs.log")
	meddled := filepath.Join(dir, "meddled.log")
	a := newAgent(t, c.rig, c.node, coreInstance+fmt.Sprintf(`
[[hook]]
name = "slow"
type = "exec"
events = ["transition"]
timeout = "5s"
command = ["/bin/sh", "-c", "s=$(date +%%s%%N); cat >/dev/null; sleep 1; echo \"$HAVIP_GENERATION $HAVIP_FROM $HAVIP_TO $s $(date +%%s%%N)\" >> %s"]

[[hook]]
name = "meddler"
type = "exec"
events = ["transition:MASTER"]
command = ["/bin/sh", "-c", "cat >/dev/null; %s resume -config \"$0\" >> %s 2>&1; echo rc=$? >> %s"]
`, runs, binary(t, "havip-agent"), meddled, meddled))
	// The meddler names the agent's configuration as its $0.
	cfg, err := os.ReadFile(a.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.Replace(string(cfg), `echo rc=$? >> `+meddled+`"]`, `echo rc=$? >> `+meddled+`", "`+a.Config+`"]`, 1)
	if err := os.WriteFile(a.Config, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	a.start()
	h := handleIn(t, c.rig.Name(c.node))
	present := func() bool { ok, _ := hasAddr(h, "eth0", vip); return ok }
	states := []string{"MASTER", "BACKUP", "MASTER", "BACKUP", "MASTER"}
	start := time.Now()
	for _, s := range states {
		a.write(`INSTANCE "VI_1" ` + s + ` 100`)
		// Each one acted on before the next: the hooks do not hold the
		// actor.
		eventuallyFor(t, 2*time.Second, "VI_1 "+s, func() bool { return (s == "MASTER") == present() && deathState(a) == s })
	}
	wrote := time.Since(start)
	t.Logf("5 transitions written and acted on in %s", wrote.Round(time.Millisecond))
	eventuallyFor(t, 20*time.Second, "5 runs of the slow hook", func() bool {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "\n") >= len(states)
	})
	b, _ := os.ReadFile(runs)
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	t.Logf("slow hook runs:\n%s", strings.Join(got, "\n"))
	var prevGen uint64
	var prevEnd int64
	from := "UNKNOWN"
	for i, l := range got {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("run %d: %q", i, l)
		}
		gen, _ := strconv.ParseUint(f[0], 10, 64)
		s, _ := strconv.ParseInt(f[3], 10, 64)
		e, _ := strconv.ParseInt(f[4], 10, 64)
		if f[1] != from || f[2] != states[i] {
			t.Errorf("run %d was for %s -> %s, want %s -> %s", i, f[1], f[2], from, states[i])
		}
		if i > 0 && gen <= prevGen {
			t.Errorf("run %d: generation %d after %d", i, gen, prevGen)
		}
		if i > 0 && s < prevEnd {
			t.Errorf("run %d started %v before run %d ended: the runs overlap", i, time.Duration(prevEnd-s), i-1)
		}
		if e-s < int64(time.Second) {
			t.Errorf("run %d took %v: cut short", i, time.Duration(e-s))
		}
		from, prevGen, prevEnd = f[2], gen, e
	}
	st := a.status()
	var slow *hooks.Status
	for i := range st.Hooks {
		if st.Hooks[i].Name == "slow" {
			slow = &st.Hooks[i]
		}
	}
	if slow == nil || slow.Runs != 5 || slow.Failures != 0 || slow.Drops != 0 || slow.LastOutcome != "ok" {
		t.Errorf("status of the slow hook: %+v", slow)
	}
	eventually(t, "the meddler's three runs", func() bool {
		b, _ := os.ReadFile(meddled)
		return strings.Count(string(b), "rc=") == 3
	})
	m, _ := os.ReadFile(meddled)
	if strings.Count(string(m), "rc=1") != 3 || !strings.Contains(string(m), `permission denied: a health check or hook may not send "resume"`) {
		t.Errorf("a hook's write request was not refused:\n%s", m)
	}
}

// hookPlan answers an http hook's requests with the statuses of plan, in
// order (200 once it is used up), and keeps the payloads.
type hookPlan struct {
	mu       sync.Mutex
	plan     []int
	payloads []hooks.Payload
	statuses []int
}

func (p *hookPlan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var pl hooks.Payload
	_ = json.Unmarshal(b, &pl)
	p.mu.Lock()
	code := http.StatusOK
	if len(p.plan) > 0 {
		code, p.plan = p.plan[0], p.plan[1:]
	}
	p.payloads = append(p.payloads, pl)
	p.statuses = append(p.statuses, code)
	p.mu.Unlock()
	w.WriteHeader(code)
}

func (p *hookPlan) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.payloads)
}

// TestIntegrationHookHTTPFailsThenRecovers: an http hook posting to a
// server in the node's namespace, which fails (503) long enough for the
// first event's retries to give up, then answers, then fails once more:
// the first run fails after its retries, the second succeeds at once, the
// third after one retry. status, the metrics and the history show each
// run's outcome; the transitions never wait for the hook.
func TestIntegrationHookHTTPFailsThenRecovers(t *testing.T) {
	c := newCoreRig(t)
	plan := &hookPlan{plan: []int{503, 503, 503, 503, 200, 503, 200}}
	var ln net.Listener
	must(t, func() error {
		return rig.InNamespace(c.rig.Name(c.node), func() error {
			var err error
			ln, err = net.Listen("tcp", "127.0.0.1:0")
			return err
		})
	})
	srv := &http.Server{Handler: plan, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	a := newAgent(t, c.rig, c.node, coreInstance+fmt.Sprintf(`
[metrics]
listen = "127.0.0.1:19180"

[[hook]]
name = "web"
type = "http"
url = "http://%s/hook"
events = ["transition"]
retries = 3
`, ln.Addr()))
	a.start()
	for i, s := range []string{"MASTER", "BACKUP", "MASTER"} {
		a.write(`INSTANCE "VI_1" ` + s + ` 100`)
		eventually(t, "VI_1 "+s, func() bool { return deathState(a) == s })
		// Each run ends before the next event, so that the plan's answers
		// fall to the runs as described.
		want := []int{4, 5, 7}[i]
		eventuallyFor(t, 15*time.Second, fmt.Sprintf("%d requests", want), func() bool { return plan.count() >= want })
		eventuallyFor(t, 5*time.Second, fmt.Sprintf("run %d recorded", i+1), func() bool {
			st := a.status()
			return len(st.Hooks) == 1 && st.Hooks[0].Runs == uint64(i+1)
		})
	}
	st := a.status().Hooks[0]
	if st.Runs != 3 || st.Failures != 1 || st.LastOutcome != "ok [2 attempts]" {
		t.Errorf("status of the hook: %+v", st)
	}
	plan.mu.Lock()
	var events []string
	for i, p := range plan.payloads {
		events = append(events, fmt.Sprintf("%s %s->%s gen %d: %d", p.Event, p.From, p.To, p.Generation, plan.statuses[i]))
		if p.Hook != "web" || p.Instance != "VI_1" || p.Node.Hostname == "" {
			t.Errorf("payload %d: %+v", i, p)
		}
	}
	plan.mu.Unlock()
	t.Logf("requests the server saw:\n%s", strings.Join(events, "\n"))
	// The client's connections are made in the node's namespace.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := rig.InNamespace(c.rig.Name(c.node), func() error {
				var err error
				conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		}}}
	resp, err := hc.Get("http://127.0.0.1:19180/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(b)
	for _, want := range []string{`havip_agent_hook_runs_total{hook="web",result="ok"} 2`, `havip_agent_hook_runs_total{hook="web",result="failed"} 1`,
		`havip_agent_hook_events_dropped_total{hook="web"} 0`, "havip_agent_history_events_written_total "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	a.stop()
	code, hist, stderr := agentCmd(t, "history", "-config", a.Config)
	t.Logf("havip-agent history:\n%s%s", hist, stderr)
	if code != 0 {
		t.Fatal("history failed")
	}
	for _, want := range []string{"hook web HTTP 503 [4 attempts]", "hook web ok in", "hook web ok [2 attempts]"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q", want)
		}
	}
}
