// Package userspacebench measures kproxy's userspace proxy against a direct
// pod-to-pod connection, in the same run, inside testrig namespaces: bulk
// TCP throughput, and short-request latency (p50, p99) both on a kept-open
// connection and with a new connection per request. The proxy runs as its
// own process in the node's namespace (the test binary re-executed), with
// its real rules, exactly as in production.
//
// Run (as root; about a minute):
//
//	KPROXY_BENCH=1 go test ./bench/userspace/ -run TestUserspaceBench -v [-write]
//
// -write stores the figures in RESULTS.md.
package userspacebench
