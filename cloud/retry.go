package cloud

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults of RetryPolicy.
const (
	DefaultTimeout       = 3 * time.Second
	DefaultMinBackoff    = 200 * time.Millisecond
	DefaultMaxBackoff    = 10 * time.Second
	DefaultMaxRetryAfter = time.Minute
)

// RetryPolicy runs one API call with a timeout per attempt, retrying what IsRetryable accepts
// with exponential backoff and jitter, until the call succeeds, fails permanently, runs out of
// attempts or its context ends. The zero value uses the defaults above and retries until the
// context ends. A RetryPolicy is a value; it is safe for concurrent use.
type RetryPolicy struct {
	// Timeout bounds each attempt (default 3 s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry (default 200 ms and 10 s); the
	// wait doubles per retry from MinBackoff, capped at MaxBackoff, then jitter picks a point
	// in its upper half so that peers that failed together do not retry in lockstep.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps how long a server's Retry-After hint may make us wait (default 1 min).
	MaxRetryAfter time.Duration
	// MaxAttempts limits the attempts; 0 means no limit but the context.
	MaxAttempts int

	// Now, Sleep and Rand replace the clock, the wait and the jitter source in tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
	// OnRetry, if set, is told about each failed attempt that will be retried (for logs and
	// metrics).
	OnRetry func(op string, attempt int, err error, wait time.Duration)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.MinBackoff <= 0 {
		p.MinBackoff = DefaultMinBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxBackoff < p.MinBackoff {
		p.MaxBackoff = p.MinBackoff
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// Backoff returns the wait before retry number retry (0 for the first retry) after err: the
// jittered exponential backoff, or the server's Retry-After hint when that is longer.
func (p RetryPolicy) Backoff(retry int, err error) time.Duration {
	p = p.withDefaults()
	d := p.MinBackoff
	for i := 0; i < retry && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	r := min(max(p.Rand(), 0), 1)
	wait := d/2 + time.Duration(r*float64(d/2))
	if ra := min(retryAfter(err), p.MaxRetryAfter); ra > wait {
		wait = ra
	}
	return wait
}

// Do runs fn until it succeeds or fails for good. Each attempt gets a context bounded by
// Timeout. The returned error wraps the last attempt's error and, when the context ended
// first, the context's error too.
func (p RetryPolicy) Do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return p.DoRechecked(ctx, op, fn, nil)
}

// DoRechecked is Do for a mutation that is not idempotent, such as a toggle: a failed attempt
// may still have been applied (its answer lost, its timeout reached, a 5xx after the change),
// and sending it again would undo it. Before every retry it calls recheck, which reads the
// state: done ends with success without sending again; an error ends with that error.
// MaxAttempts counts the attempts of fn, so it bounds the whole cycle of reads and sends. A nil
// recheck makes it Do.
func (p RetryPolicy) DoRechecked(ctx context.Context, op string, fn func(ctx context.Context) error, recheck func(ctx context.Context) (done bool, err error)) error {
	p = p.withDefaults()
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last != nil {
				// The wait before this attempt ended with the context:
				// the last error is still the cause worth reporting.
				return fmt.Errorf("%s: %w after %d attempt(s): %w", op, err, attempt-1, last)
			}
			return fmt.Errorf("%s: %w", op, err)
		}
		if last != nil && recheck != nil {
			done, err := recheck(ctx)
			if err != nil {
				return fmt.Errorf("%s: reading the state before retry %d: %w (the last attempt: %w)", op, attempt-1, err, last)
			}
			if done {
				return nil
			}
		}
		actx, cancel := context.WithTimeout(ctx, p.Timeout)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%s: %w after %d attempt(s): %w", op, cerr, attempt, err)
		}
		if !IsRetryable(err) {
			return err
		}
		if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
			return fmt.Errorf("%s: giving up after %d attempt(s): %w", op, attempt, err)
		}
		wait := p.Backoff(attempt-1, err)
		if dl, ok := ctx.Deadline(); ok && p.Now().Add(wait).After(dl) {
			// Sleeping past the deadline only delays the same answer.
			return fmt.Errorf("%s: %w before retry %d: %w", op, context.DeadlineExceeded, attempt, err)
		}
		if p.OnRetry != nil {
			p.OnRetry(op, attempt, err, wait)
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%s: %w after %d attempt(s): %w", op, serr, attempt, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
