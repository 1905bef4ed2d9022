// Package compare holds the measurement helpers of the comparison
// benchmark (e2e BenchmarkCompare and BenchmarkScale): recognising VRRP
// advertisements and gratuitous ARP in captured frames, summarising
// latencies into percentiles, and rendering the results as JSON and as the
// markdown table the README quotes.
package compare
