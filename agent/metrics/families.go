package metrics

import (
	"strings"
	"time"

	"github.com/havip-agent/havip-agent/agent/vocab"
)

// Families returns the name of every metric family the agent exports
// (besides the Go and process collectors' own), for checking that alert
// rules and dashboards name only real metrics. It records one of
// everything on a throwaway registry.
func Families() (map[string]bool, error) {
	m := New(BuildInfo{Version: "families"})
	m.SetState("VI_1", vocab.StateMaster)
	m.Transition("VI_1", vocab.StateMaster, time.Now())
	m.Phase("VI_1", vocab.PhaseFirstAnnouncement, time.Millisecond)
	m.VIPPresent("VI_1", "198.18.0.100/24", true)
	m.Announcements("VI_1", 1)
	m.CloudRequest("havip.attach", CodeOK, time.Millisecond)
	m.CloudOwned("VI_1", "havip/havip-x", true)
	m.Reclaim("VI_1", "havip/havip-x")
	m.Conflict("VI_1", "havip/havip-x")
	m.FIFOLine()
	m.FIFOIgnored("malformed")
	m.CheckResult("nginx", true, time.Millisecond)
	m.CheckVerdict("nginx", true)
	m.CheckInstance("VI_1", "nginx")
	m.ConnectionRejected()
	m.CloudReady(true)
	m.Reload(true)
	m.CredentialsFrom(func() (Credentials, bool) { return Credentials{Expiration: time.Now()}, true })
	m.Drained("VI_1", true)
	m.HookRun("pager", "ok", time.Millisecond)
	m.HookDropped("pager")
	m.HistoryFrom(func() (History, bool) { return History{}, true })
	mfs, err := m.Registry().Gather()
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	return have, nil
}

// Family maps a series name to its metric family: histogram series carry
// _bucket, _sum and _count suffixes.
func Family(series string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(series, s); ok && strings.HasSuffix(f, "_seconds") {
			return f
		}
	}
	return series
}
