// Package matrix holds the pure parts of the failover matrix benchmark
// (e2e BenchmarkFailoverMatrix): the configurations and faults it runs,
// the window in which the VIP was on two nodes computed from sampled
// presence, percentiles, the false failovers of the load runs, the
// targets of issue 12, the advert_int recommendation, and the JSON and
// markdown the README quotes.
package matrix
