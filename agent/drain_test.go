package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/agent/journal"
)

// drainConfig is one MASTER-capable instance with a HAVIP and a drain
// file, and, unless noFile, nothing else.
func drainConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	base := testConfig(t)
	dir := filepath.Dir(base.Agent.StateDir)
	return reloadConfig(t, base, `[[instance]]
name = "VI_1"
interface = "eth0"
vips = ["198.18.0.100/24"]
garp_count = 1
havip = "havip-1"
drain_file = "`+dir+`/track/drain-VI_1"
`+extra)
}

// drainObserver records the drained gauge and the systemd status lines.
type drainObserver struct {
	nopObserver
	mu      sync.Mutex
	drained map[string]bool
}

func (o *drainObserver) Drained(vrrpInstance string, drained bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.drained == nil {
		o.drained = map[string]bool{}
	}
	o.drained[vrrpInstance] = drained
}

func (o *drainObserver) get(name string) (drained, reported bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	drained, reported = o.drained[name]
	return drained, reported
}

// drainRig is a daemon with a scripted cloud and a stand-in for
// keepalived that watches the drain file: 1 makes the instance FAULT and,
// when a peer is up, the peer takes the cloud.
type drainRig struct {
	t      *testing.T
	cfg    *config.Config
	cloud  *scriptCloud
	d      *Daemon
	obs    *drainObserver
	stop   func()
	peerUp bool

	mu       sync.Mutex
	statuses []string
}

func newDrainRig(t *testing.T, cfg *config.Config, f *scriptCloud, peerUp bool) *drainRig {
	t.Helper()
	r := &drainRig{t: t, cfg: cfg, cloud: f, obs: &drainObserver{}, peerUp: peerUp}
	r.start()
	return r
}

func (r *drainRig) start() {
	t := r.t
	ready := make(chan struct{})
	d, err := New(Options{Config: r.cfg, Logger: discard(), Network: newFakeNet("eth0"), Cloud: r.cloud, BootID: "b", Observer: r.obs,
		Ready: func() { close(ready) },
		Notify: func(s string) {
			r.mu.Lock()
			r.statuses = append(r.statuses, s)
			r.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := d.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	<-ready
	go func() {
		defer wg.Done()
		r.keepalived(ctx, d)
	}()
	r.d = d
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(r.stop)
}

// keepalived reacts to the drain file as keepalived with track_file and
// weight 0 does.
func (r *drainRig) keepalived(ctx context.Context, d *Daemon) {
	path := r.cfg.Instances[0].DrainFile
	last := ""
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, _ := os.ReadFile(path)
		v := strings.TrimSpace(string(b))
		if v == last {
			continue
		}
		last = v
		if v == "1" {
			_ = d.Notify([]string{"INSTANCE", "VI_1", "FAULT", "0"})
			if r.peerUp {
				time.AfterFunc(50*time.Millisecond, func() { r.cloud.set("i-peer") })
			}
		}
	}
}

func (r *drainRig) lastStatus() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.statuses) == 0 {
		return ""
	}
	return r.statuses[len(r.statuses)-1]
}

// master makes VI_1 MASTER and waits until the cloud points here.
func (r *drainRig) master() {
	r.t.Helper()
	if err := r.d.Notify([]string{"INSTANCE", "VI_1", "MASTER", "100"}); err != nil {
		r.t.Fatal(err)
	}
	if !eventually(func() bool { return r.cloud.NodeID() == "i-self" && ownerOf(r.cloud) == "i-self" }) {
		r.t.Fatal("the cloud never pointed here")
	}
}

func ownerOf(f *scriptCloud) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.owner
}

func (r *drainRig) drain(req control.DrainRequest) ([]string, error) {
	var mu sync.Mutex
	var lines []string
	err := r.d.Drain(context.Background(), req, func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	})
	return lines, err
}

func (r *drainRig) drainFile() string {
	b, err := os.ReadFile(r.cfg.Instances[0].DrainFile)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func (r *drainRig) history() []journal.Event {
	r.t.Helper()
	ev, _, err := journal.Read(r.cfg.Agent.StateDir, journal.Filter{})
	if err != nil {
		r.t.Fatal(err)
	}
	return ev
}

func kindsOf(ev []journal.Event, kinds ...journal.Kind) []string {
	var out []string
	for _, e := range ev {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, string(e.Kind)+": "+e.Message)
			}
		}
	}
	return out
}

