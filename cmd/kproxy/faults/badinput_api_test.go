package faults

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
)

var noEndpointsRE = regexp.MustCompile(`--comment "?([^:" ]+):\S* has no endpoints"?`)

// goodService is one of the test's own valid Services: ClusterIP ip:80 →
// the echo servers of pods.
type goodService struct {
	name, ip string
	pods     []string
}

// TestAPIBadInput creates every bad-input corpus entry the apiserver
// accepts (flowtest.BadInput.APIAccepts) through the real apiserver, next
// to valid Services with real echo endpoints, and runs kproxy over them in
// iptables and in userspace mode: kproxy never crashes, every valid Service
// and every probeable corpus case answers real traffic as the corpus says,
// each invalid object is reported exactly once (metric and one log line),
// and the sync loop stays healthy (/healthz 200, no sync or restore
// failure).
func TestAPIBadInput(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()

	var entries []flowtest.BadInput
	var refused []string
	objects := 0
	for _, e := range flowtest.BadInputs() {
		if !e.APIAccepts {
			continue
		}
		if e.Node != nil {
			t.Errorf("entry %s is marked APIAccepts but replaces the Node object, which this test cannot do", e.Name)
			continue
		}
		entries = append(entries, e)
		objects += len(e.Services) + len(e.Slices)
		for _, err := range r.createEntry(ctx, e) {
			refused = append(refused, e.Name+": "+err.Error())
		}
	}
	if len(refused) > 0 {
		t.Fatalf("the apiserver refused objects of entries marked APIAccepts (the mark in internal/flowtest is wrong):\n%s", strings.Join(refused, "\n"))
	}
	if len(entries) < 10 {
		t.Fatalf("only %d corpus entries are marked APIAccepts", len(entries))
	}
	var good []goodService
	for i := range 4 {
		g := goodService{fmt.Sprintf("good-%d", i), fmt.Sprintf("10.96.21.%d", i+1), []string{pods[i], pods[(i+1)%4]}}
		if err := r.service(ctx, g.name, g.ip, g.pods...); err != nil {
			t.Fatal(err)
		}
		good = append(good, g)
	}
	t.Logf("created %d corpus entries (%d objects) and %d valid Services", len(entries), objects, len(good))

	for _, mode := range []string{"iptables", "userspace"} {
		t.Run(mode, func(t *testing.T) {
			parent := r.t
			r.t = t
			defer func() { r.t = parent }()
			r.checkBadInputMode(ctx, mode, entries, good)
		})
	}
}

