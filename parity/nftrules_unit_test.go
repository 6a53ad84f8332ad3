package parity

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const upNFT = `table ip kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv4_addr
		comment "Active ClusterIPs"
		elements = { 10.96.6.10, 10.96.6.11,
			     10.96.6.12 }
	}

	map firewall-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 10.96.201.11 . tcp . 80 : goto firewall-2XEWMNJO-ns/lb/tcp/http }
	}

	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 10.96.6.10 . tcp . 80 : goto service-JJ6X4374-ns/a/tcp/http,
			     10.96.6.11 . tcp . 80 : goto service-2XEWMNJO-ns/lb/tcp/http }
	}

	chain firewall-2XEWMNJO-ns/lb/tcp/http {
		drop
	}

	chain masquerading {
		meta mark & 0x00004000 != 0x00000000 meta mark set meta mark ^ 0x00004000 masquerade fully-random
		ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random
	}

	chain service-JJ6X4374-ns/a/tcp/http {
		ip saddr 10.244.1.10 jump mark-for-masquerade
		meta l4proto tcp dnat to numgen random mod 2 map { 0 : 10.244.1.10 . 8080, 1 : 10.244.2.10 . 8080 }
	}
}
`

// The comparison: element and object order are the kernel's and do not
// count, rule order does, counters do not; an object one side lacks does.
func TestDiffNFT(t *testing.T) {
	up := parseNFT(upNFT)
	if d := diffRules(up, parseNFT(upNFT), nftLayout); d != "" {
		t.Fatalf("identical listings differ:\n%s", d)
	}
	reordered := strings.Replace(upNFT, "10.96.6.10, 10.96.6.11,\n\t\t\t     10.96.6.12", "10.96.6.12, 10.96.6.10,\n\t\t\t     10.96.6.11", 1)
	reordered = strings.Replace(reordered, "\t\tdrop\n", "\t\tcounter packets 3 bytes 180 drop\n", 1)
	if d := diffRules(up, parseNFT(reordered), nftLayout); d != "" {
		t.Errorf("element order or a counter counted:\n%s", d)
	}
	masq := "\t\tmeta mark & 0x00004000 != 0x00000000 meta mark set meta mark ^ 0x00004000 masquerade fully-random\n"
	swapped := strings.Replace(strings.Replace(upNFT, masq, "", 1), "fully-random\n\t}", "fully-random\n"+masq+"\t}", 1)
	if d := diffRules(up, parseNFT(swapped), nftLayout); !strings.Contains(d, "chain masquerading (in order)") {
		t.Errorf("rule order not checked:\n%s", d)
	}
	if d := diffRules(up, parseNFT(strings.Replace(upNFT, "10.96.6.12 }", "10.96.6.13 }", 1)), nftLayout); !strings.Contains(d, "- upstream only: 10.96.6.12") {
		t.Errorf("a changed element not seen:\n%s", d)
	}
	if d := diffRules(up, parseNFT(strings.Replace(upNFT, "chain firewall-2XEWMNJO-ns/lb", "chain firewall-2XEWMNJO-ns/lc", 1)), nftLayout); !strings.Contains(d, "only upstream has this chain") {
		t.Errorf("a missing chain is a difference:\n%s", d)
	}
	stale := strings.Replace(upNFT, "\tchain masquerading {", "\tchain service-AAAAAAAA-ns/gone/tcp/http {\n\t}\n\n\tchain masquerading {", 1)
	if d := diffRules(up, parseNFT(stale), nftLayout); d != "" {
		t.Errorf("a flushed stale chain counted:\n%s", d)
	}
	stale = strings.Replace(upNFT, "\tchain masquerading {", "\tchain service-AAAAAAAA-ns/gone/tcp/http {\n\t\tdrop\n\t}\n\n\tchain masquerading {", 1)
	if d := diffRules(up, parseNFT(stale), nftLayout); !strings.Contains(d, "only kproxy has this chain") {
		t.Errorf("a stale chain with rules not seen:\n%s", d)
	}
}

// A left-out Service loses its elements and the chains only they lead to;
// the other Services keep theirs.
func TestNFTDeviationService(t *testing.T) {
	lb := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lb"}, Spec: v1.ServiceSpec{
		Type: v1.ServiceTypeLoadBalancer, LoadBalancerSourceRanges: []string{"2001:db8::/32"}}}
	objs := applyDeviations(parseNFT(upNFT), []*v1.Service{lb}, v1.IPv4Protocol, nftDeviations, nftLayout)["kube-proxy"]
	if _, ok := objs["chain firewall-2XEWMNJO-ns/lb/tcp/http"]; ok {
		t.Error("the left-out Service's firewall chain stayed")
	}
	if got := objs["map firewall-ips"]; len(got) != 1 {
		t.Errorf("map firewall-ips: %q, want only its type", got)
	}
	if got := objs["map service-ips"]; len(got) != 2 || !strings.Contains(got[1], "ns/a/") {
		t.Errorf("map service-ips: %q, want its type and ns/a's element", got)
	}
	if _, ok := objs["chain service-JJ6X4374-ns/a/tcp/http"]; !ok {
		t.Error("another Service's chain went")
	}
}

// Two Services on one external IP and port contest it; another port or
// family does not.
func TestContestingServices(t *testing.T) {
	svc := func(name, ip string, port int32) *v1.Service {
		return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: v1.ServiceSpec{
			ExternalIPs: []string{ip}, Ports: []v1.ServicePort{{Protocol: v1.ProtocolTCP, Port: port}}}}
	}
	lb := svc("c", "2001:db8:2::5", 80)
	lb.Spec.ExternalIPs = nil
	lb.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "2001:db8:2:0::5"}}
	svcs := []*v1.Service{svc("a", "192.0.2.1", 80), svc("b", "192.0.2.1", 80), svc("d", "192.0.2.1", 81),
		svc("e", "2001:db8:2::5", 80), lb}
	if got := strings.Join(contestingServices(svcs, v1.IPv4Protocol), " "); got != "ns/a ns/b" {
		t.Errorf("IPv4: %q", got)
	}
	if got := strings.Join(contestingServices(svcs, v1.IPv6Protocol), " "); got != "ns/c ns/e" {
		t.Errorf("IPv6: %q", got)
	}
}
