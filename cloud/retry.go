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
	// DefaultMaxThrottled bounds the throttled answers of one call when MaxAttempts bounds its
	// other failures: an account whose quota a whole fleet shares may throttle a failover's
	// calls many times before it takes them.
	DefaultMaxThrottled = 60
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
	// MaxAttempts limits the attempts that failed other than by throttling; 0 means no limit
	// but the context.
	MaxAttempts int
	// MaxThrottled limits the attempts answered with throttling (429 or a throttling code),
	// which the server refused without applying them: they do not count towards MaxAttempts.
	// 0 means DefaultMaxThrottled when MaxAttempts is set, else no limit but the context.
	MaxThrottled int
	// Yield makes a call that can wait step back from a throttled account: after each
	// throttled answer its wait doubles from the Retry-After hint (capped by MaxBackoff, never
	// below the hint) instead of following the hint, so that the calls that cannot wait (those
	// that move traffic) get the quota first.
	Yield bool
	// Admit, if set, waits before every attempt for the right to send it (a rate limiter). It
	// gets the call's context, not the attempt's: the wait is not part of Timeout. An error
	// (the context ended) ends the call.
	Admit func(ctx context.Context) error

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
// jittered exponential backoff, or the server's Retry-After hint when that is longer. A
// throttled answer's hint is followed as it is, plus a jitter of up to half of it: every client
// the server throttled hears the same hint, and retries sent in step would be throttled again
// together. The hint also replaces the exponential backoff there: it says when the server
// takes requests again, which the number of throttled answers does not.
func (p RetryPolicy) Backoff(retry int, err error) time.Duration {
	p = p.withDefaults()
	d := p.MinBackoff
	for i := 0; i < retry && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	r := min(max(p.Rand(), 0), 1)
	wait := d/2 + time.Duration(r*float64(d/2))
	ra := min(retryAfter(err), p.MaxRetryAfter)
	switch {
	case ra <= 0:
	case IsThrottled(err) && p.Yield:
		y := ra
		for i := 0; i <= retry && y < p.MaxBackoff; i++ {
			y *= 2
		}
		y = max(min(y, p.MaxBackoff), 2*ra)
		wait = y/2 + time.Duration(r*float64(y/2))
	case IsThrottled(err):
		wait = ra + time.Duration(r*float64(ra/2))
	case ra > wait:
		wait = ra
	}
	return wait
}

// maxThrottled is the bound of throttled answers, 0 for none.
func (p RetryPolicy) maxThrottled() int {
	switch {
	case p.MaxThrottled > 0:
		return p.MaxThrottled
	case p.MaxAttempts > 0:
		return DefaultMaxThrottled
	}
	return 0
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
// state: done ends with success without sending again; an error ends with that error. A
// throttled answer is a refusal that applied nothing, so the retry after one is not rechecked.
// MaxAttempts counts the attempts of fn, so it bounds the whole cycle of reads and sends. A nil
// recheck makes it Do.
func (p RetryPolicy) DoRechecked(ctx context.Context, op string, fn func(ctx context.Context) error, recheck func(ctx context.Context) (done bool, err error)) error {
	p = p.withDefaults()
	var last error
	failures, throttled := 0, 0
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last != nil {
				// The wait before this attempt ended with the context:
				// the last error is still the cause worth reporting.
				return fmt.Errorf("%s: %w after %d attempt(s): %w", op, err, attempt-1, last)
			}
			return fmt.Errorf("%s: %w", op, err)
		}
		if last != nil && recheck != nil && !IsThrottled(last) {
			done, err := recheck(ctx)
			if err != nil {
				return fmt.Errorf("%s: reading the state before retry %d: %w (the last attempt: %w)", op, attempt-1, err, last)
			}
			if done {
				return nil
			}
		}
		if p.Admit != nil {
			if err := p.Admit(ctx); err != nil {
				if last != nil {
					return fmt.Errorf("%s: %w after %d attempt(s): %w", op, err, attempt-1, last)
				}
				return fmt.Errorf("%s: %w", op, err)
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
		retry := 0
		if IsThrottled(err) {
			throttled++
			if limit := p.maxThrottled(); limit > 0 && throttled >= limit {
				return fmt.Errorf("%s: giving up after %d attempt(s), %d throttled: %w", op, attempt, throttled, err)
			}
			retry = throttled - 1
		} else {
			failures++
			if p.MaxAttempts > 0 && failures >= p.MaxAttempts {
				return fmt.Errorf("%s: giving up after %d attempt(s): %w", op, attempt, err)
			}
			retry = failures - 1
		}
		wait := p.Backoff(retry, err)
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
