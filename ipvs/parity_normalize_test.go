package ipvs

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// sortedChains is an iptables-save of one table with the chains sorted by
// name and each chain's rules in their order, counters dropped (iptables-nft
// lists chains in creation order, which differs between writers).
func sortedChains(table, save string) string {
	policies := map[string]string{}
	rules := map[string][]string{}
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			policies[f[0]] = f[1]
		case strings.HasPrefix(l, "-A "):
			chain := strings.Fields(l)[1]
			rules[chain] = append(rules[chain], l)
		}
	}
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s\n", table)
	for _, n := range names {
		fmt.Fprintf(&b, ":%s %s\n", n, policies[n])
		for _, r := range rules[n] {
			b.WriteString(r + "\n")
		}
	}
	return b.String()
}

// sortedIPSets is an ipset save of the IPv4 sets (the world is IPv4;
// KUBE-6-* are the other family's) with its lines sorted and the hash
// parameters the kernel picks (initval, bucketsize) dropped.
func sortedIPSets(save string) string {
	noise := regexp.MustCompile(` (initval 0x[0-9a-f]+|bucketsize \d+)`)
	var lines []string
	for _, l := range strings.Split(save, "\n") {
		if l != "" && !strings.Contains(l, " KUBE-6-") {
			lines = append(lines, noise.ReplaceAllString(l, ""))
		}
	}
	slices.Sort(lines)
	return "--- ipsets\n" + strings.Join(lines, "\n") + "\n"
}

// sortedVirtualServers is /proc/net/ip_vs with IPv4 addresses and ports
// in decimal, the real servers of each virtual server sorted and without
// connection counters, and the virtual servers sorted.
func sortedVirtualServers(procIPVS string) string {
	var blocks []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			slices.Sort(cur[1:])
			blocks = append(blocks, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for _, l := range strings.Split(procIPVS, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP"):
			flush()
			cur = []string{strings.Join(append([]string{f[0], hexAddrPort(f[1])}, f[2:]...), " ")}
		case len(f) >= 4 && f[0] == "->" && cur != nil:
			cur = append(cur, fmt.Sprintf("  -> %s %s %s", hexAddrPort(f[1]), f[2], f[3]))
		}
	}
	flush()
	slices.Sort(blocks)
	return "--- ip_vs\n" + strings.Join(blocks, "\n") + "\n"
}

// hexAddrPort turns /proc/net/ip_vs's "0A600001:0050" into "10.96.0.1:80";
// anything else (IPv6) is returned as it is.
func hexAddrPort(s string) string {
	addr, port, ok := strings.Cut(s, ":")
	if !ok || len(addr) != 8 {
		return s
	}
	a, err1 := strconv.ParseUint(addr, 16, 32)
	p, err2 := strconv.ParseUint(port, 16, 16)
	if err1 != nil || err2 != nil {
		return s
	}
	return fmt.Sprintf("%d.%d.%d.%d:%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff, p)
}

// stateDiffs compares two states as multisets of lines under their section
// headers: "- line" is only upstream's, "+ line" only kproxy's. When the
// lines are the same but not their order (rules within a chain), it says
// so for each section.
func stateDiffs(upstream, kproxy string) []string {
	out := lineDiffs(upstream, kproxy)
	if len(out) > 0 || upstream == kproxy {
		return out
	}
	us, ks := sections(upstream), sections(kproxy)
	for name, body := range us {
		if ks[name] != body {
			out = append(out, fmt.Sprintf("order of the lines in %s differs:\n%s\n--- kproxy:\n%s", name, body, ks[name]))
		}
	}
	return out
}

// sections splits a state at its "--- name" headers.
func sections(s string) map[string]string {
	out := map[string]string{}
	name := ""
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "--- ") {
			name = l[4:]
			continue
		}
		out[name] += l + "\n"
	}
	return out
}

// lineDiffs is the multiset difference of the two states' lines, each
// prefixed with its section's name.
func lineDiffs(upstream, kproxy string) []string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for name, body := range sections(s) {
			for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
				m[name+": "+l]++
			}
		}
		return m
	}
	cu, ck := count(upstream), count(kproxy)
	var out []string
	for l, n := range cu {
		for i := ck[l]; i < n; i++ {
			out = append(out, "- "+l)
		}
	}
	for l, n := range ck {
		for i := cu[l]; i < n; i++ {
			out = append(out, "+ "+l)
		}
	}
	slices.Sort(out)
	return out
}

// parityDeviations are the known, intended differences from upstream's
// ipvs mode, each with the line of README "Differences from kube-proxy"
// that explains it.
var parityDeviations = []*regexp.Regexp{
	// A port with no usable endpoint: kube-proxy keeps an empty virtual
	// server (connections hang); kproxy has none and rejects or drops in
	// KUBE-IPVS-FILTER (README, Differences from kube-proxy). A missing
	// virtual server with real servers still shows its "->" lines.
	regexp.MustCompile(`^- ip_vs: (TCP|UDP|SCTP) \S+ \w+$`),
}

func parityDeviation(diff string) bool {
	for _, re := range parityDeviations {
		if re.MatchString(diff) {
			return true
		}
	}
	return false
}
