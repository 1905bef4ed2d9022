package emulator

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baidubce/bce-sdk-go/auth"
)

// adjustableClock is a machine clock the test moves forward by hand; it starts at the real
// time, which the requests' signatures are checked against.
type adjustableClock struct {
	mu   sync.Mutex
	base time.Time
	adv  time.Duration
}

func (c *adjustableClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(c.adv)
}

func (c *adjustableClock) advance(d time.Duration) {
	c.mu.Lock()
	c.adv += d
	c.mu.Unlock()
}

// TestRateLimit: each access key has a bucket of rate_burst requests refilled at rate_limit
// per second; a request over it is 429 RequestLimitExceeded with Retry-After, logged with its
// status and code, and applies nothing. Metadata and admin requests are not limited.
func TestRateLimit(t *testing.T) {
	clk := &adjustableClock{base: time.Now()}
	emu, srv := newTest(t, Options{RateLimit: 2, RateBurst: 3, Now: clk.now})
	get := func(cred *auth.BceCredentials) rawResp {
		return do(t, signedRequest(t, srv.URL, http.MethodGet, "/v1/havip/havip-seed1", nil, nil, cred, nil))
	}
	for i := range 3 {
		if r := get(testCred); r.status != 200 {
			t.Fatalf("request %d of the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := get(testCred)
	if r.status != http.StatusTooManyRequests || r.code() != CodeThrottled || r.header.Get("Retry-After") != "1" {
		t.Fatalf("over the burst: %d %q Retry-After %q, want 429 %s Retry-After 1", r.status, r.code(), r.header.Get("Retry-After"), CodeThrottled)
	}
	if r.header.Get("x-bce-request-id") == "" {
		t.Error("a throttled answer has no request id")
	}
	// Another key has its own bucket.
	sts := &auth.BceCredentials{AccessKeyId: "ak-sts", SecretAccessKey: "sk-sts", SessionToken: "token-sts"}
	if r := get(sts); r.status != 200 {
		t.Fatalf("another access key: %d %s", r.status, r.body)
	}
	// A mutation over the limit applies nothing.
	attach := signedRequest(t, srv.URL, http.MethodPut, "/v1/havip/havip-seed1", map[string]string{"attach": ""},
		[]byte(`{"instanceIds":["i-b"],"instanceType":"SERVER"}`), testCred, nil)
	if r := do(t, attach); r.status != http.StatusTooManyRequests {
		t.Fatalf("attach over the limit: %d %s", r.status, r.body)
	}
	if n := len(emu.Changes()); n != 0 {
		t.Fatalf("a throttled attach changed %d things", n)
	}
	// Half a second refills one token at 2 per second.
	clk.advance(500 * time.Millisecond)
	if r := get(testCred); r.status != 200 {
		t.Fatalf("after the refill: %d %s", r.status, r.body)
	}
	if r := get(testCred); r.status != http.StatusTooManyRequests {
		t.Fatalf("the refill held one token, the second request got %d", r.status)
	}
	for range 10 {
		if resp, err := http.Get(srv.URL + "/_emulator/state"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin request: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	}
	throttled := 0
	for _, rec := range emu.Requests() {
		if rec.Status == http.StatusTooManyRequests {
			throttled++
			if rec.Code != CodeThrottled || rec.AccessKeyID != "ak-test" || rec.Applied {
				t.Errorf("throttled record %+v", rec)
			}
		}
	}
	if throttled != 3 {
		t.Errorf("%d throttled requests logged, want 3", throttled)
	}
	// Changed at run time: a fresh bucket of the new burst; no limit at all with rate 0.
	if err := emu.SetRateLimit(1, 2); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 200, http.StatusTooManyRequests} {
		if r := get(testCred); r.status != want {
			t.Fatalf("request %d after SetRateLimit(1, 2): %d, want %d", i+1, r.status, want)
		}
	}
	if err := emu.SetRateLimit(0, 0); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if r := get(testCred); r.status != 200 {
			t.Fatalf("without a limit: %d", r.status)
		}
	}
	if err := emu.SetRateLimit(-1, 0); err == nil {
		t.Error("a negative rate was accepted")
	}
}

// TestLatency: every API request takes the round trip, half on its way in (the record's
// Received) and half on its way out; its changes are stamped when they were made.
func TestLatency(t *testing.T) {
	const rtt = 60 * time.Millisecond
	emu, srv := newTest(t, Options{Latency: rtt})
	start := time.Now()
	attach := signedRequest(t, srv.URL, http.MethodPut, "/v1/havip/havip-seed1", map[string]string{"attach": ""},
		[]byte(`{"instanceIds":["i-b"],"instanceType":"SERVER"}`), testCred, nil)
	if r := do(t, attach); r.status != 200 {
		t.Fatalf("attach: %d %s", r.status, r.body)
	}
	if took := time.Since(start); took < rtt {
		t.Errorf("the request took %v, less than the round trip %v", took, rtt)
	}
	l := emu.Log()
	rec := l.Requests[len(l.Requests)-1]
	if rec.Received.IsZero() || rec.Time.Sub(rec.Received) < rtt/2 {
		t.Errorf("record received %v, answered %v: want the answer half a round trip later", rec.Received, rec.Time)
	}
	for _, ch := range l.Changes {
		if ch.Time.Before(rec.Received) || !ch.Time.Before(rec.Time) {
			t.Errorf("change at %v, want between receipt %v and answer %v", ch.Time, rec.Received, rec.Time)
		}
	}
	resp, err := http.Get(srv.URL + "/_emulator/log")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestLimitsFromSeed: the seed's rate_limit, rate_burst and latency are used unless the options
// set them; a rate without a burst allows one second's worth at once; bad values name the seed.
func TestLimitsFromSeed(t *testing.T) {
	base, err := os.ReadFile("testdata/seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(top string) (Seed, error) {
		return ParseSeed(strings.NewReader(top+"\n"+string(base)), "limits.toml")
	}
	tests := []struct {
		name      string
		top       string
		opts      Options
		wantRate  float64
		wantBurst int
		wantLat   time.Duration
		wantErr   string
	}{
		{name: "none", wantRate: 0, wantBurst: 0},
		{name: "seed", top: "rate_limit = 20\nrate_burst = 5\nlatency = \"50ms\"", wantRate: 20, wantBurst: 5, wantLat: 50 * time.Millisecond},
		{name: "fractional rate, default burst", top: "rate_limit = 2.5", wantRate: 2.5, wantBurst: 3},
		{name: "options override", top: "rate_limit = 20\nrate_burst = 5\nlatency = \"50ms\"",
			opts: Options{RateLimit: 10, RateBurst: 2, Latency: time.Millisecond}, wantRate: 10, wantBurst: 2, wantLat: time.Millisecond},
		{name: "bad latency", top: `latency = "soon"`, wantErr: `limits.toml: latency "soon" is not a duration`},
		{name: "negative rate", top: "rate_limit = -1", wantErr: "limits.toml: rate_limit -1"},
		{name: "negative option", opts: Options{RateBurst: -1}, wantErr: "rate burst -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed, err := parse(tt.top)
			if err != nil {
				t.Fatal(err)
			}
			emu, err := New(seed, tt.opts, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rate, burst, lat := emu.RateLimit()
			if rate != tt.wantRate || burst != tt.wantBurst || lat != tt.wantLat {
				t.Errorf("RateLimit() = %v, %d, %v; want %v, %d, %v", rate, burst, lat, tt.wantRate, tt.wantBurst, tt.wantLat)
			}
		})
	}
}
