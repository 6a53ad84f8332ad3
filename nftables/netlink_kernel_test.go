package nftables

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// goldenOp is one rule or element line of a golden dump, as the
// operation a sync adds.
type goldenOp struct {
	line string
	obj  knftables.Object
}

// parseGoldenOp parses "add rule FAMILY kube-proxy CHAIN RULE [comment
// "C"]" and "add element FAMILY kube-proxy NAME { KEY [comment "C"] [:
// VALUE] }".
func parseGoldenOp(line string) (goldenOp, bool) {
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "add" || f[3] != tableName {
		return goldenOp{}, false
	}
	rest := strings.Join(f[5:], " ")
	switch f[1] {
	case "rule":
		r := &knftables.Rule{Chain: f[4], Rule: rest}
		if body, c, ok := strings.Cut(rest, ` comment "`); ok {
			r.Rule, r.Comment = body, knftables.PtrTo(strings.TrimSuffix(c, `"`))
		}
		return goldenOp{line, r}, true
	case "element":
		body := strings.TrimSuffix(strings.TrimPrefix(rest, "{ "), " }")
		key, value, isMap := strings.Cut(body, " : ")
		e := &knftables.Element{Set: f[4]}
		if k, c, ok := strings.Cut(key, ` comment "`); ok {
			key, e.Comment = k, knftables.PtrTo(strings.TrimSuffix(c, `"`))
		}
		e.Key = strings.Split(key, " . ")
		if isMap {
			e.Set, e.Map, e.Value = "", f[4], []string{value}
		}
		return goldenOp{line, e}, true
	}
	return goldenOp{}, false
}

// TestKernelNetlinkMatchesNft: for every golden dump, the rules and
// elements the netlink compiler takes, sent over netlink after the rest
// went by nft -f, leave exactly the bytecode (`nft --debug=netlink list
// table`) that nft -f of the whole dump leaves. A chain goes by netlink
// only if all its rules compile (else its order would change). Every
// rule of a service port's chains must compile unless it uses a set.
func TestKernelNetlinkMatchesNft(t *testing.T) {
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden dumps: %v", err)
	}
	sent := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			sent += checkNetlinkMatchesNft(t, file)
		})
	}
	if sent < 50 {
		t.Errorf("only %d operations went by netlink", sent)
	}
}

func checkNetlinkMatchesNft(t *testing.T, file string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	family := knftables.IPv4Family
	if strings.Contains(text, "add table ip6 ") {
		family = knftables.IPv6Family
	}
	batch := newNetlinkBatch(family)
	viaText, viaNetlink := splitGolden(t, batch, text)
	whole, split := newTestNetns(t, "nlwhole"), newTestNetns(t, "nlsplit")
	if out, err := testrig.ExecInput(whole, text, "nft", "-f", "-"); err != nil {
		t.Fatalf("nft -f of the golden: %v\n%s", err, out)
	}
	if out, err := testrig.ExecInput(split, viaText, "nft", "-f", "-"); err != nil {
		t.Fatalf("nft -f of the rest: %v\n%s", err, out)
	}
	a := &netlinkApplier{}
	defer a.Close()
	if err := testrig.DoInNetns(split, func() error { return a.apply(context.Background(), batch) }); err != nil {
		t.Fatalf("netlink batch of %d operations: %v", len(batch.ops), err)
	}
	if want, got := bytecode(t, whole, family), bytecode(t, split, family); got != want {
		t.Errorf("bytecode differs; sent by netlink:\n%s\nnft -f of everything:\n%s\nwith netlink:\n%s",
			strings.Join(viaNetlink, "\n"), want, got)
	}
	return len(batch.ops)
}

