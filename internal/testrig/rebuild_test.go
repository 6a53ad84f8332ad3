package testrig

import (
	"net"
	"testing"
	"time"
)

// TestRebuildNode checks that a rebuilt node has empty firewall tables and
// is wired again: reachable from the net namespace, and its pod from it.
func TestRebuildNode(t *testing.T) {
	RequireRoot(t)
	topo := NewTopology(t, TopologyOptions{Nodes: 1, PodsPerNode: 1})
	n := topo.Node(1)
	Run(t, n.Netns, "iptables", "-w", "-N", "KPT-REBUILD")
	for i := 0; i < 2; i++ { // twice: teardown of the old veths must not get in the way
		if err := topo.RebuildNode(t, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Exec(n.Netns, "iptables", "-w", "-S", "KPT-REBUILD"); err == nil {
		t.Error("chain KPT-REBUILD survived the rebuild")
	}
	pod := n.Pods[0]
	StartEchoServers(t, pod.Netns, pod.Name, pod.IP, []int{8080}, TCP)
	StartEchoServers(t, n.Netns, n.Name, n.IP, []int{9000}, TCP)
	if r, err := ProbeTCP(n.Netns, net.JoinHostPort(pod.IP, "8080"), 2*time.Second); err != nil || r.Name != pod.Name {
		t.Errorf("pod from node after rebuild: %+v, %v", r, err)
	}
	if r, err := ProbeTCP(topo.Net, net.JoinHostPort(n.IP, "9000"), 2*time.Second); err != nil || r.Name != n.Name {
		t.Errorf("node from net namespace after rebuild: %+v, %v", r, err)
	}
	if v, err := GetSysctl(n.Netns, "net.ipv4.ip_forward"); err != nil || v != "1" {
		t.Errorf("ip_forward after rebuild = %q, %v", v, err)
	}
}
