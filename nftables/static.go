package nftables

import (
	"strings"

	"sigs.k8s.io/knftables"
)

// baseChain is a chain attached to a netfilter hook.
type baseChain struct {
	name     string
	kind     knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

// baseChains are kube-proxy's base chains: filter ones just before DNAT
// (source ranges are checked against the destination before DNAT) and at
// filter priority, nat ones at DNAT and SNAT priority.
var baseChains = []baseChain{
	{chainFilterPreroutingPreDNAT, knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10"},
	{chainFilterOutputPreDNAT, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	{chainFilterInput, knftables.FilterType, knftables.InputHook, knftables.FilterPriority},
	{chainFilterForward, knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority},
	{chainFilterOutput, knftables.FilterType, knftables.OutputHook, knftables.FilterPriority},
	{chainNATPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	{chainNATOutput, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{chainNATPostrouting, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

// jumpChain is a jump from a base chain to one of the top-level chains.
type jumpChain struct {
	to, from, match string
}

// jumpChains are kube-proxy's, in its order. The endpoint checks reject,
// which older kernels allow only at the input, forward and output hooks,
// so they are not run from the pre-DNAT chains.
var jumpChains = []jumpChain{
	{chainNodePortEndpointsCheck, chainFilterInput, "ct state new"},
	{chainServiceEndpointsCheck, chainFilterInput, "ct state new"},
	{chainServiceEndpointsCheck, chainFilterForward, "ct state new"},
	{chainServiceEndpointsCheck, chainFilterOutput, "ct state new"},
	{chainFirewallCheck, chainFilterPreroutingPreDNAT, "ct state new"},
	{chainFirewallCheck, chainFilterOutputPreDNAT, "ct state new"},
	{chainServices, chainNATOutput, ""},
	{chainServices, chainNATPrerouting, ""},
	{chainMasquerading, chainNATPostrouting, ""},
	{chainClusterIPsCheck, chainFilterForward, "ct state new"},
	{chainClusterIPsCheck, chainFilterOutput, "ct state new"},
}

// The keys of the shared sets; "addr" stands for the family's address
// type (see keyType).
const (
	clusterIPsKey = "addr"
	hairpinKey    = "addr . addr . inet_proto . inet_service"
)

// keyType is key with the family's address type, as nft declares it.
func keyType(key, addrType string) string { return strings.ReplaceAll(key, "addr", addrType) }

// verdictMap is one of the shared maps, with kube-proxy's key and comment.
type verdictMap struct {
	name    string
	key     string // "addr" stands for the family's address type
	comment string
}

var verdictMaps = []verdictMap{
	{mapNoEndpointServices, "addr . inet_proto . inet_service", "vmap to drop or reject packets to services with no endpoints"},
	{mapNoEndpointNodePorts, "inet_proto . inet_service", "vmap to drop or reject packets to service nodeports with no endpoints"},
	{mapFirewallIPs, "addr . inet_proto . inet_service", "destinations that are subject to LoadBalancerSourceRanges"},
	{mapServiceIPs, "addr . inet_proto . inet_service", "ClusterIP, ExternalIP and LoadBalancer IP traffic"},
	{mapServiceNodePorts, "inet_proto . inet_service", "NodePort traffic"},
}
