package agent

import (
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/agent/hooks"
	"github.com/havip-agent/havip-agent/agent/vocab"
	"github.com/havip-agent/havip-agent/health"
)

// Status is what "havip-agent status" shows.
type Status struct {
	Version      string            `json:"version"`
	GoVersion    string            `json:"go_version"`
	Started      time.Time         `json:"started"`
	Keepalived   KeepalivedStatus  `json:"keepalived"`
	Instances    []InstanceStatus  `json:"instances"`
	LinesRead    uint64            `json:"fifo_lines_read"`
	IgnoredLines map[string]uint64 `json:"fifo_lines_ignored"`
	Checks       []health.Status   `json:"checks,omitempty"`
	// Cloud says whether the cloud side is set up, and why not.
	Cloud *CloudSetupStatus `json:"cloud_setup,omitempty"`
	// Credentials is the state of the cloud credentials, once the cloud side has been set up.
	Credentials *CredentialsStatus `json:"cloud_credentials,omitempty"`
	// Reload is the outcome of the latest configuration reload.
	Reload *reloadStatus `json:"reload,omitempty"`
	// Hooks are the event hooks with their last runs.
	Hooks []hooks.Status `json:"hooks,omitempty"`
	// History is what the failover history did since start.
	History *HistoryStatus `json:"history,omitempty"`
}

// HistoryStatus is the failover history in state_dir.
type HistoryStatus struct {
	Dir     string `json:"dir"`
	Written uint64 `json:"written"`
	Dropped uint64 `json:"dropped"`
	Failed  uint64 `json:"failed"`
}

