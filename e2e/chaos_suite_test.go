package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/agent"
	"github.com/havip-agent/havip-agent/cloud/emulator"
	"github.com/havip-agent/havip-agent/e2e/chaos"
	"github.com/havip-agent/havip-agent/e2e/rig"
)

// The chaos scenarios. Each is a function of the number of runs that
// returns its figures; the TestIntegrationChaos* tests run each with few
// runs in `make test` and fail on a missed promise, TestChaos runs them
// all with many runs under `make chaos` (HAVIP_CHAOS=1) and writes
// e2e/results/chaos.{md,json}. This file holds the registry, the runner
// and the helpers they share; the scenarios live in one file per group:
// chaos_cloud_api_test.go, chaos_restart_test.go,
// chaos_split_brain_test.go and chaos_input_test.go (issue 7),
// chaos_outage_test.go, chaos_cloud_outage_test.go and
// chaos_local_outage_test.go (issue 11).

// chaosOnlyEnv picks scenarios by name: a comma-separated list.
const chaosOnlyEnv = "HAVIP_CHAOS_ONLY"

// chaosScenario is one scenario of the registry.
type chaosScenario struct {
	// num is the scenario's row in the results, as the README cites it.
	num int
	// name is stable and kebab-case: what HAVIP_CHAOS_ONLY lists.
	name string
	// title says what the scenario does, after num in the results.
	title        string
	ciRuns, full int
	// Exactly one of run and shared is set. run builds a rig of its own;
	// shared runs on the rig it is given and leaves it as it found it
	// (n1 MASTER with the VIP and the cloud, both keepalived and both
	// agents running, no fault), so that under make test the issue 11
	// scenarios share one rig (TestIntegrationChaosOutage), a rig being
	// slow to build and tear down.
	run    func(t *testing.T, runs int) chaos.Result
	shared func(s *chaosSuite, runs int) chaos.Result
}

// chaosScenarios is the registry, in the order of the results table. A
// new scenario goes at the end with the next number, so that the rows
// the README cites keep theirs.
var chaosScenarios = []chaosScenario{
	{num: 1, name: "cloud-faults", title: "cloud faults during failovers", ciRuns: 2, full: 12, run: scenarioCloudFaults},
	{num: 2, name: "agent-killed", title: "agent SIGKILLed at each point of a transition", ciRuns: 1, full: 3, run: scenarioAgentKilled},
	{num: 3, name: "agent-restart", title: "agent restarted while MASTER", ciRuns: 6, full: 50, run: scenarioAgentRestart},
	{num: 4, name: "keepalived-restart", title: "keepalived restarted, reloaded, FIFO recreated", ciRuns: 1, full: 3, run: scenarioKeepalived},
	{num: 5, name: "backup-blip", title: "backup MASTER for a moment", ciRuns: 2, full: 10, run: scenarioBackupBlip},
	{num: 6, name: "split-brain", title: "split brain (VRRP cut, then healed)", ciRuns: 1, full: 1, run: scenarioSplitBrain},
	{num: 7, name: "event-storm", title: "FIFO event storm", ciRuns: 1, full: 3, run: scenarioEventStorm},
	{num: 8, name: "bad-input", title: "bad input", ciRuns: 1, full: 1, run: scenarioBadInput},
	{num: 9, name: "clock-skew", title: "clock skew", ciRuns: 1, full: 1, run: scenarioClockSkew},
	// Issue 11: a CI count of 0 runs a scenario under make chaos only.
	{num: 10, name: "reboot", title: "rebooted old MASTER, agent before keepalived", ciRuns: 1, full: 6, shared: scenarioReboot},
	{num: 11, name: "late-stale", title: "late-applied switch and stale reads", ciRuns: 1, full: 12, shared: scenarioLateStale},
	{num: 12, name: "killed-stepping-down", title: "old MASTER's agent SIGKILLed while stepping down", ciRuns: 0, full: 12, shared: scenarioKilledSteppingDown},
	{num: 13, name: "paused", title: "agent and keepalived paused (SIGSTOP, SIGCONT)", ciRuns: 0, full: 8, shared: scenarioPaused},
	{num: 14, name: "blackhole", title: "blackholed cloud endpoint, dead pooled connections", ciRuns: 1, full: 6, shared: scenarioBlackhole},
	{num: 15, name: "slow-fsync", title: "slow fsync", ciRuns: 2, full: 10, shared: scenarioSlowSync},
	{num: 16, name: "netlink-failing", title: "netlink address operations failing", ciRuns: 1, full: 8, shared: scenarioNetlinkFailing},
}

