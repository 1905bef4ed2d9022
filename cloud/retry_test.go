package cloud

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeClock records the waits the policy asks for instead of sleeping.
type fakeClock struct {
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) policy(p RetryPolicy) RetryPolicy {
	p.Now = func() time.Time { return c.now }
	p.Sleep = func(ctx context.Context, d time.Duration) error {
		c.waits = append(c.waits, d)
		c.now = c.now.Add(d)
		return ctx.Err()
	}
	p.Rand = func() float64 { return 1 } // the top of the jitter range: deterministic
	return p
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{Rand: func() float64 { return 1 }}
	var got []time.Duration
	for i := range 8 {
		got = append(got, p.Backoff(i, nil))
	}
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Backoff = %v, want %v", got, want)
	}
	p.Rand = func() float64 { return 0 }
	if got, want := p.Backoff(0, nil), 100*time.Millisecond; got != want {
		t.Fatalf("Backoff with rand 0 = %v, want %v (lower half of the range)", got, want)
	}
	throttled := &APIError{StatusCode: 429, RetryAfter: 5 * time.Second}
	if got, want := p.Backoff(0, throttled), 5*time.Second; got != want {
		t.Fatalf("Backoff honouring Retry-After = %v, want %v", got, want)
	}
	huge := &APIError{StatusCode: 429, RetryAfter: time.Hour}
	if got, want := p.Backoff(0, huge), DefaultMaxRetryAfter; got != want {
		t.Fatalf("Backoff with huge Retry-After = %v, want cap %v", got, want)
	}
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantWaits []time.Duration
		wantErr   bool
	}{
		{name: "success", errs: nil, wantCalls: 1},
		{name: "5xx then success", errs: []error{&APIError{StatusCode: 500, Code: "InternalError"}, &APIError{StatusCode: 503}},
			wantCalls: 3, wantWaits: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		// The top of the jitter range: Retry-After plus half of it.
		{name: "429 with Retry-After", errs: []error{&APIError{StatusCode: 429, RetryAfter: 2 * time.Second}},
			wantCalls: 2, wantWaits: []time.Duration{3 * time.Second}},
		{name: "RequestExpired", errs: []error{&APIError{StatusCode: 400, Code: CodeRequestExpired}},
			wantCalls: 2, wantWaits: []time.Duration{200 * time.Millisecond}},
		{name: "transport", errs: []error{&TransportError{Operation: "x", Err: errors.New("connection reset")}},
			wantCalls: 2, wantWaits: []time.Duration{200 * time.Millisecond}},
		{name: "auth not retried", errs: []error{&APIError{StatusCode: 403, Code: CodeInvalidAccessKeyID}},
			wantCalls: 1, wantErr: true},
		{name: "signature not retried", errs: []error{&APIError{StatusCode: 400, Code: CodeSignatureDoesNotMatch}},
			wantCalls: 1, wantErr: true},
		{name: "validation not retried", errs: []error{&APIError{StatusCode: 400, Code: "InvalidParameter"}},
			wantCalls: 1, wantErr: true},
		{name: "mismatch not retried", errs: []error{&APIError{StatusCode: 403, Code: CodeIdempotentParameterMismatch}},
			wantCalls: 1, wantErr: true},
		{name: "permanent not retried", errs: []error{&PermanentError{Reason: "shape"}}, wantCalls: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1000, 0)}
			p := clk.policy(RetryPolicy{})
			calls := 0
			err := p.Do(context.Background(), "op", func(ctx context.Context) error {
				calls++
				if _, ok := ctx.Deadline(); !ok {
					t.Error("attempt context has no deadline")
				}
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if fmt.Sprint(clk.waits) != fmt.Sprint(tt.wantWaits) && !(len(clk.waits) == 0 && len(tt.wantWaits) == 0) {
				t.Fatalf("waits = %v, want %v", clk.waits, tt.wantWaits)
			}
		})
	}
}

func TestDoStopsAtDeadline(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	p := clk.policy(RetryPolicy{})
	ctx, cancel := context.WithDeadline(context.Background(), clk.now.Add(time.Second))
	defer cancel()
	calls := 0
	err := p.Do(ctx, "op", func(context.Context) error {
		calls++
		return &APIError{StatusCode: 500}
	})
	// Waits of 200 ms and 400 ms fit in the second; the next (800 ms) would not.
	if calls != 3 {
		t.Fatalf("calls = %d, want 3", calls)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 {
		t.Fatalf("err = %v, want it to wrap the last APIError", err)
	}
}

// A wait that ends together with the context (the timer and the deadline
// race) still reports the last attempt's error, not only the context's.
func TestDoContextEndsDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := RetryPolicy{Sleep: func(context.Context, time.Duration) error {
		cancel() // the deadline passes just as the timer fires
		return nil
	}}
	err := p.Do(ctx, "op", func(context.Context) error { return &APIError{StatusCode: 503} })
	var ae *APIError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Fatalf("err = %v, want the context's error and the last APIError", err)
	}
}

