package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// tableName is kube-proxy's table, one per family (ip, ip6). Everything
// kproxy's nftables mode writes is inside it, so its objects carry no
// prefix of their own.
const tableName = "kube-proxy"

// Base chains, named "${type}-${hook}" as in kube-proxy.
const (
	chainFilterPreroutingPreDNAT = "filter-prerouting-pre-dnat"
	chainFilterOutputPreDNAT     = "filter-output-pre-dnat"
	chainFilterInput             = "filter-input"
	chainFilterForward           = "filter-forward"
	chainFilterOutput            = "filter-output"
	chainNATPrerouting           = "nat-prerouting"
	chainNATOutput               = "nat-output"
	chainNATPostrouting          = "nat-postrouting"
)

// Regular chains, sets and maps shared by all Services.
const (
	chainServices               = "services"
	chainServiceEndpointsCheck  = "service-endpoints-check"
	chainNodePortEndpointsCheck = "nodeport-endpoints-check"
	chainReject                 = "reject-chain"
	chainClusterIPsCheck        = "cluster-ips-check"
	chainFirewallCheck          = "firewall-check"
	chainMasquerading           = "masquerading"

	mapServiceIPs          = "service-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"
	mapFirewallIPs         = "firewall-ips"
	// mapLocalhostNodePortReject is kube-proxy's (alpha, off by default);
	// kproxy only makes sure it is gone.
	mapLocalhostNodePortReject = "localhost-nodeport-reject-ports"

	setClusterIPs         = "cluster-ips"
	setNodePortIPs        = "nodeport-ips"
	setHairpinConnections = "hairpin-connections"
)

// Prefixes of the per-service-port and per-endpoint objects.
const (
	prefixClusterPolicy = "service-"
	prefixLocalPolicy   = "local-"
	prefixExternal      = "external-"
	prefixFirewall      = "firewall-"
	prefixEndpoint      = "endpoint-"
	prefixAffinity      = "affinity-"

	// prefixLengthMax is the longest prefix plus room, as kube-proxy
	// reserves it: names stay within knftables.NameLengthMax.
	prefixLengthMax = 16
	baseLengthMax   = knftables.NameLengthMax - prefixLengthMax
)

// portChains names one service port's chains, as kube-proxy does.
type portChains struct {
	protocol                           string // "tcp", "udp", "sctp"
	comment                            string // "ns/name:port"
	cluster, local, external, firewall string
}

func chainsFor(sp *proxier.ServicePort) portChains {
	proto := strings.ToLower(string(sp.Protocol))
	base := portNameBase(sp.Name, proto)
	return portChains{
		protocol: proto,
		comment:  truncateComment(sp.Name.String()),
		cluster:  prefixClusterPolicy + base,
		local:    prefixLocalPolicy + base,
		external: prefixExternal + base,
		firewall: prefixFirewall + base,
	}
}

// portNameBase is "HASH-ns/name/proto/port": "/" cannot occur in the
// parts, so it separates them and marks the name as a service chain's.
func portNameBase(n proxier.ServicePortName, proto string) string {
	return hashAndTruncate(n.Namespace + "/" + n.Name + "/" + proto + "/" + n.Port)
}

// endpointNames returns an endpoint's chain and affinity set names:
// "HASH-ns/name/proto/port__ip/port", an IPv6 address's colons as dots
// (colons are not allowed in names).
func endpointNames(n proxier.ServicePortName, proto string, ep proxier.Endpoint) (chain, affinitySet string) {
	ip := strings.ReplaceAll(ep.IP.String(), ":", ".")
	base := hashAndTruncate(n.Namespace + "/" + n.Name + "/" + proto + "/" + n.Port + "__" + ip + "/" + strconv.Itoa(int(ep.Port)))
	return prefixEndpoint + base, prefixAffinity + base
}

// hashAndTruncate prefixes name with 8 characters of its hash (unique
// even if truncated, and telling apart names that differ by one digit).
func hashAndTruncate(name string) string {
	sum := sha256.Sum256([]byte(name))
	// Base32 writes 8 characters per 5 bytes: the first 8 of the whole
	// sum's encoding are its first 5 bytes'.
	name = base32.StdEncoding.EncodeToString(sum[:5]) + "-" + name
	if len(name) > baseLengthMax {
		name = name[:baseLengthMax-3] + "..."
	}
	return name
}

func truncateComment(s string) string {
	if len(s) > knftables.CommentLengthMax {
		return s[:knftables.CommentLengthMax]
	}
	return s
}

// isServiceChain reports whether a chain is a per-service-port or
// per-endpoint chain: only those have a "/" in their names.
func isServiceChain(name string) bool { return strings.Contains(name, "/") }

// isAffinitySet reports whether a set is an endpoint's affinity set.
func isAffinitySet(name string) bool { return strings.HasPrefix(name, prefixAffinity) }
