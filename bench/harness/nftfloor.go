package harness

import (
	"fmt"

	"github.com/kproxy/kproxy/bench/measure"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

// nftFloor measures the floor of an nftables proxy's first sync: `nft -f`
// of the table dump (as `nft list table` printed it) into an empty
// namespace, floorReps times, each into a new namespace.
func (h *harness) nftFloor(n, m int, dump string) report.Row {
	row := report.NewRow("nft-floor", report.KindFloor, report.FloorNft, n, m)
	rules := measure.CountNftRules(dump)
	row.Rules, row.Chains, row.Bytes = rules.Rules, rules.Chains, rules.Bytes
	var runs []restoreRun
	for range floorReps {
		r, err := h.nftLoad(dump)
		if err != nil {
			row.Status, row.Error = "failed", err.Error()
			break
		}
		runs = append(runs, r)
	}
	if len(runs) > 0 {
		setFresh(&row, runs)
		h.log.logf("    nft floor: nft -f into empty netns %.3fs", float64(row.FirstSyncWall))
	}
	row.LoadAvg = report.LoadAvg1()
	return row
}

// nftLoad times one `nft -f` of dump into a namespace of its own.
func (h *harness) nftLoad(dump string) (restoreRun, error) {
	ns := testrig.UniqueName("nftfloor")
	if err := testrig.CreateNetns(h.s, ns); err != nil {
		return restoreRun{}, err
	}
	defer testrig.DeleteNetns(ns)
	r, err := timedLoad(ns, dump, []string{"nft", "-f", "-"})
	if err != nil {
		return r, fmt.Errorf("nft -f into empty netns: %w", err)
	}
	return r, nil
}
