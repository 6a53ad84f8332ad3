package nftables

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

const unallocatedDrop = `add rule ip kube-proxy cluster-ips-check ip daddr { 10.96.0.0/16, 10.100.0.0/24 } drop comment "Drop traffic to unallocated ClusterIPs"`

// TestUnallocatedClusterIPsDropped: with ServiceCIDRs, cluster-ips-check
// drops what the reject of known ClusterIPs left, as kube-proxy's; without
// them there is no drop. A change of the ranges alone makes the next sync
// full, and the table is then a fresh sync's.
func TestUnallocatedClusterIPsDropped(t *testing.T) {
	snap := flowtest.Scenarios()[0].Snapshot()
	if strings.Contains(fakeSync(t, flowOptions(), snap), "unallocated") {
		t.Errorf("a drop of unallocated ClusterIPs without ServiceCIDRs")
	}
	withRanges := *snap
	withRanges.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("10.100.0.0/24")}
	dump := fakeSync(t, flowOptions(), &withRanges)
	reject := strings.Index(dump, "@cluster-ips reject")
	drop := strings.Index(dump, unallocatedDrop)
	if drop < 0 || reject < 0 || drop < reject {
		t.Errorf("want the reject of known ClusterIPs, then\n%s\ngot:\n%s", unallocatedDrop, dump)
	}

	r := newFakeRig(t, nil)
	r.mustSync(t, snap)
	res, err := r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: &withRanges})
	if err != nil || !res.Full {
		t.Errorf("sync with new ServiceCIDRs: full %v, err %v", res.Full, err)
	}
	if got := r.fake.Dump(); got != dump {
		t.Errorf("table differs from a fresh sync:\n%s", lineDiff(got, dump))
	}
}
