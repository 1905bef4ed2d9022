package bce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// admitted runs one waiter per priority in prios, started in that order, and returns the
// order in which they were admitted with the time since start (the bubble's fake clock).
func admitted(t *testing.T, l *limiter, prios []priority) []string {
	t.Helper()
	start := time.Now()
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for i, p := range prios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.wait(context.Background(), newAdmission(p)); err != nil {
				t.Errorf("wait %d: %v", i, err)
				return
			}
			mu.Lock()
			got = append(got, fmt.Sprintf("%d@%v", i, time.Since(start)))
			mu.Unlock()
		}()
		synctest.Wait() // queued in this order
	}
	wg.Wait()
	return got
}

func TestLimiter(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		prios []priority
		pause priority // paused for a second before the waits start; 0 for none
		want  string
	}{
		{name: "burst at once, then the rate", rate: 10, burst: 2,
			prios: []priority{prioBackground, prioBackground, prioBackground, prioBackground},
			want:  "[0@0s 1@0s 2@100ms 3@200ms]"},
		{name: "traffic first, then by priority, in arrival order within one", rate: 10, burst: 1,
			prios: []priority{prioBackground, prioBackground, prioConfirm, prioMutation, prioClaimRead, prioTraffic, prioTraffic},
			want:  "[0@0s 5@100ms 6@200ms 4@300ms 3@400ms 2@500ms 1@600ms]"},
		{name: "a paused priority waits, a more urgent one goes", rate: 100, burst: 1,
			prios: []priority{prioConfirm, prioBackground, prioTraffic}, pause: prioConfirm,
			want: "[2@0s 0@1s 1@1.01s]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiter(tt.rate, tt.burst)
				if tt.pause != 0 {
					l.pause(tt.pause, time.Now().Add(time.Second))
				}
				got := admitted(t, l, tt.prios)
				if fmt.Sprint(got) != tt.want {
					t.Errorf("admitted %v, want %s", got, tt.want)
				}
			})
		})
	}
}

// A shared call whose waiting admission is raised (a claim joined an observe's read) moves
// ahead of the calls it now outranks.
func TestLimiterRaise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(10, 1)
		if err := l.wait(context.Background(), newAdmission(prioTraffic)); err != nil {
			t.Fatal(err)
		}
		shared := newAdmission(prioBackground)
		var order []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		run := func(name string, a *admission) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.wait(context.Background(), a); err != nil {
					t.Error(err)
				}
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
			}()
			synctest.Wait()
		}
		run("shared", shared)
		run("confirm", newAdmission(prioConfirm))
		l.raise(shared, prioClaimRead)
		l.raise(shared, prioBackground) // never lowered
		wg.Wait()
		if fmt.Sprint(order) != "[shared confirm]" {
			t.Errorf("order %v, want the raised call first", order)
		}
		if p := l.priorityOf(shared); p != prioClaimRead {
			t.Errorf("priority %d, want %d", p, prioClaimRead)
		}
	})
}

// A call whose context ends leaves the queue, and the token it did not use serves the next.
func TestLimiterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(1, 1)
		if err := l.wait(context.Background(), newAdmission(prioTraffic)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- l.wait(ctx, newAdmission(prioTraffic)) }()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("wait = %v, want Canceled", err)
		}
		start := time.Now()
		if err := l.wait(context.Background(), newAdmission(prioBackground)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("the next call waited %v, want the one second to the next token", d)
		}
		var nl *limiter
		if err := nl.wait(context.Background(), newAdmission(prioBackground)); err != nil {
			t.Errorf("no limit: %v", err)
		}
	})
}

// A throttled answer pauses its priority and below for Retry-After, and the reads that check
// or report for a hold that doubles with each throttled answer and halves with each other.
func TestLimiterThrottledHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(100, 10)
		waitFor := func(p priority) time.Duration {
			start := time.Now()
			if err := l.wait(context.Background(), newAdmission(p)); err != nil {
				t.Fatal(err)
			}
			return time.Since(start)
		}
		l.throttled(prioTraffic, time.Second)
		if d := waitFor(prioTraffic); d != time.Second {
			t.Errorf("traffic waited %v, want the Retry-After", d)
		}
		if d := waitFor(prioConfirm); d != time.Second {
			t.Errorf("a read-back waited %v more, want the hold of twice the Retry-After", d)
		}
		l.throttled(prioBackground, time.Second)
		if d := waitFor(prioTraffic); d != 0 {
			t.Errorf("a throttled read held traffic back %v", d)
		}
		if d := waitFor(prioBackground); d != 4*time.Second {
			t.Errorf("background waited %v, want the doubled hold", d)
		}
		l.answered()
		l.throttled(prioBackground, time.Second)
		if d := waitFor(prioConfirm); d != 4*time.Second {
			t.Errorf("after an answer, a read-back waited %v, want the halved hold doubled again", d)
		}
		for range 10 {
			l.throttled(prioBackground, time.Second)
		}
		if d := waitFor(prioBackground); d != maxHold {
			t.Errorf("background waited %v, want the cap %v", d, maxHold)
		}
	})
}
