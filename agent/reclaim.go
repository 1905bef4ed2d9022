package agent

import (
	"context"
	"errors"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// heardKind is what the cloud side learnt about one resource.
type heardKind int

const (
	// heardStart: a start with writes; nothing has been read yet.
	heardStart heardKind = iota
	// heardOwned: a read shows the resource pointing here.
	heardOwned
	// heardElsewhere: a read shows it pointing elsewhere.
	heardElsewhere
	// heardReadFailed: a read failed.
	heardReadFailed
	// heardPermitted: MayReclaim allowed the claim a heardElsewhere asked
	// for (or nothing needs asking).
	heardPermitted
	// heardClaimOwned: a claim ended with the cloud pointing here.
	heardClaimOwned
	// heardClaimNotShown: a claim was answered, but the cloud did not show
	// this node within confirm_timeout.
	heardClaimNotShown
	// heardClaimFailed: a claim failed without taking effect for sure.
	heardClaimFailed
)

// readCause is why the cloud side read a resource.
type readCause int

const (
	// readTick: the reconcile interval elapsed.
	readTick readCause = iota
	// readVerify: a re-verify after a claim was due.
	readVerify
	// readOpen: a read-only start was permitted to write.
	readOpen
)

// heard is one input of the reclaim policy.
type heard struct {
	kind heardKind
	// cause is why the resource was read (heardOwned, heardElsewhere,
	// heardReadFailed).
	cause readCause
	// bindable, with heardOwned: the HAVIP holds no public IP and the
	// wanted one is free.
	bindable bool
	// accepted, with heardClaimNotShown: the cloud answered the change
	// with success (cloud.IsUnconfirmed).
	accepted bool
	// mayHaveApplied, with heardClaimFailed: the outcome is unknown, so
	// the change may still land.
	mayHaveApplied bool
}

// claimStep is what the cloud side does next for one resource.
type claimStep int

const (
	// stepNone: nothing until the next reconcile or re-verify. After a
	// refused claim it means giving up until the next reconcile: the
	// error is reported, and an operator must act.
	stepNone claimStep = iota
	// stepWait: the damping holds the claim back until the decision's
	// until; the next reconcile after it claims.
	stepWait
	// stepAsk: ask MayReclaim, then give the policy heardPermitted, or
	// do nothing if it refuses.
	stepAsk
	// stepClaim: claim, not as a reclaim (a first claim, a retry of one
	// that never held, or binding the public IP).
	stepClaim
	// stepReclaim: claim back what was taken away, and report it.
	stepReclaim
)

// claimDecision is what the reclaim policy asks the cloud side to do.
type claimDecision struct {
	step claimStep
	// until, with stepWait, is when the damping allows the next claim.
	until time.Time
	// announce, with a claim: send the announcements first. The cloud
	// moves a HAVIP's master when it sees this node's gratuitous ARP, and
	// by a later claim the transition's burst is long over.
	announce bool
	// first, with a claim: the claimer's first, whose phases are
	// measured.
	first bool
	// conflict, with stepReclaim: someone keeps taking the resource
	// away, as every reclaim after the first shows.
	conflict bool
	// backoff is the damping now in force, logged with a reclaim or an
	// unconfirmed claim.
	backoff time.Duration
	// confirmed, after a claim: the first claim is confirmed, so
	// cloud_confirmed is measured.
	confirmed bool
	// unconfirmed, after a claim: the cloud accepted the change but does
	// not show it; it is counted, and logged when firstUnconfirmed.
	unconfirmed      bool
	firstUnconfirmed bool
	// setNext changes the status's next_reclaim to nextAt (zero clears
	// it).
	setNext bool
	nextAt  time.Time
}

// claimHistory is what the cloud side remembers of one resource in one
// start.
type claimHistory struct {
	// claims counts the claims decided.
	claims int
	// backoff is the reclaim damping; 0: the next reclaim is the first.
	backoff time.Duration
	// nextAllowed is when the damping allows the next claim.
	nextAllowed time.Time
	// heldSince is when the cloud was first seen pointing here since it
	// last pointed elsewhere; zero while it does not.
	heldSince time.Time
	// held is set once the cloud pointed here: losing it then is a
	// reclaim; not having it yet is a claim still to finish.
	held bool
	// unconfirmed: the cloud accepted the last claim's change but never
	// showed it; the next claim waits for the damping instead of the next
	// reconcile.
	unconfirmed bool
	// bindingAt, when set, is when the read that found the public IP
	// bindable was made: the backoff reset it would have checked waits
	// for the bind claim's outcome.
	bindingAt time.Time
	// verify are the re-verify reads due, earliest first.
	verify []time.Time
}

// nextVerify is when the next re-verify read is due; ok is false when none
// is.
func (h claimHistory) nextVerify() (at time.Time, ok bool) {
	if len(h.verify) == 0 {
		return time.Time{}, false
	}
	return h.verify[0], true
}

// claimPolicy is the reclaim policy's fixed part.
type claimPolicy struct {
	// interval is the reconcile interval: the first damping, and how long
	// the cloud must point here before the damping resets.
	interval time.Duration
	// maxBackoff caps the damping.
	maxBackoff time.Duration
	// reverify are the delays after a claim at which it is read again,
	// shortest first.
	reverify []time.Duration
	// announces: the resource is a HAVIP, whose master follows ARP.
	announces bool
}

// decide returns what to do next for one resource, given what the cloud
// side heard at now, and the new history. It is pure: the claimer carries
// the decision out and feeds the outcome back as the next heard.
//
// A resource the cloud no longer points at this node is claimed again with
// exponential damping, so that two nodes that both believe they are MASTER
// cannot fight without end. A claim that never held is tried again at a
// reconcile only, not at a re-verify: those exist to see late changes, not
// to retry faster. A change the cloud accepted but does not show is not sent
// again at every reconcile (a toggle might even undo it): the next try waits
// as a reclaim would.
func (p claimPolicy) decide(h claimHistory, e heard, now time.Time) (claimDecision, claimHistory) {
	var d claimDecision
	switch e.kind {
	case heardStart:
		return p.claim(h, stepClaim)
	case heardOwned, heardElsewhere, heardReadFailed:
		if e.cause == readVerify && len(h.verify) > 0 {
			h.verify = h.verify[1:]
			if len(h.verify) == 0 {
				h.verify = nil
			}
		}
	}
	switch e.kind {
	case heardReadFailed:
		if e.cause == readOpen {
			// A claim reads before it writes.
			return p.claim(h, stepClaim)
		}
	case heardOwned:
		h.held = true
		if h.heldSince.IsZero() {
			h.heldSince = now
		}
		if e.bindable {
			// Bind the public IP: a claim with a new token, not a
			// reclaim, as nobody took anything away.
			h.bindingAt = now
			return p.claim(h, stepClaim)
		}
		d, h = p.mayReset(d, h, now)
	case heardElsewhere:
		h.heldSince = time.Time{}
		if !h.held && e.cause == readVerify {
			return d, h
		}
		d.step = stepAsk
	case heardPermitted:
		if !h.held {
			if h.unconfirmed && now.Before(h.nextAllowed) {
				return claimDecision{step: stepWait, until: h.nextAllowed}, h
			}
			// The last claim failed or is unconfirmed: try again,
			// with a new token, without counting it as a reclaim.
			return p.claim(h, stepClaim)
		}
		if now.Before(h.nextAllowed) {
			return claimDecision{step: stepWait, until: h.nextAllowed}, h
		}
		conflict := h.backoff > 0
		h.backoff = p.damp(h.backoff)
		h.nextAllowed = now.Add(h.backoff)
		d, h = p.claim(h, stepReclaim)
		d.conflict, d.backoff = conflict, h.backoff
		d.setNext, d.nextAt = true, h.nextAllowed
	case heardClaimFailed:
		if e.mayHaveApplied {
			h.verify = p.schedule(now)
		}
		d, h = p.bound(d, h)
	case heardClaimNotShown:
		if e.accepted {
			h.backoff = p.damp(h.backoff)
			h.nextAllowed = now.Add(h.backoff)
			d.unconfirmed, d.firstUnconfirmed = true, !h.unconfirmed
			d.backoff = h.backoff
			d.setNext, d.nextAt = true, h.nextAllowed
			h.unconfirmed = true
		}
		h.verify = p.schedule(now)
		d, h = p.bound(d, h)
	case heardClaimOwned:
		h.held, h.heldSince, h.unconfirmed = true, now, false
		d.confirmed = h.claims == 1
		h.verify = p.schedule(now)
		d, h = p.bound(d, h)
	}
	return d, h
}

// claim decides a claim, counting it.
func (p claimPolicy) claim(h claimHistory, step claimStep) (claimDecision, claimHistory) {
	h.claims++
	return claimDecision{step: step, first: h.claims == 1, announce: h.claims > 1 && p.announces}, h
}

// damp is the damping after backoff: the reconcile interval at first, then
// doubling up to the cap.
func (p claimPolicy) damp(backoff time.Duration) time.Duration {
	if backoff == 0 {
		return p.interval
	}
	return min(2*backoff, p.maxBackoff)
}

// mayReset ends the damping once the cloud has pointed here for a whole
// reconcile interval: whoever took the resource has stopped.
func (p claimPolicy) mayReset(d claimDecision, h claimHistory, now time.Time) (claimDecision, claimHistory) {
	if h.backoff > 0 && now.Sub(h.heldSince) >= p.interval {
		h.backoff = 0
		d.setNext, d.nextAt = true, time.Time{}
	}
	return d, h
}

// bound finishes a bind claim's read: the damping reset it deferred is
// checked now, as of that read.
func (p claimPolicy) bound(d claimDecision, h claimHistory) (claimDecision, claimHistory) {
	if h.bindingAt.IsZero() {
		return d, h
	}
	at := h.bindingAt
	h.bindingAt = time.Time{}
	return p.mayReset(d, h, at)
}

// schedule plans the re-verify reads after a claim that ends at now,
// replacing those of an earlier claim.
func (p claimPolicy) schedule(now time.Time) []time.Time {
	if len(p.reverify) == 0 {
		return nil
	}
	out := make([]time.Time, 0, len(p.reverify))
	for _, d := range p.reverify {
		out = append(out, now.Add(d))
	}
	return out
}

// mayHaveApplied reports whether a failed claim may still change the
// cloud: without an answer, after a timeout or a server error the outcome
// is unknown; only a refusal of the request says nothing was applied.
func mayHaveApplied(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pe *cloud.PermanentError
	if errors.As(err, &pe) {
		return false
	}
	return !cloud.IsAuth(err) && !cloud.IsExpired(err) && !cloud.IsPermanent(err)
}
