// Package nftables is kproxy's nftables mode: it programs one IP family's
// Services into the table "kube-proxy" of family ip or ip6, with
// kube-proxy's nftables layout and names (base chains, the service-ips,
// service-nodeports, no-endpoint-services and firewall-ips verdict maps,
// per-service-port chains, numgen endpoint choice, affinity sets), so that
// kproxy can take over a node from kube-proxy's nftables mode and back.
//
// The renderer writes a sync's operations (ops: straight into nft's text
// with the real nft, into a knftables.Transaction with its Fake) from
// proxier's per-port policy, with no I/O: the whole table on a full sync,
// only the changed Services' chains and the shared sets' and maps'
// elements that differ (from what the Proxier remembers writing) on a
// partial one. Proxier.Sync sends it with one `nft -f` and deletes the
// service chains it no longer needs a sync later, as kube-proxy does. A
// canary (one netlink dump of a chain) notices when someone flushed or
// deleted the table. Every nft call goes through Options.NFT, a
// knftables.Interface: the real nft binary, or knftables.Fake in tests;
// the real one (and the kernel tests') also takes a sync's operations as
// text (textSender). README.md says what is done and what is not yet.
package nftables
