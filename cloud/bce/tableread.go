package bce

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/baidubce/bce-sdk-go/services/vpc"
)

// defaultGather is how long a claim's read of a route table waits before it is sent, so that
// the claims of the other routes of the same table, started in the same moment, share it.
const defaultGather = 2 * time.Millisecond

// tableReads shares the reads of route tables: every route of a table claimed or observed at
// the same moment costs one read (per page) instead of one each. A caller names the oldest read
// it accepts (since): a claim the moment it began, so that a switch is never decided on a read
// older than the claim; a read-back the moment its mutation was answered. A read joins the one
// in flight only if that was not yet sent or was sent at or after since, and never if it was
// sent before a mutation of the table that the caller comes after. Nothing is reused once a
// read has ended.
type tableReads struct {
	c      *Client
	gather time.Duration

	mu     sync.Mutex
	tables map[string]*tableState
}

// tableState is one table's read in flight and its last mutation.
type tableState struct {
	inflight *tableRead
	// wroteAt is when the last mutation of a rule of the table was sent: a read sent before
	// it may not show it, and no caller after it may use that read.
	wroteAt time.Time
}

// tableRead is one read of a table, shared by its waiters.
type tableRead struct {
	done  chan struct{}
	rules []vpc.RouteRule // read-only once done is closed
	err   error
	// sent is when the read's first request was admitted, zero before; the answer shows the
	// table as it was then or later.
	sent    time.Time
	waiters int
	cancel  context.CancelFunc
	adm     *admission
}

// newTableReads shares the table reads of c.
func newTableReads(c *Client) *tableReads {
	return &tableReads{c: c, gather: defaultGather, tables: map[string]*tableState{}}
}

func (t *tableReads) state(table string) *tableState {
	ts, ok := t.tables[table]
	if !ok {
		ts = &tableState{}
		t.tables[table] = ts
	}
	return ts
}

// wrote records a mutation of a rule of table sent at at.
func (t *tableReads) wrote(table string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ts := t.state(table); at.After(ts.wroteAt) {
		ts.wroteAt = at
	}
}

// read returns every rule of table, from a read sent at or after since (and after the table's
// last mutation), and when that read was sent. prio is the caller's priority: a shared read
// waits for the limiter with the most urgent of its callers'. gather delays a new read a
// moment for other callers to join.
func (t *tableReads) read(ctx context.Context, table string, since time.Time, prio priority, gather bool) ([]vpc.RouteRule, time.Time, error) {
	t.mu.Lock()
	ts := t.state(table)
	if ts.wroteAt.After(since) {
		since = ts.wroteAt
	}
	r := ts.inflight
	if r == nil || (!r.sent.IsZero() && r.sent.Before(since)) {
		r = t.start(ctx, table, ts, prio, gather)
	} else {
		t.c.lim.raise(r.adm, prio)
	}
	r.waiters++
	t.mu.Unlock()
	select {
	case <-r.done:
		return r.rules, r.sent, r.err
	case <-ctx.Done():
	}
	t.mu.Lock()
	if r.waiters--; r.waiters == 0 {
		// Nobody waits for it any more: it is not sent or retried in vain.
		r.cancel()
		if ts.inflight == r {
			ts.inflight = nil
		}
	}
	t.mu.Unlock()
	return nil, time.Time{}, fmt.Errorf("route.list %s: %w", table, ctx.Err())
}

// start begins a read of table in its own goroutine, which ends when the read has or when its
// last waiter has gone. t.mu is held.
func (t *tableReads) start(ctx context.Context, table string, ts *tableState, prio priority, gather bool) *tableRead {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &tableRead{done: make(chan struct{}), cancel: cancel, adm: newAdmission(prio)}
	ts.inflight = r
	go func() {
		defer cancel()
		if gather {
			delay(rctx, t.gather)
		}
		rules, err := t.c.listRules(rctx, table, r.adm, func(at time.Time) {
			t.mu.Lock()
			if r.sent.IsZero() {
				r.sent = at
			}
			t.mu.Unlock()
		})
		t.mu.Lock()
		r.rules, r.err = rules, err
		if ts.inflight == r {
			ts.inflight = nil
		}
		sent := r.sent
		t.mu.Unlock()
		if err == nil {
			t.c.pic.noteRules(table, rules, sent)
		}
		close(r.done)
	}()
	return r
}

// delay waits d, or until ctx ends.
func delay(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}
