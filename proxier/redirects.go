package proxier

// Redirects maps service ports to the proxy ports on the node their traffic
// is redirected to (the userspace mode's listeners). A conntrack entry of
// such traffic has the node's own listener, not an endpoint, as its reply
// source: the conntrack cleaner needs these ports to tell a live flow from
// a stale one.
type Redirects map[ServicePortName]RedirectPorts

// RedirectPorts are the proxy ports of one service port: Internal for its
// ClusterIP, External for its NodePort, externalIPs and load-balancer IPs.
// 0 means that traffic is not redirected (rejected, dropped, or no
// listener could be opened).
type RedirectPorts struct {
	Internal, External uint16
}
