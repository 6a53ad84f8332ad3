// Package kind holds the tests that run kproxy as the kube-proxy DaemonSet of
// a real kind cluster (one control plane, two workers), built offline by
// hack/kind-offline.sh: CoreDNS, ClusterIP, NodePort, externalIPs,
// externalTrafficPolicy Local, readiness, rolling updates of a workload and
// of kproxy itself, the take-over from upstream kube-proxy and back, mode
// switches, and a mode the kernel cannot run.
//
// The tests carry the build tag "kind" and run with hack/test-kind.sh (part
// of hack/test.sh); they bring the cluster up and down themselves, or use a
// running one when KPROXY_KIND_REUSE=1.
package kind
