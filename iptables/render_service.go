package iptables

import (
	"hash/maphash"
	"net/netip"
	"strings"

	"github.com/kproxy/kproxy/proxier"
)

// svcRender is one Service rendered: its own nat chains (SVC, SVL, EXT,
// FW, SEP) and its lines in the shared chains. It depends only on the
// Service and the renderer's settings, so it is kept between syncs while
// the Service (same *proxier.Service) and the settings are unchanged:
// a partial sync renders only the Services that changed.
type svcRender struct {
	svc    *proxier.Service
	own    []*ownChain
	disp   []dispLine   // nat KUBE-SERVICES entries, placed by destination
	shared []sharedLine // entries of the other shared chains, in order
	rules  int          // rules in own chains

	noLocalInternal, noLocalExternal int
}

// ownChain is a chain that belongs to one Service. Its text is dropped
// once the kernel holds it; sum (of the text, with the renderer's seed)
// stays, to compare with the kernel's chains.
type ownChain struct {
	name string
	sum  uint64
	body body
}

// dispLine is a rule of nat KUBE-SERVICES (or of the dispatch bucket of
// dst): everything after "-A CHAIN ".
type dispLine struct {
	dst  netip.Addr
	rest string
}

// sharedLine is a rule of a shared chain other than nat KUBE-SERVICES.
type sharedLine struct {
	table, chain, rest string
}

func (s *svcRender) chain(name string) *body {
	c := &ownChain{name: name}
	s.own = append(s.own, c)
	return &c.body
}

func (s *svcRender) dispatch(dst netip.Addr, words ...string) {
	s.disp = append(s.disp, dispLine{dst: dst, rest: strings.Join(words, " ")})
}

func (s *svcRender) share(table, chain string, words ...string) {
	s.shared = append(s.shared, sharedLine{table: table, chain: chain, rest: strings.Join(words, " ")})
}

// renderService renders one Service with the renderer's settings.
func (r *renderer) renderService(snap *proxier.Snapshot, svc *proxier.Service) *svcRender {
	s := &svcRender{svc: svc}
	for i := range svc.Ports {
		r.writePort(snap, &svc.Ports[i], s)
	}
	total := 0
	for _, chain := range s.own {
		s.rules += chain.body.rules
		total += len(chain.body.text)
	}
	// The rendering is kept until the Service changes: move the chains'
	// text into one exact-size block (append growth leaves up to half of
	// each chain's buffer unused; about 5 MB at 10,000 Services).
	block := make([]byte, 0, total)
	for _, chain := range s.own {
		start := len(block)
		block = append(block, chain.body.text...)
		chain.body.text = block[start:len(block):len(block)]
		chain.sum = maphash.Bytes(r.seed, chain.body.text)
	}
	return s
}

// dropText forgets the text of the Service's chains once the kernel holds
// them: until the Service changes, only their sums are needed (at 10,000
// Services the text is about a sixth of the live heap).
func (s *svcRender) dropText() {
	for _, chain := range s.own {
		chain.body.text = nil
	}
}

// hasText reports whether the Service's chains still have their text.
func (s *svcRender) hasText() bool {
	return len(s.own) == 0 || s.own[0].body.text != nil
}

// matches reports whether every chain of the Service is in nat as
// rendered.
func (s *svcRender) matches(nat map[string]uint64) bool {
	for _, chain := range s.own {
		if sum, ok := nat[chain.name]; !ok || sum != chain.sum {
			return false
		}
	}
	return true
}
