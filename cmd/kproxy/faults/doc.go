// Package faults holds kproxy's reliability tests: the real kproxy binary
// runs in a testrig node against a real kube-apiserver while the test
// breaks things around it — the apiserver dies, kproxy's watches expire,
// the apiserver serves malformed objects, iptables-restore fails, kproxy
// itself is SIGKILLed, someone flushes the nat table, other components own
// rules in the same tables, the mode changes — and checks with real
// traffic that Services keep working and the node converges.
//
// Every test needs root (testrig.RequireRoot) and the upstream binaries of
// hack/build-upstream.sh; the figures they log feed RELIABILITY.md.
package faults
