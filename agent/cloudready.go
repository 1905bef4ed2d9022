package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/cloud"
)

// ErrCloudNotReady is what a cloud call answers before the provider has
// been set up.
var ErrCloudNotReady = errors.New("the cloud side is not set up yet")

// lateProvider is a cloud.Provider whose client may be built after the
// daemon started: until then every call fails with a transient error, so
// the cloud side reports it and tries again, and the local half runs.
type lateProvider struct {
	mu     sync.RWMutex
	p      cloud.Provider
	reason string
	since  time.Time
}

func newLateProvider() *lateProvider { return &lateProvider{since: time.Now()} }

func (l *lateProvider) set(p cloud.Provider) {
	l.mu.Lock()
	l.p, l.reason = p, ""
	l.mu.Unlock()
}

// notReady records why the provider could not be set up.
func (l *lateProvider) notReady(err error) {
	l.mu.Lock()
	l.reason = err.Error()
	l.mu.Unlock()
}

func (l *lateProvider) get() (cloud.Provider, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.p == nil {
		if l.reason != "" {
			return nil, &cloud.TransportError{Operation: "cloud setup", Err: errors.New(ErrCloudNotReady.Error() + ": " + l.reason)}
		}
		return nil, &cloud.TransportError{Operation: "cloud setup", Err: ErrCloudNotReady}
	}
	return l.p, nil
}

// status reports whether the provider is set up, and why not.
func (l *lateProvider) status() (ready bool, reason string, since time.Time) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.p != nil, l.reason, l.since
}

func (l *lateProvider) Observe(ctx context.Context, r cloud.Resource) (cloud.Ownership, error) {
	p, err := l.get()
	if err != nil {
		return cloud.Ownership{}, err
	}
	return p.Observe(ctx, r)
}

func (l *lateProvider) Claim(ctx context.Context, r cloud.Resource, tokenBase string) (cloud.Ownership, error) {
	p, err := l.get()
	if err != nil {
		return cloud.Ownership{}, err
	}
	return p.Claim(ctx, r, tokenBase)
}

func (l *lateProvider) NodeID() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.p == nil {
		return ""
	}
	return l.p.NodeID()
}

// Bounds of the backoff between cloud set-up attempts.
const (
	cloudSetupMin = time.Second
	cloudSetupMax = time.Minute
)

// setUpCloud builds the provider, retrying with backoff until it works or
// ctx ends; then every MASTER claims at once.
func (d *Daemon) setUpCloud(ctx context.Context) {
	wait := cloudSetupMin
	for attempt := 1; ; attempt++ {
		p, background, err := d.cloudSetup(ctx)
		if err == nil {
			d.provider.set(p)
			// Under the reload lock: a reload may be replacing the
			// configuration right now.
			d.reloadMu.Lock()
			d.watchResources(d.cfg)
			d.reloadMu.Unlock()
			d.obs.CloudReady(true)
			d.log.Info("cloud side ready", "instance_id", p.NodeID(), "attempts", attempt)
			if background != nil {
				d.spawn(func() { background(ctx) })
			}
			now := time.Now()
			for _, in := range d.table().instances {
				in.post(pending{input: input{kind: inCloudReady}, received: now, source: "cloud-setup"})
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		d.provider.notReady(err)
		d.obs.CloudReady(false)
		if attempt == 1 || wait == cloudSetupMax {
			d.log.Error("cloud side not ready; the local path runs, claims wait", "err", err, "attempt", attempt, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, cloudSetupMax)
	}
}

// watchResources tells a provider that keeps a picture of its resources
// (cloud.Watcher) which ones the configuration now names: at set-up, and
// after a reload, so that an added resource is watched and a removed one
// no longer read.
func (d *Daemon) watchResources(cfg *config.Config) {
	if d.provider == nil {
		return
	}
	p, err := d.provider.get()
	if err != nil {
		return
	}
	if w, ok := p.(cloud.Watcher); ok {
		w.Watch(cfg.CloudResources())
	}
}
