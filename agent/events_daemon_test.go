package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/hooks"
	"github.com/havip-agent/havip-agent/agent/journal"
	"github.com/havip-agent/havip-agent/cloud"
)

// callingCloud is a scriptCloud whose claims report a mutating call, as
// the bce client's OnCall does.
type callingCloud struct{ *scriptCloud }

func (c callingCloud) Claim(ctx context.Context, r cloud.Resource, tokenBase string) (cloud.Ownership, error) {
	CloudCall(ctx, cloud.CallRecord{Operation: "havip.attach", Target: "havip.attach " + r.Key(), Mutating: true, Attempt: 1,
		Status: 200, Code: "OK", RequestID: "req-" + tokenBase, ClientToken: cloud.Token(tokenBase, "havip.attach/i-self")})
	return c.scriptCloud.Claim(ctx, r, tokenBase)
}

// hookServer collects the payloads an http hook posts.
type hookServer struct {
	mu       sync.Mutex
	payloads []hooks.Payload
}

func (s *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var p hooks.Payload
	if err := json.Unmarshal(b, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.payloads = append(s.payloads, p)
	s.mu.Unlock()
}

func (s *hookServer) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.payloads {
		e := string(p.Event)
		if p.To != "" {
			e += ":" + string(p.To)
		}
		out = append(out, e)
	}
	return out
}

// A failover reaches the history and the hooks after its local actions:
// the transition with its phase timings, the claim's mutating call with
// its request id and clientToken, the confirmation, and the hook's own
// runs; the hook gets the transition, the claim and the confirmation, in
// that order, with the node's identity.
func TestEventsReachHistoryAndHooks(t *testing.T) {
	srv := httptest.NewServer(&hookServer{})
	defer srv.Close()
	hs := srv.Config.Handler.(*hookServer)
	cfg := reloadConfig(t, testConfig(t), `[[hook]]
name = "collector"
type = "http"
url = "`+srv.URL+`/hook"
[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
garp_count = 1
havip = "havip-1"
`)
	f := &scriptCloud{node: "i-self", owner: "i-peer"}
	d, stop := runEventsDaemon(t, cfg, callingCloud{f})
	if err := d.Notify([]string{"INSTANCE", "VI_1", "MASTER", "100"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"transition:MASTER", "cloud_claimed", "cloud_confirmed"}
	if !eventually(func() bool { return len(hs.events()) >= len(want) }) {
		t.Fatalf("hook got %v, want %v", hs.events(), want)
	}
	if got := hs.events(); strings.Join(got[:3], " ") != strings.Join(want, " ") {
		t.Errorf("hook got %v, want %v first", got, want)
	}
	hs.mu.Lock()
	p := hs.payloads[0]
	claimed := hs.payloads[1]
	hs.mu.Unlock()
	if p.Hook != "collector" || p.Instance != "VI_1" || p.Generation == 0 || p.Phases.VIPsPresent == 0 || p.Phases.FirstAnnouncement == 0 || p.Node.InstanceID != "i-self" {
		t.Errorf("transition payload %+v", p)
	}
	if len(claimed.Resources) != 1 || claimed.Resources[0].ID != "havip-1" || !strings.HasPrefix(claimed.Resources[0].RequestID, "req-i-self/VI_1/") {
		t.Errorf("claimed payload %+v", claimed)
	}
	if !eventually(func() bool { return d.events.hooks.Load().Status()[0].Runs >= 3 }) {
		t.Fatalf("hook runs: %+v", d.events.hooks.Load().Status())
	}
	stop()
	ev, skipped, err := journal.Read(cfg.Agent.StateDir, journal.Filter{})
	if err != nil || skipped != 0 {
		t.Fatal(err, skipped)
	}
	var kinds []string
	for _, e := range ev {
		kinds = append(kinds, string(e.Kind))
		switch e.Kind {
		case journal.KindTransition:
			if e.To != StateMaster || e.VIPsPresent == 0 || e.FirstAnnouncement == 0 || e.Source != "notify" {
				t.Errorf("transition %+v", e)
			}
		case journal.KindCloudCall:
			if e.Operation != "havip.attach" || e.Resource != "havip/havip-1" || e.Status != 200 || e.RequestID == "" || len(e.ClientToken) != cloud.TokenLen || e.Generation != ev[0].Generation {
				t.Errorf("cloud call %+v", e)
			}
		case journal.KindCloudConfirmed:
			if e.Resource != "havip/havip-1" || e.CloudConfirmed == 0 {
				t.Errorf("confirmation %+v", e)
			}
		case journal.KindHook:
			if e.Hook != "collector" || e.Outcome != "ok" {
				t.Errorf("hook run %+v", e)
			}
		}
	}
	got := strings.Join(kinds, " ")
	if !strings.HasPrefix(got, "transition cloud_call cloud_confirmed") || strings.Count(got, "hook") < 3 {
		t.Errorf("history kinds: %s", got)
	}
}

// runEventsDaemon runs a daemon until the test ends or stop is called.
func runEventsDaemon(t *testing.T, cfg *config.Config, p cloud.Provider) (d *Daemon, stop func()) {
	t.Helper()
	ready := make(chan struct{})
	var err error
	d, err = New(Options{Config: cfg, Logger: discard(), Network: newFakeNet("eth0"), Cloud: p, BootID: "b", Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	<-ready
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return d, stop
}