// label is the scenario's row in the results: its number and title.
func (sc chaosScenario) label() string { return fmt.Sprintf("%d %s", sc.num, sc.title) }

// named labels r as the scenario's.
func (sc chaosScenario) named(r chaos.Result) chaos.Result {
	r.Scenario, r.Name = sc.label(), sc.name
	return r
}

// runOwn runs the scenario on a rig of its own.
func (sc chaosScenario) runOwn(t *testing.T, runs int) chaos.Result {
	if sc.shared != nil {
		return sc.shared(newDefaultInitialSuite(t), runs)
	}
	return sc.run(t, runs)
}

// scenarioNames lists the registry's names, for error messages.
func scenarioNames(all []chaosScenario) string {
	names := make([]string, len(all))
	for i, sc := range all {
		names[i] = sc.name
	}
	return strings.Join(names, ", ")
}

// selectScenarios picks the scenarios that only names (comma-separated,
// blanks around a name ignored) in the registry's order; all of them
// when only is empty. A name the registry lacks is an error that lists
// the names it has.
func selectScenarios(all []chaosScenario, only string) ([]chaosScenario, error) {
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	var unknown []string
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.ContainsFunc(all, func(sc chaosScenario) bool { return sc.name == n }) {
			unknown = append(unknown, strconv.Quote(n))
		}
		want[n] = true
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s: unknown scenario %s; the scenarios are: %s", chaosOnlyEnv, strings.Join(unknown, ", "), scenarioNames(all))
	}
	var out []chaosScenario
	for _, sc := range all {
		if want[sc.name] {
			out = append(out, sc)
		}
	}
	return out, nil
}

// TestChaos runs every scenario with the full run counts (make chaos), or
// those HAVIP_CHAOS_ONLY names.
func TestChaos(t *testing.T) {
	if os.Getenv("HAVIP_CHAOS") != "1" {
		t.Skip("the full chaos set runs with HAVIP_CHAOS=1 (make chaos)")
	}
	picked, err := selectScenarios(chaosScenarios, os.Getenv(chaosOnlyEnv))
	if err != nil {
		t.Fatal(err)
	}
	var results []chaos.Result
	defer func() {
		var b strings.Builder
		if err := chaos.WriteMarkdown(&b, results); err != nil {
			t.Error(err)
		}
		fmt.Fprintf(os.Stdout, "\n%s\n", b.String())
		if err := chaos.Save(filepath.Join("results"), results); err != nil {
			t.Error(err)
		}
	}()
	for _, sc := range picked {
		t.Run(sc.name, func(t *testing.T) {
			r := sc.named(sc.runOwn(t, sc.full))
			results = append(results, r)
			checkResult(t, r)
		})
	}
}

func checkResult(t *testing.T, r chaos.Result) {
	t.Helper()
	var b strings.Builder
	if err := chaos.WriteMarkdown(&b, []chaos.Result{r}); err != nil {
		t.Error(err)
	}
	t.Logf("\n%s", b.String())
	if r.Converged < r.Runs {
		t.Errorf("%s: %d of %d runs converged", r.Scenario, r.Converged, r.Runs)
	}
	if r.Violations > 0 {
		t.Errorf("%s: %d invariant violations: %v", r.Scenario, r.Violations, r.Details)
	}
}

// ciChaos runs the named scenario with its CI run count (make test).
func ciChaos(t *testing.T, name string) {
	picked, err := selectScenarios(chaosScenarios, name)
	if err != nil {
		t.Fatal(err)
	}
	sc := picked[0]
	checkResult(t, sc.named(sc.runOwn(t, sc.ciRuns)))
}

// kebabCase is the form of a scenario's name.
var kebabCase = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// TestChaosRegistry holds the registry to its promises: numbers in table
// order, unique kebab-case names, one way to run each.
func TestChaosRegistry(t *testing.T) {
	seen := map[string]bool{}
	for i, sc := range chaosScenarios {
		if sc.num != i+1 {
			t.Errorf("%s: number %d at row %d", sc.name, sc.num, i+1)
		}
		if !kebabCase.MatchString(sc.name) || seen[sc.name] {
			t.Errorf("%s: not a unique kebab-case name", sc.name)
		}
		seen[sc.name] = true
		if (sc.run == nil) == (sc.shared == nil) {
			t.Errorf("%s: set exactly one of run and shared", sc.name)
		}
		if sc.title == "" || sc.full < 1 || sc.ciRuns < 0 {
			t.Errorf("%s: title %q, runs %d (CI %d)", sc.name, sc.title, sc.full, sc.ciRuns)
		}
	}
}