// CloudSetupStatus is whether the cloud provider could be built.
type CloudSetupStatus struct {
	Ready  bool      `json:"ready"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// CredentialsKind names where the cloud credentials come from.
type CredentialsKind string

// Kinds of cloud credentials.
const (
	// CredentialsInstanceRole: temporary credentials of the instance role, refreshed from the
	// metadata service.
	CredentialsInstanceRole CredentialsKind = "instance-role"
	// CredentialsFile: a static access key read from a file at start.
	CredentialsFile CredentialsKind = "file"
)

// CredentialsStatus is what the cloud credential source reports. It holds no secret: an
// access key id identifies a key but does not sign anything.
type CredentialsStatus struct {
	Kind        CredentialsKind `json:"kind"`
	AccessKeyID string          `json:"access_key_id,omitempty"`
	// Expiration is when the credentials in use expire; zero for a static key, or before
	// the first fetch.
	Expiration time.Time `json:"expiration,omitzero"`
	// LastRefresh is when the credentials in use were fetched.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// NextRefresh is when the next refresh is due.
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// LastError is the error of the last refresh when it failed.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// FailingSince is when the refreshes started failing; since then the last good
	// credentials, if still valid, are in use.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Failures counts the refreshes failed in a row, FailuresTotal all since start.
	Failures      int    `json:"failures,omitempty"`
	FailuresTotal uint64 `json:"failures_total,omitempty"`
	// Stale reports that the last refresh failed and the earlier credentials, still valid,
	// are in use.
	Stale bool `json:"stale,omitempty"`
}

// KeepalivedStatus is what the liveness watch knows.
type KeepalivedStatus struct {
	Watching bool   `json:"watching"`
	State    string `json:"state,omitempty"` // alive, dead, or empty before the first look
	Detail   string `json:"detail,omitempty"`
}

// InstanceStatus is one instance's state.
type InstanceStatus struct {
	Name       string           `json:"name"`
	Kind       vocab.Kind       `json:"kind"`
	Interface  string           `json:"interface"`
	State      State            `json:"state"`
	Since      time.Time        `json:"since,omitzero"`
	Generation uint64           `json:"generation"`
	Priority   int              `json:"priority,omitempty"`
	VIPs       []VIPStatus      `json:"vips"`
	Last       *Transition      `json:"last_transition,omitempty"`
	LastError  string           `json:"last_error,omitempty"`
	Checks     []string         `json:"checks,omitempty"`
	Cloud      []ResourceStatus `json:"cloud,omitempty"`
	// Drain is the instance's drain; nil without a drain_file.
	Drain *DrainStatus `json:"drain,omitempty"`
}

// VIPStatus says whether a VIP is on the interface now.
type VIPStatus struct {
	Address string `json:"address"`
	Present bool   `json:"present"`
}

// Status returns a snapshot; the VIPs' presence is read from the
// interface, not assumed.
func (d *Daemon) Status() any { return d.status() }

func (d *Daemon) status() Status {
	s := Status{
		Version:      d.version,
		GoVersion:    runtime.Version(),
		Started:      d.started,
		LinesRead:    d.linesRead.Load(),
		IgnoredLines: map[string]uint64{},
		Checks:       d.checkStatuses(),
		Hooks:        d.events.hooks.Load().Status(),
	}
	if d.journal != nil {
		st := d.journal.Stats()
		s.History = &HistoryStatus{Dir: d.fixed.Agent.StateDir, Written: st.Written, Dropped: st.Dropped, Failed: st.Failed}
	}
	if r := d.reloadStatus(); r.Count > 0 {
		s.Reload = &r
	}
	if d.provider != nil {
		ready, reason, since := d.provider.status()
		s.Cloud = &CloudSetupStatus{Ready: ready, Reason: reason, Since: since}
	}
	if d.credentials != nil {
		s.Credentials = d.credentials()
	}
	d.kaMu.Lock()
	s.Keepalived = KeepalivedStatus{Watching: d.fixed.Keepalived.PIDFile != "", State: d.kaState, Detail: d.kaDetail}
	d.kaMu.Unlock()
	for r, c := range d.ignored {
		if n := c.n.Load(); n > 0 {
			s.IgnoredLines[string(r)] = n
		}
	}
	lists := map[string]map[netip.Addr]bool{}
	for _, in := range d.table().instances {
		have, ok := lists[in.cfg.Interface]
		if !ok {
			have = map[netip.Addr]bool{}
			if ps, err := d.net.List(in.cfg.Interface); err == nil {
				for _, p := range ps {
					have[p.Addr()] = true
				}
			}
			lists[in.cfg.Interface] = have
		}
		snap := in.snapshot()
		is := InstanceStatus{
			Name: in.cfg.Name, Kind: in.cfg.Kind, Interface: in.cfg.Interface,
			State: snap.state, Since: snap.since, Generation: snap.gen, Priority: snap.priority,
			Last: snap.last, LastError: snap.errText, Checks: in.cfg.Checks,
		}
		if in.cloud != nil {
			is.Cloud = in.cloud.snapshot()
		}
		is.Drain = d.drainStatus(in)
		for _, v := range in.cfg.VIPs {
			is.VIPs = append(is.VIPs, VIPStatus{Address: v.String(), Present: have[v.Addr()]})
		}
		s.Instances = append(s.Instances, is)
	}
	return s
}

// WriteText renders a status for people.
func (s Status) WriteText(w io.Writer, now time.Time) {
	fmt.Fprintf(w, "havip-agent %s, up %s\n", s.Version, now.Sub(s.Started).Round(time.Second))
	switch {
	case !s.Keepalived.Watching:
		fmt.Fprintln(w, "keepalived: liveness watch off")
	case s.Keepalived.State == "":
		fmt.Fprintln(w, "keepalived: not looked at yet")
	default:
		fmt.Fprintf(w, "keepalived: %s (%s)\n", s.Keepalived.State, s.Keepalived.Detail)
	}
	if c := s.Cloud; c != nil && !c.Ready {
		fmt.Fprintf(w, "cloud: not set up yet (since %s): %s\n", c.Since.Format(time.RFC3339), c.Reason)
	}
	if c := s.Credentials; c != nil {
		c.writeText(w, now)
	}
	if r := s.Reload; r != nil {
		if r.OK {
			fmt.Fprintf(w, "last reload: %s, ok\n", r.At.Format(time.RFC3339))
		} else {
			fmt.Fprintf(w, "last reload: %s, REFUSED (running configuration kept): %s\n", r.At.Format(time.RFC3339), r.Error)
		}
	}
	for _, in := range s.Instances {
		since := "never"
		if !in.Since.IsZero() {
			since = in.Since.Format(time.RFC3339) + " (" + now.Sub(in.Since).Round(time.Second).String() + " ago)"
		}
		fmt.Fprintf(w, "\n%s %s on %s: %s since %s, generation %d\n", in.Kind, in.Name, in.Interface, in.State, since, in.Generation)
		if dr := in.Drain; dr != nil {
			since := ""
			if !dr.Since.IsZero() {
				since = " since " + dr.Since.Format(time.RFC3339)
			}
			switch {
			case dr.Drained && dr.File == "":
				fmt.Fprintf(w, "  DRAINED%s, but without a drain_file keepalived is not told (havip-agent resume %s ends it)\n", since, in.Name)
			case dr.Drained:
				fmt.Fprintf(w, "  DRAINED%s (%s holds 1; havip-agent resume %s ends it)\n", since, dr.File, in.Name)
			default:
				fmt.Fprintf(w, "  drain file %s: 0 (not drained)\n", dr.File)
			}
			if dr.Error != "" {
				fmt.Fprintf(w, "    drain file error: %s\n", dr.Error)
			}
		}
		for _, v := range in.VIPs {
			mark := "absent"
			if v.Present {
				mark = "present"
			}
			fmt.Fprintf(w, "  vip %-24s %s\n", v.Address, mark)
		}
		if t := in.Last; t != nil {
			fmt.Fprintf(w, "  last transition %s -> %s (%s) at %s: vips %s", t.From, t.To, t.Source, t.Received.Format(time.RFC3339Nano), t.VIPsDone)
			if t.FirstAnnouncement > 0 {
				fmt.Fprintf(w, ", first announcement %s", t.FirstAnnouncement)
			}
			fmt.Fprintln(w)
			for _, e := range t.Errors {
				fmt.Fprintf(w, "    error: %s\n", e)
			}
		}
		if len(in.Checks) > 0 {
			fmt.Fprintf(w, "  checks: %s\n", strings.Join(in.Checks, ", "))
		}
		for _, c := range in.Cloud {
			own := "elsewhere"
			if c.Owned {
				own = "here"
			}
			if c.Checked.IsZero() {
				own = "not checked yet"
			}
			fmt.Fprintf(w, "  cloud %s: %s", c.Resource, own)
			if c.Current != "" {
				fmt.Fprintf(w, " (points at %s)", c.Current)
			}
			fmt.Fprintf(w, ", claims %d, reclaims %d, conflicts %d", c.Claims, c.Reclaims, c.Conflicts)
			if c.ConfirmedAfter > 0 {
				fmt.Fprintf(w, ", last confirmed %s after MASTER", c.ConfirmedAfter.Round(time.Millisecond))
			}
			if !c.NextReclaim.IsZero() {
				fmt.Fprintf(w, ", next reclaim not before %s", c.NextReclaim.Format(time.RFC3339))
			}
			fmt.Fprintln(w)
			if c.PublicIP != "" {
				fmt.Fprintf(w, "    public IP %s\n", c.PublicIP)
			}
			if c.PublicIPProblem != "" {
				fmt.Fprintf(w, "    public IP problem: %s\n", c.PublicIPProblem)
			}
			if c.Error != "" {
				fmt.Fprintf(w, "    %s error: %s\n", c.ErrorKind, c.Error)
			}
		}
		if in.LastError != "" {
			fmt.Fprintf(w, "  last error: %s\n", in.LastError)
		}
	}
	if len(s.Checks) > 0 {
		fmt.Fprintln(w)
	}
	for _, c := range s.Checks {
		fmt.Fprintf(w, "check %s (%s): %s since %s; last %s in %s: %s\n", c.Name, c.Type, c.Verdict, c.Since.Format(time.RFC3339),
			okText(c.Last.OK), c.Last.Duration.Round(time.Microsecond), c.Last.Message)
		if c.TrackError != "" {
			fmt.Fprintf(w, "  track file %s: %s\n", c.TrackFile, c.TrackError)
		}
	}
	if len(s.Hooks) > 0 {
		fmt.Fprintln(w)
	}
	for _, h := range s.Hooks {
		fmt.Fprintf(w, "hook %s (%s): %d runs, %d failed, %d dropped", h.Name, h.Type, h.Runs, h.Failures, h.Drops)
		if h.Running > 0 || h.Queued > 0 {
			fmt.Fprintf(w, ", %d running, %d queued", h.Running, h.Queued)
		}
		if l := h.Last; l != nil {
			fmt.Fprintf(w, "; last for %s %s generation %d at %s: %s", l.Instance, l.Event, l.Generation, l.Started.Format(time.RFC3339), h.LastOutcome)
		}
		fmt.Fprintln(w)
	}
	if hs := s.History; hs != nil {
		fmt.Fprintf(w, "\nhistory in %s: %d events written", hs.Dir, hs.Written)
		if hs.Dropped > 0 || hs.Failed > 0 {
			fmt.Fprintf(w, ", %d dropped, %d writes failed", hs.Dropped, hs.Failed)
		}
		fmt.Fprintln(w, " (havip-agent history)")
	}
	fmt.Fprintf(w, "\nfifo lines read: %d", s.LinesRead)
	if len(s.IgnoredLines) > 0 {
		var parts []string
		for r, n := range s.IgnoredLines {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, ", ignored: %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}

func okText(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

// writeText renders the credentials' state: one line, and one more while refreshing fails.
func (c *CredentialsStatus) writeText(w io.Writer, now time.Time) {
	at := func(t time.Time) string {
		d := t.Sub(now).Round(time.Second)
		if d < 0 {
			return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), -d)
		}
		return fmt.Sprintf("%s (in %s)", t.Format(time.RFC3339), d)
	}
	switch {
	case c.Kind != CredentialsInstanceRole:
		fmt.Fprintf(w, "cloud credentials: %s", c.Kind)
		if c.AccessKeyID != "" {
			fmt.Fprintf(w, ", access key %s", c.AccessKeyID)
		}
		fmt.Fprintln(w)
		return
	case c.AccessKeyID == "":
		fmt.Fprint(w, "cloud credentials: instance role, none fetched yet")
	default:
		expiry := "expires"
		if !now.Before(c.Expiration) {
			expiry = "EXPIRED"
		}
		fmt.Fprintf(w, "cloud credentials: instance role, access key %s, %s %s, fetched %s", c.AccessKeyID, expiry, at(c.Expiration), at(c.LastRefresh))
	}
	if !c.NextRefresh.IsZero() {
		fmt.Fprintf(w, ", next refresh %s", at(c.NextRefresh))
	}
	fmt.Fprintln(w)
	if c.LastError == "" {
		return
	}
	fmt.Fprintf(w, "  refresh FAILING since %s, %d in a row, last %s: %s\n", at(c.FailingSince), c.Failures, at(c.LastErrorAt), c.LastError)
	if c.Stale {
		fmt.Fprintf(w, "  using the last good credentials until they expire at %s\n", at(c.Expiration))
	} else {
		fmt.Fprintln(w, "  no valid credentials: cloud calls fail until a refresh succeeds")
	}
}
