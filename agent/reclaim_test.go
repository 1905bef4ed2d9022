package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

func TestClaimPolicy(t *testing.T) {
	const (
		interval = 10 * time.Second
		maxB     = 40 * time.Second
	)
	havip := claimPolicy{interval: interval, maxBackoff: maxB, reverify: []time.Duration{time.Second, 3 * time.Second}, announces: true}
	route := havip
	route.announces = false
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0.Add(time.Minute)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	verify := []time.Time{at(time.Second), at(3 * time.Second)}
	pending := []time.Time{t0.Add(time.Second), t0.Add(3 * time.Second)}
	held := claimHistory{claims: 1, held: true, heldSince: t0}

	for _, c := range []struct {
		name  string
		p     claimPolicy
		h     claimHistory
		e     heard
		wantD claimDecision
		wantH claimHistory
	}{
		// A start with writes claims at once.
		{"start claims", havip, claimHistory{}, heard{kind: heardStart},
			claimDecision{step: stepClaim, first: true}, claimHistory{claims: 1}},

		// Reads that find the resource here.
		{"owned: held from now", havip, claimHistory{claims: 1}, heard{kind: heardOwned},
			claimDecision{}, claimHistory{claims: 1, held: true, heldSince: now}},
		{"owned: held since earlier", havip, held, heard{kind: heardOwned},
			claimDecision{}, held},
		{"owned for an interval: the damping resets", havip,
			claimHistory{claims: 2, held: true, heldSince: now.Add(-interval), backoff: 20 * time.Second, nextAllowed: at(-time.Second)},
			heard{kind: heardOwned},
			claimDecision{setNext: true},
			claimHistory{claims: 2, held: true, heldSince: now.Add(-interval), nextAllowed: at(-time.Second)}},
		{"owned for less than an interval: the damping holds", havip,
			claimHistory{claims: 2, held: true, heldSince: now.Add(-interval + time.Second), backoff: 20 * time.Second},
			heard{kind: heardOwned},
			claimDecision{},
			claimHistory{claims: 2, held: true, heldSince: now.Add(-interval + time.Second), backoff: 20 * time.Second}},
		{"owned, public IP bindable: a claim, not a reclaim", havip, held, heard{kind: heardOwned, bindable: true},
			claimDecision{step: stepClaim, announce: true},
			claimHistory{claims: 2, held: true, heldSince: t0, bindingAt: now}},
		{"owned at a re-verify: that read is done", havip,
			claimHistory{claims: 1, held: true, heldSince: t0, verify: pending}, heard{kind: heardOwned, cause: readVerify},
			claimDecision{}, claimHistory{claims: 1, held: true, heldSince: t0, verify: pending[1:]}},
		{"owned at the last re-verify", havip,
			claimHistory{claims: 1, held: true, heldSince: t0, verify: pending[1:]}, heard{kind: heardOwned, cause: readVerify},
			claimDecision{}, held},

		// Reads that find it elsewhere.
		{"elsewhere after holding: ask first", havip, held, heard{kind: heardElsewhere},
			claimDecision{step: stepAsk}, claimHistory{claims: 1, held: true}},
		{"elsewhere at a re-verify before holding: wait for the reconcile", havip,
			claimHistory{claims: 1, verify: pending}, heard{kind: heardElsewhere, cause: readVerify},
			claimDecision{}, claimHistory{claims: 1, verify: pending[1:]}},
		{"elsewhere at a re-verify after holding: ask first", havip,
			claimHistory{claims: 1, held: true, heldSince: t0, verify: pending}, heard{kind: heardElsewhere, cause: readVerify},
			claimDecision{step: stepAsk}, claimHistory{claims: 1, held: true, verify: pending[1:]}},
		{"elsewhere when writes are permitted: ask first", havip, claimHistory{}, heard{kind: heardElsewhere, cause: readOpen},
			claimDecision{step: stepAsk}, claimHistory{}},
		{"elsewhere at a tick before holding: ask first", havip, claimHistory{claims: 1}, heard{kind: heardElsewhere},
			claimDecision{step: stepAsk}, claimHistory{claims: 1}},

		// Reads that fail.
		{"read failed at a tick", havip, held, heard{kind: heardReadFailed},
			claimDecision{}, held},
		{"read failed at a re-verify", havip,
			claimHistory{claims: 1, held: true, heldSince: t0, verify: pending}, heard{kind: heardReadFailed, cause: readVerify},
			claimDecision{}, claimHistory{claims: 1, held: true, heldSince: t0, verify: pending[1:]}},
		{"read failed when writes are permitted: claim, which reads first", havip, claimHistory{}, heard{kind: heardReadFailed, cause: readOpen},
			claimDecision{step: stepClaim, first: true}, claimHistory{claims: 1}},

		// Permitted claims.
		{"never held: try again, not a reclaim", havip, claimHistory{claims: 1}, heard{kind: heardPermitted},
			claimDecision{step: stepClaim, announce: true}, claimHistory{claims: 2}},
		{"never held, first claim after a read-only start", havip, claimHistory{}, heard{kind: heardPermitted},
			claimDecision{step: stepClaim, first: true}, claimHistory{claims: 1}},
		{"never held, route: no announcement", route, claimHistory{claims: 1}, heard{kind: heardPermitted},
			claimDecision{step: stepClaim}, claimHistory{claims: 2}},
		{"unconfirmed, damped: wait", havip,
			claimHistory{claims: 1, unconfirmed: true, backoff: interval, nextAllowed: at(time.Second)}, heard{kind: heardPermitted},
			claimDecision{step: stepWait, until: at(time.Second)},
			claimHistory{claims: 1, unconfirmed: true, backoff: interval, nextAllowed: at(time.Second)}},
		{"unconfirmed, damping over: try again", havip,
			claimHistory{claims: 1, unconfirmed: true, backoff: interval, nextAllowed: now}, heard{kind: heardPermitted},
			claimDecision{step: stepClaim, announce: true},
			claimHistory{claims: 2, unconfirmed: true, backoff: interval, nextAllowed: now}},
		{"failed before, not unconfirmed: the damping does not apply", havip,
			claimHistory{claims: 1, backoff: interval, nextAllowed: at(time.Second)}, heard{kind: heardPermitted},
			claimDecision{step: stepClaim, announce: true},
			claimHistory{claims: 2, backoff: interval, nextAllowed: at(time.Second)}},
		{"taken away, damped: wait", havip,
			claimHistory{claims: 2, held: true, backoff: interval, nextAllowed: at(time.Second)}, heard{kind: heardPermitted},
			claimDecision{step: stepWait, until: at(time.Second)},
			claimHistory{claims: 2, held: true, backoff: interval, nextAllowed: at(time.Second)}},
		{"taken away the first time: reclaim, no conflict", havip, claimHistory{claims: 1, held: true}, heard{kind: heardPermitted},
			claimDecision{step: stepReclaim, announce: true, backoff: interval, setNext: true, nextAt: at(interval)},
			claimHistory{claims: 2, held: true, backoff: interval, nextAllowed: at(interval)}},
		{"taken away again: a conflict, the damping doubles", havip,
			claimHistory{claims: 2, held: true, backoff: interval, nextAllowed: now}, heard{kind: heardPermitted},
			claimDecision{step: stepReclaim, announce: true, conflict: true, backoff: 2 * interval, setNext: true, nextAt: at(2 * interval)},
			claimHistory{claims: 3, held: true, backoff: 2 * interval, nextAllowed: at(2 * interval)}},
		{"taken away again: the damping stops at the cap", route,
			claimHistory{claims: 5, held: true, backoff: 30 * time.Second, nextAllowed: now}, heard{kind: heardPermitted},
			claimDecision{step: stepReclaim, conflict: true, backoff: maxB, setNext: true, nextAt: at(maxB)},
			claimHistory{claims: 6, held: true, backoff: maxB, nextAllowed: at(maxB)}},

		// Outcomes of claims.
		{"first claim confirmed", havip, claimHistory{claims: 1, unconfirmed: true}, heard{kind: heardClaimOwned},
			claimDecision{confirmed: true},
			claimHistory{claims: 1, held: true, heldSince: now, verify: verify}},
		{"later claim confirmed: not measured", havip, claimHistory{claims: 2, held: true, backoff: interval, verify: pending}, heard{kind: heardClaimOwned},
			claimDecision{},
			claimHistory{claims: 2, held: true, heldSince: now, backoff: interval, verify: verify}},
		{"not shown, not accepted: read again", havip, claimHistory{claims: 1}, heard{kind: heardClaimNotShown},
			claimDecision{}, claimHistory{claims: 1, verify: verify}},
		{"accepted but not shown: damped and reported", havip, claimHistory{claims: 1}, heard{kind: heardClaimNotShown, accepted: true},
			claimDecision{unconfirmed: true, firstUnconfirmed: true, backoff: interval, setNext: true, nextAt: at(interval)},
			claimHistory{claims: 1, unconfirmed: true, backoff: interval, nextAllowed: at(interval), verify: verify}},
		{"accepted but not shown again: counted, logged once", havip,
			claimHistory{claims: 2, unconfirmed: true, backoff: interval}, heard{kind: heardClaimNotShown, accepted: true},
			claimDecision{unconfirmed: true, backoff: 2 * interval, setNext: true, nextAt: at(2 * interval)},
			claimHistory{claims: 2, unconfirmed: true, backoff: 2 * interval, nextAllowed: at(2 * interval), verify: verify}},
		{"failed, may have applied: read again", havip, claimHistory{claims: 1, verify: pending}, heard{kind: heardClaimFailed, mayHaveApplied: true},
			claimDecision{}, claimHistory{claims: 1, verify: verify}},
		{"refused: give up until the next reconcile", havip, claimHistory{claims: 1, verify: pending}, heard{kind: heardClaimFailed},
			claimDecision{}, claimHistory{claims: 1, verify: pending}},
		{"no re-verify delays: none scheduled", claimPolicy{interval: interval, maxBackoff: maxB}, claimHistory{claims: 1}, heard{kind: heardClaimOwned},
			claimDecision{confirmed: true}, claimHistory{claims: 1, held: true, heldSince: now}},

		// A bind claim defers the damping reset of its read to its outcome.
		{"bind refused: the damping resets as of the read", havip,
			claimHistory{claims: 2, held: true, heldSince: t0, backoff: interval, bindingAt: t0.Add(interval)}, heard{kind: heardClaimFailed},
			claimDecision{setNext: true},
			claimHistory{claims: 2, held: true, heldSince: t0}},
		{"bind refused, held for less than an interval at the read", havip,
			claimHistory{claims: 2, held: true, heldSince: t0, backoff: interval, bindingAt: t0.Add(time.Second)}, heard{kind: heardClaimFailed},
			claimDecision{},
			claimHistory{claims: 2, held: true, heldSince: t0, backoff: interval}},
		{"bind confirmed: held from now, the damping holds", havip,
			claimHistory{claims: 2, held: true, heldSince: t0, backoff: interval, bindingAt: t0.Add(interval)}, heard{kind: heardClaimOwned},
			claimDecision{},
			claimHistory{claims: 2, held: true, heldSince: now, backoff: interval, verify: verify}},
		{"bind accepted but not shown: damped, then reset as of the read", havip,
			claimHistory{claims: 2, held: true, heldSince: t0, bindingAt: t0.Add(interval), backoff: interval}, heard{kind: heardClaimNotShown, accepted: true},
			claimDecision{unconfirmed: true, firstUnconfirmed: true, backoff: 2 * interval, setNext: true},
			claimHistory{claims: 2, held: true, heldSince: t0, unconfirmed: true, nextAllowed: at(2 * interval), verify: verify}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.h.verify)
			gotD, gotH := c.p.decide(c.h, c.e, now)
			if !reflect.DeepEqual(gotD, c.wantD) {
				t.Errorf("decision\n got %+v\nwant %+v", gotD, c.wantD)
			}
			if !reflect.DeepEqual(gotH, c.wantH) {
				t.Errorf("history\n got %+v\nwant %+v", gotH, c.wantH)
			}
			if !slices.Equal(c.h.verify, in) {
				t.Errorf("the caller's history changed: verify %v, was %v", c.h.verify, in)
			}
		})
	}
}

