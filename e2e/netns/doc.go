// Package netns builds throw-away hosts for tests: network namespaces
// joined by veth pairs and bridges, named with a unique prefix and always
// torn down, on success, failure and SIGINT alike.
//
// Only addresses from 198.18.0.0/15 (the benchmarking range) are accepted,
// and IPv6 is switched off inside the namespaces, so a test can never send
// traffic anywhere but its own hosts.
package netns
