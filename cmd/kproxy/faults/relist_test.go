package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// apiserverBlock is the rule that cuts node1 off from kube-apiserver:
// every packet kproxy sends to it is answered by a TCP reset, so new
// connections are refused at once. It lives in node1's own namespace.
var apiserverBlock = []string{"OUTPUT", "-d", testrig.BridgeIP, "-p", "tcp", "--dport", fmt.Sprint(testrig.APIServerPort),
	"-j", "REJECT", "--reject-with", "tcp-reset"}

func (r *rig) blockAPIServer(on bool) error {
	op := "-D"
	if on {
		op = "-I"
	}
	out, err := testrig.Exec(r.node.Netns, append([]string{"iptables", "-w", op}, apiserverBlock...)...)
	if err != nil {
		return fmt.Errorf("iptables %s %v: %v: %s", op, apiserverBlock, err, out)
	}
	return nil
}

// TestWatchExpiredRelist cuts kproxy off from the apiserver, then (while
// it cannot see anything) restarts the apiserver over an etcd compacted
// past every resourceVersion kproxy has seen, deletes one Service and
// creates another. When the cut ends, kproxy's watches resume at an
// expired resourceVersion: the reflectors get "too old resource version"
// and relist, and only that relist can reveal the delete. The test checks
// from kproxy's log (client-go logs the expired watch at -v=4) that both
// informers relisted, that the deleted Service's rules go and the new
// Service's come within recoveryBound of the cut's end, and that nothing
// was flushed meanwhile: every unchanged Service keeps its rule in every
// nat sample and answers every probe.
func TestWatchExpiredRelist(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()
	const stable = 6
	r.serviceSet(ctx, "r", "10.96.22", stable, 1)
	if err := r.service(ctx, "gone", "10.96.22.50", pods[1]); err != nil {
		t.Fatal(err)
	}
	r.start(nil, "--iptables-sync-period=3s", "--v=4")
	r.waitServicesConverged(ctx, 60*time.Second)
	for i := range stable {
		r.waitAnswer(fmt.Sprintf("10.96.22.%d", i+1), []string{pods[i%4]}, 10*time.Second)
	}
	r.waitAnswer("10.96.22.50", []string{pods[1]}, 10*time.Second)
	logStart := len(r.kp.Log())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var missing atomic.Int64
	var tally probeTally
	var nat natSamples
	wg.Add(2)
	go func() { defer wg.Done(); r.probeStable(stop, "10.96.22", stable, pods, "r", &tally) }()
	go func() { // every unchanged Service keeps its rule in every sample
		defer wg.Done()
		r.sampleNAT(stop, &nat, func(out string) {
			for i := range stable {
				if !strings.Contains(out, fmt.Sprintf(`"default/r%d:http cluster IP"`, i)) {
					missing.Add(1)
					tally.failMsgs.Store(fmt.Sprintf("sample without r%d's rule", i), true)
				}
			}
		})
	}()
	defer func() { // on an early failure
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}()

	// Traffic and samples before the cut; kproxy's watches also become
	// older than client-go's "very short watch" threshold (1 s), after
	// which a closed watch is resumed at its resourceVersion instead of
	// being replaced by a relist at once.
	time.Sleep(3 * time.Second)

	// Cut kproxy off, restart the apiserver over a compacted etcd, and
	// change the Services while kproxy cannot see it.
	if err := r.blockAPIServer(true); err != nil {
		t.Fatal(err)
	}
	blocked := time.Now()
	t.Cleanup(func() { _ = r.blockAPIServer(false) })
	if err := r.cp.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	rev, err := r.compactEtcd()
	if err != nil {
		t.Fatalf("compact etcd: %v", err)
	}
	if err := r.cp.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := r.deleteService(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := r.service(ctx, "fresh", "10.96.22.60", pods[2]); err != nil {
		t.Fatal(err)
	}
	// Two more syncs without the apiserver: the delete is not seen.
	syncs := `kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`
	m, err := r.metrics()
	if err != nil {
		t.Fatal(err)
	}
	r.waitMetric(syncs, func(v float64) bool { return v >= m[syncs]+2 }, 30*time.Second)
	got := serviceComments(t, r.node.Netns)
	if !slices.Contains(got, "default/gone:http") || slices.Contains(got, "default/fresh:http") {
		t.Fatalf("kproxy saw changes while cut off from the apiserver: %q", got)
	}

	if err := r.blockAPIServer(false); err != nil {
		t.Fatal(err)
	}
	cut := time.Since(blocked)
	relisted := r.waitServicesConverged(ctx, 90*time.Second)
	if relisted > recoveryBound {
		t.Errorf("converged %.1fs after the cut ended, want <= %v", relisted.Seconds(), recoveryBound)
	}
	r.waitAnswer("10.96.22.60", []string{pods[2]}, 10*time.Second)
	checkNoStaleOrDuplicate(t, save(t, r.node.Netns, "nat"))
	time.Sleep(time.Second) // a few more probes and samples after the relist
	close(stop)
	wg.Wait()
	r.failIfExited()

	if f, n := tally.failures.Load(), missing.Load(); f > 0 || n > 0 {
		var msgs []string
		tally.failMsgs.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return len(msgs) < 10 })
		t.Errorf("%d of %d probes to unchanged Services failed, %d of %d nat samples lacked one of their rules: %q",
			f, tally.probes.Load(), n, nat.samples.Load(), msgs)
	}
	checkRelisted(t, r.kp.Log()[logStart:], true)
	t.Logf("FIGURE watch-expired-relist: cut off %.1fs (apiserver restarted, etcd compacted at revision %d); relist converged %.1fs after the cut ended (deleted Service's rules gone, new Service programmed); %d probes to unchanged Services, %d failed; %d nat samples, %d without an unchanged Service's rule, min KUBE-SERVICES rules %d",
		cut.Seconds(), rev, relisted.Seconds(), tally.probes.Load(), tally.failures.Load(), nat.samples.Load(), missing.Load(), nat.minRules.Load())
}

