package iptables

import (
	"strconv"
	"strings"
)

// The helpers below spell the words of a rule exactly as iptables-save
// prints them: rules are rendered in save form, so that a chain read back
// from the kernel compares equal byte for byte. (xtables.HostMatch spells an
// address match.)

// saveQuote quotes a string argument as iptables-save does: bare when it
// is made only of letters, digits, '-' and '_', else in double quotes with
// '"', '\' and '\” escaped.
func saveQuote(s string) string {
	bare := s != ""
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			bare = false
			break
		}
	}
	if bare {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' || r == '\'' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// withSaveOrder inserts an address or interface match (such as a
// xtables.IfLocal's) into rule where iptables-save prints it: the
// source and destination addresses first, then the incoming interface,
// then the protocol and the other matches. Rules must be rendered in save
// form, as chains are compared with what iptables-save reads back.
func withSaveOrder(match, rule []string) []string {
	if len(match) == 0 {
		return rule
	}
	rank := map[string]int{"-s": 0, "-d": 1, "-i": 2, "-o": 3}
	flag := match[len(match)-2]
	at := 0
	for at < len(rule) {
		i := at
		if rule[i] == "!" {
			i++
		}
		r, ok := rank[rule[i]]
		if !ok || r > rank[flag] {
			break
		}
		at = i + 2
	}
	return join(rule[:at], match, rule[at:])
}

// join concatenates the parts of a rule.
func join(parts ...[]string) []string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]string, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// itoa spells a port number.
func itoa(n int32) string { return strconv.Itoa(int(n)) }
