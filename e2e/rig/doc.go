// Package rig runs havip-agent, keepalived and the BCE emulator in network
// namespaces on one machine: the failover rig of the end-to-end tests,
// benchmarks and the demo.
//
//	sw:     br0 198.18.0.1/24 (the emulator listens here, learning ARP)
//	n1:     eth0 198.18.0.11/24  keepalived + havip-agent
//	n2:     eth0 198.18.0.12/24  keepalived + havip-agent
//	client: eth0 198.18.0.50/24
//
// Every process started here is stopped, and every namespace removed, by
// Close; namespaces are also removed on SIGINT and SIGTERM.
package rig
