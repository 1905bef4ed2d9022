// Package e2e holds the tests and benchmarks that run the real binaries in
// network namespaces: the agent on its own (core), with the emulator as
// the cloud, and with real keepalived. They need root; see package netns.
package e2e
