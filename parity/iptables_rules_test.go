package parity

import (
	"fmt"
	"regexp"
	"strings"
)

// parseSave reads iptables-save output into a ruleset: table → chain →
// the text of each rule after "-A CHAIN ". Comment lines and COMMIT carry
// no rules.
func parseSave(save string) ruleset {
	rs := ruleset{}
	var table map[string][]string
	for _, line := range strings.Split(save, "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "#"), line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = map[string][]string{}
			rs[line[1:]] = table
		case strings.HasPrefix(line, ":") && table != nil:
			name := strings.Fields(line[1:])[0]
			if _, ok := table[name]; !ok {
				table[name] = nil
			}
		case strings.HasPrefix(line, "-A ") && table != nil:
			chain, rule, _ := strings.Cut(line[3:], " ")
			table[chain] = append(table[chain], rule)
		}
	}
	return rs
}

// comparedTables are the tables the proxies' rules live in.
var comparedTables = []string{"nat", "filter"}

// iptablesLayout: the nat and filter tables, KUBE-SVC/SVL/EXT/FW/SEP
// chains per service.
var iptablesLayout = layout{
	tables:          comparedTables,
	unordered:       func(table, chain string) bool { return unordered[table][chain] },
	check:           nodePortsJumpLast,
	jumps:           func(rule string) []string { return []string{jumpTarget(rule)} },
	serviceChain:    serviceChain.MatchString,
	mentionsService: mentionsService,
}

// unordered lists the chains whose rule order kube-proxy does not define
// (it writes them while ranging over a map of services), so they compare
// as multisets. In nat KUBE-SERVICES the jump to KUBE-NODEPORTS must stay
// last; that rule is compared in place.
var unordered = map[string]map[string]bool{
	"nat":    {"KUBE-SERVICES": true, "KUBE-NODEPORTS": true},
	"filter": {"KUBE-SERVICES": true, "KUBE-EXTERNAL-SERVICES": true, "KUBE-NODEPORTS": true, "KUBE-PROXY-FIREWALL": true},
}

const nodePortsJumpComment = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"

// nodePortsJumpLast checks that both keep the jump to KUBE-NODEPORTS last
// in nat KUBE-SERVICES.
func nodePortsJumpLast(table, chain string, up, kp []string) string {
	if table != "nat" || chain != "KUBE-SERVICES" || lastRule(up) == lastRule(kp) {
		return ""
	}
	return fmt.Sprintf("nat KUBE-SERVICES: last rule differs:\n  upstream: %s\n  kproxy:   %s\n", lastRule(up), lastRule(kp))
}

// lastRule is the chain's last rule if it is the jump to KUBE-NODEPORTS.
func lastRule(rules []string) string {
	if len(rules) == 0 || !strings.Contains(rules[len(rules)-1], nodePortsJumpComment) {
		return "(no KUBE-NODEPORTS jump last)"
	}
	return rules[len(rules)-1]
}

// serviceChain matches the names of the chains that belong to one service
// port or endpoint.
var serviceChain = regexp.MustCompile(`^KUBE-(SVC|SVL|EXT|FW|SEP)-`)

// jumpTarget is the chain a rule jumps to ("" if none).
func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

// commentOf is the text of a rule's "-m comment --comment" ("" if none),
// quoted or not.
func commentOf(rule string) string {
	_, after, ok := strings.Cut(rule, "--comment ")
	if !ok {
		return ""
	}
	if strings.HasPrefix(after, `"`) {
		text, _, _ := strings.Cut(after[1:], `"`)
		return text
	}
	text, _, _ := strings.Cut(after, " ")
	return text
}

// mentionsService reports whether a rule's comment names Service ns/name
// (or one of its ports, "ns/name:port").
func mentionsService(rule, nsName string) bool {
	for _, w := range strings.Fields(commentOf(rule)) {
		if w == nsName || strings.HasPrefix(w, nsName+":") {
			return true
		}
	}
	return false
}
