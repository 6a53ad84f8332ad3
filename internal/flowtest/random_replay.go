package flowtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

// RandomSeedsEnv names the environment variable that sets how many seeds
// the random tests replay (more for a long soak than a normal run wants).
const RandomSeedsEnv = "KPROXY_RANDOM_SEEDS"

// RandomSeeds are the seeds 1..n, n from RandomSeedsEnv or else def.
func RandomSeeds(t *testing.T, def int) []uint64 {
	t.Helper()
	n := def
	if v := os.Getenv(RandomSeedsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", RandomSeedsEnv, v)
		}
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// RandomMode is one mode under the "incremental state equals a fresh full
// render" test, each state as comparable text.
type RandomMode struct {
	// Partial syncs req into the long-lived proxier and returns its state.
	Partial func(req proxier.SyncRequest) (string, error)
	// Full returns the state of a fresh proxier after a full sync of snap.
	Full func(snap *proxier.Snapshot) (string, error)
	// Every compares after every Every-th step only (a real kernel is
	// slow); 0 means every step.
	Every int
}

// ReplayRandom replays steps random changes of the world of seed, a
// partial sync after each (a full one first, as a starting proxier does),
// and fails t where the state differs from a fresh full sync.
func ReplayRandom(t *testing.T, seed uint64, steps int, m RandomMode) {
	t.Helper()
	w := NewRandomWorld(seed)
	every := max(m.Every, 1)
	for i := range steps {
		what := w.Step()
		co := w.Checkout()
		snap := co.Snapshots[proxier.IPv4]
		got, err := m.Partial(proxier.SyncRequest{Snapshot: snap, Changed: co.Changed[proxier.IPv4], Full: i == 0})
		if err != nil {
			t.Fatalf("seed %d step %d (%s): partial sync: %v", seed, i, what, err)
		}
		if i%every != every-1 {
			continue
		}
		want, err := m.Full(snap)
		if err != nil {
			t.Fatalf("seed %d step %d (%s): full sync: %v", seed, i, what, err)
		}
		if got != want {
			t.Fatalf("seed %d step %d (%s): partial state differs from a full sync:\n%s\n--- partial\n%s\n--- full\n%s",
				seed, i, what, lineDiff(want, got), got, want)
		}
	}
}

// lineDiff lists the lines only the full (-) or only the partial (+)
// state has, in order, so a difference in a long dump stands out.
func lineDiff(full, partial string) string {
	count := map[string]int{}
	for _, l := range strings.Split(full, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(partial, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(full, "\n") {
		if count[l] > 0 {
			fmt.Fprintf(&b, "- %s\n", l)
			count[l]--
		}
	}
	for _, l := range strings.Split(partial, "\n") {
		if count[l] < 0 {
			fmt.Fprintf(&b, "+ %s\n", l)
			count[l]++
		}
	}
	if b.Len() == 0 {
		return "(the same lines in another order)\n"
	}
	return b.String()
}