// A drain of the MASTER: the drain file goes to 1 (after the record), the
// instance leaves MASTER, the peer takes the cloud, and the drain reports
// each step and succeeds; status, the drained gauge, systemd's STATUS and
// the history say so, and the drain file is kept at 0 before and after.
func TestDrainSwitchesOver(t *testing.T) {
	cfg := drainConfig(t, "")
	r := newDrainRig(t, cfg, &scriptCloud{node: "i-self", owner: "i-peer"}, true)
	if got := r.drainFile(); got != "0\n" {
		t.Fatalf("drain file at start %q, want 0", got)
	}
	if drained, ok := r.obs.get("VI_1"); drained || !ok {
		t.Errorf("drained gauge at start: %v (reported %v), want 0", drained, ok)
	}
	r.master()
	lines, err := r.drain(control.DrainRequest{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, strings.Join(lines, "\n"))
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"VI_1  drained: " + cfg.Instances[0].DrainFile + " = 1, keepalived now puts the instance into FAULT",
		"VI_1  left MASTER: now FAULT",
		"VI_1  the cloud sees peer i-peer as MASTER (havip/havip-1)",
		"VI_1  havip/havip-1 moved to i-peer",
		"VI_1  drained: left MASTER and the cloud points elsewhere",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
	if got := r.drainFile(); got != "1\n" {
		t.Errorf("drain file %q, want 1", got)
	}
	st := r.d.status().Instances[0]
	if st.Drain == nil || !st.Drain.Drained || st.Drain.Since.IsZero() {
		t.Errorf("status drain %+v", st.Drain)
	}
	if drained, _ := r.obs.get("VI_1"); !drained {
		t.Error("drained gauge not 1")
	}
	if got := r.lastStatus(); got != "STATUS=VI_1 FAULT (drained)" {
		t.Errorf("systemd status %q", got)
	}
	lines2, err := r.d.Resume(nil)
	if err != nil || len(lines2) != 1 || !strings.Contains(lines2[0], "VI_1 resumed: "+cfg.Instances[0].DrainFile+" = 0") {
		t.Errorf("resume: %q, %v", lines2, err)
	}
	if got := r.drainFile(); got != "0\n" {
		t.Errorf("drain file after resume %q, want 0", got)
	}
	if st := r.d.status().Instances[0]; st.Drain == nil || st.Drain.Drained {
		t.Errorf("status after resume %+v", st.Drain)
	}
	if got := r.lastStatus(); got != "STATUS=VI_1 FAULT" {
		t.Errorf("systemd status after resume %q", got)
	}
	r.stop()
	got := kindsOf(r.history(), journal.KindDrain, journal.KindResume)
	want := []string{"drain: havip-agent drain (timeout 5s)", "drain: switchover complete after", "resume: havip-agent resume"}
	if len(got) != len(want) {
		t.Fatalf("history drains %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("history %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// Draining the only node: it steps down, but nobody takes the cloud. The
// drain gives up after its timeout, undoes itself (drain file 0, record
// gone, a resume in the history) and fails saying what did not move;
// with --force it stays drained.
func TestDrainOfTheOnlyNodeUndoesItself(t *testing.T) {
	cfg := drainConfig(t, "")
	r := newDrainRig(t, cfg, &scriptCloud{node: "i-self", owner: "i-peer"}, false)
	r.master()
	lines, err := r.drain(control.DrainRequest{Timeout: 700 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not drained, the drain was undone") || !strings.Contains(err.Error(), "havip/havip-1 still points at this node") {
		t.Fatalf("drain: %v\n%s", err, strings.Join(lines, "\n"))
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"left MASTER: now FAULT", "not taken over after 700ms: no other node took over: havip/havip-1 still points at this node; undoing the drain", "resumed: " + cfg.Instances[0].DrainFile + " = 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
	if got := r.drainFile(); got != "0\n" {
		t.Errorf("drain file %q, want 0", got)
	}
	if _, err := os.Stat(r.d.drainRecordPath("instance", "VI_1")); !os.IsNotExist(err) {
		t.Errorf("drain record left behind: %v", err)
	}
	if st := r.d.status().Instances[0]; st.Drain.Drained {
		t.Error("still drained")
	}
	lines, err = r.drain(control.DrainRequest{Timeout: 300 * time.Millisecond, Force: true})
	if err != nil || !strings.Contains(strings.Join(lines, "\n"), "stays drained (--force)") {
		t.Errorf("forced drain: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if st := r.d.status().Instances[0]; !st.Drain.Drained || r.drainFile() != "1\n" {
		t.Errorf("a forced drain was undone: %+v, file %q", st.Drain, r.drainFile())
	}
	r.stop()
	var undone bool
	for _, e := range r.history() {
		undone = undone || (e.Kind == journal.KindResume && strings.HasPrefix(e.Message, "drain undone: not taken over within 700ms"))
	}
	if !undone {
		t.Errorf("the history has no undone drain: %+v", kindsOf(r.history(), journal.KindDrain, journal.KindResume))
	}
}

// The drained state is in state_dir: a restarted agent (the drain file
// gone with /run at a reboot) writes 1 again before anything else, and
// status shows the drain with its time; resume ends it for good.
func TestDrainSurvivesRestart(t *testing.T) {
	cfg := drainConfig(t, "")
	r := newDrainRig(t, cfg, &scriptCloud{node: "i-self", owner: "i-peer"}, false)
	if _, err := r.drain(control.DrainRequest{Timeout: 100 * time.Millisecond, Force: true}); err != nil {
		t.Fatal(err)
	}
	since := r.d.status().Instances[0].Drain.Since
	r.stop()
	if err := os.Remove(cfg.Instances[0].DrainFile); err != nil {
		t.Fatal(err)
	}
	r.start()
	if got := r.drainFile(); got != "1\n" {
		t.Fatalf("drain file after the restart %q, want 1", got)
	}
	st := r.d.status().Instances[0].Drain
	if !st.Drained || !st.Since.Equal(since) {
		t.Errorf("status after the restart %+v, want drained since %s", st, since)
	}
	if drained, _ := r.obs.get("VI_1"); !drained {
		t.Error("drained gauge not 1 after the restart")
	}
	if _, err := r.d.Resume([]string{"VI_1"}); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r.start()
	if got := r.drainFile(); got != "0\n" || r.d.status().Instances[0].Drain.Drained {
		t.Errorf("after resume and a restart: file %q, %+v", got, r.d.status().Instances[0].Drain)
	}
}

// A drain is refused whole, with the fix, when an instance it names (or
// any, when it names none) has no drain_file; an unknown name is refused
// with the known ones.
func TestDrainRefusedWithoutDrainFile(t *testing.T) {
	cfg := drainConfig(t, `[[instance]]
name = "VI_2"
interface = "eth0"
vips = ["198.18.0.101/24"]
garp_count = 1
`)
	r := newDrainRig(t, cfg, &scriptCloud{node: "i-self", owner: "i-peer"}, true)
	for _, names := range [][]string{nil, {"VI_2"}} {
		_, err := r.drain(control.DrainRequest{Instances: names, Timeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "instance VI_2 has no drain_file") || !strings.Contains(err.Error(), `drain_file = "/run/havip-agent/track/drain-VI_2"`) {
			t.Errorf("drain %v: %v", names, err)
		}
	}
	if got := r.drainFile(); got != "0\n" {
		t.Errorf("a refused drain changed the drain file: %q", got)
	}
	if _, err := r.drain(control.DrainRequest{Instances: []string{"VI_9"}}); err == nil || !strings.Contains(err.Error(), `no instance named "VI_9" (the configured ones: VI_1, VI_2)`) {
		t.Errorf("unknown instance: %v", err)
	}
	lines, err := r.d.Resume([]string{"VI_2"})
	if err != nil || strings.Join(lines, "|") != "VI_2 was not drained" {
		t.Errorf("resume of an instance without drain_file: %q, %v", lines, err)
	}
}

// A resume while a drain waits ends the wait: the drain fails, saying so,
// and nothing drains the instance again.
func TestResumeEndsAWaitingDrain(t *testing.T) {
	cfg := drainConfig(t, "")
	r := newDrainRig(t, cfg, &scriptCloud{node: "i-self", owner: "i-peer"}, false)
	r.master()
	errc := make(chan error, 1)
	go func() {
		_, err := r.drain(control.DrainRequest{Timeout: time.Minute})
		errc <- err
	}()
	if !eventually(func() bool { return r.drainFile() == "1\n" }) {
		t.Fatal("not drained")
	}
	if _, err := r.d.Resume(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "VI_1 resumed by another request") {
			t.Errorf("drain: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the drain still waits after the resume")
	}
	if r.drainFile() != "0\n" {
		t.Errorf("drain file %q", r.drainFile())
	}
}
