package iptables

// jumpRule is a rule kproxy keeps at the top of a built-in chain, jumping
// to one of its own chains. On full syncs, those not found in the
// iptables-save output the sync reads (see saved.go) are inserted (one
// restore when their target chains are missing too, else one by one after
// a check; see ensureStatic), exactly as kube-proxy writes them so that a
// take-over finds them already in place and never duplicates them.
type jumpRule struct {
	table, from, to string
	comment         string
	extra           []string
}

// args is the rule specification, for go-iptables.
func (j jumpRule) args() []string {
	a := append([]string{}, j.extra...)
	if j.comment != "" {
		a = append(a, "-m", "comment", "--comment", j.comment)
	}
	return append(a, "-j", j.to)
}

var ctNew = []string{"-m", "conntrack", "--ctstate", "NEW"}

// jumpRules, in kube-proxy's order (each is inserted at position 1, so the
// last one ends up first).
var jumpRules = []jumpRule{
	{tableFilter, "INPUT", chainExternalServices, "kubernetes externally-visible service portals", ctNew},
	{tableFilter, "FORWARD", chainExternalServices, "kubernetes externally-visible service portals", ctNew},
	{tableFilter, "INPUT", chainNodePorts, "kubernetes health check service ports", nil},
	{tableFilter, "FORWARD", chainServices, "kubernetes service portals", ctNew},
	{tableFilter, "OUTPUT", chainServices, "kubernetes service portals", ctNew},
	{tableFilter, "FORWARD", chainForward, "kubernetes forwarding rules", nil},
	{tableFilter, "INPUT", chainProxyFirewall, "kubernetes load balancer firewall", ctNew},
	{tableFilter, "OUTPUT", chainProxyFirewall, "kubernetes load balancer firewall", ctNew},
	{tableFilter, "FORWARD", chainProxyFirewall, "kubernetes load balancer firewall", ctNew},
	{tableNAT, "OUTPUT", chainServices, "kubernetes service portals", nil},
	{tableNAT, "PREROUTING", chainServices, "kubernetes service portals", nil},
	{tableNAT, "POSTROUTING", chainPostrouting, "kubernetes postrouting rules", nil},
}

// kubeletJumpRules duplicate kubelet's: kproxy creates them but, like
// kube-proxy, never removes them.
var kubeletJumpRules = []jumpRule{
	{tableFilter, "INPUT", chainKubeletFirewall, "", nil},
	{tableFilter, "OUTPUT", chainKubeletFirewall, "", nil},
}

// canaryTables hold an empty KUBE-PROXY-CANARY chain; if one disappears,
// someone flushed the tables and kproxy must rewrite everything.
var canaryTables = []string{tableMangle, tableNAT, tableFilter}
