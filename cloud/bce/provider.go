package bce

import (
	"context"
	"errors"
	"time"

	"github.com/havip-agent/havip-agent/cloud"
)

// Observe reads the resource's ownership; it makes no change. The ownership's text and the
// error's message are clamped (see clamped).
func (c *Client) Observe(ctx context.Context, r cloud.Resource) (cloud.Ownership, error) {
	return clamped(c.observe(ctx, r))
}

func (c *Client) observe(ctx context.Context, r cloud.Resource) (cloud.Ownership, error) {
	if err := r.Validate(); err != nil {
		return cloud.Ownership{}, err
	}
	switch r.Kind {
	case cloud.KindHAVIP:
		o, _, err := c.observeHAVIP(ctx, r.HAVIP)
		return o, err
	case cloud.KindRoute:
		o, _, err := c.observeRoute(ctx, r.Route, time.Time{})
		return o, err
	default:
		o, _, err := c.observeEIP(ctx, r.EIP)
		return o, err
	}
}

// Claim makes the resource point at this node with the minimal mutating calls, then reads it
// back until it is confirmed (a *cloud.PendingError if it is not after the confirm attempts).
// The ownership's text and the error's message are clamped (see clamped).
func (c *Client) Claim(ctx context.Context, r cloud.Resource, tokenBase string) (cloud.Ownership, error) {
	return clamped(c.claim(ctx, r, tokenBase))
}

func (c *Client) claim(ctx context.Context, r cloud.Resource, tokenBase string) (cloud.Ownership, error) {
	if err := r.Validate(); err != nil {
		return cloud.Ownership{}, err
	}
	if tokenBase == "" {
		return cloud.Ownership{}, &cloud.PermanentError{Op: r.Key(), Reason: "claim without a token base"}
	}
	// A claim's reads come before the reads of Observe and the keep-warm, after its writes.
	ctx = withPriority(ctx, prioClaimRead)
	switch r.Kind {
	case cloud.KindHAVIP:
		return c.claimHAVIP(ctx, r.HAVIP, tokenBase)
	case cloud.KindRoute:
		return c.claimRoute(ctx, r.Route, tokenBase)
	default:
		return c.claimEIP(ctx, r.EIP, tokenBase)
	}
}

// maxIDLen bounds an id read from the cloud in Ownership.Current and PublicIP.
const maxIDLen = 128

// clamped bounds what a Provider call hands to logs, status and metrics: the ids and details
// of the ownership, which quote the cloud's answers, and the message of the error, which may
// quote them too. The error keeps its chain for errors.Is and errors.As.
func clamped(o cloud.Ownership, err error) (cloud.Ownership, error) {
	o.Current = cloud.Clamp(o.Current, maxIDLen)
	o.PublicIP = cloud.Clamp(o.PublicIP, maxIDLen)
	o.Shape = cloud.Clamp(o.Shape, maxIDLen)
	o.Detail = cloud.Clamp(o.Detail, cloud.MaxErrorLen)
	o.PublicIPProblem = cloud.Clamp(o.PublicIPProblem, cloud.MaxErrorLen)
	return o, clampErr(err)
}

// clampErr returns err, or, when its message is too long or not printable, err behind a
// clamped message.
func clampErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if c := cloud.Clamp(msg, cloud.MaxErrorLen); c != msg {
		return &clampedError{msg: c, err: err}
	}
	return err
}

// clampedError is an error with a clamped message.
type clampedError struct {
	msg string
	err error
}

func (e *clampedError) Error() string { return e.msg }

// Unwrap returns the error whose message was clamped.
func (e *clampedError) Unwrap() error { return e.err }

// confirmed reads back with observe until it reports ownership, within the confirm policy.
func (c *Client) confirmed(ctx context.Context, op string, observe func(ctx context.Context) (cloud.Ownership, error)) (cloud.Ownership, error) {
	ctx = withPriority(ctx, prioConfirm)
	var last cloud.Ownership
	err := c.confirm.Do(ctx, op, func(context.Context) error {
		// The read itself has its own retries; the confirm loop only waits for the state.
		o, err := observe(ctx)
		if err != nil {
			if cloud.IsPermanent(err) {
				return err
			}
			return &cloud.PendingError{Op: op, Reason: err.Error()}
		}
		last = o
		if !o.Owned {
			return &cloud.PendingError{Op: op, Reason: "not yet pointing at this node: " + o.Detail}
		}
		return nil
	})
	return last, err
}

func isDryRun(err error) bool { return errors.Is(err, errDryRun) }

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }
