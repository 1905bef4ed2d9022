package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

var credentialFamilies = []string{
	"havip_agent_cloud_credentials_expiry_timestamp_seconds",
	"havip_agent_cloud_credentials_refresh_failures_total",
	"havip_agent_cloud_credentials_stale",
}

// TestCredentials shows that every scrape reads the credential source's state at that moment,
// and that without one (a credentials file, no cloud side) the series are absent.
func TestCredentials(t *testing.T) {
	exp := time.Unix(1700003600, 500000000)
	tests := []struct {
		name string
		f    func() (Credentials, bool)
		want string // the exposition of the three families, "" for none
	}{
		{"no source", nil, ""},
		{"nothing to report", func() (Credentials, bool) { return Credentials{}, false }, ""},
		{"none fetched yet", func() (Credentials, bool) { return Credentials{RefreshFailures: 2}, true }, `
havip_agent_cloud_credentials_expiry_timestamp_seconds 0
havip_agent_cloud_credentials_refresh_failures_total 2
havip_agent_cloud_credentials_stale 0
`},
		{"healthy", func() (Credentials, bool) { return Credentials{Expiration: exp, RefreshFailures: 2}, true }, `
havip_agent_cloud_credentials_expiry_timestamp_seconds 1.7000036005e+09
havip_agent_cloud_credentials_refresh_failures_total 2
havip_agent_cloud_credentials_stale 0
`},
		{"stale", func() (Credentials, bool) { return Credentials{Expiration: exp, RefreshFailures: 7, Stale: true}, true }, `
havip_agent_cloud_credentials_expiry_timestamp_seconds 1.7000036005e+09
havip_agent_cloud_credentials_refresh_failures_total 7
havip_agent_cloud_credentials_stale 1
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMetrics()
			if tt.f != nil {
				m.CredentialsFrom(tt.f)
			}
			want := ""
			if tt.want != "" {
				want = `# HELP havip_agent_cloud_credentials_expiry_timestamp_seconds Unix time at which the instance-role credentials in use expire; 0 while there are none. Absent with a credentials file.
# TYPE havip_agent_cloud_credentials_expiry_timestamp_seconds gauge
# HELP havip_agent_cloud_credentials_refresh_failures_total Failed refreshes of the instance-role credentials. Absent with a credentials file.
# TYPE havip_agent_cloud_credentials_refresh_failures_total counter
# HELP havip_agent_cloud_credentials_stale 1 while the last refresh of the instance-role credentials failed and the earlier ones, still valid, are in use, else 0. Absent with a credentials file.
# TYPE havip_agent_cloud_credentials_stale gauge
` + strings.TrimPrefix(tt.want, "\n")
			}
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), credentialFamilies...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCredentialsReadAtScrape shows that no push is needed: a change of the source shows in
// the next scrape.
func TestCredentialsReadAtScrape(t *testing.T) {
	m := newTestMetrics()
	cur := Credentials{RefreshFailures: 1}
	m.CredentialsFrom(func() (Credentials, bool) { return cur, true })
	for i, c := range []Credentials{{RefreshFailures: 1}, {RefreshFailures: 4, Stale: true}, {RefreshFailures: 4}} {
		cur = c
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "havip_agent_cloud_credentials_") {
				mt := mf.GetMetric()[0]
				got[mf.GetName()] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			}
		}
		if got["havip_agent_cloud_credentials_refresh_failures_total"] != float64(c.RefreshFailures) ||
			got["havip_agent_cloud_credentials_stale"] != b2f(c.Stale) {
			t.Errorf("scrape %d: %v, want failures %d, stale %v", i, got, c.RefreshFailures, c.Stale)
		}
	}
}