// splitGolden moves the golden's compilable elements, and the rules of
// chains whose rules all compile, into batch; it returns the rest of the
// text and the lines moved.
func splitGolden(t *testing.T, batch *netlinkBatch, text string) (rest string, moved []string) {
	var ops []goldenOp
	compiles := map[string]bool{} // chain → all its rules compile
	for line := range strings.Lines(text) {
		op, ok := parseGoldenOp(strings.TrimSuffix(line, "\n"))
		if !ok {
			continue
		}
		ops = append(ops, op)
		if r, ok := op.obj.(*knftables.Rule); ok {
			_, good := batch.rule(r)
			if all, seen := compiles[r.Chain]; !seen || all {
				compiles[r.Chain] = good
			}
			if !good && servicePortChain(r.Chain) && !strings.ContainsAny(r.Rule, "@{") {
				t.Errorf("rule of a service port chain does not compile: %s", op.line)
			}
		}
	}
	move := map[string]bool{}
	for _, op := range ops {
		switch o := op.obj.(type) {
		case *knftables.Rule:
			if compiles[o.Chain] {
				batch.add(o)
				move[op.line] = true
			}
		case *knftables.Element:
			if _, _, ok := batch.compiler.compileElement(o, true); ok {
				batch.add(o)
				move[op.line] = true
			}
		}
	}
	if batch.spoiled != "" {
		t.Fatalf("batch spoiled: %s", batch.spoiled)
	}
	var b strings.Builder
	for line := range strings.Lines(text) {
		if l := strings.TrimSuffix(line, "\n"); move[l] {
			moved = append(moved, l)
		} else {
			b.WriteString(line)
		}
	}
	return b.String(), moved
}

// servicePortChain is a chain of one service port (or its endpoint).
func servicePortChain(chain string) bool {
	for _, p := range []string{prefixClusterPolicy, prefixLocalPolicy, prefixExternal, prefixFirewall, "endpoint-"} {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// ruleHandle ends the header nft prints above each rule's bytecode: the
// rule's handle and the one it follows.
var ruleHandle = regexp.MustCompile(`(?m)^(ip6? ` + tableName + ` \S+)( \d+)+$`)

// bytecode is the table as nft's netlink debug output prints it, rule
// handles left out and each set's elements sorted (a hash set dumps them
// in an order of its own).
func bytecode(t *testing.T, ns string, family knftables.Family) string {
	t.Helper()
	out, err := testrig.Exec(ns, "nft", "--debug=netlink", "list", "table", string(family), tableName)
	if err != nil {
		t.Fatalf("list table: %v\n%s", err, out)
	}
	lines := strings.Split(ruleHandle.ReplaceAllString(out, "$1"), "\n")
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "\telement ") {
			j++
		}
		slices.Sort(lines[i:j])
		i = j + 1
	}
	return strings.Join(lines, "\n")
}

