package harness

import (
	"slices"
	"testing"

	"github.com/kproxy/kproxy/bench/report"
)

// TestRepeatOrder checks that the proxies run in the given order on even
// repeats and reversed on odd ones, so each is first as often as last.
func TestRepeatOrder(t *testing.T) {
	names := []string{"upstream-iptables", "kproxy-iptables", "kproxy-nftables"}
	for rep, want := range [][]string{names, {"kproxy-nftables", "kproxy-iptables", "upstream-iptables"}, names} {
		if got := repeatOrder(names, rep); !slices.Equal(got, want) {
			t.Errorf("repeat %d: %v, want %v", rep, got, want)
		}
	}
	if names[0] != "upstream-iptables" {
		t.Error("repeatOrder changed its argument")
	}
}

// TestFloorDumps checks which rulesets the floors load: upstream's
// iptables rules when upstream ran, kproxy's nftables table when kproxy
// ran, else the other's; never an nft table for iptables-restore.
func TestFloorDumps(t *testing.T) {
	kp := Spec{Kind: report.KindKproxy, Mode: "iptables"}
	kpNft := Spec{Kind: report.KindKproxy, Mode: "nftables"}
	up := Spec{Kind: report.KindUpstream, Mode: "iptables"}
	upNft := Spec{Kind: report.KindUpstream, Mode: "nftables"}
	var f floorDumps
	f.offer(kp, "kp1")
	f.offer(kp, "kp2")
	f.offer(kpNft, "kpnft")
	if f.iptables.dump != "kp1" || f.nft.dump != "kpnft" {
		t.Errorf("without upstream: %+v", f)
	}
	f.offer(upNft, "upnft")
	f.offer(up, "")
	f.offer(up, "up")
	f.offer(kp, "kp3")
	if f.iptables.dump != "up" || f.nft.dump != "kpnft" {
		t.Errorf("with upstream: %+v", f)
	}
	var g floorDumps
	g.offer(upNft, "upnft")
	g.offer(kpNft, "kpnft")
	if g.nft.dump != "kpnft" {
		t.Errorf("kproxy's nft table after upstream's: %+v", g)
	}
}
