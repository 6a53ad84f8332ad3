package measure

import (
	"regexp"
	"strings"
)

// Ruleset summarises an iptables-save dump.
type Ruleset struct {
	Rules  int // "-A" lines, all tables
	Chains int // ":" declarations, all tables (built-in chains included)
	Bytes  int
}

// CountRules summarises an iptables-save dump.
func CountRules(dump string) Ruleset {
	r := Ruleset{Bytes: len(dump)}
	for _, line := range strings.Split(dump, "\n") {
		switch {
		case strings.HasPrefix(line, "-A "):
			r.Rules++
		case strings.HasPrefix(line, ":"):
			r.Chains++
		}
	}
	return r
}

// nfacctMatch is kube-proxy's accounting match. Restoring it needs the named
// nfacct objects to exist in the namespace, and this host has no nfacct
// tool, so the floor restores the rules without the match (the rule itself
// stays).
var nfacctMatch = regexp.MustCompile(` -m nfacct --nfacct-name\s+\S+`)

// ForFreshRestore rewrites an iptables-save dump so that it restores into an
// empty namespace: comments ("#" lines) and nfacct matches are dropped.
func ForFreshRestore(dump string) string {
	var b strings.Builder
	for _, line := range strings.Split(dump, "\n") {
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		b.WriteString(nfacctMatch.ReplaceAllString(line, ""))
		b.WriteByte('\n')
	}
	return b.String()
}

// KubeServicesOnly returns a --noflush restore payload that rewrites only the
// nat KUBE-SERVICES chain of dump: what every kube-proxy partial sync writes
// at least. It returns "" if the dump has no such chain.
func KubeServicesOnly(dump string) string {
	rules := natChains(dump).chains["KUBE-SERVICES"]
	if len(rules) == 0 {
		return ""
	}
	return "*nat\n:KUBE-SERVICES - [0:0]\n" + strings.Join(rules, "\n") + "\nCOMMIT\n"
}

// builtinChains are the chains iptables creates; a kube-proxy-style
// --noflush restore leaves them (and their rules) alone.
var builtinChains = []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

// KubeOnly drops the built-in chains' declarations and rules from dump, which
// leaves a payload that iptables-restore --noflush can apply over the same
// loaded ruleset without duplicating the jump rules, as kube-proxy does.
func KubeOnly(dump string) string {
	var b strings.Builder
lines:
	for _, line := range strings.Split(dump, "\n") {
		for _, c := range builtinChains {
			if strings.HasPrefix(line, ":"+c+" ") || strings.HasPrefix(line, "-A "+c+" ") {
				continue lines
			}
		}
		if line == "" {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