// checkBadInputMode runs one kproxy in mode over the objects created by
// TestAPIBadInput and checks it.
func (r *rig) checkBadInputMode(ctx context.Context, mode string, entries []flowtest.BadInput, good []goodService) {
	t := r.t
	pods := r.pods()
	start := time.Now()
	r.start(nil, "--proxy-mode="+mode, "--iptables-sync-period=3s")
	defer func() {
		if err := r.kp.Stop(); err != nil {
			t.Logf("stop kproxy: %v", err)
		}
	}()
	for _, g := range good {
		r.waitAnswer(g.ip, g.pods, 90*time.Second)
	}
	probed, skipped := r.probeCorpusCases(entries, 60*time.Second)
	converged := time.Since(start)
	if mode == "iptables" {
		checkProgrammed(t, r.node.Netns, entries)
	}

	// Reported once: wait for the reports, then for more syncs (periodic
	// and after an unrelated change) that must not report again.
	want := map[string]int{}
	var reports []string
	for _, e := range entries {
		for _, rep := range e.Reports {
			kind, _, _ := strings.Cut(rep, " ")
			want[kind]++
			reports = append(reports, rep)
		}
	}
	for _, kind := range []string{"Service", "EndpointSlice"} {
		key := `kproxy_invalid_objects_total{kind="` + kind + `"}`
		r.waitMetric(key, func(v float64) bool { return v >= float64(want[kind]) }, 30*time.Second)
	}
	syncs := `kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`
	m, err := r.metrics()
	if err != nil {
		t.Fatal(err)
	}
	before := m[syncs]
	if err := r.endpoints(ctx, good[0].name, pods[3]); err != nil {
		t.Fatal(err)
	}
	r.waitAnswer(good[0].ip, []string{pods[3]}, 30*time.Second)
	r.waitMetric(syncs, func(v float64) bool { return v >= before+3 }, 30*time.Second)
	if err := r.endpoints(ctx, good[0].name, good[0].pods...); err != nil {
		t.Fatal(err)
	}

	m, err = r.metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Service", "EndpointSlice"} {
		key := `kproxy_invalid_objects_total{kind="` + kind + `"}`
		if m[key] != float64(want[kind]) {
			t.Errorf("%s = %v, want %d (one per invalid object)", key, m[key], want[kind])
		}
	}
	log := r.kp.Log()
	const skipLine = "Skipping invalid parts of object"
	for _, rep := range reports {
		kind, name, _ := strings.Cut(rep, " ")
		if n := len(logLines(log, skipLine, `kind="`+kind+`"`, `object="`+name+`"`)); n != 1 {
			t.Errorf("%s: %d log lines, want 1", rep, n)
		}
	}
	if all := logLines(log, skipLine); len(all) != len(reports) {
		t.Errorf("%d invalid-object log lines, want %d (%q):\n%s", len(all), len(reports), reports, strings.Join(all, "\n"))
	}
	for key, v := range m {
		if (strings.HasPrefix(key, "kproxy_sync_failures_total") ||
			strings.HasPrefix(key, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total") ||
			strings.HasPrefix(key, "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total")) && v != 0 {
			t.Errorf("%s = %v, want 0", key, v)
		}
	}
	if code, body, _, err := testrig.HTTPGet(r.node.Netns, "http://"+testrig.KproxyHealthzAddr+"/healthz", 3*time.Second); err != nil || code != 200 {
		t.Errorf("/healthz: %d %v %s", code, err, body)
	}
	r.checkNoPanic()
	t.Logf("FIGURE api-bad-input %s: %d entries accepted by the apiserver, %d valid Services and %d corpus cases answered as expected (%d cases not probeable here), converged %.1fs after start; %d invalid objects reported once each (%v), %v syncs, 0 failures",
		mode, len(entries), len(good), probed, skipped, converged.Seconds(), len(reports), want, m[syncs])
}

// probeCorpusCases probes every corpus case aimed at a ClusterIP from the
// local pod until it behaves as the corpus says (Forward: answered by one
// of its endpoints; Reject: refused). Entries whose endpoints do not
// exist (TraceOnly) and other cases are counted as skipped.
func (r *rig) probeCorpusCases(entries []flowtest.BadInput, within time.Duration) (probed, skipped int) {
	t := r.t
	t.Helper()
	deadline := time.Now().Add(within)
	for _, e := range entries {
		for _, c := range e.Cases {
			addr, ok := caseTarget(e, c)
			if !ok || e.TraceOnly || (c.Want != flowtest.Forward && c.Want != flowtest.Reject) {
				skipped++
				continue
			}
			var hosts []string
			for _, ep := range c.Endpoints {
				h, _, _ := net.SplitHostPort(ep)
				hosts = append(hosts, h)
			}
			for {
				reply, err := testrig.ProbeTCP(r.client(), addr, time.Second)
				var okNow bool
				if c.Want == flowtest.Forward {
					okNow = err == nil && slices.Contains(hosts, reply.Name)
				} else {
					okNow = testrig.Classify(err) == testrig.Refused
				}
				if okNow {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s (%s): want %s, got reply %q err %v\n%s", c.Name, addr, c.Want, reply.Name, err, r.kp.Tail(30))
				}
				r.failIfExited()
				time.Sleep(100 * time.Millisecond)
			}
			probed++
		}
	}
	return probed, skipped
}

// checkProgrammed compares the Services the node's rules serve (nat
// "cluster IP" rules, filter "has no endpoints" rejects) with the corpus:
// every Programmed Service has a rule, no other corpus Service has one.
func checkProgrammed(t *testing.T, ns string, entries []flowtest.BadInput) {
	t.Helper()
	have := map[string]bool{}
	for _, c := range serviceComments(t, ns) {
		name, _, _ := strings.Cut(c, ":")
		have[name] = true
	}
	for _, m := range noEndpointsRE.FindAllStringSubmatch(save(t, ns, "filter"), -1) {
		have[m[1]] = true
	}
	for _, e := range entries {
		for _, s := range e.Services {
			name := s.Namespace + "/" + s.Name
			want := slices.ContainsFunc(e.Programmed, func(p string) bool { return flowtest.QualifiedName(p) == name })
			if have[name] != want {
				t.Errorf("%s (entry %s): has rules %v, want %v", name, e.Name, have[name], want)
			}
		}
	}
}
