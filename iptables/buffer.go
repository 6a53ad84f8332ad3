package iptables

import (
	"hash/maphash"
	"math"
	"strconv"
)

// body is one chain's rules as iptables-restore lines ("-A CHAIN ...\n"),
// in exactly the form iptables-save prints them, so that a chain read back
// from the kernel compares equal byte for byte.
type body struct {
	text  []byte
	rules int
	// sum caches maphash.Bytes(seed, text) once taken (summed): a body is
	// not changed after its render, and a bucket chain's is reused.
	sum    uint64
	summed bool
}

// sumOf is the sum of b's text under seed, the same seed every call.
func (b *body) sumOf(seed maphash.Seed) uint64 {
	if !b.summed {
		b.sum, b.summed = maphash.Bytes(seed, b.text), true
	}
	return b.sum
}

// add appends one rule "-A chain words...".
func (b *body) add(chain string, words ...string) {
	b.text = append(b.text, "-A "...)
	b.text = append(b.text, chain...)
	for _, w := range words {
		b.text = append(b.text, ' ')
		b.text = append(b.text, w...)
	}
	b.text = append(b.text, '\n')
	b.rules++
}

// addRest appends "-A chain rest" where rest is a prebuilt rule tail.
func (b *body) addRest(chain, rest string) {
	b.text = append(b.text, "-A "...)
	b.text = append(b.text, chain...)
	b.text = append(b.text, ' ')
	b.text = append(b.text, rest...)
	b.text = append(b.text, '\n')
	b.rules++
}

// probabilities caches the "--probability" strings for 1/n: formatting
// floats is expensive and the same few values recur. The value is the one
// the kernel stores (a fraction of 2^31) printed as iptables-save prints it
// (%.11f), so that rules read back compare equal.
type probabilities []string

func (p *probabilities) get(n int) string {
	for len(*p) <= n {
		i := len(*p)
		s := "<bad value>"
		if i > 0 {
			v := uint32(math.Round(float64(0x80000000) / float64(i)))
			s = strconv.FormatFloat(float64(v)/float64(0x80000000), 'f', 11, 64)
		}
		*p = append(*p, s)
	}
	return (*p)[n]
}
