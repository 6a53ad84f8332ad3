package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/kproxy/kproxy/proxier"
)

// Tables kproxy writes.
const (
	tableFilter = "filter"
	tableNAT    = "nat"
	tableMangle = "mangle"
)

// Chains with fixed names, as kube-proxy names them.
const (
	chainServices         = "KUBE-SERVICES"
	chainExternalServices = "KUBE-EXTERNAL-SERVICES"
	chainNodePorts        = "KUBE-NODEPORTS"
	chainPostrouting      = "KUBE-POSTROUTING"
	chainMarkMasq         = "KUBE-MARK-MASQ"
	chainForward          = "KUBE-FORWARD"
	chainProxyFirewall    = "KUBE-PROXY-FIREWALL"
	chainCanary           = "KUBE-PROXY-CANARY"
	// chainKubeletFirewall holds the anti-martian rule; kubelet may create
	// the same chain, so kproxy never deletes it.
	chainKubeletFirewall = "KUBE-FIREWALL"
)

// Prefixes of the per-Service and per-endpoint chains.
const (
	prefixSVC = "KUBE-SVC-"
	prefixSVL = "KUBE-SVL-"
	prefixFW  = "KUBE-FW-"
	prefixEXT = "KUBE-EXT-"
	prefixSEP = "KUBE-SEP-"
)

// servicePrefixes are the prefixes of chains kproxy creates per Service;
// a chain with one of them that kproxy does not render is stale.
var servicePrefixes = []string{prefixSVC, prefixSVL, prefixFW, prefixEXT, prefixSEP}

// isServiceChain reports whether chain is a per-Service or per-endpoint
// chain of kproxy (or kube-proxy, which uses the same names).
func isServiceChain(chain string) bool {
	for _, p := range servicePrefixes {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// fixedChains are the chains with fixed names kproxy writes, by table.
var fixedChains = map[string][]string{
	tableNAT:    {chainServices, chainNodePorts, chainPostrouting, chainMarkMasq},
	tableFilter: {chainServices, chainExternalServices, chainForward, chainNodePorts, chainProxyFirewall, chainKubeletFirewall},
}

// deletableChain reports whether chain is one kproxy creates per Service,
// per endpoint or per dispatch bucket: one it deletes when it no longer
// wants it.
func deletableChain(chain string) bool {
	return isServiceChain(chain) || strings.HasPrefix(chain, prefixBucket)
}

// ownedChain reports whether chain is one kproxy writes (in any table).
func ownedChain(chain string) bool {
	if deletableChain(chain) {
		return true
	}
	for _, cs := range fixedChains {
		for _, c := range cs {
			if c == chain {
				return true
			}
		}
	}
	return false
}

// portChains are the chain names of one service port.
type portChains struct {
	name     string // "ns/name:port", used in comments
	protocol string // lower case: "tcp", "udp", "sctp"
	// clusterPolicy (KUBE-SVC-) and localPolicy (KUBE-SVL-) balance over
	// the Cluster and the Local endpoints; external (KUBE-EXT-) is where
	// external destinations enter, through firewall (KUBE-FW-) when the
	// Service has loadBalancerSourceRanges.
	clusterPolicy, localPolicy, firewall, external string
}

// chainsFor computes a service port's chain names exactly as kube-proxy
// does: base32(sha256(portName + protocol))[:16] after a prefix.
func chainsFor(p *proxier.ServicePort) portChains {
	chains := portChains{name: p.Name.String(), protocol: strings.ToLower(string(p.Protocol))}
	h := hash16(chains.name + chains.protocol)
	chains.clusterPolicy, chains.localPolicy, chains.firewall, chains.external = prefixSVC+h, prefixSVL+h, prefixFW+h, prefixEXT+h
	return chains
}

// endpointChain is the KUBE-SEP chain of one endpoint of a service port.
func endpointChain(chains *portChains, ep *proxier.Endpoint) string {
	return prefixSEP + hash16(chains.name+chains.protocol+ep.String())
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}
