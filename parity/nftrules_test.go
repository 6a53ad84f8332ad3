package parity

import (
	"regexp"
	"slices"
	"strings"

	"github.com/kproxy/kproxy/internal/testrig"
)

// parseNFT reads an `nft list table` listing into a ruleset with one
// table, testrig.NFTTable, whose "chains" are the table's objects named
// by kind and name ("chain services", "map service-ips", "set
// cluster-ips"): a chain's lines are its declaration and rules in order,
// a set's or map's its declaration and one line per element (element
// order is the kernel's, so these compare as multisets). The table's own
// lines are under "table". Stale chains are left out (withoutStaleChains).
// Counters and affinity timeouts left on an
// element are dropped: they count packets and time, not rules.
func parseNFT(listing string) ruleset {
	objects := map[string][]string{}
	var cur string
	for _, line := range strings.Split(testrig.CanonicalNFT(listing), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case line == "\t}":
			cur = ""
		case trimmed == "", trimmed == "}", strings.HasPrefix(line, "table "):
		case strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "\t\t") && strings.HasSuffix(line, " {"):
			cur = strings.TrimSuffix(trimmed, " {")
			objects[cur] = nil
		case cur == "":
			objects["table"] = append(objects["table"], trimmed)
		case strings.HasPrefix(trimmed, "elements = { "):
			elems := strings.TrimSuffix(strings.TrimPrefix(trimmed, "elements = { "), " }")
			for _, e := range strings.Split(elems, ", ") {
				objects[cur] = append(objects[cur], normalizeNFT(e))
			}
		default:
			objects[cur] = append(objects[cur], normalizeNFT(trimmed))
		}
	}
	return withoutStaleChains(ruleset{testrig.NFTTable: objects})
}

// withoutStaleChains drops the flushed service chains nothing leads to any
// more. Both proxies flush a chain when it stops being used and delete it
// at their first sync a second or more later (the kernel may still be
// using it), so whether one is still there depends on when the next sync
// came, not on the rules. A stale chain left with rules in it stays.
func withoutStaleChains(rs ruleset) ruleset {
	objects := rs[testrig.NFTTable]
	for name, lines := range objects {
		if len(lines) == 0 && nftServiceObject.MatchString(name) && strings.HasPrefix(name, "chain ") && !referenced(nftLayout, objects, name) {
			delete(objects, name)
		}
	}
	return rs
}

var nftCounters = regexp.MustCompile(`counter packets \d+ bytes \d+ ?| expires \S+`)

func normalizeNFT(line string) string {
	return strings.TrimSpace(nftCounters.ReplaceAllString(line, ""))
}

// nftLayout: kube-proxy's nftables table, per-service chains and affinity
// sets named "<kind>-<hash>-ns/name/proto/port[__endpoint]".
var nftLayout = layout{
	tables: []string{testrig.NFTTable},
	unordered: func(_, object string) bool {
		return strings.HasPrefix(object, "set ") || strings.HasPrefix(object, "map ")
	},
	jumps:           nftJumps,
	serviceChain:    nftServiceObject.MatchString,
	mentionsService: nftMentionsService,
}

var nftServiceObject = regexp.MustCompile(`^(chain (service|local|external|endpoint|firewall)|set affinity)-[A-Z2-7]{8}-`)

// nftJumps lists the objects a rule or element leads to: the chains after
// jump and goto, and the sets and maps it names with @.
func nftJumps(rule string) []string {
	var out []string
	f := strings.Fields(rule)
	for i, w := range f {
		w = strings.TrimRight(w, ",}")
		switch {
		case (w == "jump" || w == "goto") && i+1 < len(f):
			out = append(out, "chain "+strings.TrimRight(f[i+1], ",}"))
		case strings.HasPrefix(w, "@"):
			for _, kind := range []string{"set ", "map "} {
				out = append(out, kind+w[1:])
			}
		}
	}
	return slices.Compact(out)
}

// nftMentionsService reports whether an object name, rule or element
// belongs to Service ns/name: it names one of the Service's chains or sets
// ("-ns/name/") or carries its comment ("ns/name:port").
func nftMentionsService(rule, nsName string) bool {
	return strings.Contains(rule, "-"+nsName+"/") || strings.Contains(rule, `"`+nsName+":") || strings.Contains(rule, `"`+nsName+`"`)
}
