// Package iptables is kproxy's iptables mode: it programs one IP family's
// Services as iptables rules with kube-proxy's chain layout and names, so
// that kproxy can take over a node from kube-proxy and back.
//
// Render turns a proxier.Snapshot into iptables-restore input with no I/O;
// Proxier.Sync writes it with one iptables-restore (the whole ruleset on a
// full sync, only the changed Services' chains plus the dispatch chains on
// a partial one), ensures the jump rules from the built-in chains, deletes
// stale chains and watches a canary chain. Every kernel call goes through
// the Kernel interface: ExecKernel runs the real binaries (optionally in
// another network namespace), Fake behaves like them in memory.
package iptables
