package testrig

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Endpoint choice as each proxy lists it. kube-proxy: one rule with an
// inline map, "[meta l4proto P ]dnat ip[6] to numgen random mod N map
// { 0 : A . p, … }" or "numgen random mod N vmap { 0 : goto C, … }".
// kproxy: one rule per endpoint, "[meta l4proto P ]numgen random mod K 0
// dnat to A:p" (K = N … 2) and a last one without numgen.
var (
	upstreamChoice = regexp.MustCompile(`^(meta l4proto \w+ )?(?:dnat ip6? to numgen random mod (\d+) map|numgen random mod (\d+) vmap) \{ (.*) \}$`)
	kproxyShare    = regexp.MustCompile(`^(meta l4proto \w+ )?(?:numgen random mod (\d+) 0 )?(dnat to|goto) (\S+)$`)
)

// NeutralEndpointChoice rewrites both proxies' endpoint choices in one
// chain's rules (as nft lists them, trimmed) as one line naming the sorted targets ("choose dnat to {A . p, B . p}", "choose
// goto {C, D}"), so that equal choices compare equal. A kproxy run whose
// shares are not N, N-1, … 2 and then the rest stays as it is (and differs).
func NeutralEndpointChoice(rules []string) []string {
	var out []string
	for i := 0; i < len(rules); i++ {
		if line, ok := neutralUpstreamChoice(rules[i]); ok {
			out = append(out, line)
			continue
		}
		if line, n := neutralKproxyChoice(rules[i:]); n > 0 {
			out = append(out, line)
			i += n - 1
			continue
		}
		out = append(out, rules[i])
	}
	return out
}

func neutralUpstreamChoice(rule string) (string, bool) {
	m := upstreamChoice.FindStringSubmatch(rule)
	if m == nil {
		return "", false
	}
	verb := "dnat to"
	if m[3] != "" {
		verb = "goto"
	}
	var targets []string
	for _, e := range strings.Split(m[4], ", ") {
		_, target, ok := strings.Cut(e, " : ")
		if !ok {
			return "", false
		}
		targets = append(targets, strings.TrimPrefix(target, "goto "))
	}
	if len(targets) == 1 {
		// "numgen random mod 1 vmap" (affinity, one endpoint) is kproxy's
		// plain goto.
		return m[1] + verb + " " + targets[0], true
	}
	return choiceLine(m[1], verb, targets), true
}

// neutralKproxyChoice reads a run of kproxy's share rules at the start of
// rules; n is how many it spans (0 if none starts there).
func neutralKproxyChoice(rules []string) (line string, n int) {
	first := kproxyShare.FindStringSubmatch(rules[0])
	if first == nil || first[2] == "" {
		return "", 0
	}
	total, _ := strconv.Atoi(first[2])
	if total < 2 || len(rules) < total {
		return "", 0
	}
	var targets []string
	for i, r := range rules[:total] {
		m := kproxyShare.FindStringSubmatch(r)
		want := ""
		if left := total - i; left > 1 {
			want = strconv.Itoa(left)
		}
		if m == nil || m[1] != first[1] || m[3] != first[3] || m[2] != want {
			return "", 0
		}
		t := m[4]
		if m[3] == "dnat to" {
			t = mapTarget(t)
		}
		targets = append(targets, t)
	}
	return choiceLine(first[1], first[3], targets), total
}

// mapTarget writes a DNAT target "A:p" or "[A]:p" as a map lists it,
// "A . p".
func mapTarget(t string) string {
	i := strings.LastIndex(t, ":")
	if i < 0 {
		return t
	}
	return strings.Trim(t[:i], "[]") + " . " + t[i+1:]
}

func choiceLine(proto, verb string, targets []string) string {
	slices.Sort(targets)
	return proto + "choose " + verb + " {" + strings.Join(targets, ", ") + "}"
}

// NeutralEndpointChoiceListing is NeutralEndpointChoice over an `nft list`
// listing: each run of rule lines (two tabs deep) is one chain's rules.
func NeutralEndpointChoiceListing(listing string) string {
	var out, run []string
	flush := func() {
		for _, r := range NeutralEndpointChoice(run) {
			out = append(out, "\t\t"+r)
		}
		run = nil
	}
	for _, line := range strings.Split(listing, "\n") {
		if strings.HasPrefix(line, "\t\t") && !strings.HasPrefix(line, "\t\t\t") {
			run = append(run, strings.TrimSpace(line))
			continue
		}
		flush()
		out = append(out, line)
	}
	flush()
	return strings.Join(out, "\n")
}
