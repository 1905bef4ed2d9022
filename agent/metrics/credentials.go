package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Credentials is what the cloud credential source reports, read at scrape time.
type Credentials struct {
	// Expiration is when the credentials in use expire; zero while there are none.
	Expiration time.Time
	// RefreshFailures counts the failed refreshes since start.
	RefreshFailures uint64
	// Stale reports that the last refresh failed and the earlier credentials, still valid,
	// are in use.
	Stale bool
}

// credentialsCollector exports the state of the credential source from a snapshot taken at
// every scrape, so that nothing has to push it and the series are never behind.
type credentialsCollector struct {
	read                    atomic.Pointer[func() (Credentials, bool)]
	expiry, failures, stale *prometheus.Desc
}

func newCredentialsCollector() *credentialsCollector {
	return &credentialsCollector{
		expiry: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "cloud_credentials_expiry_timestamp_seconds"),
			"Unix time at which the instance-role credentials in use expire; 0 while there are none. Absent with a credentials file.", nil, nil),
		failures: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "cloud_credentials_refresh_failures_total"),
			"Failed refreshes of the instance-role credentials. Absent with a credentials file.", nil, nil),
		stale: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "cloud_credentials_stale"),
			"1 while the last refresh of the instance-role credentials failed and the earlier ones, still valid, are in use, else 0. Absent with a credentials file.", nil, nil),
	}
}

func (c *credentialsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.failures
	ch <- c.stale
}

func (c *credentialsCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.read.Load()
	if f == nil {
		return
	}
	cr, ok := (*f)()
	if !ok {
		return
	}
	expiry := 0.0
	if !cr.Expiration.IsZero() {
		expiry = unixSeconds(cr.Expiration)
	}
	ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, expiry)
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(cr.RefreshFailures))
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, b2f(cr.Stale))
}

// CredentialsFrom makes every scrape export the state f reports of the cloud credential
// source. f must be cheap and must not block; it answers false when there is nothing to
// report (a credentials file, or no cloud side yet), and then the series are absent.
func (m *Metrics) CredentialsFrom(f func() (Credentials, bool)) { m.creds.read.Store(&f) }
