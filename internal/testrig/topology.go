package testrig

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// Address plan (see README.md).
const (
	// BridgeIP is the net namespace's address on the bridge; the control plane
	// listens here.
	BridgeIP = "198.51.100.1"
	// BridgePrefixLen is the prefix length of the shared node network.
	BridgePrefixLen = 24
	// ClientIP is the client namespace's address on the bridge.
	ClientIP = "198.51.100.100"
	// ClusterCIDR holds every node's pod CIDR.
	ClusterCIDR = "10.244.0.0/16"
	// ServiceCIDR is the apiserver's --service-cluster-ip-range.
	ServiceCIDR = "10.96.0.0/16"
)

// Interface names inside the namespaces.
const (
	bridgeName = "br0"   // in the net namespace
	uplinkName = "eth0"  // node, client and pod side of their veth
	sinkName   = "sink0" // portless bridge in each node: the default route
	// PodVethPrefix starts the node-side names of pod veths ("veth0", "veth1", ...),
	// e.g. for kube-proxy's --detect-local-mode=InterfaceNamePrefix.
	PodVethPrefix = "veth"
)

// TopologyOptions says what to build. The zero value builds 1 node with 1 pod.
type TopologyOptions struct {
	Nodes       int // node namespaces, at most 80 (default 1)
	PodsPerNode int // pod namespaces per node, at most 200 (default 1)
	// IPv6 also gives the net namespace, nodes, pods and the client IPv6
	// addresses and routes (dual stack; see topology_v6.go).
	IPv6 bool
}

// Topology is a set of namespaces wired as in README.md. All names and
// addresses are filled in; the namespaces are deleted when the scope ends.
type Topology struct {
	ID     string  // random part of every namespace name
	Net    string  // net namespace: bridge, control plane
	Client string  // client namespace outside the nodes
	Nodes  []*Node // Nodes[i].Index == i+1
	IPv6   bool    // dual stack: the IPv6 fields of nodes and pods are set
}

// Node is one node namespace and its pods.
type Node struct {
	Index   int    // 1-based
	Name    string // Kubernetes node name: "node<Index>"
	Netns   string
	IP      string       // 198.51.100.(10+Index)
	PodCIDR netip.Prefix // 10.244.<Index>.0/24
	Gateway string       // 10.244.<Index>.1, the pods' default gateway
	Pods    []*Pod

	// With TopologyOptions.IPv6 (else empty):
	IPv6        string       // fd00:198:51:100::(10+Index)
	PodCIDRv6   netip.Prefix // fd00:10:244:<Index>::/64
	GatewayIPv6 string       // fd00:10:244:<Index>::1
}

// Pod is one pod namespace.
type Pod struct {
	Node  *Node
	Index int    // 0-based within the node
	Name  string // "node<N>-pod<Index>"
	Netns string
	IP    string // 10.244.<node>.(10+Index)
	// HostVeth is the node-side interface name ("veth<Index>").
	HostVeth string
	IPv6     string // fd00:10:244:<node>::(10+Index), with TopologyOptions.IPv6
}

// NodeIP returns the address of node index (1-based).
func NodeIP(index int) string { return fmt.Sprintf("198.51.100.%d", 10+index) }

// NewTopology builds a topology that lives until the test ends; it skips or fails
// the test if the kernel prerequisites are missing and fails it on error.
func NewTopology(t testing.TB, opts TopologyOptions) *Topology {
	t.Helper()
	RequireRoot(t)
	topo, err := BuildTopology(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// BuildTopology builds a topology that lives until s ends.
func BuildTopology(s Scope, opts TopologyOptions) (*Topology, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.PodsPerNode == 0 {
		opts.PodsPerNode = 1
	}
	if opts.Nodes < 0 || opts.Nodes > 80 || opts.PodsPerNode < 0 || opts.PodsPerNode > 200 {
		return nil, fmt.Errorf("build topology: bad options %+v", opts)
	}
	id := RandomID(6)
	name := func(suffix string) string { return NetnsPrefix + id + "-" + suffix }
	topo := &Topology{ID: id, Net: name("net"), Client: name("client"), IPv6: opts.IPv6}
	for i := 1; i <= opts.Nodes; i++ {
		n := &Node{
			Index:   i,
			Name:    fmt.Sprintf("node%d", i),
			Netns:   name(fmt.Sprintf("n%d", i)),
			IP:      NodeIP(i),
			PodCIDR: netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i)),
			Gateway: fmt.Sprintf("10.244.%d.1", i),
		}
		for j := 0; j < opts.PodsPerNode; j++ {
			n.Pods = append(n.Pods, &Pod{
				Node:     n,
				Index:    j,
				Name:     fmt.Sprintf("%s-pod%d", n.Name, j),
				Netns:    name(fmt.Sprintf("n%dp%d", i, j)),
				IP:       fmt.Sprintf("10.244.%d.%d", i, 10+j),
				HostVeth: fmt.Sprintf("%s%d", PodVethPrefix, j),
			})
		}
		topo.Nodes = append(topo.Nodes, n)
	}
	if opts.IPv6 {
		topo.planIPv6()
	}
	if err := topo.build(s); err != nil {
		return nil, fmt.Errorf("build topology %s: %w", id, err)
	}
	return topo, nil
}

// Pods returns all pods, node by node.
func (t *Topology) Pods() []*Pod {
	var pods []*Pod
	for _, n := range t.Nodes {
		pods = append(pods, n.Pods...)
	}
	return pods
}

// Node returns node index (1-based).
func (t *Topology) Node(index int) *Node { return t.Nodes[index-1] }

