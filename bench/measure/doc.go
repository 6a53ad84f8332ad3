// Package measure holds the benchmark's measuring instruments: a scraper for
// kube-proxy's metrics (which kproxy exposes under the same names), process
// statistics from /proc, iptables ruleset counting and rewriting for the
// restore floor, TCP connect timing inside a network namespace, and
// quantiles. Nothing here knows which proxy is being measured.
package measure
