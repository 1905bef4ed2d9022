package agent

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/havip-agent/havip-agent/agent/config"
	"github.com/havip-agent/havip-agent/health"
)

// reloadStatus is the outcome of the latest reload, for status.
type reloadStatus struct {
	At    time.Time `json:"at,omitzero"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	Count int       `json:"count"`
}

// ErrNotRunning is returned by Reload before Run has started everything.
var ErrNotRunning = errors.New("the daemon is not running yet")

// notReloadable names the settings a reload cannot change, with their
// old and new values compared: they are held open (state directory,
// socket, FIFO, metrics listener) or built once (logger format, the
// liveness watch, the cloud client).
func notReloadable(old, cur *config.Config) []string {
	var keys []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	diff("agent.state_dir", old.Agent.StateDir, cur.Agent.StateDir)
	diff("agent.socket", old.Agent.Socket, cur.Agent.Socket)
	diff("agent.socket_group", old.Agent.SocketGroup, cur.Agent.SocketGroup)
	diff("agent.log_level", old.Agent.LogLevel, cur.Agent.LogLevel)
	diff("agent.log_format", old.Agent.LogFormat, cur.Agent.LogFormat)
	diff("agent.history_max_bytes", old.Agent.HistoryMaxBytes, cur.Agent.HistoryMaxBytes)
	diff("agent.history_keep", old.Agent.HistoryKeep, cur.Agent.HistoryKeep)
	diff("keepalived", old.Keepalived, cur.Keepalived)
	diff("metrics", old.Metrics, cur.Metrics)
	diff("cloud", old.Cloud, cur.Cloud)
	return keys
}

// Reload reads the configuration file again and applies it (SIGHUP,
// systemctl reload, havip-agent reload). A file that does not load is
// refused whole, with its errors.
func (d *Daemon) Reload() error {
	if d.loadConfig == nil {
		return errors.New("reload: no configuration loader")
	}
	d.reloadMu.Lock()
	path := d.cfg.Path
	d.reloadMu.Unlock()
	cfg, err := d.loadConfig(path)
	if err != nil {
		d.reloadMu.Lock()
		d.recordReload(err)
		d.reloadMu.Unlock()
		return err
	}
	return d.ApplyConfig(cfg)
}

// ApplyConfig replaces the running configuration with cfg, which the
// caller loaded and validated. Instances, VIPs, checks and cloud resources may
// be added, changed and removed: an unchanged instance keeps its actor; a
// changed one hands its state to a new actor, so a MASTER keeps every
// address that stays configured and claims nothing for resources that did
// not change. On any error nothing is applied and the running
// configuration stays.
func (d *Daemon) ApplyConfig(cfg *config.Config) (err error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	defer func() { d.recordReload(err) }()
	if d.runCtx == nil || d.stopping {
		return ErrNotRunning
	}
	old := d.cfg
	if keys := notReloadable(old, cfg); len(keys) > 0 {
		return fmt.Errorf("%s: changing %v needs a restart (systemctl restart havip-agent); the running configuration stays", cfg.Path, keys)
	}
	// Build everything that can fail before anything changes.
	var checks *health.Runner
	checksChanged := !reflect.DeepEqual(old.Checks, cfg.Checks)
	if checksChanged {
		if checks, err = d.newChecks(cfg); err != nil {
			return fmt.Errorf("%s: %w", cfg.Path, err)
		}
	}
	oldTab := d.table()
	type change struct{ old, cur *instance }
	var (
		ins     []*instance
		changed []change
		added   []*instance
		keep    = map[*instance]bool{}
	)
	oldCfg := map[string]config.Instance{}
	for _, ic := range old.Instances {
		oldCfg[key(ic.Kind, ic.Name)] = ic
	}
	for _, ic := range cfg.Instances {
		k := key(ic.Kind, ic.Name)
		prev, ok := oldTab.byKey[k]
		switch {
		case !ok:
			in, err := d.newInstance(cfg, ic)
			if err != nil {
				return fmt.Errorf("%s: %w", cfg.Path, err)
			}
			added = append(added, in)
			ins = append(ins, in)
		case reflect.DeepEqual(oldCfg[k], ic):
			keep[prev] = true
			ins = append(ins, prev)
		default:
			in := d.buildInstance(cfg, ic)
			if in.cloud != nil && prev.cloud != nil && reflect.DeepEqual(oldCfg[k].CloudResources(), ic.CloudResources()) {
				// Same resources: the running cloud side goes on (the
				// one just built was never started).
				in.cloud = prev.cloud
			}
			changed = append(changed, change{prev, in})
			ins = append(ins, in)
		}
	}
	tab := newTable(ins)

	// Apply. From here on nothing fails.
	d.tab.Store(tab)
	for _, c := range changed {
		c.old.stopRun()
		c.cur.takeOver(c.old)
		if c.old.cloud != nil && c.old.cloud != c.cur.cloud {
			c.old.cloud.stop()
			d.retire(c.old.cloud)
		}
		d.dropVIPs(c.old, tab)
		d.startActor(c.cur)
	}
	for _, in := range oldTab.instances {
		if _, ok := tab.byKey[key(in.cfg.Kind, in.cfg.Name)]; ok {
			continue
		}
		in.stopRun()
		if in.cloud != nil {
			in.cloud.stop()
			d.retire(in.cloud)
		}
		d.dropVIPs(in, tab)
		d.obs.ForgetInstance(in.cfg.Name)
		d.log.Info("instance removed by reload", "vrrp_instance", in.cfg.Name, "state", string(in.cur))
	}
	now := time.Now()
	for _, in := range added {
		d.startActor(in)
		in.post(pending{input: input{kind: inAddrChange}, received: now, source: "reload"})
	}
	if checksChanged {
		d.stopCheck()
		d.startChecks(checks)
	}
	for _, c := range changed {
		d.applyDrainFile(c.cur)
	}
	for _, in := range added {
		d.applyDrainFile(in)
	}
	hooksChanged := !reflect.DeepEqual(old.Hooks, cfg.Hooks)
	if hooksChanged {
		// New events go to the new runner at once; the old one finishes
		// what it has queued in the background.
		prev := d.events.hooks.Swap(d.newHooks(cfg))
		d.spawn(func() { d.closeHooks(prev) })
	}
	d.cfg = cfg
	d.watchResources(cfg)
	d.log.Info("configuration reloaded", "path", cfg.Path, "instances", len(ins), "unchanged", len(keep), "changed", len(changed), "added", len(added),
		"removed", len(oldTab.instances)-len(keep)-len(changed), "checks_changed", checksChanged, "hooks_changed", hooksChanged)
	d.publishStatus()
	return nil
}

// dropVIPs removes the addresses a replaced or removed MASTER held that
// no instance of the new table configures on that interface any more.
// The old actor has stopped, so nothing else acts on them.
func (d *Daemon) dropVIPs(old *instance, tab *table) {
	if old.cur != StateMaster {
		return
	}
	for _, v := range old.cfg.VIPs {
		if len(tab.byVIP[old.cfg.Interface][v.Addr()]) > 0 {
			continue
		}
		if err := d.net.Del(old.cfg.Interface, v); err != nil {
			d.log.Error("removing a VIP no longer configured failed", "vrrp_instance", old.cfg.Name, "vip", v.String(), "err", err)
			continue
		}
		d.log.Info("VIP no longer configured; removed", "vrrp_instance", old.cfg.Name, "vip", v.String(), "interface", old.cfg.Interface)
	}
}

// retire keeps a cloud side that a reload stopped, so that shutdown
// waits for its goroutines too.
func (d *Daemon) retire(c *cloudSide) {
	d.retired = append(d.retired, c)
}

func (d *Daemon) recordReload(err error) {
	d.reloads.At = time.Now()
	d.reloads.Count++
	d.reloads.OK = err == nil
	d.reloads.Error = ""
	if err != nil {
		d.reloads.Error = err.Error()
		d.log.Error("configuration reload refused; the running configuration stays", "err", err)
	}
	d.obs.Reload(err == nil)
}

// ReloadStatus returns the outcome of the latest reload.
func (d *Daemon) reloadStatus() reloadStatus {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	return d.reloads
}

// takeOver continues the state of prev, whose actor has stopped, in this
// new actor: nothing is persisted or claimed again, and what was posted
// to prev and not yet taken is carried over (older than anything posted
// to this actor already).
func (in *instance) takeOver(prev *instance) {
	in.cur, in.gen, in.since, in.priority = prev.cur, prev.gen, prev.since, prev.priority
	in.term = term{trans: prev.term.trans, announced: prev.term.announced, cloudReadOnly: prev.term.cloudReadOnly}
	in.restoredKA = prev.restoredKA
	in.handover = true
	in.handoverCloud = in.cloud != prev.cloud
	prev.mu.Lock()
	q := prev.queue
	prev.queue = nil
	prev.forward = in
	prev.mu.Unlock()
	in.mu.Lock()
	var merged []pending
	for _, p := range q {
		superseded := slices.ContainsFunc(in.queue, func(x pending) bool {
			return x.kind == p.kind || (isState(x.kind) && isState(p.kind))
		})
		if !superseded {
			merged = append(merged, p)
		}
	}
	in.queue = append(merged, in.queue...)
	in.mu.Unlock()
	in.publish()
}

func isState(k inputKind) bool { return k == inState || k == inDead }
