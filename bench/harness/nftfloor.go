package harness

import (
	"fmt"

	"github.com/kproxy/kproxy/bench/measure"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

var nftLoadArgv = []string{"nft", "-f", "-"}

// nftFloor measures the floors of an nftables proxy: `nft -f` of the table
// dump (as `nft list table` printed it) into an empty namespace, floorReps
// times, each into a new namespace (the first sync's floor); then, over the
// last one, `nft -f` of one Service's endpoint moving and back (the partial
// sync's floor, see measure.NftEndpointSwap).
func (h *harness) nftFloor(n, m int, dump string) report.Row {
	row := report.NewRow("nft-floor", report.KindFloor, report.FloorNft, n, m)
	rules := measure.CountNftRules(dump)
	row.Rules, row.Chains, row.Bytes = rules.Rules, rules.Chains, rules.Bytes
	err := func() error {
		runs, ns, err := h.freshLoads("nftfloor", dump, nftLoadArgv)
		if err != nil {
			return err
		}
		defer testrig.DeleteNetns(ns)
		setFresh(&row, runs)
		h.log.logf("    nft floor: nft -f into empty netns %.3fs", float64(row.FirstSyncWall))
		fwd, back, err := measure.NftEndpointSwap(dump)
		if err != nil { // the fresh load's floor stands without it
			h.log.logf("    nft floor: no partial-sync floor: %v", err)
			return nil
		}
		part, err := nftDeltaLoads(ns, fwd, back)
		if err != nil {
			return err
		}
		row.PartialMetric = medianOf(part, wallOf) // no API update to time from
		h.log.logf("    nft floor: one Service's endpoint moved, nft -f into the loaded table %.3fs", float64(row.PartialMetric))
		return nil
	}()
	if err != nil {
		row.Status, row.Error = "failed", err.Error()
	}
	row.LoadAvg = report.LoadAvg1()
	return row
}

// nftDeltaLoads times floorReps round trips of one Service's endpoint
// moving away (fwd) and back in ns.
func nftDeltaLoads(ns, fwd, back string) ([]restoreRun, error) {
	var runs []restoreRun
	for range floorReps {
		for _, delta := range []string{fwd, back} {
			r, err := timedLoad(ns, delta, nftLoadArgv)
			if err != nil {
				return nil, fmt.Errorf("nft -f of one Service's delta: %w", err)
			}
			runs = append(runs, r)
		}
	}
	return runs, nil
}
