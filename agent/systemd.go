package agent

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Ready reports whether the daemon runs (/readyz): configuration loaded,
// FIFO open, every part started, the first reconciliation queued, and the
// cloud side set up when there is one. The error says what is missing.
func (d *Daemon) Ready() error {
	if !d.isReady.Load() {
		return errors.New("starting")
	}
	if d.provider != nil {
		if ok, reason, _ := d.provider.status(); !ok {
			if reason == "" {
				reason = "not tried yet"
			}
			return errors.New("cloud side not set up: " + reason)
		}
	}
	return nil
}

// publishStatus sends systemd a one-line summary of every instance.
func (d *Daemon) publishStatus() {
	if d.notify == nil || !d.isReady.Load() {
		return
	}
	parts := make([]string, len(d.table().instances))
	for i, in := range d.table().instances {
		parts[i] = in.cfg.Name + " " + string(in.snapshot().state)
		if _, drained := d.drainMarkOf(in); drained {
			parts[i] += " (drained)"
		}
	}
	d.notify("STATUS=" + strings.Join(parts, ", "))
}

// watchdog pings systemd only while every actor loop answers: a wedged
// loop stops the pings and systemd restarts the agent.
func (d *Daemon) watchdog(ctx context.Context) {
	t := time.NewTicker(d.wdog / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		alive := true
		for _, in := range d.table().instances {
			reply := make(chan struct{})
			select {
			case in.pingC <- reply:
				<-reply
			case <-time.After(d.wdog / 3):
				alive = false
			case <-ctx.Done():
				return
			}
			if !alive {
				d.log.Error("actor loop does not answer; withholding the watchdog ping", "vrrp_instance", in.cfg.Name)
				break
			}
		}
		if alive {
			d.notify("WATCHDOG=1")
		}
	}
}
