package bce

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/baidubce/bce-sdk-go/services/havip"
	"github.com/baidubce/bce-sdk-go/services/vpc"

	"github.com/havip-agent/havip-agent/cloud"
)

// Defaults of the keep-warm reads and of the picture they keep.
const (
	// DefaultKeepWarm is how often a watched resource is read when nothing else read it: rarely
	// enough to cost a fleet little of its account's quota, often enough that the connections
	// stay open (the servers' keep-alive timeouts are not documented; a minute is common).
	DefaultKeepWarm = 30 * time.Second
	// DefaultPictureMaxAge is how old a picture may be for a claim to write from it: a few
	// keep-warm rounds (pictureRounds of a longer interval), so that one failed read does not
	// cost the next failover its head start.
	DefaultPictureMaxAge = 2 * time.Minute
	pictureRounds        = 4
	// firstWarmSpread spreads the first keep-warm reads of a fleet started together.
	firstWarmSpread = 5 * time.Second
	// maxWarmReads bounds the keep-warm reads in flight, as many as connections stay idle.
	maxWarmReads = 4
)

// idleConnTimeout is how long the Client's transport keeps an idle connection: longer than the
// keep-warm interval with room for its jitter, so that the transport never closes a connection
// the next keep-warm read would have used.
func idleConnTimeout(keepWarm time.Duration) time.Duration {
	return max(90*time.Second, 3*keepWarm)
}

// picture is what the last successful reads showed of each HAVIP and route table, and when each
// read unit was last read. It is read-only knowledge: only an idempotent mutation may be sent
// from it (a HAVIP attach, a single-line update), and only a read after that mutation decides
// the claim. A picture too old, or one the mutation shows wrong, costs a read, never a wrong
// switch: a switch always reads first.
type picture struct {
	mu     sync.Mutex
	havips map[string]shot[havip.HaVip]
	tables map[string]shot[[]vpc.RouteRule]
	// reads holds when each read unit ("havip/ID", "table/ID", "eip/ADDRESS") was last read.
	reads map[string]time.Time
}

// shot is one picture and the time it shows the resource at (no later than the read was sent).
type shot[T any] struct {
	v  T
	at time.Time
}

func newPicture() *picture {
	return &picture{havips: map[string]shot[havip.HaVip]{}, tables: map[string]shot[[]vpc.RouteRule]{}, reads: map[string]time.Time{}}
}

// Read units of the picture and the keep-warm reads.
const (
	unitHAVIP = "havip/"
	unitTable = "table/"
	unitEIP   = "eip/"
)

func (p *picture) noteRead(unit string, at time.Time) {
	if at.After(p.reads[unit]) {
		p.reads[unit] = at
	}
}

func (p *picture) noteHAVIP(h *havip.HaVip, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.havips[h.HaVipId]; !ok || !old.at.After(at) {
		c := *h
		c.BindedInstances = slices.Clone(h.BindedInstances)
		p.havips[h.HaVipId] = shot[havip.HaVip]{v: c, at: at}
	}
	p.noteRead(unitHAVIP+h.HaVipId, at)
}

func (p *picture) noteRules(table string, rules []vpc.RouteRule, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.tables[table]; !ok || !old.at.After(at) {
		p.tables[table] = shot[[]vpc.RouteRule]{v: rules, at: at}
	}
	p.noteRead(unitTable+table, at)
}

func (p *picture) noteEIP(address string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noteRead(unitEIP+address, at)
}

// havip is the picture of HAVIP id if it is at most maxAge old.
func (p *picture) havip(id string, maxAge time.Duration) (havip.HaVip, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.havips[id]
	return s.v, ok && maxAge > 0 && time.Since(s.at) <= maxAge
}

// rules is the picture of table if it is at most maxAge old; the rules are shared, read-only.
func (p *picture) rules(table string, maxAge time.Duration) ([]vpc.RouteRule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.tables[table]
	return s.v, ok && maxAge > 0 && time.Since(s.at) <= maxAge
}

func (p *picture) readAt(unit string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads[unit]
}

// watchSet is the set of resources KeepWarm reads.
type watchSet struct {
	mu        sync.Mutex
	resources []cloud.Resource
}

// Watch sets the resources KeepWarm reads, replacing the ones it was given before; invalid
// ones are left out. The agent watches every resource of its configuration: a node that is not
// MASTER keeps a recent picture of them, from which its next claim starts.
func (c *Client) Watch(resources []cloud.Resource) {
	var rs []cloud.Resource
	for _, r := range resources {
		if r.Validate() == nil {
			rs = append(rs, r)
		}
	}
	c.watch.mu.Lock()
	c.watch.resources = rs
	c.watch.mu.Unlock()
}

// warmUnit is one read of the keep-warm round.
type warmUnit struct {
	key  string
	read func(ctx context.Context) error
}

// warmUnits are the distinct reads that cover the watched resources: one per HAVIP, per route
// table (every route of a table shares it) and per EIP.
func (c *Client) warmUnits() []warmUnit {
	c.watch.mu.Lock()
	rs := slices.Clone(c.watch.resources)
	c.watch.mu.Unlock()
	seen := map[string]bool{}
	var units []warmUnit
	add := func(key string, read func(ctx context.Context) error) {
		if !seen[key] {
			seen[key] = true
			units = append(units, warmUnit{key: key, read: read})
		}
	}
	for _, r := range rs {
		switch r.Kind {
		case cloud.KindHAVIP:
			id := r.HAVIP.ID
			add(unitHAVIP+id, func(ctx context.Context) error { _, err := c.getHAVIP(ctx, id); return err })
		case cloud.KindRoute:
			table := r.Route.Table
			add(unitTable+table, func(ctx context.Context) error {
				_, _, err := c.tables.read(ctx, table, time.Time{}, prioBackground, false)
				return err
			})
		case cloud.KindEIP:
			addr := r.EIP.Address
			add(unitEIP+addr, func(ctx context.Context) error { _, err := c.getEIP(ctx, addr); return err })
		}
	}
	return units
}

// KeepWarm reads the watched resources (Watch) every Options.KeepWarm, each of them only when
// nothing else read it for half that time (a MASTER's reconcile reads do), until ctx ends. It
// makes no change. Its reads keep the picture recent and, sent concurrently, keep a connection
// per concurrent claim open to each endpoint the resources use, so that the first requests of
// a failover reuse them instead of paying TCP and TLS handshakes. The reads wait for the
// limiter behind every other call. A negative Options.KeepWarm makes it return at once.
func (c *Client) KeepWarm(ctx context.Context) {
	every := c.opts.KeepWarm
	if every <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(rand.Int64N(int64(min(every, firstWarmSpread)))))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.warm(ctx, every)
		// Jitter keeps a fleet's rounds from lining up.
		t.Reset(every - every/10 + time.Duration(rand.Int64N(int64(every/5)+1)))
	}
}

// warm runs one keep-warm round: the reads whose unit was not read for half of every, at most
// maxWarmReads at a time.
func (c *Client) warm(ctx context.Context, every time.Duration) {
	ctx = withPriority(ctx, prioBackground)
	sem := make(chan struct{}, maxWarmReads)
	var wg sync.WaitGroup
	for _, u := range c.warmUnits() {
		if time.Since(c.pic.readAt(u.key)) < every/2 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := u.read(ctx); err != nil && ctx.Err() == nil {
				c.logger.Debug("keep-warm read failed", "read", u.key, "err", err)
			}
		}()
	}
	wg.Wait()
}
