package measure

import "testing"

func TestCountNftRules(t *testing.T) {
	dump := `table ip kube-proxy {
	set cluster-ips {
		type ipv4_addr
		elements = { 10.0.0.1 }
	}
	chain filter-prerouting {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}
	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		ip daddr @cluster-ips reject
	}
}
`
	if got := CountNftRules(dump); got.Rules != 3 || got.Chains != 2 {
		t.Errorf("got %+v, want 3 rules in 2 chains", got)
	}
}
