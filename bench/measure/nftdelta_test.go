package measure

import (
	"reflect"
	"strings"
	"testing"
)

// upstreamDump is upstream's layout: the Service chain picks an endpoint
// chain, which does the dnat.
const upstreamDump = `table ip kube-proxy {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
	}
	chain services {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr . meta l4proto . th dport vmap @service-ips
	}
	chain service-ULMVA6XW-ns1/svc1/tcp/p80 {
		ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		numgen random mod 2 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80, 1 : goto endpoint-AAAAAAAA-ns1/svc1/tcp/p80__10.180.0.10/80 }
	}
	chain endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 {
		ip saddr 10.180.0.1 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.1:80
	}
	chain endpoint-AAAAAAAA-ns1/svc1/tcp/p80__10.180.0.10/80 {
		ip saddr 10.180.0.10 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.10:80
	}
}
`

func TestNftEndpointSwapUpstreamLayout(t *testing.T) {
	fwd, back, err := NftEndpointSwap(upstreamDump)
	if err != nil {
		t.Fatal(err)
	}
	want := `add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.255.254.1/80
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.255.254.1/80 ip saddr 10.255.254.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.255.254.1/80 meta l4proto tcp dnat to 10.255.254.1:80
flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.255.254.1/80, 1 : goto endpoint-AAAAAAAA-ns1/svc1/tcp/p80__10.180.0.10/80 }
delete chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
`
	if fwd != want {
		t.Errorf("forward:\n%s\nwant:\n%s", fwd, want)
	}
	// Back restores the old address.
	if !strings.Contains(back, "add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80\n") ||
		!strings.Contains(back, "delete chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.255.254.1/80\n") ||
		!strings.Contains(back, "dnat to 10.180.0.1:80\n") {
		t.Errorf("back does not restore 10.180.0.1:\n%s", back)
	}
}

func TestNftEndpointSwapRoundTrip(t *testing.T) {
	tab, err := parseNftTable(upstreamDump)
	if err != nil {
		t.Fatal(err)
	}
	svc := "service-ULMVA6XW-ns1/svc1/tcp/p80"
	there := tab.swapped(svc, "10.180.0.1", "10.255.254.1")
	if reflect.DeepEqual(there, tab) {
		t.Fatal("swapped changed nothing")
	}
	if again := there.swapped(svc, "10.255.254.1", "10.180.0.1"); !reflect.DeepEqual(again, tab) {
		t.Errorf("swap and back:\n%+v\nwant\n%+v", again, tab)
	}
}

// kube-proxy's layout without affinity: the Service chain does the dnat
// through a map.
func TestNftEndpointSwapDnatMapLayout(t *testing.T) {
	dump := `table ip kube-proxy {
	chain service-SUSTUHLJ-default/web/tcp/http {
		meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.244.1.10 . 8080, 1 : 10.244.2.10 . 8080 }
	}
}
`
	fwd, _, err := NftEndpointSwap(dump)
	if err != nil {
		t.Fatal(err)
	}
	want := `flush chain ip kube-proxy service-SUSTUHLJ-default/web/tcp/http
add rule ip kube-proxy service-SUSTUHLJ-default/web/tcp/http meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.255.254.1 . 8080, 1 : 10.244.2.10 . 8080 }
`
	if fwd != want {
		t.Errorf("forward:\n%s\nwant:\n%s", fwd, want)
	}
}

// kproxy's layout: one numgen rule per endpoint.
func TestNftEndpointSwapRulePerEndpoint(t *testing.T) {
	dump := `table ip kube-proxy {
	chain service-SUSTUHLJ-default/web/tcp/http {
		meta l4proto tcp numgen random mod 2 0 dnat to 10.244.1.10:8080
		meta l4proto tcp dnat to 10.244.2.10:8080
	}
}
`
	fwd, _, err := NftEndpointSwap(dump)
	if err != nil {
		t.Fatal(err)
	}
	want := `flush chain ip kube-proxy service-SUSTUHLJ-default/web/tcp/http
add rule ip kube-proxy service-SUSTUHLJ-default/web/tcp/http meta l4proto tcp numgen random mod 2 0 dnat to 10.255.254.1:8080
add rule ip kube-proxy service-SUSTUHLJ-default/web/tcp/http meta l4proto tcp dnat to 10.244.2.10:8080
`
	if fwd != want {
		t.Errorf("forward:\n%s\nwant:\n%s", fwd, want)
	}
}

func TestNftEndpointSwapNeedsAnEndpoint(t *testing.T) {
	dump := "table ip kube-proxy {\n\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n}\n"
	if _, _, err := NftEndpointSwap(dump); err == nil {
		t.Error("no error for a table without Service chains")
	}
}

func TestReplaceAddrWholeAddressesOnly(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":                          "X",
		"dnat to 10.0.0.1:80":               "dnat to X:80",
		"10.0.0.10 110.0.0.1 10.0.0.1.5":    "10.0.0.10 110.0.0.1 X.5",
		"__10.0.0.1/80 10.0.0.1 . 10.0.0.1": "__X/80 X . X",
	} {
		if got := replaceAddr(in, "10.0.0.1", "X"); got != want {
			t.Errorf("replaceAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
