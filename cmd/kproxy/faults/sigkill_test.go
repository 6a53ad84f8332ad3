package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestSIGKILLMidSync kills kproxy with SIGKILL at random moments while it
// syncs bursts of changes, restarts it each time, and checks that it
// converges with no stale chain and no duplicated jump rule.
func TestSIGKILLMidSync(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()
	const n = 40
	r.serviceSet(ctx, "k", "10.96.14", n, 2)
	r.start(nil)
	r.waitServicesConverged(ctx, 60*time.Second)
	rnd := rand.New(rand.NewPCG(1, 2))
	const kills = 6
	var worst time.Duration
	for k := range kills {
		// A burst: endpoints change, Services go and come.
		for i := range n {
			name := fmt.Sprintf("k%d", i)
			switch rnd.IntN(4) {
			case 0:
				if err := r.deleteService(ctx, name); err != nil {
					t.Fatal(err)
				}
			default:
				// A ClusterIP is released asynchronously after a delete:
				// re-creating at once may be refused; the next burst retries.
				if err := r.service(ctx, name, fmt.Sprintf("10.96.14.%d", i+1), pods[rnd.IntN(4)]); err != nil && !strings.Contains(err.Error(), "already allocated") {
					t.Fatal(err)
				}
			}
			if i == n/2 {
				// Kill somewhere in the middle of the burst's syncs.
				time.Sleep(time.Duration(rnd.IntN(300)) * time.Millisecond)
				if err := r.kp.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
		r.start(nil)
		took := r.waitServicesConverged(ctx, 60*time.Second)
		worst = max(worst, took)
		checkNoStaleOrDuplicate(t, save(t, r.node.Netns, allTables...))
		t.Logf("kill %d: converged %.1fs after restart", k+1, took.Seconds())
	}
	// Every remaining Service answers from one of its endpoints.
	for i := range n {
		if _, err := r.probe(fmt.Sprintf("10.96.14.%d", i+1), 2*time.Second); err != nil {
			if ok, _ := r.exists(ctx, fmt.Sprintf("k%d", i)); ok {
				t.Errorf("k%d: %v", i, err)
			}
		}
	}
	t.Logf("FIGURE sigkill: %d SIGKILLs mid-sync, converged every time (worst %.1fs after restart), no stale chains, no duplicate jumps", kills, worst.Seconds())
}

func (r *rig) exists(ctx context.Context, name string) (bool, error) {
	l, err := r.apiServices(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range l {
		if s == r.ns+"/"+name+":http" {
			return true, nil
		}
	}
	return false, nil
}
