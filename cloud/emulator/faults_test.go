package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
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
		return rawResp{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}, err
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
	if st, body := get(lo, "/1.0/meta-data/iam/security-credentials/"); st != 200 || body != "havip-role" {
		t.Fatalf("role got %d %q", st, body)
	}
	if st, _ := get(lo, "/1.0/meta-data/iam/security-credentials/other"); st != 404 {
		t.Fatalf("other role got %d", st)
	}
	st, body := get(lo, "/1.0/meta-data/iam/security-credentials/havip-role")
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
	if len(l.Changes) != 1 || !strings.Contains(l.Changes[0].Message, "active i-a -> i-b") || l.Changes[0].AccessKeyID != "ak-test" {
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
