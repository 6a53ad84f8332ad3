package measure

import "strings"

// CountNftRules summarises an `nft list ruleset` dump: Rules are the
// statements inside chains, Chains the chain declarations.
func CountNftRules(dump string) Ruleset {
	r := Ruleset{Bytes: len(dump)}
	inChain := false
	for _, line := range strings.Split(dump, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "chain "):
			r.Chains++
			inChain = true
		case line == "}":
			inChain = false
		case inChain && line != "" && !strings.HasPrefix(line, "type ") && !strings.HasPrefix(line, "policy "):
			r.Rules++
		}
	}
	return r
}
