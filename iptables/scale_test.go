package iptables

import (
	"context"
	"flag"
	"fmt"
	"github.com/kproxy/kproxy/internal/xtables"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// The scale measurement is not a test: it times syncs of a large snapshot
// against the real iptables-restore in a throwaway namespace, next to the
// floor (a bare iptables-restore of the same ruleset). Run it as root:
//
//	go test ./iptables -run TestScale -scale 10000 -v
var (
	scaleN    = flag.Int("scale", 0, "TestScale: number of Services (0 skips)")
	scaleEPs  = flag.Int("scale-eps", 2, "TestScale: endpoints per Service")
	scaleReps = flag.Int("scale-reps", 5, "TestScale: repetitions of each partial sync")
	scaleDump = flag.String("scale-dump", "", "TestScale: write the rendered ruleset to this file")
)

// scaleWorld is n Services of one port with eps endpoints each, with
// ClusterIPs drawn at random from 10.96.0.0/12 as the apiserver does.
type scaleWorld struct {
	tr       *proxier.Tracker
	services []*v1.Service
	slices   []*discovery.EndpointSlice
	rng      *rand.Rand
	used     map[netip.Addr]bool
	version  int
}

func newScaleWorld(seed uint64) *scaleWorld {
	return &scaleWorld{tr: newTracker(), rng: rand.New(rand.NewPCG(seed, 1)), used: map[netip.Addr]bool{}, version: 10}
}

func (w *scaleWorld) randomIP(prefix netip.Prefix) netip.Addr {
	base := prefix.Addr().As4()
	span := uint32(1) << (32 - prefix.Bits())
	for {
		off := 1 + w.rng.Uint32N(span-2)
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += off
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if !w.used[a] {
			w.used[a] = true
			return a
		}
	}
}

var (
	scaleServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")
	scalePodCIDR     = netip.MustParsePrefix("10.244.0.0/16")
)

func (w *scaleWorld) slice(name string, eps int) *discovery.EndpointSlice {
	var list []flowtest.EP
	for range eps {
		list = append(list, flowtest.EP{IP: w.randomIP(scalePodCIDR).String(), Node: flowtest.OtherNode})
	}
	return flowtest.NewSlice(name+"-1", name, []discovery.EndpointPort{flowtest.SlicePort("http", v1.ProtocolTCP, 8080)}, list...)
}

// add creates n more Services with their slices.
func (w *scaleWorld) add(n, eps int) {
	for range n {
		name := fmt.Sprintf("svc-%d", len(w.services))
		svc := flowtest.NewService(name, w.randomIP(scaleServiceCIDR).String(), []v1.ServicePort{flowtest.Port("http", v1.ProtocolTCP, 80, 0)})
		sl := w.slice(name, eps)
		w.tr.OnService(nil, svc)
		w.tr.OnEndpointSlice(nil, sl)
		w.services = append(w.services, svc)
		w.slices = append(w.slices, sl)
	}
}

// replaceEndpoints gives Service i a new set of endpoints.
func (w *scaleWorld) replaceEndpoints(i, eps int) {
	old := w.slices[i]
	cur := w.slice(w.services[i].Name, eps)
	w.version++
	cur.ResourceVersion = fmt.Sprint(w.version)
	w.tr.OnEndpointSlice(old, cur)
	w.slices[i] = cur
}

func (w *scaleWorld) checkout() (*proxier.Snapshot, proxier.NameSet) {
	co := w.tr.Checkout()
	return co.Snapshots[proxier.IPv4], co.Changed[proxier.IPv4]
}

// timeRestore runs iptables-restore (args) of payload in ns.
func timeRestore(t *testing.T, ns, payload string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := testrig.ExecInput(ns, payload, append([]string{"iptables-restore", "-w"}, args...)...); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestScale measures full and partial syncs of -scale Services against the
// floor, and reports them with t.Log. It asserts only that every sync
// succeeds and that the partial syncs leave the rules of a full sync.
func TestScale(t *testing.T) {
	if *scaleN == 0 {
		t.Skip("set -scale N to measure")
	}
	testrig.RequireRoot(t)
	ctx := context.Background()
	n := *scaleN
	w := newScaleWorld(1)
	w.add(n, *scaleEPs)
	snap, _ := w.checkout()

	start := time.Now()
	text, err := Render(snap, flowOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("render: %v, %d bytes, %d lines", time.Since(start), len(text), strings.Count(text, "\n"))
	if *scaleDump != "" {
		if err := os.WriteFile(*scaleDump, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ns := testrig.NewNetns(t, "scale")
	k, err := xtables.NewRunner(xtables.RunnerConfig{Family: proxier.IPv4, Netns: ns})
	if err != nil {
		t.Fatal(err)
	}
	newProxier := func() *Proxier {
		opts := flowOptions()
		opts.Kernel = k
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProxier()
	sync := func(p *Proxier, snap *proxier.Snapshot, changed proxier.NameSet, full bool) (time.Duration, proxier.SyncResult) {
		start := time.Now()
		res, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: changed, Full: full})
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start), res
	}
	d, res := sync(p, snap, nil, true)
	t.Logf("first full sync (empty netns): %v (nat rules %d, filter %d)", d, res.Rules[tableNAT], res.Rules[tableFilter])
	d, res = sync(p, snap, nil, true)
	t.Logf("full sync over the same rules (same process): %v (wrote %v rules)", d, res.Written)
	d, res = sync(newProxier(), snap, nil, true)
	t.Logf("full sync over the same rules (restart): %v (wrote %v rules)", d, res.Written)
	start = time.Now()
	if _, err := k.Save(ctx, tableNAT); err != nil {
		t.Fatal(err)
	}
	t.Logf("iptables-save -t nat alone: %v", time.Since(start))

	var partial []time.Duration
	var written int
	for i := range *scaleReps {
		w.replaceEndpoints(w.rng.IntN(len(w.services)), *scaleEPs)
		snap, changed := w.checkout()
		d, res := sync(p, snap, changed, false)
		partial = append(partial, d)
		written = res.Written[tableNAT] + res.Written[tableFilter]
		_ = i
	}
	t.Logf("partial sync, one Service's endpoints replaced: median %v of %v (last wrote %d rules)", median(partial), partial, written)

	var added []time.Duration
	for range *scaleReps {
		w.add(1, *scaleEPs)
		snap, changed := w.checkout()
		d, _ := sync(p, snap, changed, false)
		added = append(added, d)
	}
	t.Logf("partial sync, one Service added: median %v of %v", median(added), added)

	var removed []time.Duration
	for range *scaleReps {
		i := w.rng.IntN(len(w.services))
		w.tr.OnService(w.services[i], nil)
		w.tr.OnEndpointSlice(w.slices[i], nil)
		w.services = slices.Delete(w.services, i, i+1)
		w.slices = slices.Delete(w.slices, i, i+1)
		snap, changed := w.checkout()
		d, _ := sync(p, snap, changed, false)
		removed = append(removed, d)
	}
	t.Logf("partial sync, one Service removed: median %v of %v", median(removed), removed)

	var noop []time.Duration
	for range *scaleReps {
		snap, changed := w.checkout()
		d, _ := sync(p, snap, changed, false)
		noop = append(noop, d)
	}
	t.Logf("partial sync, nothing changed: median %v of %v", median(noop), noop)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("Go heap in use after GC (snapshot, tracker and Proxier): %.1f MB", float64(ms.HeapInuse)/1e6)

	// Partial syncs left what a full sync writes.
	snap, _ = w.checkout()
	ref := testrig.NewNetns(t, "scaleref")
	rk, err := xtables.NewRunner(xtables.RunnerConfig{Family: proxier.IPv4, Netns: ref})
	if err != nil {
		t.Fatal(err)
	}
	opts := flowOptions()
	opts.Kernel = rk
	rp, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	d, _ = sync(rp, snap, nil, true)
	t.Logf("reference full sync into an empty netns: %v", d)
	if got, want := ourRules(t, k), ourRules(t, rk); got != want {
		t.Errorf("after partial syncs the rules differ from a full sync's")
	}
	_ = testrig.DeleteNetns(ref)

	// The floor: the same ruleset restored by a bare iptables-restore.
	dump, err := testrig.Exec(ns, "iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	var floor []time.Duration
	for range 3 {
		fresh := testrig.NewNetns(t, "floor")
		floor = append(floor, timeRestore(t, fresh, dump))
		_ = testrig.DeleteNetns(fresh)
	}
	t.Logf("floor: restore of the same ruleset into an empty netns: median %v of %v (%d bytes)", median(floor), floor, len(dump))
	if os.Getenv("KPROXY_SCALE_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("KPROXY_SCALE_DUMP"), []byte(dump), 0o644)
	}
}
