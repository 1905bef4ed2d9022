package agent

import (
	"context"
	"fmt"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/health"
)

// newChecks builds the health runner of cfg; nil when no check is
// configured.
func (d *Daemon) newChecks(cfg *config.Config) (*health.Runner, error) {
	if len(cfg.Checks) == 0 {
		return nil, nil
	}
	specs := make([]health.Spec, len(cfg.Checks))
	for i, c := range cfg.Checks {
		specs[i] = c.Spec()
	}
	r, err := health.New(specs, health.Options{
		OnResult: func(name string, r health.Result) { d.obs.CheckResult(name, r.OK, r.Duration) },
		OnChange: func(s health.Status) { d.obs.CheckVerdict(s.Name, s.Verdict == health.Healthy) },
	}, d.log)
	if err != nil {
		return nil, err
	}
	for _, s := range r.Snapshot() {
		d.obs.CheckVerdict(s.Name, s.Verdict == health.Healthy)
	}
	return r, nil
}

// startChecks runs r until the daemon stops or stopChecks is called; the
// runner becomes the one Check and status answer from.
func (d *Daemon) startChecks(r *health.Runner) {
	d.checksMu.Lock()
	d.checks = r
	d.checksMu.Unlock()
	if r == nil {
		d.stopCheck = func() {}
		return
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	done := make(chan struct{})
	d.stopCheck = func() {
		cancel()
		<-done
	}
	d.spawn(func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			d.log.Error("health checks stopped", "err", err)
		}
	})
}

func (d *Daemon) runner() *health.Runner {
	d.checksMu.Lock()
	defer d.checksMu.Unlock()
	return d.checks
}

// Check answers "havip-agent check NAME": the daemon's latest verdict.
func (d *Daemon) Check(name string) (string, error) {
	r := d.runner()
	if r == nil {
		return "", fmt.Errorf("no check named %q (no checks are configured)", name)
	}
	s, ok := r.Status(name)
	if !ok {
		return "", fmt.Errorf("no check named %q", name)
	}
	return s.Verdict.String(), nil
}

func (d *Daemon) checkStatuses() []health.Status {
	r := d.runner()
	if r == nil {
		return nil
	}
	return r.Snapshot()
}
