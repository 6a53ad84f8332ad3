package iptables

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
