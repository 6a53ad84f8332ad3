package faults

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// probeTally counts a probe loop's results.
type probeTally struct {
	probes, failures atomic.Int64
	failMsgs         sync.Map
}

// probeStable sends traffic until stop is closed, round robin to the
// ClusterIPs <prefix>.1 … <prefix>.<stable>, expecting Service k to be
// answered by pods[k%len(pods)]; tag names the Service in failure messages.
func (r *rig) probeStable(stop <-chan struct{}, prefix string, stable int, pods []string, tag string, t *probeTally) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		k := i % stable
		name, err := r.probe(fmt.Sprintf("%s.%d", prefix, k+1), 2*time.Second)
		t.probes.Add(1)
		if err != nil || name != pods[k%len(pods)] {
			t.failures.Add(1)
			t.failMsgs.Store(fmt.Sprintf("%s%d: %q %v", tag, k, name, err), true)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// natSamples counts a nat sampling loop's results.
type natSamples struct {
	samples  atomic.Int64
	minRules atomic.Int64 // the fewest KUBE-SERVICES rules in one sample
}

// sampleNAT saves node1's nat table every 100 ms until stop is closed,
// recording the fewest KUBE-SERVICES rules seen (a flush shows as a drop);
// check, if not nil, also gets every save.
func (r *rig) sampleNAT(stop <-chan struct{}, s *natSamples, check func(nat string)) {
	s.minRules.Store(1 << 30)
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		out, err := testrig.Exec(r.node.Netns, "iptables-save", "-t", "nat")
		if err != nil {
			continue
		}
		s.samples.Add(1)
		if n := int64(strings.Count(out, "\n-A KUBE-SERVICES ")); n < s.minRules.Load() {
			s.minRules.Store(n)
		}
		if check != nil {
			check(out)
		}
	}
}
