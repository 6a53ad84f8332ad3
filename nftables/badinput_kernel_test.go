package nftables

import (
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelBadInputCorpus syncs every entry of the bad-input corpus, and
// all of them at once, through real nft: the transaction must be
// accepted (one bad Service must never fail the sync for everyone; two
// Services claiming one destination keep the first). The cases' packets
// are checked by the other modes' tracers; here only that nft takes it.
func TestKernelBadInputCorpus(t *testing.T) {
	ns := newTestNetns(t, "nftbad")
	nft := newNetnsNFT(t, proxier.IPv4, ns)
	entries := flowtest.BadInputs()
	for _, e := range append(entries, flowtest.Combined(entries)) {
		t.Run(e.Name, func(t *testing.T) {
			opts := flowOptions()
			opts.NFT = nft
			syncOnce(t, opts, e.Build(nil).Snapshots[proxier.IPv4])
		})
	}
}
