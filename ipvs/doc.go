// Package ipvs is kproxy's --proxy-mode=ipvs backend: it programs the
// kernel's IPVS load balancer (github.com/moby/ipvs), binds Service
// addresses to the dummy interface kube-ipvs0 (github.com/vishvananda/netlink),
// keeps ipsets over netlink and adds a small, constant set of iptables rules
// for what IPVS cannot do (masquerade, hairpin, source ranges, Local
// policies, REJECT for Services without endpoints).
//
// The flow of one sync:
//
//	proxier.Snapshot --Build (pure)--> State (virtual servers, real
//	servers, addresses, set entries, iptables rules)
//	current State (read from the kernel on a full sync, remembered
//	otherwise) + desired State --Plan (pure)--> ordered ops
//	ops --Kernel (thin applier)--> the kernel
//
// The Kernel interface is the only seam to the kernel; NewKernel is the
// real one, Fake behaves like it in memory (dump, all-or-nothing ops, the
// kernel's errors, fault injection).
package ipvs
