// Package userspace is kproxy's userspace proxy mode (--proxy-mode=userspace).
//
// For every service port the Proxier opens one listener per traffic class
// (an "internal" one for the ClusterIP, an "external" one for NodePorts,
// externalIPs and LoadBalancer IPs) on a kernel-chosen port of the wildcard
// address, and programs nat rules (our own KPROXY-US-* chains, hooked from
// PREROUTING and OUTPUT) that REDIRECT the service destinations to it; a
// filter rule drops connections that reach a proxy port without that
// redirect. The
// listener accepts the client, picks an endpoint (round robin, ClientIP
// affinity, passive health), dials it with a bounded, backed-off retry over
// the other endpoints, and splices bytes in both directions in the kernel
// (io.Copy between *net.TCPConn uses splice(2) on Linux). UDP uses one
// session per client address.
//
// Which endpoints a connection may use comes from proxier.Port.Usable; the
// only decision made here is the one a redirect makes possible: the proxy
// sees the client address, so externalTrafficPolicy=Local traffic from pods
// and from the node itself uses the Cluster endpoints, as kube-proxy's
// short-circuit rules do.
//
// The pieces: plan.go (snapshot → listener specs, pure), rules*.go
// (specs + ports → iptables-restore text, pure), proxier.go (Sync: plan,
// open the new listeners, render, apply the rules in one iptables-restore,
// close the removed listeners), balancer.go (endpoint choice), tcp.go and
// udp.go (the data path), sweeper.go (idle and drain limits, run by Run),
// kernel.go (the iptables seam, the shared xtables.Fake).
package userspace
