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
