package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/havip-agent/havip-agent/agent/control"
	"github.com/havip-agent/havip-agent/cloud"
	"github.com/havip-agent/havip-agent/health"
)

// Timings of a drain.
const (
	// DefaultDrainTimeout is how long a drain waits for another node to
	// take over when the request names no timeout.
	DefaultDrainTimeout = 30 * time.Second
	// MaxDrainTimeout bounds a drain's wait.
	MaxDrainTimeout = time.Hour
	// drainLookEvery is how often a drain looks at the instance's state,
	// and drainReadEvery how often, once the node stepped down, it reads
	// the cloud (read-only calls).
	drainLookEvery = 50 * time.Millisecond
	drainReadEvery = 500 * time.Millisecond
)

// drainMark is a drained instance as the daemon holds it.
type drainMark struct {
	since time.Time
	// seq tells one drain from the next: a drain that waits stops when
	// its mark is gone or replaced (a resume came).
	seq uint64
}

// drainRecord is a drained instance on disk: one small file per instance
// in state_dir, so the drain survives a restart of the agent and a reboot
// (the runtime directory does not).
type drainRecord struct {
	Kind  string    `json:"kind"`
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// DrainStatus is an instance's drain, as status shows it.
type DrainStatus struct {
	// File is the instance's drain_file.
	File string `json:"file,omitempty"`
	// Drained is true while the instance is drained, since Since.
	Drained bool      `json:"drained"`
	Since   time.Time `json:"since,omitzero"`
	// Error is why the drain file could not be written.
	Error string `json:"error,omitempty"`
}

func (d *Daemon) drainRecordPath(kind, name string) string {
	return filepath.Join(d.fixed.Agent.StateDir, "drain-"+kind+"-"+name+".json")
}

// loadDrains reads the drained instances on record. A record that exists
// but does not parse still means drained: keeping a node out of service
// by mistake is the safe error.
func (d *Daemon) loadDrains(ins []*instance) {
	for _, in := range ins {
		p := d.drainRecordPath(string(in.cfg.Kind), in.cfg.Name)
		b, err := readSmall(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var r drainRecord
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			d.log.Error("drain record cannot be read; the instance stays drained (havip-agent resume ends it)", "vrrp_instance", in.cfg.Name, "path", p, "err", err)
		}
		d.drainSeq++
		d.drains[key(in.cfg.Kind, in.cfg.Name)] = &drainMark{since: r.Since, seq: d.drainSeq}
	}
}

// readSmall reads a record of the state directory, refusing what is not a
// regular file.
func readSmall(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	return io.ReadAll(io.LimitReader(f, recordSize))
}

// drainMarkOf returns the drain of in, if it is drained.
func (d *Daemon) drainMarkOf(in *instance) (drainMark, bool) {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	m, ok := d.drains[key(in.cfg.Kind, in.cfg.Name)]
	if !ok {
		return drainMark{}, false
	}
	return *m, true
}

// applyDrainFile writes in's drain file as its drain says (0, or 1 while
// drained) and reports the drained state: at start, so that keepalived
// sees a drain that outlived a restart or a reboot before it elects, and
// when a reload adds or changes the instance.
func (d *Daemon) applyDrainFile(in *instance) {
	_, drained := d.drainMarkOf(in)
	if in.cfg.DrainFile == "" {
		if drained {
			d.log.Warn("instance is drained but has no drain_file: keepalived is not told; havip-agent resume ends the drain", "vrrp_instance", in.cfg.Name)
		}
		return
	}
	d.obs.Drained(in.cfg.Name, drained)
	d.setDrainError(in, writeDrainFile(in.cfg.DrainFile, drained))
}

func (d *Daemon) setDrainError(in *instance, err error) {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	k := key(in.cfg.Kind, in.cfg.Name)
	if err == nil {
		delete(d.drainErrs, k)
		return
	}
	d.drainErrs[k] = err.Error()
	d.log.Error("drain file cannot be written", "vrrp_instance", in.cfg.Name, "path", in.cfg.DrainFile, "err", err)
}

// drainStatus is in's drain for status; nil without a drain file and
// not drained.
func (d *Daemon) drainStatus(in *instance) *DrainStatus {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	k := key(in.cfg.Kind, in.cfg.Name)
	m, drained := d.drains[k]
	if in.cfg.DrainFile == "" && !drained {
		return nil
	}
	s := &DrainStatus{File: in.cfg.DrainFile, Drained: drained, Error: d.drainErrs[k]}
	if drained {
		s.Since = m.since
	}
	return s
}

// setDrained drains in: the record first (so a crash after the file is
// written still finds the drain), then 1 into the drain file. already
// says it was drained before, and seq identifies the drain.
func (d *Daemon) setDrained(in *instance, at time.Time, why string) (seq uint64, already bool, err error) {
	d.drainMu.Lock()
	k := key(in.cfg.Kind, in.cfg.Name)
	if m, ok := d.drains[k]; ok {
		d.drainMu.Unlock()
		// Written again: someone may have changed the file.
		d.setDrainError(in, writeDrainFile(in.cfg.DrainFile, true))
		return m.seq, true, nil
	}
	rec := drainRecord{Kind: string(in.cfg.Kind), Name: in.cfg.Name, Since: at}
	p := d.drainRecordPath(rec.Kind, rec.Name)
	if err := health.WriteFileAtomic(p, mustJSON(rec), 0o640); err != nil {
		d.drainMu.Unlock()
		return 0, false, fmt.Errorf("%s: recording the drain: %w", in.cfg.Name, err)
	}
	if err := writeDrainFile(in.cfg.DrainFile, true); err != nil {
		_ = removeSynced(p)
		d.drainMu.Unlock()
		d.setDrainError(in, err)
		return 0, false, fmt.Errorf("%s: drain_file: %w", in.cfg.Name, err)
	}
	d.drainSeq++
	seq = d.drainSeq
	d.drains[k] = &drainMark{since: at, seq: seq}
	delete(d.drainErrs, k)
	d.drainMu.Unlock()
	d.drainChanged(in, true, at, why)
	return seq, false, nil
}

// clearDrained lifts the drain of in: 0 into the drain file, then the
// record goes. false when it was not drained.
func (d *Daemon) clearDrained(in *instance, why string) (bool, error) {
	at := time.Now()
	d.drainMu.Lock()
	k := key(in.cfg.Kind, in.cfg.Name)
	if _, ok := d.drains[k]; !ok {
		d.drainMu.Unlock()
		return false, nil
	}
	if in.cfg.DrainFile != "" {
		if err := writeDrainFile(in.cfg.DrainFile, false); err != nil {
			d.drainMu.Unlock()
			d.setDrainError(in, err)
			return false, fmt.Errorf("%s: drain_file: %w", in.cfg.Name, err)
		}
	}
	if err := removeSynced(d.drainRecordPath(string(in.cfg.Kind), in.cfg.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.drainMu.Unlock()
		return false, fmt.Errorf("%s: removing the drain record: %w", in.cfg.Name, err)
	}
	delete(d.drains, k)
	d.drainMu.Unlock()
	d.drainChanged(in, false, at, why)
	return true, nil
}

// drainChanged tells metrics, systemd, the log, the history and the hooks;
// at is when the drain file was about to change, so that the history shows
// the drain before what keepalived made of it.
func (d *Daemon) drainChanged(in *instance, drained bool, at time.Time, why string) {
	d.obs.Drained(in.cfg.Name, drained)
	d.publishStatus()
	snap := in.snapshot()
	e := event{kind: evDrain, at: at, instance: in.cfg.Name, generation: snap.gen, message: why}
	if drained {
		d.log.Info("instance drained: keepalived puts it into FAULT and the peer takes over", "vrrp_instance", in.cfg.Name, "drain_file", in.cfg.DrainFile, "reason", why)
	} else {
		e.kind = evResume
		d.log.Info("drain lifted; keepalived decides when this node is MASTER again", "vrrp_instance", in.cfg.Name, "reason", why)
	}
	d.events.emit(e)
}

// drainTargets resolves the instances a drain or resume names (every
// instance when none); a drain needs a drain_file on each.
func (d *Daemon) drainTargets(names []string, needFile bool) ([]*instance, error) {
	tab := d.table()
	var out []*instance
	if len(names) == 0 {
		out = tab.instances
	}
	for _, n := range names {
		var found []*instance
		for _, in := range tab.instances {
			if in.cfg.Name == n || key(in.cfg.Kind, in.cfg.Name) == n {
				found = append(found, in)
			}
		}
		if len(found) == 0 {
			var known []string
			for _, in := range tab.instances {
				known = append(known, in.cfg.Name)
			}
			return nil, fmt.Errorf("no instance named %q (the configured ones: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, found...)
	}
	if !needFile {
		return out, nil
	}
	var errs []string
	for _, in := range out {
		if in.cfg.DrainFile == "" {
			errs = append(errs, fmt.Sprintf("instance %s has no drain_file, so keepalived cannot be told to step down: set drain_file = \"/run/havip-agent/track/drain-%s\" in its [[instance]] in %s, watch that file in keepalived.conf with track_file and weight 0 (havip-agent config check -keepalived checks it), then reload keepalived and havip-agent",
				in.cfg.Name, in.cfg.Name, d.fixed.Path))
		}
	}
	if len(errs) > 0 {
		return nil, errors.New("drain refused: " + strings.Join(errs, "; "))
	}
	return out, nil
}

// Drain is a planned switchover (havip-agent drain): each instance named
// (every one when none) is drained, persisted, and keepalived told through
// its drain file; then it waits until this node has left MASTER and the
// cloud points at another node, reporting a timeline through progress. An
// instance no other node took over within the timeout is resumed again
// and the drain fails, unless r.Force. When ctx ends first (the client
// went away, the daemon stops), the drains stay in force.
func (d *Daemon) Drain(ctx context.Context, r control.DrainRequest, progress func(string)) error {
	ins, err := d.drainTargets(r.Instances, true)
	if err != nil {
		return err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}
	timeout = min(timeout, MaxDrainTimeout)
	start := time.Now()
	why := fmt.Sprintf("havip-agent drain (timeout %s", timeout)
	if r.Force {
		why += ", --force"
	}
	why += ")"
	type draining struct {
		in  *instance
		seq uint64
		w   *drainWatch
	}
	var ds []*draining
	for _, in := range ins {
		// Looked at before keepalived is told: it may step down within
		// the millisecond.
		before := in.snapshot().state
		seq, already, err := d.setDrained(in, start, why)
		if err != nil {
			return err
		}
		if already {
			m, _ := d.drainMarkOf(in)
			progress(fmt.Sprintf("%7s  %s  already drained since %s; waiting for the switchover", "+0.00s", in.cfg.Name, m.since.Format(time.RFC3339)))
		} else {
			progress(fmt.Sprintf("%7s  %s  drained: %s = 1, keepalived now puts the instance into FAULT", "+0.00s", in.cfg.Name, in.cfg.DrainFile))
		}
		var res []cloud.Resource
		if in.cloud != nil && d.provider != nil {
			res = in.cloud.resources
		}
		x := &draining{in: in, seq: seq, w: newDrainWatch(in.cfg.Name, start, res)}
		for _, l := range x.w.step(drainSight{at: start, state: before}) {
			progress(l)
		}
		ds = append(ds, x)
	}
	look := time.NewTicker(drainLookEvery)
	defer look.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var lastRead time.Time
	for {
		now := time.Now()
		readNow := now.Sub(lastRead) >= drainReadEvery
		pending := 0
		var resumed []string
		for _, x := range ds {
			if x.w.done {
				continue
			}
			if m, ok := d.drainMarkOf(x.in); !ok || m.seq != x.seq {
				resumed = append(resumed, x.in.cfg.Name)
				continue
			}
			s := drainSight{at: now, state: x.in.snapshot().state}
			if readNow && x.w.wantsCloud() {
				s.reads = d.observeAll(ctx, x.w.resources)
				lastRead = now
				if ctx.Err() != nil {
					break
				}
			}
			for _, l := range x.w.step(s) {
				progress(l)
			}
			if x.w.done {
				d.events.emit(event{kind: evDrainDone, instance: x.in.cfg.Name, generation: x.in.snapshot().gen,
					message: "switchover complete after " + fmtElapsed(time.Since(start)) + x.w.summary()})
			} else {
				pending++
			}
		}
		if len(resumed) > 0 {
			return fmt.Errorf("%s resumed by another request while the drain waited", strings.Join(resumed, ", "))
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain interrupted (%w): the drain stays in force; havip-agent resume ends it", context.Cause(ctx))
		case <-deadline.C:
			var failed []string
			for _, x := range ds {
				if x.w.done {
					continue
				}
				stuck := x.w.stuck()
				if r.Force {
					progress(fmt.Sprintf("%7s  %s  not taken over after %s (%s); stays drained (--force)", "+"+fmtElapsed(time.Since(start)), x.in.cfg.Name, timeout, stuck))
					continue
				}
				progress(fmt.Sprintf("%7s  %s  not taken over after %s: %s; undoing the drain", "+"+fmtElapsed(time.Since(start)), x.in.cfg.Name, timeout, stuck))
				if _, err := d.clearDrained(x.in, fmt.Sprintf("drain undone: not taken over within %s: %s", timeout, stuck)); err != nil {
					failed = append(failed, fmt.Sprintf("%s: %s, and undoing the drain failed: %v", x.in.cfg.Name, stuck, err))
					continue
				}
				progress(fmt.Sprintf("%7s  %s  resumed: %s = 0", "+"+fmtElapsed(time.Since(start)), x.in.cfg.Name, x.in.cfg.DrainFile))
				failed = append(failed, fmt.Sprintf("%s: %s", x.in.cfg.Name, stuck))
			}
			if len(failed) > 0 {
				return fmt.Errorf("not drained, the drain was undone (--force keeps it): %s", strings.Join(failed, "; "))
			}
			return nil
		case <-look.C:
		}
	}
}

// observeAll reads each resource once, read-only.
func (d *Daemon) observeAll(ctx context.Context, res []cloud.Resource) []drainRead {
	out := make([]drainRead, 0, len(res))
	for _, r := range res {
		o, err := d.provider.Observe(ctx, r)
		out = append(out, drainRead{key: r.Key(), o: o, err: err})
	}
	return out
}

// Resume lifts the drain of each instance named (every one when none) at
// once: keepalived decides when this node is MASTER again. It returns a
// line per instance.
func (d *Daemon) Resume(names []string) ([]string, error) {
	ins, err := d.drainTargets(names, false)
	if err != nil {
		return nil, err
	}
	var lines []string
	var errs []error
	for _, in := range ins {
		ok, err := d.clearDrained(in, "havip-agent resume")
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok && in.cfg.DrainFile != "":
			lines = append(lines, fmt.Sprintf("%s resumed: %s = 0; keepalived decides when this node is MASTER again", in.cfg.Name, in.cfg.DrainFile))
		case ok:
			lines = append(lines, in.cfg.Name+" resumed (it has no drain_file)")
		case in.cfg.DrainFile != "" || len(names) > 0:
			lines = append(lines, in.cfg.Name+" was not drained")
		}
	}
	return lines, errors.Join(errs...)
}

// writeDrainFile replaces path atomically with "1\n" (drained) or "0\n":
// keepalived watches it with inotify and must never read a half-written
// value.
func writeDrainFile(path string, drained bool) error {
	v := []byte("0\n")
	if drained {
		v = []byte("1\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return health.WriteFileAtomic(path, v, 0o644)
}

// removeSynced removes path and syncs its directory.
func removeSynced(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// A record of strings and a time cannot fail to encode.
	_ = enc.Encode(v)
	return b.Bytes()
}
