package agent

import (
	"context"
	"fmt"

	"github.com/havip-agent/havip-agent/health"
)

// newChecks builds the health runner from the configuration; nil when
// no check is configured.
func (d *Daemon) newChecks() (*health.Runner, error) {
	if len(d.cfg.Checks) == 0 {
		return nil, nil
	}
	specs := make([]health.Spec, len(d.cfg.Checks))
	for i, c := range d.cfg.Checks {
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

func (d *Daemon) runChecks(ctx context.Context) {
	if d.checks == nil {
		return
	}
	if err := d.checks.Run(ctx); err != nil {
		d.log.Error("health checks stopped", "err", err)
	}
}

// Check answers "havip-agent check NAME": the daemon's latest verdict.
func (d *Daemon) Check(name string) (string, error) {
	if d.checks == nil {
		return "", fmt.Errorf("no check named %q (no checks are configured)", name)
	}
	s, ok := d.checks.Status(name)
	if !ok {
		return "", fmt.Errorf("no check named %q", name)
	}
	return s.Verdict.String(), nil
}

func (d *Daemon) checkStatuses() []health.Status {
	if d.checks == nil {
		return nil
	}
	return d.checks.Snapshot()
}
