// Package userspacebench measures kproxy's userspace proxy against a direct
// pod-to-pod connection and against haproxy (the reference userspace TCP
// proxy, fetched from Debian by hack/fetch-haproxy.sh into the cache without
// installing it), in the same run, inside testrig namespaces: bulk TCP
// throughput with CPU accounting, and short-request latency (p50, p99) both
// on a kept-open connection and with a new connection per request, with
// client, server and proxy sharing the CPUs and with the proxy on a CPU of
// its own. The proxy runs as its own process in the node's namespace (the
// test binary re-executed), with its real rules, exactly as in production.
//
// Run (as root; about a minute):
//
//	KPROXY_BENCH=1 go test ./bench/userspace/ -run TestUserspaceBench -v [-write]
//
// -write stores the figures in RESULTS.md.
package userspacebench
