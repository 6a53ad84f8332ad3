package testrig

// Where kproxy serves metrics and health checks in a test: on the loopback
// of the node it runs in (kube-proxy's ports).
const (
	KproxyMetricsAddr = "127.0.0.1:10249"
	KproxyHealthzAddr = "127.0.0.1:10256"
)

// KproxyArgs is the command line of kproxy (bin) in a control-plane test:
// talking to cp as node, pods in ClusterCIDR, conntrack sysctls left alone
// (they are host-wide), metrics and health checks on KproxyMetricsAddr and
// KproxyHealthzAddr, a short minimum sync period and -v=2. Extra flags
// come last, so they override these.
func KproxyArgs(bin string, cp *ControlPlane, node *Node, extra ...string) []string {
	return append([]string{bin,
		"--kubeconfig=" + cp.KubeProxyKubeconfig,
		"--hostname-override=" + node.Name,
		"--cluster-cidr=" + ClusterCIDR,
		"--conntrack-max-per-core=0",
		"--metrics-bind-address=" + KproxyMetricsAddr,
		"--healthz-bind-address=" + KproxyHealthzAddr,
		"--iptables-min-sync-period=100ms",
		"--v=2",
	}, extra...)
}
