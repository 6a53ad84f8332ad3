// Package iptables is kproxy's iptables mode: it programs one IP family's
// Services as iptables rules with kube-proxy's chain layout and names, so
// that kproxy can take over a node from kube-proxy and back.
//
// Render turns a proxier.Snapshot into iptables-restore input with no I/O,
// in iptables-save's exact form, caching each Service's rendering; above
// 1,000 entries nat KUBE-SERVICES dispatches through 16+256 bucket chains
// keyed by the destination's last byte. Proxier.Sync writes, with one
// iptables-restore, only the chains whose content differs from what the
// kernel has (read back on a full sync, remembered on a partial one),
// ensures the jump rules from the built-in chains, deletes stale chains and
// watches a canary chain. SCALE.md has the measurements. Every kernel call goes through
// the Kernel interface: xtables.Runner runs the real binaries (optionally
// in another network namespace), Fake behaves like them in memory.
package iptables
