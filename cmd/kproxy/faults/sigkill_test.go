package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestSIGKILLMidSync kills kproxy with SIGKILL at three provable points of
// a sync — a restore started but not yet run, a restore whose transaction
// is open in the kernel, a restore committed but not yet seen by kproxy —
// while Services keep changing; more change while it is down. After each
// restart the whole ruleset must equal "kproxy render" of the apiserver's
// objects, and every Service must be answered by one of its endpoints.
func TestSIGKILLMidSync(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const n = 40
	r.serviceSet(ctx, "k", "10.96.14", n, 2)
	gate := newRestoreGate(t)
	check := testrig.RenderCheck{T: t, Bin: r.bin, CP: r.cp, Node: r.node, Scratch: testrig.NewNetns(t, "canon")}
	r.start(gate.env())
	check.WaitConverged(ctx, r.kp, "first start")
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, stop := range []string{beforeRestore, duringRestore, afterRestore} {
		gate.arm(stop)
		r.churn(ctx, rnd, n, 5) // the sync this starts halts at the gate
		gate.awaitStopped(20 * time.Second)
		if err := r.kp.Kill(); err != nil {
			t.Fatal(err)
		}
		r.churn(ctx, rnd, n, 5) // while kproxy is down
		started := time.Now()
		r.start(gate.env())
		check.WaitConverged(ctx, r.kp, "restart after a kill "+stop+" a restore")
		took := time.Since(started)
		checkNoStaleOrDuplicate(t, save(t, r.node.Netns, allTables...))
		probed := r.probeEveryService(ctx)
		t.Logf("FIGURE sigkill (%s the restore): ruleset == full render %.1fs after restart; %d Services answered by their own endpoints",
			stop, took.Seconds(), probed)
	}
}

// churn makes k random changes among Services k0…k<n-1>: endpoints move,
// Services go and come back.
func (r *rig) churn(ctx context.Context, rnd *rand.Rand, n, k int) {
	r.t.Helper()
	pods := r.pods()
	for range k {
		i := rnd.IntN(n)
		name := fmt.Sprintf("k%d", i)
		if rnd.IntN(4) == 0 {
			if err := r.deleteService(ctx, name); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		// A ClusterIP is released asynchronously after a delete: re-creating
		// at once may be refused; a later change retries.
		perm := rnd.Perm(len(pods))
		a, b := pods[perm[0]], pods[perm[1]]
		err := r.service(ctx, name, fmt.Sprintf("10.96.14.%d", i+1), a, b)
		if err != nil && !strings.Contains(err.Error(), "already allocated") {
			r.t.Fatal(err)
		}
	}
}

// probeEveryService probes each Service in the rig's namespace a few times
// and fails unless every answer comes from one of its endpoints; it
// returns how many Services it probed.
func (r *rig) probeEveryService(ctx context.Context) int {
	r.t.Helper()
	svcs, err := r.cp.Client.CoreV1().Services(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	probed := 0
	for _, s := range svcs.Items {
		if s.Name == "kubernetes" {
			continue
		}
		want := r.sliceAddresses(ctx, s.Name)
		for range 3 {
			name, err := r.probe(s.Spec.ClusterIP, 2*time.Second)
			if err != nil || !slices.Contains(want, name) {
				r.t.Errorf("%s (%s): answered by %q (%v), want one of %v", s.Name, s.Spec.ClusterIP, name, err, want)
			}
		}
		probed++
	}
	return probed
}

// sliceAddresses is the endpoint addresses of a Service's EndpointSlices.
func (r *rig) sliceAddresses(ctx context.Context, service string) []string {
	r.t.Helper()
	l, err := r.cp.Client.DiscoveryV1().EndpointSlices(r.ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, es := range l.Items {
		for _, ep := range es.Endpoints {
			out = append(out, ep.Addresses...)
		}
	}
	return out
}