// Namespaces returns every namespace of the topology.
func (t *Topology) Namespaces() []string {
	names := []string{t.Net, t.Client}
	for _, n := range t.Nodes {
		names = append(names, n.Netns)
		for _, p := range n.Pods {
			names = append(names, p.Netns)
		}
	}
	return names
}

// AddClientRoute routes dst (a CIDR or an address) from the client namespace via
// node index (1-based), e.g. for externalIPs and load-balancer IPs.
// An IPv6 dst goes via the node's IPv6 address (needs TopologyOptions.IPv6).
func (t *Topology) AddClientRoute(dst string, nodeIndex int) error {
	via := NodeIP(nodeIndex)
	if strings.Contains(dst, ":") {
		via = NodeIPv6(nodeIndex)
	} else if !strings.Contains(dst, "/") {
		dst += "/32"
	}
	if _, err := ip(t.Client, "route", "replace", dst, "via", via); err != nil {
		return fmt.Errorf("add client route: %w", err)
	}
	return nil
}

// ip runs "ip -n ns args...".
func ip(ns string, args ...string) (string, error) {
	return Exec("", append([]string{"ip", "-n", ns}, args...)...)
}

// ipBatch runs "ip -n ns -batch -" with one command per line, so a topology
// costs a few execs instead of hundreds.
func ipBatch(ns string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	_, err := ExecInput("", strings.Join(lines, "\n")+"\n", "ip", "-n", ns, "-batch", "-")
	return err
}

func (t *Topology) build(s Scope) error {
	for _, ns := range t.Namespaces() {
		if err := CreateNetns(s, ns); err != nil {
			return err
		}
		if t.IPv6 {
			if err := disableDAD(ns); err != nil {
				return err
			}
		}
	}
	prefix := fmt.Sprintf("/%d", BridgePrefixLen)

	// net namespace: the bridge, one port per node and one for the client.
	netCmds := []string{
		"link add " + bridgeName + " type bridge",
		"addr add " + BridgeIP + prefix + " dev " + bridgeName,
		"link set " + bridgeName + " up",
		"link add client type veth peer name " + uplinkName + " netns " + t.Client,
		"link set client master " + bridgeName + " up",
	}
	for _, n := range t.Nodes {
		port := n.Name
		netCmds = append(netCmds,
			fmt.Sprintf("link add %s type veth peer name %s netns %s", port, uplinkName, n.Netns),
			fmt.Sprintf("link set %s master %s up", port, bridgeName),
			// So the control plane can answer pods that are not masqueraded.
			fmt.Sprintf("route add %s via %s", n.PodCIDR, n.IP),
		)
	}
	if err := ipBatch(t.Net, netCmds); err != nil {
		return err
	}

	// client namespace: only the bridge network; AddClientRoute adds more.
	if err := ipBatch(t.Client, []string{
		"addr add " + ClientIP + prefix + " dev " + uplinkName,
		"link set " + uplinkName + " up",
	}); err != nil {
		return err
	}

	for _, n := range t.Nodes {
		if err := t.buildNode(n, prefix); err != nil {
			return err
		}
	}
	for _, ns := range t.Namespaces() {
		if err := setRigSysctls(ns); err != nil {
			return err
		}
	}
	for _, n := range t.Nodes {
		if err := SetSysctl(n.Netns, "net.ipv4.ip_forward", "1"); err != nil {
			return err
		}
	}
	if t.IPv6 {
		return t.buildIPv6()
	}
	return nil
}

func (t *Topology) buildNode(n *Node, prefix string) error {
	cmds := []string{
		fmt.Sprintf("addr add %s%s dev %s", n.IP, prefix, uplinkName),
		"link set " + uplinkName + " up",
		// A portless bridge as the default route: anything not proxied and not
		// routed dies inside the node (there is no dummy netdev in this kernel).
		"link add " + sinkName + " type bridge",
		"link set " + sinkName + " up",
		"route add default dev " + sinkName,
	}
	for _, other := range t.Nodes {
		if other != n {
			cmds = append(cmds, fmt.Sprintf("route add %s via %s", other.PodCIDR, other.IP))
		}
	}
	// Pods are routed point-to-point (like the CNI ptp plugin): the gateway
	// address sits on every node-side veth, each pod gets a /32 route. No bridge,
	// so no br_netfilter semantics and hairpin traffic is plain routing.
	for _, p := range n.Pods {
		cmds = append(cmds,
			fmt.Sprintf("link add %s type veth peer name %s netns %s", p.HostVeth, uplinkName, p.Netns),
			fmt.Sprintf("addr add %s/32 dev %s", n.Gateway, p.HostVeth),
			fmt.Sprintf("link set %s up", p.HostVeth),
			fmt.Sprintf("route add %s/32 dev %s scope link src %s", p.IP, p.HostVeth, n.Gateway),
		)
	}
	if err := ipBatch(n.Netns, cmds); err != nil {
		return err
	}
	for _, p := range n.Pods {
		if err := ipBatch(p.Netns, []string{
			fmt.Sprintf("addr add %s/32 dev %s", p.IP, uplinkName),
			"link set " + uplinkName + " up",
			fmt.Sprintf("route add %s dev %s scope link", n.Gateway, uplinkName),
			fmt.Sprintf("route add default via %s dev %s src %s", n.Gateway, uplinkName, p.IP),
		}); err != nil {
			return err
		}
	}
	return nil
}

// setRigSysctls sets the per-namespace sysctls every rig namespace needs,
// explicitly so the host's values do not leak in (IPv4 conf values of a
// new namespace are copied from the host).
func setRigSysctls(ns string) error {
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "0"},
		{"net.ipv4.icmp_ratelimit", "0"},
	} {
		if err := SetSysctl(ns, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}
