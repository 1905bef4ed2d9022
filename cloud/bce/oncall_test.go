package bce

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/cloud/emulator"
)

// callKey is a context key of the test: OnCall must receive the caller's values.
type callKey struct{}

// TestOnCallRecords: every attempt is reported to OnCall with the emulator's request id, the
// HTTP status, the API's error code and the clientToken it carried, in the context of the
// caller, so that the agent can tell which transition a call belongs to. A failed attempt that
// is retried is reported as attempt 1, the retry as attempt 2.
func TestOnCallRecords(t *testing.T) {
	var mu sync.Mutex
	var got []cloud.CallRecord
	emu, c, _ := newEmulator(t, func(o *Options) {
		o.OnCall = func(ctx context.Context, r cloud.CallRecord) {
			if ctx.Value(callKey{}) != "claim of the test" {
				t.Errorf("OnCall without the caller's context value: %+v", r)
			}
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		}
	})
	addFaults(t, emu, emulator.Fault{Operation: emulator.OpHaVipAttach, Kind: emulator.FaultError, Status: 503, Count: 1})
	ctx := context.WithValue(context.Background(), callKey{}, "claim of the test")
	if _, err := c.Claim(ctx, havipRes("havip-1", cloud.BindAttach), tokenBase); err != nil {
		t.Fatal(err)
	}
	reqs := emu.Requests()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(reqs) {
		t.Fatalf("%d records for %d requests:\n%v\n%v", len(got), len(reqs), got, reqs)
	}
	var lines, want []string
	for i, r := range got {
		e := reqs[i]
		lines = append(lines, fmt.Sprintf("%s %s mutating=%v attempt=%d status=%d code=%s error_code=%s id=%v token=%v",
			r.Operation, r.Target, r.Mutating, r.Attempt, r.Status, r.Code, r.ErrorCode, r.RequestID == e.RequestID && r.RequestID != "", r.ClientToken == e.ClientToken))
		if r.Duration <= 0 {
			t.Errorf("record %d has no duration: %+v", i, r)
		}
	}
	token := cloud.Token(tokenBase, "havip.attach/i-a")
	want = []string{
		"havip.detail havip.get havip-1 mutating=false attempt=1 status=200 code=OK error_code= id=true token=true",
		"havip.attach havip.attach havip-1 mutating=true attempt=1 status=503 code=other error_code=ServiceUnavailable id=true token=true",
		"havip.attach havip.attach havip-1 mutating=true attempt=2 status=200 code=OK error_code= id=true token=true",
	}
	if n := len(want); len(lines) < n || strings.Join(lines[:n], "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant them to start with:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got[1].ClientToken != token || got[2].ClientToken != token {
		t.Errorf("attach tokens %q, %q; want %q on both attempts", got[1].ClientToken, got[2].ClientToken, token)
	}
}
