package xtables

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Holdings is what one backend's tables hold, counted from its
// iptables-save output (both families added up).
type Holdings struct {
	// Rules counts rules ("-A" lines) in every chain.
	Rules int
	// KubeChains counts user chains named KUBE-* (kubelet's, kube-proxy's,
	// kproxy's) or KPROXY-* (kproxy's), also when empty.
	KubeChains int
	// KubeletHint: kubelet's KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY
	// chain is there, so kubelet (1.17 and later) uses this backend.
	KubeletHint bool
}

// weight is how much of the node's configuration a backend holds.
func (h Holdings) weight() int { return h.Rules + h.KubeChains }

// Add returns h and o added up (e.g. IPv4 and IPv6).
func (h Holdings) Add(o Holdings) Holdings {
	return Holdings{Rules: h.Rules + o.Rules, KubeChains: h.KubeChains + o.KubeChains, KubeletHint: h.KubeletHint || o.KubeletHint}
}

// Count reads iptables-save output. Comments, table headers, built-in
// chains and COMMIT lines count for nothing.
func Count(save []byte) Holdings {
	var h Holdings
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-A "):
			h.Rules++
		case strings.HasPrefix(line, ":KUBE-"), strings.HasPrefix(line, ":KPROXY-"):
			h.KubeChains++
			name, _, _ := strings.Cut(line[1:], " ")
			if name == "KUBE-IPTABLES-HINT" || name == "KUBE-KUBELET-CANARY" {
				h.KubeletHint = true
			}
		}
	}
	return h
}

// Host is what detection found on the node.
type Host struct {
	// HasLegacy, HasNFT and HasPlain: iptables-legacy{,-save,-restore},
	// iptables-nft{,-save,-restore} and plain iptables{,-save,-restore}
	// are installed.
	HasLegacy, HasNFT, HasPlain bool
	// Legacy and NFT are what each backend holds (zero when its binaries
	// are missing).
	Legacy, NFT Holdings
}

// Choice is a backend and why it was chosen, for the one log line at
// start.
type Choice struct {
	Backend Backend
	Reason  string
}

// ErrNoIPTables: no iptables binaries at all.
var ErrNoIPTables = errors.New("no iptables binaries found (install iptables: both backends are in Debian's iptables package)")

// Choose picks the backend, as iptables-wrapper does: with both backends
// installed, the one kubelet's hint chain is in (nft first), else the one
// holding more rules and KUBE-* chains, nft on a tie (both empty
// included); with one installed, that one; with neither, plain iptables.
func Choose(h Host) (Choice, error) {
	switch {
	case h.HasLegacy && h.HasNFT:
		l, n := h.Legacy.weight(), h.NFT.weight()
		switch {
		case h.NFT.KubeletHint:
			return Choice{NFT, "kubelet's KUBE-IPTABLES-HINT/KUBE-KUBELET-CANARY chain is in nf_tables"}, nil
		case h.Legacy.KubeletHint:
			return Choice{Legacy, "kubelet's KUBE-IPTABLES-HINT/KUBE-KUBELET-CANARY chain is in legacy iptables"}, nil
		case l > n:
			return Choice{Legacy, fmt.Sprintf("legacy iptables holds more rules and KUBE-* chains (%d) than nf_tables (%d)", l, n)}, nil
		case n > 0:
			return Choice{NFT, fmt.Sprintf("nf_tables holds at least as many rules and KUBE-* chains (%d) as legacy iptables (%d)", n, l)}, nil
		}
		return Choice{NFT, "both backends are empty: nft, the default"}, nil
	case h.HasNFT:
		return Choice{NFT, "only iptables-nft is installed"}, nil
	case h.HasLegacy:
		return Choice{Legacy, "only iptables-legacy is installed"}, nil
	case h.HasPlain:
		return Choice{Plain, "only plain iptables is installed (no -legacy/-nft variants)"}, nil
	}
	return Choice{}, ErrNoIPTables
}