// A fight between two MASTERs, reconcile by reconcile through the policy:
// every reclaim after the first is a conflict, each waits longer up to the
// cap, and holding for an interval once the peer stops ends the damping.
func TestClaimPolicySequence(t *testing.T) {
	p := claimPolicy{interval: 10 * time.Second, maxBackoff: 40 * time.Second, announces: true}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var h claimHistory
	var got []string
	step := func(e heard, at time.Duration) claimDecision {
		d, next := p.decide(h, e, t0.Add(at))
		h = next
		s := fmt.Sprintf("%v %s", at, []string{"none", "wait", "ask", "claim", "reclaim"}[d.step])
		if d.step == stepWait {
			s += fmt.Sprintf(" until=%v", d.until.Sub(t0))
		}
		if d.conflict {
			s += " conflict"
		}
		switch {
		case d.setNext && d.nextAt.IsZero():
			s += " next=clear"
		case d.setNext:
			s += fmt.Sprintf(" next=%v", d.nextAt.Sub(t0))
		}
		got = append(got, s)
		return d
	}
	claimed := func(d claimDecision, at time.Duration) {
		if d.step == stepClaim || d.step == stepReclaim {
			step(heard{kind: heardClaimOwned}, at)
		}
	}
	claimed(step(heard{kind: heardStart}, 0), 0)
	for at := 10 * time.Second; at <= 120*time.Second; at += 10 * time.Second {
		if at > 80*time.Second {
			// The peer stopped taking it.
			step(heard{kind: heardOwned}, at)
			continue
		}
		step(heard{kind: heardElsewhere}, at)
		claimed(step(heard{kind: heardPermitted}, at), at)
	}
	want := []string{
		"0s claim", "0s none",
		"10s ask", "10s reclaim next=20s", "10s none",
		"20s ask", "20s reclaim conflict next=40s", "20s none",
		"30s ask", "30s wait until=40s",
		"40s ask", "40s reclaim conflict next=1m20s", "40s none",
		"50s ask", "50s wait until=1m20s",
		"1m0s ask", "1m0s wait until=1m20s",
		"1m10s ask", "1m10s wait until=1m20s",
		"1m20s ask", "1m20s reclaim conflict next=2m0s", "1m20s none",
		"1m30s none next=clear",
		"1m40s none", "1m50s none", "2m0s none",
	}
	if !slices.Equal(got, want) {
		t.Errorf("steps\n got %q\nwant %q", got, want)
	}
	if h.backoff != 0 || h.claims != 5 {
		t.Errorf("history %+v, want no damping after 5 claims", h)
	}
}

func TestMayHaveApplied(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&cloud.TransportError{Operation: "route.switch", Err: context.DeadlineExceeded}, true},
		{fmt.Errorf("route.switch: %w", context.Canceled), true},
		{&cloud.APIError{StatusCode: 500, Code: "InternalError"}, true},
		{errors.New("connection reset"), true},
		{&cloud.APIError{StatusCode: 403, Code: cloud.CodeAccessDenied}, false},
		{&cloud.PermanentError{}, false},
	} {
		if got := mayHaveApplied(c.err); got != c.want {
			t.Errorf("mayHaveApplied(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestClaimHistoryNextVerify(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if at, ok := (claimHistory{}).nextVerify(); ok || !at.IsZero() {
		t.Errorf("nextVerify of no schedule = %v, %v; want none", at, ok)
	}
	if at, ok := (claimHistory{verify: []time.Time{t0, t0.Add(time.Second)}}).nextVerify(); !ok || !at.Equal(t0) {
		t.Errorf("nextVerify = %v, %v; want %v", at, ok, t0)
	}
}
