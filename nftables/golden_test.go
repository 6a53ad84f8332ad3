package nftables

import (
	"context"
	"flag"
	"net/netip"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/golden"
	"github.com/kproxy/kproxy/proxier"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// flowOptions are the options the flow table is written for.
func flowOptions() Options {
	return Options{Family: proxier.IPv4, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDR))}
}

func flowOptionsIPv6() Options {
	return Options{Family: proxier.IPv6, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDRv6))}
}

// fakeSync syncs snap once into a fresh knftables.Fake and returns the
// table as the Fake dumps it.
func fakeSync(t *testing.T, opts Options, snap *proxier.Snapshot) string {
	t.Helper()
	fam, err := nftFamily(opts.Family)
	if err != nil {
		t.Fatal(err)
	}
	fake := knftables.NewFake(fam, tableName)
	opts.NFT = fake
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	return fake.Dump()
}

// TestGolden syncs every flow scenario, in IPv4 and IPv6, into a Fake and
// compares the table with a golden file, for reviewing rule changes as
// diffs; the kernel flow tests check the behaviour. Refresh with
// "go test ./nftables -update".
func TestGolden(t *testing.T) {
	for _, sc := range flowtest.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			compareGolden(t, sc.Name+".golden", fakeSync(t, flowOptions(), sc.Snapshot()))
		})
	}
	for _, sc := range flowtest.ScenariosIPv6() {
		t.Run(sc.Name+"-ipv6", func(t *testing.T) {
			compareGolden(t, sc.Name+"-ipv6.golden", fakeSync(t, flowOptionsIPv6(), sc.SnapshotIPv6()))
		})
	}
}

func compareGolden(t *testing.T, name, out string) { golden.Compare(t, name, out, *update) }
