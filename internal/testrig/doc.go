// Package testrig is the test rig for kernel and control-plane tests of kproxy.
//
// It builds throwaway network namespaces (a "net" namespace with a bridge and the
// control plane, node namespaces, pod namespaces and a client namespace; see
// README.md for the picture and the address plan), runs processes inside them,
// opens sockets inside them from the test process, runs small echo servers and
// classifies probe outcomes (answered, refused, unreachable, timeout). It starts
// a real etcd and kube-apiserver (built by hack/build-upstream.sh) inside the net
// namespace.
//
// The root network namespace is never changed: every interface, address, route,
// sysctl and firewall rule the rig creates lives in a namespace it created, and
// everything is removed in cleanup. Tests need root and iproute2; without them
// they skip, unless KPROXY_REQUIRE_KERNEL=1, in which case they fail.
package testrig
