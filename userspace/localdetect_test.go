package userspace

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// etpLocalElsewhere is an externalTrafficPolicy=Local Service whose only
// endpoint is on another node: outside traffic is dropped, pods and the
// node still reach it, so the redirect rules depend on the detector.
func etpLocalElsewhere() *svcBuilder {
	node := proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr("198.51.100.11")}}
	return newSnap(node).add(proxier.ServicePort{Name: spName("default", "etp", "http", ""), ClusterIP: addr("10.96.0.50"), Port: 80, NodePort: 30050,
		ExternalIPs: []netip.Addr{addr("203.0.113.50")}, ExternalPolicyLocal: true},
		ep("10.244.2.10", 8080, "node2"))
}

func TestRenderDetectLocal(t *testing.T) {
	for _, m := range flowtest.DetectLocalModes() {
		t.Run(m.Name, func(t *testing.T) {
			out, err := Render(etpLocalElsewhere().snap, Options{Family: proxier.IPv4, LocalDetector: m.Detector})
			if err != nil {
				t.Fatal(err)
			}
			if local := strings.Join(xtables.IfLocal(m.Detector.ForFamily(proxier.IPv4)), " "); !strings.Contains(out, " "+local+" -d 203.0.113.50/32") && !strings.Contains(out, " "+local+" -p tcp --dport 30050") {
				t.Errorf("pods (%s) are not redirected:\n%s", local, out)
			}
			golden(t, "render-detect-local-"+m.Name+".golden", out)
		})
	}
}

// With an interface detector the proxy cannot tell a pod by its address;
// the rules let only pods and the node reach a Local listener without
// local endpoints, so whoever arrives gets the Cluster endpoints.
func TestInterfaceDetectorUsesClusterWithoutLocalEndpoints(t *testing.T) {
	b := etpLocalElsewhere()
	bal := newBalancer(specFor(t, b, "default", "etp", external), map[netip.AddrPort]*backend{})
	src := newSourceClassifier(proxier.DetectLocalByInterfacePrefix("veth"), b.snap.Node.IPs)
	if got := firstChoice(bal, "10.244.1.10", src, &affinityTable{}, time.Unix(0, 0)); got.String() != "10.244.2.10:8080" {
		t.Errorf("pod got %s, want the Cluster endpoint", got)
	}
	byCIDR := newSourceClassifier(proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16")), b.snap.Node.IPs)
	if got := firstChoice(bal, "198.51.100.100", byCIDR, &affinityTable{}, time.Unix(0, 0)); got.IsValid() {
		t.Errorf("by CIDR, an outside client got %s, want no endpoint", got)
	}
}
