package nftables

import (
	"fmt"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// Options configures the nftables mode for one IP family, with the
// meaning kube-proxy's nftables mode gives its flags. Only Family is
// required.
type Options struct {
	// Family picks the table: ip for IPv4, ip6 for IPv6.
	Family proxier.Family
	// MasqueradeBit (--nftables-masquerade-bit, 0-31; 0 means 14) is the
	// packet mark bit that asks nat-postrouting to masquerade.
	MasqueradeBit int
	// MasqueradeAll (--masquerade-all) masquerades every connection to a
	// ClusterIP, not only those from outside the pod network.
	MasqueradeAll bool
	// LocalDetector (--detect-local-mode) decides which sources are pods;
	// the zero value: none are.
	LocalDetector proxier.LocalDetector
	// NodePortAddresses (--nodeport-addresses, this family's CIDRs or
	// "primary") are where NodePorts answer; empty: on every local
	// address except loopback.
	NodePortAddresses []string
	// Metrics receives the sync and cleanup failures; nil means none.
	Metrics *Metrics
	// NFT is the seam to nftables, bound to table "kube-proxy" of this
	// family. Nil means the nft binary of the process's network namespace;
	// tests pass a knftables.Fake.
	NFT knftables.Interface
	// inlineMapAbove: a Service port with more endpoints (and no
	// affinity) chooses them with one inline map; 0 means
	// defaultInlineMapAbove. Tests lower it to run every flow through
	// the map form.
	inlineMapAbove int
}

// defaultInlineMapAbove is about where one rule per endpoint starts to
// cost more than an inline map, judged from bare nft -f loads at 5,000
// Services: 50 rules per Service loaded slower than maps, 10 faster (the
// maps' cost grows with their number, see writeEndpointChoice). Not yet
// swept at other sizes.
const defaultInlineMapAbove = 16

// normalized validates the options and fills in defaults.
func (o Options) normalized() (Options, error) {
	if _, err := nftFamily(o.Family); err != nil {
		return o, err
	}
	var err error
	if o.MasqueradeBit, err = proxier.MasqueradeBitOrDefault(o.MasqueradeBit); err != nil {
		return o, fmt.Errorf("nftables: %w", err)
	}
	o.LocalDetector = o.LocalDetector.ForFamily(o.Family)
	if o.inlineMapAbove == 0 {
		o.inlineMapAbove = defaultInlineMapAbove
	}
	if err := proxier.ValidateNodePortAddresses(o.NodePortAddresses); err != nil {
		return o, fmt.Errorf("nftables: %w", err)
	}
	return o, nil
}

// nftFamily is the nftables family of an IP family's table.
func nftFamily(f proxier.Family) (knftables.Family, error) {
	switch f {
	case proxier.IPv4:
		return knftables.IPv4Family, nil
	case proxier.IPv6:
		return knftables.IPv6Family, nil
	}
	return "", fmt.Errorf("nftables: %w", proxier.CheckFamily(f))
}

// nftOptions are the real knftables interface's: netlink listing, see nft.
var nftOptions = []knftables.Option{knftables.UseNetlink}

// nft returns the configured seam, or the real nft (newRealNFT: element
// adds merged per set, listing with knftables' netlink option). Listing
// through `nft --json --terse list table` prints and parses every rule of
// the table, seconds at 50,000 rules, where kproxy only wants the chains'
// and sets' names (a first sync over an existing table, a restart, lists
// both). kube-proxy has the same option behind its NFTablesNetlink feature
// gate. Netlink lists a family's chains without telling a missing table
// from an empty one (see listKernel).
func (o Options) nft() (knftables.Interface, error) {
	if o.NFT != nil {
		return o.NFT, nil
	}
	fam, err := nftFamily(o.Family)
	if err != nil {
		return nil, err
	}
	nft, err := newRealNFT(fam)
	if err != nil {
		return nil, fmt.Errorf("nftables %s: %w", o.Family, err)
	}
	return nft, nil
}
