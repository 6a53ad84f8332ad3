// Package report holds the benchmark's results (one Row per proxy and
// workload) and writes them out: results.json, a markdown table with
// absolute figures and ratios (kproxy/upstream, kproxy/floor), PNG plots of
// latency and memory against N (gonum.org/v1/plot) and a description of the
// machine.
package report
