package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bcehavip "github.com/baidubce/bce-sdk-go/services/havip"
)

func TestFaults(t *testing.T) {
	emu, srv := newTest(t, Options{})
	detail := func() (rawResp, error) {
		hr := signedRequest(t, srv.URL, "GET", "/v1/havip/havip-seed1", nil, nil, testCred, nil)
		// No connection reuse: the transport would silently retry a GET on a dropped reused connection.
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(hr)
		if err != nil {
			return rawResp{}, err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		return rawResp{status: resp.StatusCode, header: resp.Header, body: b.Bytes()}, err
	}
	add := func(f Fault) {
		t.Helper()
		if _, err := emu.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("error by count", func(t *testing.T) {
		add(Fault{Operation: OpHaVipDetail, Kind: FaultError, Status: 503, Count: 2})
		for i := range 3 {
			r, err := detail()
			if err != nil {
				t.Fatal(err)
			}
			want := 503
			if i == 2 {
				want = 200
			}
			if r.status != want {
				t.Fatalf("request %d got %d %s", i, r.status, r.body)
			}
			if i == 0 && r.code() != "ServiceUnavailable" {
				t.Fatalf("code %s", r.code())
			}
		}
	})
	t.Run("throttle", func(t *testing.T) {
		add(Fault{Operation: "havip.*", Kind: FaultError, Status: 429, RetryAfter: 7, Count: 1})
		r, _ := detail()
		if r.status != 429 || r.header.Get("Retry-After") != "7" {
			t.Fatalf("got %d %v", r.status, r.header)
		}
	})
	t.Run("drop", func(t *testing.T) {
		add(Fault{Operation: "*", Kind: FaultDrop, Count: 1})
		if _, err := detail(); err == nil {
			t.Fatal("dropped request answered")
		}
	})
	t.Run("latency", func(t *testing.T) {
		add(Fault{Operation: OpHaVipDetail, Kind: FaultLatency, Delay: Duration(50 * time.Millisecond), Count: 1})
		start := time.Now()
		r, err := detail()
		if err != nil || r.status != 200 {
			t.Fatalf("got %v %v", r.status, err)
		}
		if time.Since(start) < 50*time.Millisecond {
			t.Fatal("latency not applied")
		}
	})
	t.Run("hostile answers", func(t *testing.T) {
		add(Fault{Operation: OpHaVipDetail, Kind: FaultWrongTypes, Count: 1})
		r, _ := detail()
		var h bcehavip.HaVip
		if err := json.Unmarshal(r.body, &h); err == nil {
			t.Fatalf("wrong types decoded cleanly: %s", r.body)
		}
		add(Fault{Operation: OpHaVipDetail, Kind: FaultWrongIDs, Count: 1})
		r, _ = detail()
		if err := json.Unmarshal(r.body, &h); err != nil || h.HaVipId == "havip-seed1" || !strings.HasPrefix(h.HaVipId, "havip-") {
			t.Fatalf("wrong ids got %s %v", r.body, err)
		}
		add(Fault{Operation: OpHaVipDetail, Kind: FaultHuge, Count: 1})
		r, _ = detail()
		if len(r.body) < 4<<20 {
			t.Fatalf("huge answer is %d bytes", len(r.body))
		}
	})
	t.Run("lands but answer lost", func(t *testing.T) {
		add(Fault{Operation: OpHaVipAttach, Kind: FaultLost, Count: 1})
		body := []byte(`{"instanceIds":["i-b"],"instanceType":"SERVER"}`)
		q := map[string]string{"attach": "", "clientToken": "tok-lost"}
		if _, err := http.DefaultClient.Do(signedRequest(t, srv.URL, "PUT", "/v1/havip/havip-seed1", q, body, testCred, nil)); err == nil {
			t.Fatal("lost answer arrived")
		}
		if s := emu.State(); len(s.HaVips[0].Bound) != 2 {
			t.Fatalf("lost request did not land: %+v", s.HaVips[0])
		}
		// The retry with the same token answers success without applying again.
		if r := signedDo(t, srv.URL, "PUT", "/v1/havip/havip-seed1", q, body); r.status != 200 {
			t.Fatalf("retry got %d %s", r.status, r.body)
		}
		if n := countChanges(emu, "attach SERVER i-b"); n != 1 {
			t.Fatalf("applied %d times", n)
		}
	})
	t.Run("probability", func(t *testing.T) {
		emu.ClearFaults()
		add(Fault{Operation: OpHaVipDetail, Kind: FaultError, Status: 500, Probability: 0.5})
		fails := 0
		for range 40 {
			r, _ := detail()
			if r.status == 500 {
				fails++
			}
		}
		if fails == 0 || fails == 40 {
			t.Fatalf("got %d of 40 failures at p=0.5", fails)
		}
		emu.ClearFaults()
		if r, _ := detail(); r.status != 200 {
			t.Fatalf("after clear got %d", r.status)
		}
	})
	if _, err := emu.AddFault(Fault{Operation: "x", Kind: "bogus", Count: 1}); err == nil {
		t.Fatal("bogus fault accepted")
	}
}

func TestARPLearning(t *testing.T) {
	emu, srv := newTest(t, Options{})
	c := havipClient(t, srv.URL)
	if err := c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{"i-b"}, InstanceType: "SERVER"}); err != nil {
		t.Fatal(err)
	}
	master := func() string {
		m, err := emu.HaVipMaster("havip-seed1")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if got := master(); got != "i-b" {
		t.Fatalf("without ARP got master %s, want the last attached i-b", got)
	}
	macA := net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB := net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
	vip := netip.MustParseAddr("198.18.0.100")
	// A gratuitous ARP from a MAC not yet known does not decide.
	emu.ObserveARP(macA, vip)
	if got := master(); got != "i-b" {
		t.Fatalf("unknown announcer changed master to %s", got)
	}
	emu.ObserveARP(macA, netip.MustParseAddr("198.18.0.11")) // learn i-a's MAC
	if got := master(); got != "i-a" {
		t.Fatalf("got master %s, want i-a (its MAC announced the VIP)", got)
	}
	emu.ObserveARP(macB, netip.MustParseAddr("198.18.0.12"))
	emu.ObserveARP(macB, vip)
	if got := master(); got != "i-b" {
		t.Fatalf("got master %s, want i-b", got)
	}
	d, _ := c.GetHaVipDetail("havip-seed1")
	for _, b := range d.BindedInstances {
		if b.Master != (b.InstanceId == "i-b") {
			t.Fatalf("detail master flags %+v", d.BindedInstances)
		}
	}
	if n := countChanges(emu, "master i-a -> i-b (arp"); n != 1 {
		t.Fatalf("got %d master changes to i-b", n)
	}
	// Attaching another instance does not steal the role from the announcer.
	if err := c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{"i-c"}, InstanceType: "SERVER"}); err != nil {
		t.Fatal(err)
	}
	if got := master(); got != "i-b" {
		t.Fatalf("attach changed master to %s", got)
	}
	// The admin endpoint feeds the same way.
	resp, err := http.Post(srv.URL+"/_emulator/arp", "application/json", strings.NewReader(`{"mac":"02:00:00:00:00:0a","ip":"198.18.0.100"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin arp: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := master(); got != "i-a" {
		t.Fatalf("got master %s after admin feed", got)
	}
}

// loClient makes requests from 127.0.0.2, the seeded instance i-lo.
func loClient() *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		return d.DialContext(ctx, n, a)
	}}}
}

func TestMetadata(t *testing.T) {
	emu, srv := newTest(t, Options{CredentialTTL: 2 * time.Minute})
	get := func(c *http.Client, path string) (int, string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	lo := loClient()
	if st, body := get(lo, "/1.0/meta-data/instance-shortid"); st != 200 || body != "i-lo" {
		t.Fatalf("got %d %q", st, body)
	}
	if st, _ := get(http.DefaultClient, "/1.0/meta-data/instance-shortid"); st != 404 {
		t.Fatalf("127.0.0.1 is no instance, got %d", st)
	}
	// The old paths (a role-name step) are gone.
	for _, p := range []string{"/1.0/meta-data/iam/security-credentials/", "/1.0/meta-data/iam/security-credentials/havip-role",
		"/latest/meta-data/iam/security-credentials/"} {
		if st, _ := get(lo, p); st != 404 {
			t.Fatalf("%s got %d, want 404", p, st)
		}
	}
	if st, _ := get(http.DefaultClient, "/latest/meta-data/sts-credential"); st != 404 {
		t.Fatalf("127.0.0.1 is no instance, got %d", st)
	}
	st, body := get(lo, "/latest/meta-data/sts-credential")
	var cr struct{ AccessKeyID, SecretAccessKey, SessionToken, Expiration string }
	if err := json.Unmarshal([]byte(body), &cr); st != 200 || err != nil || cr.SessionToken == "" {
		t.Fatalf("got %d %s %v", st, body, err)
	}
	exp, err := time.Parse(time.RFC3339, cr.Expiration)
	if err != nil || !strings.HasSuffix(cr.Expiration, "Z") || exp.Sub(emu.Now()) > 2*time.Minute || exp.Sub(emu.Now()) < time.Minute {
		t.Fatalf("expiration %q", cr.Expiration)
	}
	c := havipClient(t, srv.URL)
	c.Config.Credentials.AccessKeyId = cr.AccessKeyID
	c.Config.Credentials.SecretAccessKey = cr.SecretAccessKey
	c.Config.Credentials.SessionToken = cr.SessionToken
	if _, err := c.GetHaVipDetail("havip-seed1"); err != nil {
		t.Fatalf("minted credentials refused: %v", err)
	}
	emu.SetClockOffset(3 * time.Minute)
	_, err = c.GetHaVipDetail("havip-seed1")
	wantServiceError(t, err, 403, "InvalidSessionToken")

	add := Fault{Operation: "metadata.*", Kind: FaultError, Status: 500, Count: 1}
	if _, err := emu.AddFault(add); err != nil {
		t.Fatal(err)
	}
	if st, _ := get(lo, "/1.0/meta-data/instance-shortid"); st != 500 {
		t.Fatalf("metadata fault got %d", st)
	}
}

func TestAdminHTTP(t *testing.T) {
	emu, srv := newTest(t, Options{})
	signedDo(t, srv.URL, "PUT", "/v1/route/rule/rr-ha1", map[string]string{"switchRouteHA": "", "clientToken": "t1"}, nil)
	var l Log
	getJSON(t, srv.URL+"/_emulator/log", &l)
	if len(l.Requests) != 1 || l.Requests[0].Operation != OpRouteRuleSwitch || l.Requests[0].ClientToken != "t1" ||
		l.Requests[0].AccessKeyID != "ak-test" || l.Requests[0].Source != "127.0.0.1" || l.Requests[0].Status != 200 {
		t.Fatalf("log requests %+v", l.Requests)
	}
	if len(l.Changes) != 1 || !strings.Contains(l.Changes[0].Message, "active dcgw-1 -> dcgw-2") || l.Changes[0].AccessKeyID != "ak-test" {
		t.Fatalf("log changes %+v", l.Changes)
	}
	var s State
	getJSON(t, srv.URL+"/_emulator/state", &s)
	if len(s.HaVips) != 1 || s.HaVips[0].Master != "i-a" || len(s.RouteRules) != 2 {
		t.Fatalf("state %+v", s)
	}
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post("/_emulator/faults", `{"operation":"havip.detail","kind":"error","status":503,"count":1}`); st != 200 {
		t.Fatalf("add fault %d", st)
	}
	if st := post("/_emulator/faults", `{"operation":"havip.detail","kind":"error","count":1,"bogus":1}`); st != 400 {
		t.Fatalf("bogus fault %d", st)
	}
	if len(emu.Faults()) != 1 {
		t.Fatalf("faults %+v", emu.Faults())
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/_emulator/faults", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("clear faults %v", err)
	}
	if len(emu.Faults()) != 0 {
		t.Fatal("faults not cleared")
	}
	if st := post("/_emulator/clock", `{"offset":"1h"}`); st != 200 || emu.ClockOffset() != time.Hour {
		t.Fatalf("clock %d %v", st, emu.ClockOffset())
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// activeNextHop answers the next hop of the active rule of the seeded HA pair.
func activeNextHop(s State) string {
	for _, r := range s.RouteRules {
		if r.TableID == "rt-1" && r.PathType == pathHAActive {
			return r.NexthopID
		}
	}
	return ""
}

// switchPair switches the seeded HA pair on its active rule, as an agent does.
func switchPair(t *testing.T, emu *Emulator, base string, hc *http.Client, token string) (rawResp, error) {
	t.Helper()
	active := "rr-ha1"
	if activeNextHop(emu.State()) == "dcgw-2" {
		active = "rr-ha2"
	}
	resp, err := hc.Do(signedRequest(t, base, "PUT", "/v1/route/rule/"+active, map[string]string{"switchRouteHA": "", "clientToken": token}, nil, testCred, nil))
	if err != nil {
		return rawResp{}, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return rawResp{status: resp.StatusCode, header: resp.Header, body: b.Bytes()}, err
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// The agent's claim timed out, yet the cloud applied the switch later: the
// emulator must do the same, and its log must say when.
func TestFaultLateAppliesAfterTheClientGaveUp(t *testing.T) {
	emu, srv := newTest(t, Options{})
	const delay = 300 * time.Millisecond
	if _, err := emu.AddFault(Fault{Operation: OpRouteRuleSwitch, Kind: FaultLate, Delay: Duration(delay), Count: 1}); err != nil {
		t.Fatal(err)
	}
	impatient := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := switchPair(t, emu, srv.URL, impatient, "late-1"); err == nil {
		t.Fatal("the client got an answer before the late fault's delay")
	}
	if got := activeNextHop(emu.State()); got != "dcgw-1" {
		t.Fatalf("active next hop %s right after the request, want dcgw-1 (not applied yet)", got)
	}
	switched := func() bool {
		for _, c := range emu.Changes() {
			if c.Operation == OpRouteRuleSwitch {
				return true
			}
		}
		return false
	}
	if !waitFor(switched) {
		t.Fatal("the late request was never applied")
	}
	if got := activeNextHop(emu.State()); got != "dcgw-2" {
		t.Fatalf("active next hop %s after the late application, want dcgw-2", got)
	}
	l := emu.Log()
	var rec RequestRecord
	for _, r := range l.Requests {
		if r.Operation == OpRouteRuleSwitch {
			rec = r
		}
	}
	if rec.Fault != string(FaultLate) || !rec.ClientGone || !rec.Applied || rec.Status != 200 || rec.Received.IsZero() {
		t.Fatalf("request record %+v, want fault late, clientGone, applied, status 200, received set", rec)
	}
	if d := rec.Time.Sub(rec.Received); d < delay {
		t.Errorf("applied %v after receipt, want at least %v", d, delay)
	}
	var ch ChangeRecord
	for _, c := range l.Changes {
		if c.Operation == OpRouteRuleSwitch {
			ch = c
		}
	}
	if ch.Fault != string(FaultLate) || ch.RequestID != rec.RequestID || !ch.Time.Equal(rec.Time) {
		t.Errorf("change record %+v, want fault late at %v by request %s", ch, rec.Time, rec.RequestID)
	}

	// A client that waits long enough gets the answer.
	if _, err := emu.AddFault(Fault{Operation: OpRouteRuleSwitch, Kind: FaultLate, Delay: Duration(20 * time.Millisecond), Count: 1}); err != nil {
		t.Fatal(err)
	}
	if r, err := switchPair(t, emu, srv.URL, http.DefaultClient, "late-2"); err != nil || r.status != 200 {
		t.Fatalf("patient client got %v %v", r.status, err)
	}
	if got := activeNextHop(emu.State()); got != "dcgw-1" {
		t.Fatalf("active next hop %s, want dcgw-1", got)
	}
	l = emu.Log()
	if last := l.Requests[len(l.Requests)-1]; last.Fault != string(FaultLate) || last.ClientGone || last.Status != 200 {
		t.Errorf("patient request record %+v", last)
	}

	// Reads never fire a late fault (it would only be latency).
	emu.ClearFaults()
	if _, err := emu.AddFault(Fault{Operation: "*", Kind: FaultLate, Delay: Duration(time.Minute), Count: 1}); err != nil {
		t.Fatal(err)
	}
	if r := signedDo(t, srv.URL, "GET", "/v1/havip/havip-seed1", nil, nil); r.status != 200 {
		t.Fatalf("read got %d", r.status)
	}
	if f := emu.Faults(); len(f) != 1 || f[0].Count != 1 {
		t.Errorf("a read consumed the late fault: %+v", f)
	}
}

// testClock is a machine clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// ruleActive reads the seeded pair through the API and answers the next hop
// of its active rule.
func ruleActive(t *testing.T, base string) string {
	t.Helper()
	r := signedDo(t, base, "GET", "/v1/route/rule", map[string]string{"routeTableId": "rt-1"}, nil)
	var l struct {
		RouteRules []struct{ NexthopID, PathType string } `json:"routeRules"`
	}
	if err := json.Unmarshal(r.body, &l); r.status != 200 || err != nil {
		t.Fatalf("rule list %d %s %v", r.status, r.body, err)
	}
	for _, x := range l.RouteRules {
		if x.PathType == pathHAActive {
			return x.NexthopID
		}
	}
	return ""
}

// An eventually consistent read shows the state before a switch: the
// emulator serves it on demand.
func TestFaultStaleReads(t *testing.T) {
	clock := &testClock{now: time.Now()}
	emu, srv := newTest(t, Options{Now: clock.Now})
	add := func(f Fault) {
		t.Helper()
		if _, err := emu.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("before the last mutations", func(t *testing.T) {
		if r, err := switchPair(t, emu, srv.URL, http.DefaultClient, "s-1"); err != nil || r.status != 200 {
			t.Fatalf("switch: %v %v", r.status, err)
		}
		add(Fault{Operation: OpRouteRuleList, Kind: FaultStale, Mutations: 1, Count: 2})
		for i := range 2 {
			if got := ruleActive(t, srv.URL); got != "dcgw-1" {
				t.Fatalf("stale read %d shows %s, want dcgw-1 (before the switch)", i, got)
			}
		}
		if got := ruleActive(t, srv.URL); got != "dcgw-2" {
			t.Fatalf("read after the fault shows %s, want dcgw-2", got)
		}
		var stale int
		for _, r := range emu.Requests() {
			if r.Fault == string(FaultStale) {
				stale++
			}
		}
		if stale != 2 {
			t.Errorf("%d requests logged as stale, want 2", stale)
		}
	})

	t.Run("as it was some time ago, for a window", func(t *testing.T) {
		// Active dcgw-2 since the last subtest; ten seconds later back to dcgw-1.
		clock.advance(10 * time.Second)
		if r, err := switchPair(t, emu, srv.URL, http.DefaultClient, "s-2"); err != nil || r.status != 200 {
			t.Fatalf("switch: %v %v", r.status, err)
		}
		add(Fault{Operation: "route.*", Kind: FaultStale, Age: Duration(5 * time.Second), Window: Duration(20 * time.Second)})
		for i := range 3 {
			if got := ruleActive(t, srv.URL); got != "dcgw-2" {
				t.Fatalf("stale read %d shows %s, want dcgw-2 (five seconds ago)", i, got)
			}
		}
		clock.advance(6 * time.Second)
		if got := ruleActive(t, srv.URL); got != "dcgw-1" {
			t.Fatalf("read shows %s, want dcgw-1 (the switch is older than the age)", got)
		}
		if len(emu.Faults()) != 1 {
			t.Fatalf("faults %+v, want the windowed one", emu.Faults())
		}
		clock.advance(15 * time.Second)
		if f := emu.Faults(); len(f) != 0 {
			t.Fatalf("faults %+v after the window, want none", f)
		}
	})

	t.Run("a HAVIP master learned from ARP", func(t *testing.T) {
		c := havipClient(t, srv.URL)
		if err := c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{"i-b"}, InstanceType: "SERVER"}); err != nil {
			t.Fatal(err)
		}
		macA := net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
		emu.ObserveARP(macA, netip.MustParseAddr("198.18.0.11"))
		emu.ObserveARP(macA, netip.MustParseAddr("198.18.0.100"))
		if m, _ := emu.HaVipMaster("havip-seed1"); m != "i-a" {
			t.Fatalf("master %s, want i-a", m)
		}
		add(Fault{Operation: OpHaVipDetail, Kind: FaultStale, Mutations: 1, Count: 1})
		d, err := c.GetHaVipDetail("havip-seed1")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range d.BindedInstances {
			if b.Master != (b.InstanceId == "i-b") {
				t.Fatalf("stale detail %+v, want master i-b (before the announcement)", d.BindedInstances)
			}
		}
	})

	t.Run("writes never fire it", func(t *testing.T) {
		emu.ClearFaults()
		add(Fault{Operation: "*", Kind: FaultStale, Mutations: 1, Count: 1})
		if r, err := switchPair(t, emu, srv.URL, http.DefaultClient, "s-3"); err != nil || r.status != 200 {
			t.Fatalf("switch: %v %v", r.status, err)
		}
		if f := emu.Faults(); len(f) != 1 || f[0].Count != 1 {
			t.Errorf("a write consumed the stale fault: %+v", f)
		}
	})
}

// The state history is bounded in entries whatever the number of changes.
func TestStaleHistoryBounded(t *testing.T) {
	emu, srv := newTest(t, Options{})
	for i := range maxHistory + 10 {
		if r, err := switchPair(t, emu, srv.URL, http.DefaultClient, "b-"+itoa(i)); err != nil || r.status != 200 {
			t.Fatalf("switch %d: %v %v", i, r.status, err)
		}
	}
	emu.mu.Lock()
	n := len(emu.history)
	emu.mu.Unlock()
	if n != maxHistory {
		t.Errorf("history holds %d states, want %d", n, maxHistory)
	}
}

// stateOf answers the State of w, a world not installed in emu.
func stateOf(emu *Emulator, w *world) State {
	emu.mu.Lock()
	cur := emu.w
	emu.w = w
	emu.mu.Unlock()
	defer func() {
		emu.mu.Lock()
		emu.w = cur
		emu.mu.Unlock()
	}()
	return emu.State()
}

// A stale read must not see changes made after its state was kept.
func TestWorldCloneIsDeep(t *testing.T) {
	emu, srv := newTest(t, Options{})
	emu.mu.Lock()
	old := emu.w.clone()
	emu.mu.Unlock()
	want := emu.State()
	c := havipClient(t, srv.URL)
	if err := c.HaVipAttachInstance(&bcehavip.HaVipInstanceArgs{HaVipId: "havip-seed1", InstanceIds: []string{"i-b"}, InstanceType: "SERVER"}); err != nil {
		t.Fatal(err)
	}
	emu.ObserveARP(net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, netip.MustParseAddr("198.18.0.12"))
	emu.ObserveARP(net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, netip.MustParseAddr("198.18.0.100"))
	if r, err := switchPair(t, emu, srv.URL, http.DefaultClient, "deep-1"); err != nil || r.status != 200 {
		t.Fatalf("switch: %v %v", r.status, err)
	}
	if r := signedDo(t, srv.URL, "PUT", "/v1/eip/203.0.113.10", map[string]string{"bind": ""}, []byte(`{"instanceType":"BCC","instanceId":"i-a"}`)); r.status != 200 {
		t.Fatalf("eip bind %d %s", r.status, r.body)
	}
	if now := emu.State(); reflect.DeepEqual(stripTime(now), stripTime(want)) {
		t.Fatal("the changes changed nothing; the test proves nothing")
	}
	if got := stateOf(emu, old); !reflect.DeepEqual(stripTime(got), stripTime(want)) {
		t.Errorf("the copy changed with the world:\n got %+v\nwant %+v", got, want)
	}
}

func stripTime(s State) State {
	s.Time = time.Time{}
	return s
}

// clone copies every field by hand: a field added to these types must be
// added there too (pointers and slices deep), then counted here.
func TestWorldCloneKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
	}{
		{world{}, 11}, {dcGateway{}, 2}, {vpc{}, 3}, {subnet{}, 3}, {instance{}, 7}, {routeTable{}, 2},
		{routeRule{}, 9}, {binding{}, 4}, {haVip{}, 11}, {eip{}, 8},
	} {
		if got := reflect.TypeOf(c.v).NumField(); got != c.want {
			t.Errorf("%T has %d fields, clone knows %d: update world.clone", c.v, got, c.want)
		}
	}
}

func TestFaultValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		f    Fault
		ok   bool
	}{
		{"late", Fault{Operation: "*", Kind: FaultLate, Delay: Duration(time.Second), Count: 1}, true},
		{"late without delay", Fault{Operation: "*", Kind: FaultLate, Count: 1}, false},
		{"late too long", Fault{Operation: "*", Kind: FaultLate, Delay: Duration(2 * time.Minute), Count: 1}, false},
		{"stale by age", Fault{Operation: "*", Kind: FaultStale, Age: Duration(time.Second), Probability: 0.5}, true},
		{"stale by mutations", Fault{Operation: "*", Kind: FaultStale, Mutations: 2, Count: 1}, true},
		{"stale with neither", Fault{Operation: "*", Kind: FaultStale, Count: 1}, false},
		{"stale with both", Fault{Operation: "*", Kind: FaultStale, Age: Duration(time.Second), Mutations: 1, Count: 1}, false},
		{"stale too old", Fault{Operation: "*", Kind: FaultStale, Age: Duration(time.Hour), Count: 1}, false},
		{"stale beyond history", Fault{Operation: "*", Kind: FaultStale, Mutations: maxHistory + 1, Count: 1}, false},
		{"age on latency", Fault{Operation: "*", Kind: FaultLatency, Delay: Duration(time.Second), Age: Duration(time.Second), Count: 1}, false},
		{"window alone", Fault{Operation: "*", Kind: FaultDrop, Window: Duration(time.Second)}, true},
		{"negative window", Fault{Operation: "*", Kind: FaultDrop, Count: 1, Window: Duration(-time.Second)}, false},
		{"nothing to fire on", Fault{Operation: "*", Kind: FaultDrop}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			if err := f.validate(); (err == nil) != c.ok {
				t.Errorf("validate() = %v, want ok %v", err, c.ok)
			}
		})
	}
}

// The chaos suite configures these faults over HTTP.
func TestAdminFaultsLateAndStale(t *testing.T) {
	emu, srv := newTest(t, Options{})
	for _, body := range []string{
		`{"operation":"route.rule.switch","kind":"late","delay":"3s","count":1}`,
		`{"operation":"*","kind":"stale","age":"2s","window":"10s"}`,
		`{"operation":"havip.detail","kind":"stale","mutations":1,"probability":0.5}`,
	} {
		resp, err := http.Post(srv.URL+"/_emulator/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("POST %s: %d", body, resp.StatusCode)
		}
	}
	var got []Fault
	getJSON(t, srv.URL+"/_emulator/faults", &got)
	if len(got) != 3 || got[0].Delay != Duration(3*time.Second) || got[1].Window != Duration(10*time.Second) || got[2].Mutations != 1 {
		t.Errorf("faults %+v", got)
	}
	if len(emu.Faults()) != 3 {
		t.Errorf("faults %+v", emu.Faults())
	}
}
