package nftables

import (
	"strings"
)

// elementAdd is one `add element FAMILY TABLE NAME { ELEMENT }` line.
type elementAdd struct {
	target  string // "add element FAMILY TABLE NAME"
	element string // "KEY" or "KEY : VALUE"
}

// parseElementAdd reads a line knftables writes for one added element.
// Elements with a comment or any other quoted or braced text are not
// merged (ok false): their text is not split safely.
func parseElementAdd(line string) (elementAdd, bool) {
	if !strings.HasPrefix(line, "add element ") || !strings.HasSuffix(line, " }") {
		return elementAdd{}, false
	}
	target, element, ok := strings.Cut(line[:len(line)-len(" }")], " { ")
	if !ok || strings.Count(target, " ") != 4 || element == "" || strings.ContainsAny(element, "\"{},") {
		return elementAdd{}, false
	}
	return elementAdd{target: target, element: element}, true
}

// key is the element's key (the part before " : " in a map element).
func (e elementAdd) key() string {
	k, _, _ := strings.Cut(e.element, " : ")
	return k
}

// maxMergedElements bounds a merged command, and so the line nft echoes
// in its error when it refuses one of its elements.
const maxMergedElements = 500

// mergeElementAdds rewrites `nft -f` input so that consecutive element
// adds to one set or map are one command (of at most maxMergedElements):
// the same elements added in the same order, in few netlink messages
// instead of one each. A key seen twice starts a new command, so that nft
// judges a repeated key exactly as in separate commands.
func mergeElementAdds(text string) string {
	var out strings.Builder
	out.Grow(len(text))
	var group []string
	var target string
	keys := map[string]bool{}
	flush := func() {
		if len(group) > 0 {
			out.WriteString(target + " { " + strings.Join(group, ", ") + " }\n")
		}
		group, target = group[:0], ""
		clear(keys)
	}
	for line := range strings.Lines(text) {
		add, ok := parseElementAdd(strings.TrimSuffix(line, "\n"))
		if !ok {
			flush()
			out.WriteString(line)
			continue
		}
		if add.target != target || keys[add.key()] || len(group) == maxMergedElements {
			flush()
			target = add.target
		}
		keys[add.key()] = true
		group = append(group, add.element)
	}
	flush()
	return out.String()
}
