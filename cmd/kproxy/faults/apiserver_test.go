package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// compactEtcd compacts etcd at its current revision through its JSON
// gateway (inside the rig's net namespace), so that every watch resuming
// from an older resourceVersion gets "410 Gone" and must relist.
func (r *rig) compactEtcd() (int64, error) {
	c := testrig.HTTPClient(r.topo.Net, 5*time.Second)
	post := func(path string, body any, out any) error {
		b, _ := json.Marshal(body)
		resp, err := c.Post("http://127.0.0.1:2379"+path, "application/json", bytes.NewReader(b))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	// Writes outside the apiserver's prefix move the revision past every
	// resourceVersion kproxy has seen, so compacting at it expires them.
	var rng struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	for range 2 {
		if err := post("/v3/kv/put", map[string]string{"key": "L2twcm94eS10ZXN0L2J1bXA=", "value": "eA=="}, &rng); err != nil { // "/kproxy-test/bump"
			return 0, err
		}
	}
	var rev int64
	if _, err := fmt.Sscan(rng.Header.Revision, &rev); err != nil {
		return 0, fmt.Errorf("etcd revision %q: %w", rng.Header.Revision, err)
	}
	var out map[string]any
	return rev, post("/v3/kv/compaction", map[string]any{"revision": rng.Header.Revision, "physical": true}, &out)
}

// recoveryBound is how soon after the apiserver is back (ready, or
// reachable again) a change must reach the rules: kproxy's API client
// waits for a down apiserver instead of letting client-go's reflector
// back off (internal/apiwait); margin for a loaded 2-core machine.
const recoveryBound = 3 * time.Second

// TestAPIServerOutage kills kube-apiserver during churn and starts it
// again after etcd was compacted: traffic to unchanged Services never
// fails, the rules are never flushed (kproxy keeps them through the
// outage and relists without a flush), and a Service created once the
// apiserver is ready again is programmed within recoveryBound.
func TestAPIServerOutage(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()
	const stable, churned = 8, 8
	r.serviceSet(ctx, "o", "10.96.15", stable+churned, 1)
	r.start(nil, "--iptables-sync-period=5s", "--v=4") // -v=4: client-go logs the expired watches
	r.waitServicesConverged(ctx, 60*time.Second)
	for i := range stable {
		r.waitAnswer(fmt.Sprintf("10.96.15.%d", i+1), []string{pods[i%4]}, 10*time.Second)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var tally probeTally
	var nat natSamples // the rules are never flushed
	wg.Add(3)
	go func() { defer wg.Done(); r.probeStable(stop, "10.96.15", stable, pods, "o", &tally) }()
	go func() { defer wg.Done(); r.sampleNAT(stop, &nat, nil) }()
	var churnOK, churnErr atomic.Int64
	go func() { // churn: the other Services' endpoints move around
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			k := stable + i%churned
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			if err := r.endpoints(cctx, fmt.Sprintf("o%d", k), pods[i%4]); err != nil {
				churnErr.Add(1)
			} else {
				churnOK.Add(1)
			}
			cancel()
		}
	}()

	time.Sleep(3 * time.Second)
	logStart := len(r.kp.Log())
	if err := r.cp.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(2 * time.Second)
	rev, err := r.compactEtcd()
	if err != nil {
		t.Fatalf("compact etcd: %v", err)
	}
	time.Sleep(8 * time.Second) // longer than a sync period: periodic syncs run without the apiserver
	r.failIfExited()
	if err := r.cp.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := r.cp.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	outage := ready.Sub(killed)
	// A change made as soon as the apiserver is ready again, which kproxy
	// can only pick up through its new watches.
	if err := r.service(ctx, "after", "10.96.15.200", pods[3]); err != nil {
		t.Fatal(err)
	}
	r.waitAnswer("10.96.15.200", []string{pods[3]}, 60*time.Second)
	recovered := time.Since(ready)
	time.Sleep(5*time.Second - recovered) // churn goes on against the new apiserver
	close(stop)
	wg.Wait()

	if recovered > recoveryBound {
		t.Errorf("a Service created when the apiserver was ready again was programmed %.1fs later, want <= %v", recovered.Seconds(), recoveryBound)
	}
	for i := range churned {
		k := stable + i
		r.waitServicesConverged(ctx, 30*time.Second)
		if _, err := r.probe(fmt.Sprintf("10.96.15.%d", k+1), 2*time.Second); err != nil {
			t.Errorf("o%d after the outage: %v", k, err)
		}
	}
	if f := tally.failures.Load(); f > 0 {
		var msgs []string
		tally.failMsgs.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return len(msgs) < 10 })
		t.Errorf("%d of %d probes to unchanged Services failed: %q", f, tally.probes.Load(), msgs)
	}
	if m := nat.minRules.Load(); m < stable+churned {
		t.Errorf("nat KUBE-SERVICES dropped to %d rules during the outage (want >= %d): rules were flushed", m, stable+churned)
	}
	checkRelisted(t, r.kp.Log()[logStart:], false)
	t.Logf("FIGURE apiserver-outage: outage %.1fs (etcd compacted at revision %d, both informers relisted), %d probes, %d failed; churn writes %d ok / %d refused; min KUBE-SERVICES rules %d; a new Service programmed %.1fs after /readyz answered",
		outage.Seconds(), rev, tally.probes.Load(), tally.failures.Load(), churnOK.Load(), churnErr.Load(), nat.minRules.Load(), recovered.Seconds())
}
