// Package harness runs the kproxy benchmark: on a local real control plane
// (etcd + kube-apiserver from internal/testrig) it creates N Services × M
// endpoints, then runs every proxy under test in turn on a freshly built node
// namespace and measures it (see Measure), then measures the floor, a bare
// iptables-restore of the same ruleset into a fresh namespace. Objects are
// created once per (N, M) and reused by every proxy; N grows from one
// workload to the next.
//
// The proxies are separate binaries (kproxy from ./cmd/kproxy, upstream
// kube-proxy from hack/build-upstream.sh) started with kube-proxy's flags.
// Where they run is behind the Node interface: NetnsNode is the rig's node
// namespace; a VM node (needed for the ipvs mode, which this host's kernel
// lacks) plugs in through the same interface.
package harness
