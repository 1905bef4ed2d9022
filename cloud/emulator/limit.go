package emulator

import (
	"context"
	"fmt"
	"math"
	"time"
)

// CodeThrottled is the error code of a request refused by the account's rate limit (HTTP 429).
// No BCE document names the throttling code of the VPC, HAVIP or EIP APIs, nor does bce-sdk-go;
// this is the emulator's choice, the code its error faults answer with 429 too, and one that
// the agent treats as throttling.
const CodeThrottled = "RequestLimitExceeded"

// Bounds of the rate limit and latency settings.
const (
	maxRateLimit = 1e6
	maxLatency   = 10 * time.Second
)

// bucket is the token bucket of one access key.
type bucket struct {
	tokens float64
	last   time.Time
}

// throttleLocked takes a token from the bucket of access key ak and reports whether the
// request must be refused, with the whole seconds after which a token will be there (at least
// 1: Retry-After counts whole seconds). A refused request takes no token.
func (e *Emulator) throttleLocked(ak string) (retryAfter int, limited bool) {
	if e.rateLimit <= 0 {
		return 0, false
	}
	now := e.opts.Now()
	b, ok := e.buckets[ak]
	if !ok {
		b = &bucket{tokens: float64(e.rateBurst), last: now}
		e.buckets[ak] = b
	}
	b.tokens = min(float64(e.rateBurst), b.tokens+now.Sub(b.last).Seconds()*e.rateLimit)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, false
	}
	return max(1, int(math.Ceil((1-b.tokens)/e.rateLimit))), true
}

// throttle is throttleLocked under the state lock.
func (e *Emulator) throttle(ak string) (int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.throttleLocked(ak)
}

// burstFor is the burst of a rate limit when none is given: one second's worth, at least one.
func burstFor(rate float64) int {
	return max(1, int(math.Ceil(rate)))
}

// delay waits d, or until ctx ends (false).
func delay(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RateLimit answers the account-wide rate limit per access key (requests per second, 0 for
// none), its burst, and the modelled round trip of an API call.
func (e *Emulator) RateLimit() (rate float64, burst int, latency time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rateLimit, e.rateBurst, e.latency
}

// loadLimits takes the seed's rate_limit, rate_burst and latency.
func (e *Emulator) loadLimits(s *Seed) error {
	if s.RateLimit < 0 || s.RateLimit > maxRateLimit {
		return fmt.Errorf("%s: rate_limit %v is not in [0, %v] requests per second", s.nameOr(), s.RateLimit, maxRateLimit)
	}
	if s.RateBurst < 0 || float64(s.RateBurst) > maxRateLimit {
		return fmt.Errorf("%s: rate_burst %d is not in [0, %v]", s.nameOr(), s.RateBurst, maxRateLimit)
	}
	e.rateLimit, e.rateBurst = s.RateLimit, s.RateBurst
	if s.Latency != "" {
		d, err := time.ParseDuration(s.Latency)
		if err != nil || d < 0 || d > maxLatency {
			return fmt.Errorf("%s: latency %q is not a duration in [0, %s]", s.nameOr(), s.Latency, maxLatency)
		}
		e.latency = d
	}
	return nil
}

// setLimits lets the options override the seed's limits, then gives a rate limit without a
// burst its default.
func (e *Emulator) setLimits(o Options) error {
	switch {
	case o.RateLimit < 0 || o.RateLimit > maxRateLimit:
		return fmt.Errorf("rate limit %v is not in [0, %v] requests per second", o.RateLimit, maxRateLimit)
	case o.RateBurst < 0 || float64(o.RateBurst) > maxRateLimit:
		return fmt.Errorf("rate burst %d is not in [0, %v]", o.RateBurst, maxRateLimit)
	case o.Latency < 0 || o.Latency > maxLatency:
		return fmt.Errorf("latency %s is not in [0, %s]", o.Latency, maxLatency)
	}
	if o.RateLimit > 0 {
		e.rateLimit = o.RateLimit
	}
	if o.RateBurst > 0 {
		e.rateBurst = o.RateBurst
	}
	if o.Latency > 0 {
		e.latency = o.Latency
	}
	if e.rateLimit > 0 && e.rateBurst == 0 {
		e.rateBurst = burstFor(e.rateLimit)
	}
	return nil
}

// latencyOf is the round trip of an API request.
func (e *Emulator) latencyOf() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.latency
}

// SetRateLimit changes the rate limit at run time (rate 0 removes it; burst 0 is the rate
// rounded up); every access key starts again with a full bucket. The seed and Options set it
// at start.
func (e *Emulator) SetRateLimit(rate float64, burst int) error {
	if rate < 0 || rate > maxRateLimit || burst < 0 || float64(burst) > maxRateLimit {
		return fmt.Errorf("rate limit %v, burst %d: want a rate in [0, %v] and a burst in [0, %v]", rate, burst, maxRateLimit, maxRateLimit)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rateLimit, e.rateBurst = rate, burst
	if rate > 0 && burst == 0 {
		e.rateBurst = burstFor(rate)
	}
	clear(e.buckets)
	return nil
}