func TestSelectScenarios(t *testing.T) {
	all := []chaosScenario{{num: 1, name: "cloud-faults"}, {num: 2, name: "agent-killed"}, {num: 3, name: "split-brain"}}
	for _, tt := range []struct {
		only    string
		want    []int
		wantErr string
	}{
		{"", []int{1, 2, 3}, ""},
		{"split-brain", []int{3}, ""},
		{"split-brain,cloud-faults", []int{1, 3}, ""},
		{" cloud-faults , split-brain ,", []int{1, 3}, ""},
		{"agent-killed,agent-killed", []int{2}, ""},
		{"3", nil, `HAVIP_CHAOS_ONLY: unknown scenario "3"; the scenarios are: cloud-faults, agent-killed, split-brain`},
		{"split-brain,nope,Cloud-Faults", nil, `unknown scenario "nope", "Cloud-Faults";`},
	} {
		got, err := selectScenarios(all, tt.only)
		var nums []int
		for _, sc := range got {
			nums = append(nums, sc.num)
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: got %v, %v; want error %q", tt.only, nums, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(nums, tt.want) {
			t.Errorf("%q: got %v, %v; want %v", tt.only, nums, err, tt.want)
		}
	}
}

// Generous bounds: a loaded 2-core machine must not turn a slow run into
// a failure; a run that misses them did not converge.
const (
	convergeTimeout = 60 * time.Second
	settleTime      = 2 * time.Second
	// The rig's cloud timings (rig.CloudConfig).
	reconcileInterval = time.Second
	cloudTimeout      = 2 * time.Second
	reclaimMaxBackoff = 4 * time.Second
)

// chaosSuite is a haSuite that keeps the output of agent processes that
// ended, so calls are attributed across restarts.
type chaosSuite struct {
	*haSuite
	past map[string][]string
}

func newChaosSuite(t *testing.T) *chaosSuite {
	return &chaosSuite{haSuite: newSuite(t), past: map[string][]string{}}
}

// writeFile writes a file the harness needs, failing the test if it cannot.
func writeFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *chaosSuite) cloudOn(node string) bool {
	st, err := s.e.State()
	id := "i-" + node
	return err == nil && rig.RouteHolder(st) == id && rig.HAVIPMaster(st) == id
}

// settledOn: the VIP on node only and the cloud pointing at it.
func (s *chaosSuite) settledOn(node string) bool {
	return sameNodes(s.h.Holders(), node) && s.cloudOn(node)
}

// converge waits for settledOn(node) and reports the time since start.
func (s *chaosSuite) converge(node string, start time.Time) (time.Duration, bool) {
	_, ok := waitFor(convergeTimeout, func() bool { return s.settledOn(node) })
	return time.Since(start), ok
}

// single samples the VIP's holders for d: anything but node alone is a
// violation.
func (s *chaosSuite) single(r *chaos.Result, node string, d time.Duration, what string) {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
		if got := s.h.Holders(); !sameNodes(got, node) {
			r.Violate("%s: VIP on %v after convergence, want only %s", what, got, node)
			return
		}
	}
}

func (s *chaosSuite) log() emulator.Log {
	s.t.Helper()
	return emuLog(s.t, s.e)
}

// lastSeq is the newest sequence number in the emulator's logs.
func (s *chaosSuite) lastSeq() uint64 {
	l := s.log()
	var n uint64
	for _, r := range l.Requests {
		n = max(n, r.Seq)
	}
	for _, c := range l.Changes {
		n = max(n, c.Seq)
	}
	return n
}

func (s *chaosSuite) switchesSince(seq uint64) int {
	n := 0
	for _, c := range s.log().Changes {
		if c.Seq > seq && c.Operation == emulator.OpRouteRuleSwitch {
			n++
		}
	}
	return n
}

// requestsSince are the API requests (not metadata) after seq, from
// node ("" for any).
func (s *chaosSuite) requestsSince(seq uint64, node string) []emulator.RequestRecord {
	var out []emulator.RequestRecord
	for _, r := range s.log().Requests {
		if r.Seq <= seq || strings.HasPrefix(r.Operation, "metadata") {
			continue
		}
		// The emulator logs the source address without its port.
		if ip, _, _ := strings.Cut(r.Source, ":"); node != "" && ip != s.h.Nodes[node].IP {
			continue
		}
		out = append(out, r)
	}
	return out
}

func isMutation(r emulator.RequestRecord) bool {
	return r.Method != "GET" && (strings.HasPrefix(r.Operation, "havip") || strings.HasPrefix(r.Operation, "route"))
}

