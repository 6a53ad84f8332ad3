package harness

import "slices"

// repeatOrder is the order the proxies run in on repeat rep (from 0): as
// given on even repeats, reversed on odd ones, so that no proxy always runs
// first on a workload (right after the objects were created, on a machine
// still busy with that) or last.
func repeatOrder[T any](xs []T, rep int) []T {
	out := slices.Clone(xs)
	if rep%2 == 1 {
		slices.Reverse(out)
	}
	return out
}
