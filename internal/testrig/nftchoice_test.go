package testrig

import (
	"slices"
	"strings"
	"testing"
)

// Both proxies' endpoint choices, as nft lists them, read the same; a
// kproxy run with a wrong share or a missing endpoint does not.
func TestNeutralEndpointChoice(t *testing.T) {
	upstream := []string{
		"ip saddr 10.244.1.10 jump mark-for-masquerade",
		"meta l4proto tcp dnat ip to numgen random mod 3 map { 0 : 10.244.1.10 . 8080, 1 : 10.244.2.10 . 8080, 2 : 10.244.2.11 . 8080 }",
		"meta l4proto tcp dnat ip6 to numgen random mod 2 map { 0 : fd00:10:244:1::10 . 8080, 1 : fd00:10:244:2::10 . 8080 }",
		"ip saddr @affinity-X goto endpoint-A",
		"numgen random mod 2 vmap { 0 : goto endpoint-A, 1 : goto endpoint-B }",
	}
	kproxy := []string{
		"ip saddr 10.244.1.10 jump mark-for-masquerade",
		"meta l4proto tcp numgen random mod 3 0 dnat to 10.244.2.11:8080",
		"meta l4proto tcp numgen random mod 2 0 dnat to 10.244.1.10:8080",
		"meta l4proto tcp dnat to 10.244.2.10:8080",
		"meta l4proto tcp numgen random mod 2 0 dnat to [fd00:10:244:2::10]:8080",
		"meta l4proto tcp dnat to [fd00:10:244:1::10]:8080",
		"ip saddr @affinity-X goto endpoint-A",
		"numgen random mod 2 0 goto endpoint-A",
		"goto endpoint-B",
	}
	up, kp := NeutralEndpointChoice(upstream), NeutralEndpointChoice(kproxy)
	if !slices.Equal(up, kp) {
		t.Fatalf("equal choices differ:\nupstream %q\nkproxy   %q", up, kp)
	}
	one := NeutralEndpointChoice([]string{"numgen random mod 1 vmap { 0 : goto endpoint-A }"})
	if !slices.Equal(one, []string{"goto endpoint-A"}) {
		t.Errorf("one endpoint with affinity: %q", one)
	}
	if up[1] != "meta l4proto tcp choose dnat to {10.244.1.10 . 8080, 10.244.2.10 . 8080, 10.244.2.11 . 8080}" {
		t.Errorf("neutral line: %q", up[1])
	}
	for _, bad := range [][]string{
		{kproxy[0], "meta l4proto tcp numgen random mod 3 0 dnat to 10.244.2.11:8080", kproxy[3]}, // an endpoint missing
		{kproxy[0], "meta l4proto tcp numgen random mod 3 0 dnat to 10.244.2.11:8080", "meta l4proto tcp numgen random mod 3 0 dnat to 10.244.1.10:8080", kproxy[3]},
		{kproxy[0], "meta l4proto tcp numgen random mod 2 0 dnat to 10.244.2.11:8080", "meta l4proto tcp numgen random mod 2 0 dnat to 10.244.1.10:8080"},
	} {
		if got := NeutralEndpointChoice(bad); slices.Equal(got[:min(2, len(got))], up[:2]) {
			t.Errorf("a wrong run reads as upstream's: %q", got)
		}
	}
}

func TestNeutralEndpointChoiceListing(t *testing.T) {
	up := "table ip kube-proxy {\n\tchain s {\n\t\tmeta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.0.0.1 . 80, 1 : 10.0.0.2 . 80 }\n\t}\n}"
	kp := "table ip kube-proxy {\n\tchain s {\n\t\tmeta l4proto tcp numgen random mod 2 0 dnat to 10.0.0.2:80\n\t\tmeta l4proto tcp dnat to 10.0.0.1:80\n\t}\n}"
	if u, k := NeutralEndpointChoiceListing(up), NeutralEndpointChoiceListing(kp); u != k || !strings.Contains(u, "\t\tmeta l4proto tcp choose dnat to {10.0.0.1 . 80, 10.0.0.2 . 80}\n\t}") {
		t.Errorf("listings differ or lost their shape:\n%s\n%s", u, k)
	}
}
