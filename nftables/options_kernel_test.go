package nftables

import (
	"context"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelAcceptsEveryGolden: real nft accepts the transaction of every
// golden file (knftables.Fake checks references, not syntax): each
// option, SCTP, and both families, synced into one namespace after the
// other and removed again.
func TestKernelAcceptsEveryGolden(t *testing.T) {
	ns := newTestNetns(t, "nft")
	sc := optionScenario()
	check := func(t *testing.T, opts Options, snap *proxier.Snapshot) {
		opts.NFT = newNetnsNFT(t, opts.Family, ns)
		if err := syncOnce(t, opts, snap).Cleanup(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range optionVariants() {
		t.Run(o.name, func(t *testing.T) {
			opts := flowOptions()
			o.set(&opts)
			check(t, opts, sc.Snapshot())
		})
	}
	t.Run("sctp", func(t *testing.T) {
		s := sctpScenario()
		check(t, flowOptions(), s.Snapshot())
	})
	for _, s := range flowtest.ScenariosIPv6() {
		t.Run(s.Name+"-ipv6", func(t *testing.T) { check(t, flowOptionsIPv6(), s.SnapshotIPv6()) })
	}
}

// TestKernelDetectLocalByInterface: with local traffic told by the pods'
// interfaces (a name prefix, as kube-proxy's "iifname veth*"), pods keep
// their source to a ClusterIP while the outside client is masqueraded,
// and the externalTrafficPolicy=Local short-circuit works for pods.
func TestKernelDetectLocalByInterface(t *testing.T) {
	r := newKernelRigWith(t, proxier.IPv4, func(o *Options) {
		o.LocalDetector = proxier.DetectLocalByInterfacePrefix(testrig.PodVethPrefix)
	})
	for _, sc := range flowtest.Scenarios() {
		if sc.Name != "basic" && sc.Name != "traffic-policy-local" {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			r.sync(t, sc.Snapshot())
			r.probeScenario(t, &sc)
		})
	}
}
