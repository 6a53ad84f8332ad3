package parity

import (
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// deviation is one intentional difference from kube-proxy. Each names the
// README line ("Differences from kube-proxy") that says what and why, and
// selects what to leave out of both dumps before they are compared:
// whole chains, rules, or every rule of a Service in one IP family.
type deviation struct {
	name string
	// readme is a phrase of the README line describing the deviation.
	readme  string
	chain   func(table, chain string, rules []string) bool
	rule    func(table, chain, rule string) bool
	service func(svc *v1.Service, family v1.IPFamily) bool
	// normalize rewrites every rule of both dumps.
	normalize func(rule string) string
	// normalizeChain rewrites every chain's rules of both dumps.
	normalizeChain func(rules []string) []string
	// services selects Services ("ns/name") by the whole world, as
	// service does one at a time.
	services func(svcs []*v1.Service, family v1.IPFamily) []string
}

// iptablesDeviations is the whole list for iptables mode (nftDeviations for
// nftables mode). Anything else that differs is a bug.
var iptablesDeviations = []deviation{
	{
		name:   "kubelet's KUBE-FIREWALL chain only when kproxy has a rule for it",
		readme: "kubelet's `KUBE-FIREWALL` chain",
		chain: func(table, chain string, rules []string) bool {
			return table == "filter" && chain == "KUBE-FIREWALL" && len(rules) == 0
		},
		rule: func(table, chain, rule string) bool {
			return table == "filter" && (chain == "INPUT" || chain == "OUTPUT") && rule == "-j KUBE-FIREWALL"
		},
	},
	{
		name:   "no nfacct packet counters in rules",
		readme: "no nfacct counters",
		// kube-proxy's extra localhost NodePort rules only count (the
		// NodePort rule after them matches the same packets).
		rule: func(table, chain, rule string) bool {
			return table == "nat" && chain == "KUBE-NODEPORTS" && strings.Contains(rule, "-m nfacct ")
		},
		normalize: func(rule string) string {
			return nfacctMatch.ReplaceAllString(rule, "")
		},
	},
	failClosed,
}

// failClosed is a deviation of every mode: loadBalancerSourceRanges with
// no range of a family close that family.
var failClosed = deviation{
	name:    "loadBalancerSourceRanges with no range of a family close that family",
	readme:  "`loadBalancerSourceRanges` fail closed",
	service: failsClosed,
}

// nfacctMatch is kube-proxy's "-m nfacct --nfacct-name NAME" (iptables-save
// prints two spaces before the name).
var nfacctMatch = regexp.MustCompile(` -m nfacct --nfacct-name +\S+`)

// failsClosed reports whether a LoadBalancer Service lists source ranges
// but none of family: kproxy accepts no LoadBalancer traffic of that family
// there, kube-proxy accepts all.
func failsClosed(svc *v1.Service, family v1.IPFamily) bool {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer || len(svc.Spec.LoadBalancerSourceRanges) == 0 {
		return false
	}
	for _, r := range svc.Spec.LoadBalancerSourceRanges {
		p, err := netip.ParsePrefix(strings.TrimSpace(r))
		if err == nil && (p.Addr().Is4() == (family == v1.IPv4Protocol)) {
			return false
		}
	}
	return true
}

// applyDeviations leaves out of rs what the deviations devs select for
// the Services of one family.
func applyDeviations(rs ruleset, svcs []*v1.Service, family v1.IPFamily, devs []deviation, l layout) ruleset {
	var names []string
	for _, d := range devs {
		if d.service == nil {
			continue
		}
		for _, s := range svcs {
			if d.service(s, family) {
				names = append(names, s.Namespace+"/"+s.Name)
			}
		}
	}
	for _, d := range devs {
		if d.services != nil {
			names = append(names, d.services(svcs, family)...)
		}
	}
	mentionsLeftOut := func(rule string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return l.mentionsService(rule, n) })
	}
	rs = rs.without(l,
		func(table, chain string, rules []string) bool {
			if slices.ContainsFunc(devs, func(d deviation) bool { return d.chain != nil && d.chain(table, chain, rules) }) {
				return true
			}
			// A left-out Service's own chains go whole: a chain one side
			// reaches another way (e.g. an EXT chain behind kproxy's
			// firewall chain) would otherwise stay on that side.
			return l.serviceChain(chain) && (mentionsLeftOut(chain) || slices.ContainsFunc(rules, mentionsLeftOut))
		},
		func(table, chain, rule string) bool {
			if slices.ContainsFunc(devs, func(d deviation) bool { return d.rule != nil && d.rule(table, chain, rule) }) {
				return true
			}
			return mentionsLeftOut(rule)
		})
	// Rewrites come last: the selections above see the rules as written.
	for _, d := range devs {
		if d.normalize != nil {
			rs = rs.rewrite(d.normalize)
		}
		if d.normalizeChain != nil {
			rs = rs.rewriteChains(d.normalizeChain)
		}
	}
	return rs
}

// TestDeviationsDocumented checks that every deviation is described in the
// README's "Differences from kube-proxy".
func TestDeviationsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Differences from kube-proxy")
	if !ok {
		t.Fatal(`README.md has no "## Differences from kube-proxy" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	flat := strings.Join(strings.Fields(section), " ")
	for _, d := range slices.Concat(iptablesDeviations, nftDeviations) {
		if !strings.Contains(flat, d.readme) {
			t.Errorf("deviation %q: README's Differences from kube-proxy has no %q", d.name, d.readme)
		}
	}
}
