// Package parity holds the differential tests of kproxy against upstream
// kube-proxy v1.37.2: random worlds of Services and EndpointSlices are
// created through a real etcd and kube-apiserver, both proxies run as the
// same node in two network namespaces with the same flags, and their rules
// are compared for IPv4 and IPv6: in iptables mode iptables-save output
// chain by chain, in nftables mode `nft list table` object by object. One
// driver (runParity) runs every mode; a mode supplies its flags, dump,
// parser, layout and deviations. Every expected difference is listed in
// deviations_test.go and points at its line in the README's "Differences
// from kube-proxy".
//
// Run more seeds with
//
//	go test ./parity -run TestParityNFTables -parity.seeds=50
//
// or one seed with -parity.seed=N. The package has no code outside tests.
package parity
