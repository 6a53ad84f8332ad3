package harness

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IssueWorkloads are the workloads issue 17 asks for, in one run.
const IssueWorkloads = "1000x2,5000x2,10000x2,5000x10,5000x50"

// Step is one M with its Service counts, grown in order.
type Step struct {
	M  int
	Ns []int
}

// ParseWorkloads reads "NxM,NxM,..." into steps grouped by M (first
// appearance order, Ns ascending), so the objects of one M are created once and grown.
func ParseWorkloads(s string) ([]Step, error) {
	var steps []Step
	index := map[int]int{}
	for _, f := range strings.Split(s, ",") {
		ns, ms, ok := strings.Cut(strings.TrimSpace(f), "x")
		n, nerr := strconv.Atoi(ns)
		m, merr := strconv.Atoi(ms)
		if !ok || nerr != nil || merr != nil || n < 0 || m < 1 {
			return nil, fmt.Errorf("bad workload %q in %q (want NxM)", f, s)
		}
		i, seen := index[m]
		if !seen {
			i, index[m] = len(steps), len(steps)
			steps = append(steps, Step{M: m})
		}
		steps[i].Ns = append(steps[i].Ns, n)
	}
	// Objects only grow within an M: a smaller N after a larger would
	// measure the larger.
	for _, st := range steps {
		slices.Sort(st.Ns)
	}
	return steps, nil
}

// steps returns the run's plan: Steps if set, else every N for every M.
func (c Config) steps() []Step {
	if len(c.Steps) > 0 {
		return c.Steps
	}
	var out []Step
	for _, m := range c.Ms {
		out = append(out, Step{M: m, Ns: c.Ns})
	}
	return out
}
