package ipvs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// kube-proxy's ipvs mode (v1.37) uses chains and ipsets that kproxy's ipvs
// mode does not (it keeps NodePorts and health checks in other sets).
// Cleanup removes them too, so that --cleanup and a mode switch after
// kube-proxy's ipvs mode leave nothing behind: without it their jump rules
// kept kproxy's own chains busy and the cleanup failed.
var upstreamOnlyChains = map[string][]string{
	"nat":    {"KUBE-NODE-PORT", "KUBE-LOAD-BALANCER"},
	"filter": {"KUBE-NODE-PORT", "KUBE-IPVS-OUT-FILTER"},
}

var upstreamOnlySets = []string{
	"KUBE-LOAD-BALANCER-SOURCE-IP",
	"KUBE-NODE-PORT-TCP", "KUBE-NODE-PORT-LOCAL-TCP",
	"KUBE-NODE-PORT-UDP", "KUBE-NODE-PORT-LOCAL-UDP",
	"KUBE-NODE-PORT-SCTP-HASH", "KUBE-NODE-PORT-LOCAL-SCTP-HASH",
}

// upstreamSetName is kube-proxy's name of an ipset for family f: IPv6 sets
// are "KUBE-6-...", cut to ipset's 31 characters.
func upstreamSetName(name string, f proxier.Family) string {
	if f != proxier.IPv6 {
		return name
	}
	name = "KUBE-6-" + name[len("KUBE-"):]
	return name[:min(len(name), 31)]
}

// cleanupChains is every chain a cleanup removes from table: kproxy's and
// kube-proxy's ipvs mode's.
func cleanupChains(table string) []string {
	return append(append([]string(nil), ownedChains[table]...), upstreamOnlyChains[table]...)
}

// cleanupSets is every ipset a cleanup removes for family f.
func cleanupSets(f proxier.Family) []string {
	var names []string
	for n := range ownedSets(f) {
		names = append(names, n)
	}
	for _, n := range upstreamOnlySets {
		names = append(names, upstreamSetName(n, f))
	}
	// kube-proxy truncates IPv6 names; kproxy's own names for a few sets
	// differ from kube-proxy's (KUBE-6-LB-SOURCE-CIDR).
	for _, d := range allSets {
		names = append(names, upstreamSetName(d.name4, f))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Sets that kube-proxy's ipvs mode creates with another type than kproxy's
// sets of the same name (bitmap:port there, hash:ip,port here): kproxy
// cannot add its entries to them, so a take-over must destroy them first.
var upstreamTypedSets = []string{"KUBE-HEALTH-CHECK-NODE-PORT"}

// Chains of kproxy's names whose kube-proxy content uses those sets: a
// take-over flushes them with kube-proxy's chains (kproxy's first restore
// refills them in the same sync).
var upstreamSetUsers = map[string][]string{"filter": {"KUBE-IPVS-FILTER", "KUBE-SOURCE-RANGES-FIREWALL"}}

// removeUpstreamLeftovers prepares a take-over from kube-proxy's ipvs
// mode: when one of its own chains is present, it deletes them (with
// every jump to them) and its jumps to chains of kproxy's names, flushes
// the chains of kproxy's names that use its sets, and destroys its sets
// kproxy does not use or types differently.
// Without kube-proxy's chains it does nothing.
func removeUpstreamLeftovers(ctx context.Context, k IPTables, destroySet func(string) error, f proxier.Family) error {
	var b strings.Builder
	found := false
	for _, t := range tables {
		out, err := k.Save(ctx, t)
		if err != nil {
			return fmt.Errorf("ipvs take-over: iptables-save -t %s: %w", t, err)
		}
		lines := strings.Split(string(out), "\n")
		found = found || slices.ContainsFunc(upstreamOnlyChains[t], func(c string) bool { return hasChain(lines, c) })
		writeChainRemoval(&b, t, lines, upstreamOnlyChains[t], upstreamSetUsers[t], foreignJumps(t, lines))
	}
	if !found {
		return nil
	}
	klog.InfoS("Removing kube-proxy's ipvs mode chains and sets kproxy does not use", "ipFamily", f)
	if err := k.Restore(ctx, []byte(b.String()), false); err != nil {
		return fmt.Errorf("ipvs take-over: iptables-restore: %w", err)
	}
	var errs []error
	for _, n := range append(slices.Clone(upstreamOnlySets), upstreamTypedSets...) {
		errs = append(errs, ignoreNotExist(destroySet(upstreamSetName(n, f))))
	}
	return errors.Join(errs...)
}

// foreignJumps are the rules in chains kproxy does not own that jump to
// one it owns without kproxy's comment: kube-proxy's jumps, which would
// send packets through kproxy's chains a second time.
func foreignJumps(t string, saveLines []string) []string {
	var out []string
	for _, l := range saveLines {
		f := strings.Fields(l)
		if len(f) > 3 && f[0] == "-A" && !slices.Contains(ownedChains[t], f[1]) && f[len(f)-2] == "-j" &&
			slices.Contains(ownedChains[t], f[len(f)-1]) && !strings.Contains(l, `--comment "`+jumpComment+`"`) {
			out = append(out, l)
		}
	}
	return out
}

func hasChain(saveLines []string, chain string) bool {
	return slices.ContainsFunc(saveLines, func(l string) bool { return strings.HasPrefix(l, ":"+chain+" ") })
}
