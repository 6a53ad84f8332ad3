package nftables

import (
	"testing"

	"sigs.k8s.io/knftables"
)

// TestRuleCompilerRefuses: what the compiler does not know exactly, it
// refuses (the sync then goes by nft -f); the kernel test
// TestKernelNetlinkMatchesNft checks what it takes against nft.
func TestRuleCompilerRefuses(t *testing.T) {
	v4, v6 := ruleCompiler{}, ruleCompiler{v6: true}
	for _, tc := range []struct {
		c    ruleCompiler
		rule string
	}{
		{v4, ""},
		{v4, "ip saddr @affinity-x goto endpoint-x"},
		{v4, "update @affinity-x { ip saddr }"},
		{v4, "ip saddr != { 10.0.0.0/8 } drop"},
		{v4, "meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.0.0.1 . 80, 1 : 10.0.0.2 . 80 }"},
		{v4, "ip saddr 10.244.0.0/17 goto x"}, // not whole bytes
		{v4, "ip saddr 10.244.0.1/16 goto x"}, // host bits set
		{v4, "ip6 saddr fd00::/64 goto x"},
		{v6, "ip saddr 10.0.0.0/8 goto x"},
		{v4, "meta l4proto tcp dnat to [fd00::1]:80"},
		{v6, "meta l4proto tcp dnat to 10.0.0.1:80"},
		{v4, "meta l4proto tcp dnat to 10.0.0.1"},
		{v4, "meta l4proto icmp dnat to 10.0.0.1:80"},
		{v4, "numgen random mod 2 2 goto x"},
		{v4, "numgen inc mod 2 0 goto x"},
		{v4, "goto x drop"},
		{v4, "goto"},
		{v4, "goto \"x y\""},
		{v4, "iifname \"eth0\" goto x"},
		{v4, "iifname * goto x"},
		{v4, "mark set mark and 0x4000"},
		{v4, "mark set mark or 16384"},
		{v4, "mark set mark or 0b1"},
		{v4, "mark set mark or 0x4_000"},
		{v4, "fib daddr type local goto x"},
		{v4, "counter goto x"},
		{v4, "reject"},
	} {
		if exprs, ok := tc.c.compile(tc.rule); ok {
			t.Errorf("v6 %v: %q compiled to %d expressions", tc.c.v6, tc.rule, len(exprs))
		}
	}
}

func TestCompileElementRefuses(t *testing.T) {
	c := ruleCompiler{}
	for _, e := range []*knftables.Element{
		{Map: "unknown-map", Key: []string{"10.0.0.1", "tcp", "80"}, Value: []string{"goto x"}},
		{Set: mapServiceIPs, Key: []string{"10.0.0.1", "tcp", "80"}},                      // a map as a set
		{Map: setClusterIPs, Key: []string{"10.0.0.1"}, Value: []string{"drop"}},          // a set as a map
		{Map: mapServiceIPs, Key: []string{"10.0.0.1", "tcp"}, Value: []string{"goto x"}}, // short key
		{Map: mapServiceIPs, Key: []string{"fd00::1", "tcp", "80"}, Value: []string{"goto x"}},
		{Map: mapServiceIPs, Key: []string{"10.0.0.1", "tcp", "70000"}, Value: []string{"goto x"}},
		{Map: mapServiceIPs, Key: []string{"10.0.0.1", "tcp", "80"}, Value: []string{"goto x y"}},
		{Set: setClusterIPs, Key: []string{"10.0.0.1"}, Family: knftables.IPv6Family},
	} {
		if _, _, ok := c.compileElement(e, true); ok {
			t.Errorf("%+v compiled", e)
		}
	}
	if _, el, ok := c.compileElement(&knftables.Element{Map: mapServiceIPs, Key: []string{"10.0.0.1", "tcp", "80"}}, false); !ok || len(el.Key) != 12 {
		t.Errorf("a map's key alone (a delete) did not compile to 12 bytes: %v %x", ok, el.Key)
	}
}

// TestBatchRefusesJumpBeforeChain: nft's table blocks add every chain
// before any rule, so a text that jumps to a chain before adding it
// loads; the batch, sent in order, would not: it must fall back.
func TestBatchRefusesJumpBeforeChain(t *testing.T) {
	for name, first := range map[string]knftables.Object{
		"rule":    &knftables.Rule{Chain: "services", Rule: "goto service-x"},
		"element": &knftables.Element{Map: mapServiceIPs, Key: []string{"10.0.0.1", "tcp", "80"}, Value: []string{"goto service-x"}},
	} {
		b := newNetlinkBatch(knftables.IPv4Family)
		b.add(first)
		b.add(&knftables.Chain{Name: "service-x"})
		if b.unusable() == "" {
			t.Errorf("%s: a jump before the chain's add went into the batch", name)
		}
		ok := newNetlinkBatch(knftables.IPv4Family)
		ok.add(&knftables.Chain{Name: "service-x"})
		ok.add(first)
		if why := ok.unusable(); why != "" {
			t.Errorf("%s after the chain's add: %s", name, why)
		}
	}
}

// A partial sync compiles a netlink batch only while netlink is on: after
// maxNetlinkFailures failed batches in a row it would never be sent.
func TestNoBatchWhenNetlinkIsOff(t *testing.T) {
	applier := &netlinkApplier{}
	p := &Proxier{nft: &mergingNFT{Interface: knftables.NewFake(knftables.IPv4Family, tableName),
		family: knftables.IPv4Family, minBlockLines: minBlockLines, netlink: applier}}
	if w := p.newOps(true).(*textWriter); w.nl == nil {
		t.Fatal("netlink on: a partial sync has no batch")
	}
	if w := p.newOps(false).(*textWriter); w.nl != nil {
		t.Error("a full sync has a batch")
	}
	applier.failures = maxNetlinkFailures
	if w := p.newOps(true).(*textWriter); w.nl != nil {
		t.Error("netlink off: a partial sync still compiles a batch")
	}
}