// attributed checks that every mutating call after seq came from a node
// that was MASTER then, by the transition logs of every agent process.
func (s *chaosSuite) attributed(r *chaos.Result, seq uint64) {
	const grace = 100 * time.Millisecond
	intervals := map[string][][2]time.Time{}
	for name, a := range s.agents {
		ip := s.h.Nodes[name].IP
		for _, out := range append(append([]string(nil), s.past[name]...), a.logs()) {
			intervals[ip] = append(intervals[ip], masterIntervals(out)...)
		}
	}
	for _, q := range s.requestsSince(seq, "") {
		if !isMutation(q) {
			continue
		}
		ip, _, _ := strings.Cut(q.Source, ":")
		ok := false
		for _, iv := range intervals[ip] {
			if !q.Time.Before(iv[0].Add(-grace)) && !q.Time.After(iv[1].Add(grace)) {
				ok = true
			}
		}
		if !ok {
			r.Violate("mutating call %s from %s at %s while that node was not MASTER", q.Operation, ip, q.Time.Format("15:04:05.000"))
		}
	}
}

// restartAgent ends a node's agent (SIGKILL or SIGTERM), waits as
// systemd's RestartSec would, and starts it again.
func (s *chaosSuite) restartAgent(node string, kill bool, pause time.Duration) {
	s.t.Helper()
	a := s.agents[node]
	if kill {
		a.Proc.Kill()
	} else {
		a.Proc.Stop(syscall.SIGTERM)
	}
	s.past[node] = append(s.past[node], a.Proc.Output())
	time.Sleep(pause)
	if err := a.Agent.Start(); err != nil {
		s.t.Fatal(err)
	}
}

// crashed reports whether a node's agent died on its own or panicked.
func (s *chaosSuite) crashed(node string) bool {
	a := s.agents[node]
	return a.Proc.Exited() || strings.Contains(a.logs(), "panic:") || strings.Contains(a.logs(), "goroutine ")
}

func (s *chaosSuite) fault(f emulator.Fault) {
	s.t.Helper()
	if err := s.e.Admin("/_emulator/faults", f, nil); err != nil {
		s.t.Fatal(err)
	}
}

func (s *chaosSuite) clearFaults() {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, s.e.URL+"/_emulator/faults", nil)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: s.h.DialIn("sw")}}
	resp, err := hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
}

// failTo moves mastership: to n2 by stopping n1's keepalived, back to n1
// by starting it (n1 has the higher priority and preempts).
func (s *chaosSuite) failTo(node string) {
	if node == "n2" {
		s.h.Nodes["n1"].Keepalived.Stop(syscall.SIGTERM)
	} else {
		s.startKeepalived("n1")
	}
}

func peerOf(node string) string {
	if node == "n1" {
		return "n2"
	}
	return "n1"
}

// vipWatch samples a node's VIP through netlink every 2 ms.
type vipWatch struct {
	mu      sync.Mutex
	armed   bool
	absent  int
	samples int
	stop    chan struct{}
	done    chan struct{}
}

func watchVIP(t *testing.T, h *rig.HA, node string) *vipWatch {
	nh := handleIn(t, h.NS.Name(node))
	vip := netip.MustParseAddr(rig.VIP)
	w := &vipWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			ok, err := hasAddr(nh, "eth0", vip)
			w.mu.Lock()
			if w.armed && err == nil {
				w.samples++
				if !ok {
					w.absent++
				}
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *vipWatch) arm(on bool) {
	w.mu.Lock()
	w.armed = on
	w.mu.Unlock()
}

func (w *vipWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *vipWatch) counts() (absent, samples int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.absent, w.samples
}

// metric reads one sample of the node agent's metrics (the sum over the
// series whose labels contain every one of labels).
func (s *chaosSuite) metric(node, name string, labels ...string) (float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: s.h.DialIn(node)}}
	resp, err := hc.Get("http://127.0.0.1:19112/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		all := true
		for _, lb := range labels {
			all = all && strings.Contains(l, lb)
		}
		if !all {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return 0, fmt.Errorf("metric %s%v not found", name, labels)
	}
	return sum, nil
}

func cloudStatus(st agent.Status) []agent.ResourceStatus {
	if len(st.Instances) == 0 {
		return nil
	}
	return st.Instances[0].Cloud
}

// histogram renders "value×count" pairs in key order.
func histogram[K int | string](m map[K]int) string {
	var keys []K
	for k := range m {
		keys = append(keys, k)
	}
	sortKeys(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%v×%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func sortKeys[K int | string](k []K) {
	for i := 1; i < len(k); i++ {
		for j := i; j > 0 && k[j] < k[j-1]; j-- {
			k[j], k[j-1] = k[j-1], k[j]
		}
	}
}