// TestKernelPartialSyncsByNetlink: partial syncs the compiler takes go by
// netlink and leave the table a fresh full sync writes; one it does not
// take (adding an affinity Service's sets) goes by nft -f; a batch the
// kernel refuses fails the sync, and the next sync, a full one, mends the
// table.
func TestKernelPartialSyncsByNetlink(t *testing.T) {
	ctx := context.Background()
	r := newKernelRig(t, proxier.IPv4)
	now := time.Unix(1e9, 0)
	r.p.now = func() time.Time { return now }
	applier := r.nft.Interface.(*mergingNFT).netlink
	web := types.NamespacedName{Namespace: "default", Name: "web"}
	sticky := types.NamespacedName{Namespace: "default", Name: "sticky"}
	full := flowtest.Scenarios()[0].Snapshot()
	without := func(names ...types.NamespacedName) *proxier.Snapshot {
		s := flowtest.Scenarios()[0].Snapshot()
		for _, n := range names {
			delete(s.Services, n)
		}
		return s
	}
	r.sync(t, full)
	step := func(snap *proxier.Snapshot, changed types.NamespacedName, byNetlink bool) {
		t.Helper()
		before := applier.applied
		if _, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: proxier.NameSet{changed: {}}}); err != nil {
			t.Fatalf("partial sync of %s: %v", changed, err)
		}
		if got := applier.applied - before; got != map[bool]int{true: 1}[byNetlink] {
			t.Errorf("partial sync of %s: %d netlink batches, want by netlink %v", changed, got, byNetlink)
		}
		now = now.Add(2 * staleChainDelay)
		r.sync(t, snap) // deletes the flushed chains (a full sync: by nft -f)
		if got, want := r.listTable(t), freshTable(t, snap); got != want {
			t.Fatalf("after the partial sync of %s:\n%s\nwant (fresh full sync):\n%s", changed, got, want)
		}
	}
	step(without(web), web, true)
	step(full, web, true)
	step(without(sticky), sticky, true) // deletes its affinity sets
	step(full, sticky, false)

	// The kernel refuses the batch: the element is gone already.
	out, err := testrig.Exec(r.topo.Node(1).Netns, "nft", "delete", "element", "ip", tableName, mapServiceIPs,
		"{ "+webClusterIP(t, full)+" . tcp . 80 }")
	if err != nil {
		t.Fatalf("delete element out of band: %v\n%s", err, out)
	}
	_, err = r.p.Sync(ctx, proxier.SyncRequest{Snapshot: without(web), Changed: proxier.NameSet{web: {}}})
	if err == nil || !strings.Contains(err.Error(), "netlink: ") {
		t.Fatalf("a partial sync the kernel refused by netlink: err %v", err)
	}
	res, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: without(web)})
	if err != nil || !res.Full {
		t.Fatalf("sync after the refusal: full %v, err %v", res.Full, err)
	}
	now = now.Add(2 * staleChainDelay)
	r.sync(t, without(web))
	if got, want := r.listTable(t), freshTable(t, without(web)); got != want {
		t.Errorf("after the refusal and a full sync:\n%s\nwant:\n%s", got, want)
	}
	step(full, web, true) // over a new socket
}

// TestKernelLargePartialSyncByNetlink: a partial sync of 250 operations
// (rules, chains, elements of 50 new Services) goes by netlink, its
// answers fitting the socket's buffer; one of 300 goes by nft -f. Both
// leave a fresh full sync's table.
func TestKernelLargePartialSyncByNetlink(t *testing.T) {
	ctx := context.Background()
	r := newKernelRig(t, proxier.IPv4)
	applier := r.nft.Interface.(*mergingNFT).netlink
	base := flowtest.Scenarios()[0].Snapshot()
	r.sync(t, base)
	for _, tc := range []struct {
		services  int
		byNetlink bool
	}{{50, true}, {60, false}} {
		sc := manyServices(tc.services)
		added := sc.Snapshot()
		snap := flowtest.Scenarios()[0].Snapshot()
		changed := proxier.NameSet{}
		for name, svc := range added.Services {
			snap.Services[name] = svc
			changed[name] = struct{}{}
		}
		before := applier.applied
		if _, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: changed}); err != nil {
			t.Fatalf("%d Services: %v", tc.services, err)
		}
		if got := applier.applied - before; got != map[bool]int{true: 1}[tc.byNetlink] {
			t.Errorf("%d Services: %d netlink batches, want by netlink %v", tc.services, got, tc.byNetlink)
		}
		if got, want := r.listTable(t), freshTable(t, snap); got != want {
			t.Fatalf("%d Services:\n%s\nwant (fresh full sync):\n%s", tc.services, got, want)
		}
		r.sync(t, base)
	}
}

// webClusterIP is the ClusterIP of scenario 0's web Service.
func webClusterIP(t *testing.T, snap *proxier.Snapshot) string {
	svc := snap.Services[types.NamespacedName{Namespace: "default", Name: "web"}]
	if svc == nil || len(svc.Ports) == 0 {
		t.Fatal("scenario 0 has no web Service")
	}
	return svc.Ports[0].ClusterIP.String()
}

// freshTable is the table a full sync of snap writes into an empty namespace.
func freshTable(t *testing.T, snap *proxier.Snapshot) string {
	ns := newTestNetns(t, "nlfresh")
	opts := flowOptions()
	opts.NFT = newNetnsNFT(t, proxier.IPv4, ns)
	syncOnce(t, opts, snap)
	return listTableIn(t, ns)
}