func TestDoMaxAttemptsAndCancel(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	p := clk.policy(RetryPolicy{MaxAttempts: 2})
	calls := 0
	err := p.Do(context.Background(), "op", func(context.Context) error { calls++; return &APIError{StatusCode: 502} })
	if calls != 2 || err == nil {
		t.Fatalf("calls = %d, err = %v; want 2 calls and an error", calls, err)
	}
	if !IsRetryable(err) {
		t.Fatalf("the wrapped last error should stay retryable for the caller: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = p.Do(ctx, "op", func(context.Context) error { calls++; cancel(); return &APIError{StatusCode: 500} })
	if calls != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("calls = %d, err = %v; want 1 call and Canceled", calls, err)
	}
}

func TestDoAttemptTimeout(t *testing.T) {
	p := RetryPolicy{Timeout: 20 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	calls := 0
	err := p.Do(context.Background(), "op", func(ctx context.Context) error {
		calls++
		if calls == 1 {
			<-ctx.Done() // a hung attempt: only its own timeout ends it
			return &TransportError{Operation: "op", Err: ctx.Err()}
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("err = %v, calls = %d; want success on the second attempt", err, calls)
	}
}

// DoRechecked reads before every retry, never before the first attempt; a read that finds the
// state reached ends without sending again, and a failed read ends the loop.
func TestDoRechecked(t *testing.T) {
	timeout := &TransportError{Operation: "x", Err: context.DeadlineExceeded}
	readFailed := &PermanentError{Reason: "shape changed"}
	tests := []struct {
		name        string
		errs        []error // the attempts' errors, then success
		done        []bool  // the rechecks' verdicts, in order
		readErr     error   // the error of every recheck when set
		maxAttempts int
		want        string // one letter per call: s = send, r = recheck
		wantErr     bool
	}{
		{name: "first attempt succeeds", want: "s"},
		{name: "applied despite the timeout", errs: []error{timeout}, done: []bool{true}, want: "sr"},
		{name: "not applied: sent again", errs: []error{timeout}, done: []bool{false}, want: "srs"},
		{name: "two failures", errs: []error{timeout, &APIError{StatusCode: 503}}, done: []bool{false, false}, want: "srsrs"},
		{name: "bounded", errs: []error{timeout, timeout, timeout, timeout}, done: []bool{false, false, false}, maxAttempts: 3, want: "srsrs", wantErr: true},
		{name: "throttled: refused, not rechecked", errs: []error{&APIError{StatusCode: 429, Code: "RequestLimitExceeded"}}, want: "ss"},
		{name: "throttled after a timeout", errs: []error{timeout, &APIError{StatusCode: 429}}, done: []bool{false}, want: "srss"},
		{name: "permanent: no recheck", errs: []error{&APIError{StatusCode: 400, Code: "InvalidParameter"}}, want: "s", wantErr: true},
		{name: "read fails", errs: []error{timeout}, readErr: readFailed, want: "sr", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1000, 0)}
			p := clk.policy(RetryPolicy{MaxAttempts: tt.maxAttempts})
			var calls []byte
			sends, reads := 0, 0
			err := p.DoRechecked(context.Background(), "op", func(context.Context) error {
				calls = append(calls, 's')
				sends++
				if sends <= len(tt.errs) {
					return tt.errs[sends-1]
				}
				return nil
			}, func(context.Context) (bool, error) {
				calls = append(calls, 'r')
				reads++
				if tt.readErr != nil {
					return false, tt.readErr
				}
				return tt.done[reads-1], nil
			})
			if got := string(calls); got != tt.want {
				t.Errorf("calls %q, want %q", got, tt.want)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.readErr != nil && (!errors.Is(err, tt.readErr) || !errors.Is(err, timeout)) {
				t.Errorf("err = %v, want the read's error and the last attempt's", err)
			}
		})
	}
}

// A throttled answer's Retry-After is followed, spread over half of it, and does not grow with
// the number of throttled answers, unless the call yields: then it doubles.
func TestBackoffThrottled(t *testing.T) {
	throttled := &APIError{StatusCode: 429, Code: "RequestLimitExceeded", RetryAfter: time.Second}
	tests := []struct {
		name  string
		rand  float64
		retry int
		yield bool
		err   error
		want  time.Duration
	}{
		{name: "bottom of the spread", rand: 0, err: throttled, want: time.Second},
		{name: "yield: bottom of the first", rand: 0, yield: true, err: throttled, want: time.Second},
		{name: "yield: top of the first", rand: 1, yield: true, err: throttled, want: 2 * time.Second},
		{name: "yield: doubles", rand: 1, retry: 1, yield: true, err: throttled, want: 4 * time.Second},
		{name: "yield: capped", rand: 1, retry: 9, yield: true, err: throttled, want: DefaultMaxBackoff},
		{name: "top of the spread", rand: 1, err: throttled, want: 1500 * time.Millisecond},
		{name: "many throttled answers: no growth", rand: 1, retry: 9, err: throttled, want: 1500 * time.Millisecond},
		{name: "no hint: exponential", rand: 1, retry: 3, err: &APIError{StatusCode: 429}, want: 1600 * time.Millisecond},
		{name: "5xx hint shorter than the backoff", rand: 1, retry: 3, err: &APIError{StatusCode: 503, RetryAfter: time.Second}, want: 1600 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := RetryPolicy{Rand: func() float64 { return tt.rand }, Yield: tt.yield}
			if got := p.Backoff(tt.retry, tt.err); got != tt.want {
				t.Errorf("Backoff(%d) = %v, want %v", tt.retry, got, tt.want)
			}
		})
	}
}

// Throttled answers applied nothing: they do not use up MaxAttempts, which bounds the failures
// that may have applied something, but MaxThrottled bounds them.
func TestDoThrottledBudget(t *testing.T) {
	throttled := &APIError{StatusCode: 429, Code: "RequestLimitExceeded", RetryAfter: time.Second}
	tests := []struct {
		name         string
		errs         []error
		maxAttempts  int
		maxThrottled int
		wantCalls    int
		wantErr      bool
	}{
		{name: "five throttled then success", errs: []error{throttled, throttled, throttled, throttled, throttled}, maxAttempts: 2, wantCalls: 6},
		{name: "throttled bounded", errs: []error{throttled, throttled, throttled, throttled}, maxAttempts: 2, maxThrottled: 3, wantCalls: 3, wantErr: true},
		{name: "failures still bounded", errs: []error{throttled, &APIError{StatusCode: 500}, throttled, &APIError{StatusCode: 500}}, maxAttempts: 2, wantCalls: 4, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1000, 0)}
			p := clk.policy(RetryPolicy{MaxAttempts: tt.maxAttempts, MaxThrottled: tt.maxThrottled})
			calls := 0
			err := p.Do(context.Background(), "op", func(context.Context) error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls || (err != nil) != tt.wantErr {
				t.Fatalf("calls = %d, err = %v; want %d calls, error %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}

// Admit runs before every attempt with the call's context, and its wait is not part of the
// attempt's timeout; an Admit that fails ends the call with the last attempt's error.
func TestDoAdmit(t *testing.T) {
	p := RetryPolicy{Timeout: 50 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	admits := 0
	p.Admit = func(ctx context.Context) error {
		admits++
		if _, ok := ctx.Deadline(); ok {
			t.Error("Admit got a context with a deadline: the attempt's, not the call's")
		}
		time.Sleep(80 * time.Millisecond) // longer than an attempt may take
		return nil
	}
	calls := 0
	err := p.Do(context.Background(), "op", func(ctx context.Context) error {
		calls++
		if err := ctx.Err(); err != nil {
			t.Errorf("attempt %d began with its context ended: %v", calls, err)
		}
		if calls == 1 {
			return &APIError{StatusCode: 503}
		}
		return nil
	})
	if err != nil || calls != 2 || admits != 2 {
		t.Fatalf("err = %v, calls = %d, admits = %d; want success, 2 calls, 2 admits", err, calls, admits)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := RetryPolicy{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	n := 0
	q.Admit = func(ctx context.Context) error {
		if n++; n == 2 {
			cancel()
			return ctx.Err()
		}
		return nil
	}
	err = q.Do(ctx, "op", func(context.Context) error { return &APIError{StatusCode: 502} })
	var ae *APIError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &ae) || ae.StatusCode != 502 {
		t.Fatalf("err = %v, want Canceled wrapping the last APIError", err)
	}
}
