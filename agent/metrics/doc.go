// Package metrics holds havip-agent's Prometheus metrics and the small HTTP
// server surface that exposes them (/metrics, /healthz, /readyz).
//
// Every metric lives in a private registry created by New, so nothing is
// registered globally and two agents in one test binary do not collide. All
// names start with havip_agent_, use base units (seconds) and end in _total
// for counters. The VRRP instance is carried in the label vrrp_instance:
// Prometheus itself attaches a target label called instance to every scraped
// series, so reusing that name would be overwritten (or renamed to
// exported_instance) at scrape time.
//
// The recording methods are safe for concurrent use and cheap (a map lookup
// and an atomic add); the agent calls them on the failover path, but only
// after the first gratuitous ARP has left, never before it.
package metrics
