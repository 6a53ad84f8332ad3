// Package conntrack keeps the kernel's connection tracking table in line
// with the Services kproxy programs, and applies the conntrack sysctls
// kube-proxy sets at start.
//
// Cleaner implements proxier.StaleFlowCleaner for one IP family: after
// every successful sync it dumps the conntrack table once (over netlink)
// and deletes the UDP entries whose original destination is a service
// address (ClusterIP, externalIP or load-balancer IP and port, or a local
// address and NodePort) but whose reply source is not an endpoint that
// still serves the port. Such entries would otherwise keep sending a UDP
// "session" (same socket, same source port) to an endpoint that is gone,
// or past the DNAT rule of a Service that just got its first endpoint.
// Established TCP and SCTP entries are never touched: those protocols
// notice a dead peer by themselves. With Options.UnNATedTCP it also
// deletes, for the TCP service addresses new since the previous sync, the
// entries of connections opened before their rules existed (never
// answered, never translated), which would otherwise catch the client's
// retransmitted SYNs for two minutes.
//
// Apply sets nf_conntrack_max (from max-per-core × CPUs, at least min),
// the TCP and UDP timeouts and tcp_be_liberal, through a Sysctls seam
// rooted at a configurable directory.
package conntrack
