package ipvs

import (
	"strings"
	"testing"
)

// TestParityNormalizers: the forms compared by TestGuestParity ignore what
// differs between writers without a difference in behaviour (chain
// creation order, real server order, counters, hash seeds) and keep the
// rest, and lineDiffs reports a difference once per side.
func TestParityNormalizers(t *testing.T) {
	a := sortedChains("nat", ":B - [0:0]\n:A - [1:2]\n-A B -j A\n-A A -j X\n-A A -j Y\n")
	b := sortedChains("nat", ":A - [0:0]\n:B - [5:6]\n-A A -j X\n-A B -j A\n-A A -j Y\n")
	if a != b || !strings.Contains(a, "-A A -j X\n-A A -j Y") {
		t.Errorf("chains:\n%s\nversus\n%s", a, b)
	}
	reordered := sortedChains("nat", ":A - [0:0]\n:B - [0:0]\n-A A -j Y\n-A A -j X\n-A B -j A\n")
	if d := stateDiffs(a, reordered); len(d) != 1 || !strings.Contains(d[0], "order") {
		t.Errorf("rules of a chain in another order: %q", d)
	}
	vs := "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" +
		"TCP  0A60D209:0050 rr persistent 600\n  -> 0AF4C80A:1F90      Masq    1      3          4\n  -> 0AF40714:1F90      Masq    1      0          0\n"
	got := sortedVirtualServers(vs)
	want := "--- ip_vs\nTCP 10.96.210.9:80 rr persistent 600\n  -> 10.244.200.10:8080 Masq 1\n  -> 10.244.7.20:8080 Masq 1\n"
	if got != want {
		t.Errorf("virtual servers:\n%s\nwant\n%s", got, want)
	}
	sets := sortedIPSets("create KUBE-X hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1234abcd\nadd KUBE-X 10.0.0.2\nadd KUBE-X 10.0.0.1\n")
	if sets != "--- ipsets\nadd KUBE-X 10.0.0.1\nadd KUBE-X 10.0.0.2\ncreate KUBE-X hash:ip family inet hashsize 1024 maxelem 65536\n" {
		t.Errorf("ipsets:\n%s", sets)
	}
	d := stateDiffs("--- s\nx\ny\n", "--- s\ny\nz\n")
	if strings.Join(d, ",") != "+ s: z,- s: x" {
		t.Errorf("lineDiffs = %q", d)
	}
	empty := emptyVirtualServers([]string{"- ip_vs: TCP 10.96.210.10:80 rr", "- ip_vs:   -> 10.244.7.20:8080 Masq 1"})
	if !emptyServiceMember("- ipsets: add KUBE-CLUSTER-IP 10.96.210.10,tcp:80", empty) ||
		emptyServiceMember("- ipsets: add KUBE-CLUSTER-IP 10.96.210.11,tcp:80", empty) ||
		emptyServiceMember("+ ipsets: add KUBE-CLUSTER-IP 10.96.210.10,tcp:80", empty) {
		t.Errorf("emptyServiceMember: only upstream's member of an empty virtual server is the deviation (%v)", empty)
	}
}
