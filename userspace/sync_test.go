package userspace

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// newFakeProxier runs a Proxier against the Fake kernel; its listeners
// live in a throwaway namespace (no packet is sent).
func newFakeProxier(t *testing.T) (*Proxier, *Fake) {
	t.Helper()
	testrig.RequireRoot(t)
	ns := testrig.NewNetns(t, "us")
	f := NewFake()
	p, err := New(Options{Family: proxier.IPv4, Kernel: f, Sockets: netnsSockets{ns: ns}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, f
}

func syncOK(t *testing.T, p *Proxier, snap *proxier.Snapshot, full bool) proxier.SyncResult {
	t.Helper()
	res, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: full})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

var toPortsRE = regexp.MustCompile(`--to-ports (\d+)`)

// normalizedRules replaces proxy ports with listener names, so that two
// Proxiers (whose ports differ) can be compared. A TCP and a UDP listener
// may have the same port number: names are looked up by protocol too.
func normalizedRules(p *Proxier, f *Fake) string {
	names := map[string]string{}
	for _, l := range p.Listeners() {
		names[strings.ToLower(string(l.Name.Protocol))+"/"+strconv.Itoa(l.ProxyPort)] = l.Name.String() + "/" + strconv.FormatBool(l.External)
	}
	lines := strings.Split(f.Dump(), "\n")
	for i, l := range lines {
		proto := "/"
		if m := protoRE.FindStringSubmatch(l); m != nil {
			proto = m[1] + "/"
		}
		lines[i] = toPortsRE.ReplaceAllStringFunc(l, func(m string) string {
			return "--to-ports <" + names[proto+toPortsRE.FindStringSubmatch(m)[1]] + ">"
		})
	}
	return mergedGuards(lines, names)
}

var protoRE = regexp.MustCompile(` -p (tcp|udp) `)

// mergedGuards turns the guard's port lists into one sorted list of names
// per rule shape: the guard splits its ports into multiport-sized chunks
// by number, and which port falls in which chunk differs between Proxiers.
func mergedGuards(lines []string, names map[string]string) string {
	first := map[string]int{} // rule shape -> index of its first line
	merged := map[string][]string{}
	var out []string
	for _, l := range lines {
		m := dportsRE.FindStringSubmatch(l)
		if m == nil {
			out = append(out, l)
			continue
		}
		shape := strings.Replace(l, m[0], "--dports <>", 1)
		proto := protoRE.FindStringSubmatch(l)[1] + "/"
		for _, port := range strings.Split(m[1], ",") {
			merged[shape] = append(merged[shape], names[proto+port])
		}
		if _, ok := first[shape]; !ok {
			first[shape] = len(out)
			out = append(out, shape)
		}
	}
	for shape, i := range first {
		slices.Sort(merged[shape])
		out[i] = strings.Replace(shape, "--dports <>", "--dports <"+strings.Join(merged[shape], ",")+">", 1)
	}
	return strings.Join(out, "\n")
}

var dportsRE = regexp.MustCompile(`--dports ([\d,]+)`)

// Replaying the scenarios one after the other on one Proxier (partial
// syncs) ends in the same kernel state as a fresh Proxier's full sync.
func TestIncrementalEqualsFull(t *testing.T) {
	inc, incK := newFakeProxier(t)
	for _, sc := range flowtest.Scenarios() {
		syncOK(t, inc, sc.Snapshot(), false)
		fresh, freshK := newFakeProxier(t)
		syncOK(t, fresh, sc.Snapshot(), true)
		if a, b := normalizedRules(inc, incK), normalizedRules(fresh, freshK); a != b {
			t.Errorf("scenario %s: incremental state differs from a full sync:\n%s\n--- full ---\n%s", sc.Name, a, b)
		}
	}
}

// Endpoint changes do not touch the kernel, and keep the listener's port.
func TestEndpointChangeKeepsListenerAndRules(t *testing.T) {
	p, f := newFakeProxier(t)
	syncOK(t, p, webSnapshot(0, "10.244.1.10:8080", "10.244.2.10:8080"), false)
	before, restores := p.Listeners(), len(f.Restores)
	res := syncOK(t, p, webSnapshot(0, "10.244.2.11:8080"), false)
	if len(f.Restores) != restores || res.Written["nat"] != 0 {
		t.Errorf("an endpoint change restored rules (%d restores, written %v)", len(f.Restores)-restores, res.Written)
	}
	if after := p.Listeners(); len(after) != len(before) || after[0] != before[0] {
		t.Errorf("listeners changed on an endpoint change: %v -> %v", before, after)
	}
	// 0 endpoints: the Service is rejected instead, which is a rule change.
	syncOK(t, p, webSnapshot(0), false)
	if len(f.Restores) != restores+1 || strings.Count(strings.Join(f.Chain("filter", chainFilter), "\n"), "-j REJECT") != 2 {
		t.Errorf("no endpoints: want one restore with 2 reject rules, got %d restores, %v", len(f.Restores)-restores, f.Chain("filter", chainFilter))
	}
}

// A failed restore keeps the previous rules and the listeners they point
// to; the next (full) sync succeeds and only then closes what is gone.
func TestFailedRestoreKeepsPreviousState(t *testing.T) {
	p, f := newFakeProxier(t)
	syncOK(t, p, webSnapshot(0, "10.244.1.10:8080"), false)
	dump, listeners := f.Dump(), p.Listeners()
	f.FailOn = xtables.FailOnce("Restore", errors.New("injected"))
	empty := newSnap(proxier.NodeInfo{Name: "node1"}).snap
	if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: empty}); err == nil {
		t.Fatal("sync succeeded despite the failed restore")
	}
	if f.Dump() != dump || len(p.Listeners()) != len(listeners) {
		t.Fatalf("failed sync changed the state:\n%s\nlisteners %v", f.Dump(), p.Listeners())
	}
	syncOK(t, p, empty, true)
	// Only the static "node ports" jump is left in our nat chains.
	if len(p.Listeners()) != 0 || len(f.Chain("nat", chainServices)) != 1 || len(f.Chain("nat", chainNodePorts)) != 0 {
		t.Errorf("after recovery: listeners %v, rules %v", p.Listeners(), f.Chain("nat", chainServices))
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	p, f := newFakeProxier(t)
	pristine := f.Dump()
	syncOK(t, p, flowtest.Scenarios()[0].Snapshot(), true)
	if f.Dump() == pristine {
		t.Fatal("sync wrote nothing")
	}
	if err := p.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.Dump() != pristine {
		t.Errorf("after cleanup:\n%s\nwant:\n%s", f.Dump(), pristine)
	}
	if err := Cleanup(context.Background(), Options{Family: proxier.IPv4, Kernel: f}); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

// TestCleanupOfCleanSystemOnlyLists: without our chains (every start of
// another mode), cleanup lists nat and filter and runs nothing else.
func TestCleanupOfCleanSystemOnlyLists(t *testing.T) {
	f := NewFake()
	var ops []string
	f.FailOn = func(op string) error { ops = append(ops, op); return nil }
	if err := Cleanup(context.Background(), Options{Family: proxier.IPv4, Kernel: f}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Save nat", "Save filter"}; !slices.Equal(ops, want) {
		t.Errorf("cleanup of a clean system ran %q, want %q", ops, want)
	}
}

// TestCleanupUnlistedTableStillUnhooked: a table that cannot be listed
// fails the cleanup but still loses its jumps into our chains.
func TestCleanupUnlistedTableStillUnhooked(t *testing.T) {
	p, f := newFakeProxier(t)
	syncOK(t, p, flowtest.Scenarios()[0].Snapshot(), true)
	f.FailOn = xtables.FailOnce("Save nat", errors.New("injected"))
	if err := Cleanup(context.Background(), Options{Family: proxier.IPv4, Kernel: f}); err == nil {
		t.Error("cleanup with nat unlistable reported success")
	}
	for _, j := range jumps {
		for _, rule := range f.Chain(j.table, j.chain) {
			if strings.Contains(rule, j.target) {
				t.Errorf("%s/%s still jumps: %s", j.table, j.chain, rule)
			}
		}
	}
}

// Jump rules are written once and again on full syncs only, never twice.
func TestJumpRulesAreIdempotent(t *testing.T) {
	p, f := newFakeProxier(t)
	for range 3 {
		syncOK(t, p, webSnapshot(0, "10.244.1.10:8080"), true)
	}
	for _, j := range jumps {
		if n := len(f.Chain(j.table, j.chain)); n != 1 {
			t.Errorf("%s/%s has %d rules, want the one jump", j.table, j.chain, n)
		}
	}
}
