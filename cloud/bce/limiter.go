package bce

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// priority orders the calls that wait for the limiter: a lower one is sent first.
type priority int

// The priorities, most urgent first. Within one, calls go in the order they came.
const (
	// prioTraffic: the mutations that move traffic, HAVIP attach and route switch and update.
	prioTraffic priority = iota
	// prioClaimRead: a read a claim needs before it can write (a switch's read, a claim
	// without a picture).
	prioClaimRead
	// prioMutation: the other mutations, EIP unbind and bind, HAVIP detach and public IP.
	prioMutation
	// prioConfirm: a read that checks a mutation already sent.
	prioConfirm
	// prioBackground: Observe, the keep-warm reads and Preflight.
	prioBackground
	numPriorities
)

// Defaults of the client-side rate limit: one node's failover sends its few mutations at once,
// and a node that loops cannot take more than its share of the account's quota.
const (
	DefaultRateLimit = 10
	DefaultRateBurst = 20
)

// prioKey is the context key of the priority of the reads made under it.
type prioKey struct{}

// withPriority makes the reads made with ctx wait with priority p.
func withPriority(ctx context.Context, p priority) context.Context {
	return context.WithValue(ctx, prioKey{}, p)
}

// callPriority is the priority of call a made with ctx: a mutation's comes from its operation,
// a read's from the context (prioBackground when it says none).
func callPriority(ctx context.Context, a *apiCall) priority {
	if a.mutating() {
		switch a.metric {
		case OpHAVIPAttach, OpRouteRuleSwitch, OpRouteRuleUpdate:
			return prioTraffic
		}
		return prioMutation
	}
	if p, ok := ctx.Value(prioKey{}).(priority); ok {
		return p
	}
	return prioBackground
}

// limiter is a token bucket for the whole Client with a priority queue of the calls that wait:
// when it makes calls wait, the ones that move traffic go first. A throttled answer from the
// server pauses the calls of its priority and below until its Retry-After; more urgent calls
// still go. A nil limiter admits every call at once.
type limiter struct {
	rate, burst float64
	now         func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
	queue  waitQueue
	seq    uint64
	// paused holds, per priority, the time before which no call of it is admitted; it never
	// decreases with the priority number, so a queue whose head is paused is paused whole.
	paused [numPriorities]time.Time
	timer  *time.Timer
	// hold is how long the reads that check or report wait after a throttled answer; it
	// doubles with each throttled answer and halves with each other answer.
	hold time.Duration
}

// maxHold bounds how long a throttled account holds back the reads that check or report.
const maxHold = 8 * time.Second

// newLimiter returns a limiter of rate calls per second, burst at once; nil for a rate of 0 or
// less (no limit).
func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	b := float64(max(burst, 1))
	return &limiter{rate: rate, burst: b, tokens: b, now: time.Now}
}

// admission is what one call waits with: its priority, which rises when a more urgent caller
// shares the call (a table read joined by a claim). The limiter's lock guards it.
type admission struct {
	prio priority
	w    *waiter // queued, nil when not waiting
}

func newAdmission(p priority) *admission { return &admission{prio: p} }

// waiter is one queued call.
type waiter struct {
	a     *admission
	seq   uint64
	index int // in the heap, -1 once removed
	ready chan struct{}
}

// waitQueue is a heap of waiters by priority, then arrival.
type waitQueue []*waiter

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	if q[i].a.prio != q[j].a.prio {
		return q[i].a.prio < q[j].a.prio
	}
	return q[i].seq < q[j].seq
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*q = old[:len(old)-1]
	return w
}

// wait blocks until the call may be sent or ctx ends.
func (l *limiter) wait(ctx context.Context, a *admission) error {
	if l == nil {
		return ctx.Err()
	}
	l.mu.Lock()
	now := l.now()
	l.refill(now)
	if l.queue.Len() == 0 && l.tokens >= 1 && !now.Before(l.paused[a.prio]) {
		l.tokens--
		l.mu.Unlock()
		return nil
	}
	w := &waiter{a: a, seq: l.seq, ready: make(chan struct{})}
	l.seq++
	a.w = w
	heap.Push(&l.queue, w)
	l.schedule(now)
	l.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.index >= 0 {
		heap.Remove(&l.queue, w.index)
		a.w = nil
	} else {
		// Admitted as the context ended: the token goes to the next call.
		l.tokens = min(l.tokens+1, l.burst)
	}
	l.schedule(l.now())
	return ctx.Err()
}

// raise makes a's priority p if that is more urgent.
func (l *limiter) raise(a *admission, p priority) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p >= a.prio {
		return
	}
	a.prio = p
	if a.w != nil && a.w.index >= 0 {
		heap.Fix(&l.queue, a.w.index)
		l.schedule(l.now())
	}
}

// priorityOf is a's priority now.
func (l *limiter) priorityOf(a *admission) priority {
	if l == nil {
		return a.prio
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return a.prio
}

// throttled records a throttled answer to a call of priority p that asked to wait ra (its
// Retry-After, or a second when it named none). The calls of p and below wait ra. The reads
// that check or report (confirm, background) wait longer, doubling with each throttled answer
// while they come: an account over its quota, which a fleet shares, serves the calls that move
// traffic first only if the others step back, and every client sees only its own answers.
func (l *limiter) throttled(p priority, ra time.Duration) {
	if l == nil {
		return
	}
	if ra <= 0 {
		ra = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.hold = min(max(2*l.hold, 2*ra), maxHold)
	l.pauseLocked(p, now.Add(ra))
	l.pauseLocked(prioConfirm, now.Add(l.hold))
	l.schedule(now)
}

// answered records an answer that was not throttled: the hold shrinks.
func (l *limiter) answered() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hold /= 2
	if l.hold < time.Second {
		l.hold = 0
	}
}

// pause holds back the calls of priority p and below until until.
func (l *limiter) pause(p priority, until time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pauseLocked(p, until)
	l.schedule(l.now())
}

func (l *limiter) pauseLocked(p priority, until time.Time) {
	for q := p; q < numPriorities; q++ {
		if until.After(l.paused[q]) {
			l.paused[q] = until
		}
	}
}

func (l *limiter) refill(now time.Time) {
	if !l.last.IsZero() {
		if d := now.Sub(l.last); d > 0 {
			l.tokens = min(l.burst, l.tokens+d.Seconds()*l.rate)
		}
	}
	l.last = now
}

// dispatch admits the queued calls that may go now, then waits for the next.
func (l *limiter) dispatch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	now := l.now()
	l.refill(now)
	for l.queue.Len() > 0 {
		w := l.queue[0]
		if now.Before(l.paused[w.a.prio]) || l.tokens < 1 {
			break
		}
		heap.Pop(&l.queue)
		w.a.w = nil
		l.tokens--
		close(w.ready)
	}
	l.schedule(now)
}

// schedule arms the timer for when the head of the queue may go.
func (l *limiter) schedule(now time.Time) {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.queue.Len() == 0 {
		return
	}
	at := l.paused[l.queue[0].a.prio]
	if l.tokens < 1 {
		if t := now.Add(time.Duration((1 - l.tokens) / l.rate * float64(time.Second))); t.After(at) {
			at = t
		}
	}
	l.timer = time.AfterFunc(max(at.Sub(now), 0), l.dispatch)
}