// checkRelisted checks kproxy's log since a fault (at -v=4 or more) for
// a relist of the Service and EndpointSlice informers, as client-go's
// reflector logs it: "Caches populated" (-v=2) of the type again, after
// the line that ended its watch. With expired, that line must be the
// resumed watch refused as "too old resource version" ("Watch closed",
// -v=4); otherwise any reason counts (an apiserver that is still starting
// may refuse the first watch with 403 before its RBAC cache is ready,
// which also makes the reflector relist).
func checkRelisted(t *testing.T, log string, expired bool) {
	t.Helper()
	for _, typ := range []string{"*v1.Service", "*v1.EndpointSlice"} {
		ofType := logLines(log, "reflector", `type="`+typ+`"`)
		var ended []string
		if expired {
			ended = logLines(log, `"Watch closed"`, `type="`+typ+`"`, "too old resource version")
		} else {
			ended = logLines(log, "reflector", `err="`)
			ended = slices.DeleteFunc(ended, func(l string) bool {
				return strings.Contains(l, "backing off") || strings.Contains(l, `type="`) && !strings.Contains(l, `type="`+typ+`"`) ||
					!strings.Contains(l, `type="`) && !strings.Contains(l, typeResource[typ])
			})
		}
		if len(ended) == 0 {
			t.Errorf("no end of the %s watch in kproxy's log (expired: %v); its reflector lines:\n%s", typ, expired, strings.Join(ofType, "\n"))
			continue
		}
		i := strings.Index(log, ended[0])
		if len(logLines(log[i:], `"Caches populated"`, `type="`+typ+`"`)) == 0 {
			t.Errorf("no relist of %s after its watch ended; its reflector lines:\n%s", typ, strings.Join(ofType, "\n"))
		}
		t.Logf("kproxy relisted %s after: %s", typ, ended[0])
	}
}

// typeResource names the resource of a reflector type in error lines that
// carry no type (client-go's "Failed to watch").
var typeResource = map[string]string{"*v1.Service": `resource \"services\"`, "*v1.EndpointSlice": `resource \"endpointslices\"`}
