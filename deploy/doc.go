// Package deploy holds kproxy's deployment artifacts and their tests; it has
// no Go API.
//
//   - Dockerfile: multi-stage image (static kproxy on Debian with the
//     packages of image-packages.txt: iptables with both backends, which
//     kproxy chooses between itself, ipset, conntrack, kmod, nftables).
//   - image-packages.txt: the runtime packages, shared with the offline
//     kind image build.
//   - base/: ServiceAccount, ClusterRole/Binding, ConfigMap (a
//     KubeProxyConfiguration) and the DaemonSet in kube-system.
//   - overlays/{iptables,ipvs,userspace}/: one kustomize overlay per mode.
//   - components/privileged, components/kind: optional kustomize components.
//   - kind/cluster.yaml, kind-up.sh, kind-down.sh: a kind cluster without
//     kube-proxy running kproxy.
//   - MIGRATION.md: replacing kube-proxy in a running cluster.
//
// The tests render every overlay with upstream kubectl (hack/build-upstream.sh)
// and check them, dry-run them against a real kube-apiserver, run kproxy with
// exactly the DaemonSet's ServiceAccount permissions and in-cluster
// configuration inside a testrig node namespace, and take a node over from a
// running upstream kube-proxy without a failed connection. See README.md.
package deploy
