package faults

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
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
