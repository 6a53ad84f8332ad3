package proxier

import (
	"net/netip"
	"slices"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Labels and defaults kube-proxy uses to decide which Services it owns.
const (
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	LabelHeadless         = "service.kubernetes.io/headless"
	// DefaultAffinityTimeout is used when ClientIP affinity has no timeout.
	DefaultAffinityTimeout = 10800
)

// ServiceSkipReason says why a whole Service is ignored, or "" if it is not.
// Ignored Services are not errors: kube-proxy skips them silently.
func ServiceSkipReason(svc *v1.Service) string {
	switch {
	case svc.Spec.Type == v1.ServiceTypeExternalName:
		return "ExternalName"
	case svc.Spec.ClusterIP == v1.ClusterIPNone:
		return "headless"
	case svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0:
		return "no ClusterIP"
	}
	if _, ok := svc.Labels[LabelServiceProxyName]; ok {
		return "service-proxy-name label"
	}
	return ""
}

// ServicePortsFromAPI strips a Service to its ports of one family. Each
// problem found (a bad IP, port 0, an unknown protocol, a duplicate port)
// drops only the offending part and is returned as an error, so that the
// caller can log it once and count it; the rest of the Service still works.
func ServicePortsFromAPI(svc *v1.Service, family Family) ([]ServicePort, []error) {
	if ServiceSkipReason(svc) != "" {
		return nil, nil
	}
	if err := validateServiceName(svc); err != nil {
		return nil, []error{err}
	}
	var errs []error
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}

	clusterIP, err := clusterIPOf(svc, family)
	if err != nil {
		return nil, []error{err}
	}
	if !clusterIP.IsValid() {
		// The Service has no IP of this family: nothing to program here.
		return nil, nil
	}
	externalIPs, e := parseAddrs(svc.Spec.ExternalIPs, family, "externalIPs")
	errs = append(errs, e...)
	var lbStrings []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP != "" && (ing.IPMode == nil || *ing.IPMode == v1.LoadBalancerIPModeVIP) {
			lbStrings = append(lbStrings, ing.IP)
		}
	}
	lbIPs, e := parseAddrs(lbStrings, family, "loadBalancer ingress")
	errs = append(errs, e...)
	ranges, e := parseRanges(svc.Spec.LoadBalancerSourceRanges, family)
	errs = append(errs, e...)
	hasRanges := len(svc.Spec.LoadBalancerSourceRanges) > 0
	if slices.ContainsFunc(ranges, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		// A zero-masked range (0.0.0.0/0, ::/0) allows any source of its
		// family: no firewall at all, as in kube-proxy.
		ranges, hasRanges = nil, false
	}

	externallyReachable := svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer || len(externalIPs) > 0
	etpLocal := externallyReachable && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	itpLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	var affinity int32
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		affinity = DefaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = *c.ClientIP.TimeoutSeconds
		}
		if affinity <= 0 || affinity > 86400 {
			errs = append(errs, errf("sessionAffinity timeout %d out of range (1-86400), using %d", affinity, DefaultAffinityTimeout))
			affinity = DefaultAffinityTimeout
		}
	}
	var hcPort int32
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer && etpLocal {
		hcPort = svc.Spec.HealthCheckNodePort
		if !validNodePort(hcPort) {
			errs = append(errs, errf("healthCheckNodePort %d out of range, serving no health check", hcPort))
			hcPort = 0
		}
	}

	seen := map[string]bool{}
	seenPort := map[[2]any]bool{}
	ports := make([]ServicePort, 0, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		proto := sp.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		switch err := validatePortName(sp.Name); {
		case err != nil:
			errs = append(errs, err)
			continue
		case !ValidProtocol(proto):
			errs = append(errs, errf("port %q: unknown protocol %q", sp.Name, sp.Protocol))
			continue
		case sp.Port <= 0 || sp.Port > 65535:
			errs = append(errs, errf("port %q: port %d out of range", sp.Name, sp.Port))
			continue
		case !validNodePort(sp.NodePort):
			errs = append(errs, errf("port %q: nodePort %d out of range", sp.Name, sp.NodePort))
			continue
		case seen[sp.Name]:
			errs = append(errs, errf("duplicate port name %q", sp.Name))
			continue
		case seenPort[[2]any{sp.Port, proto}]:
			errs = append(errs, errf("port %q: duplicate port %d/%s", sp.Name, sp.Port, proto))
			continue
		}
		seen[sp.Name] = true
		seenPort[[2]any{sp.Port, proto}] = true
		p := ServicePort{
			Name:                ServicePortName{NamespacedName: name, Port: sp.Name, Protocol: proto},
			ClusterIP:           clusterIP,
			Port:                sp.Port,
			Protocol:            proto,
			ExternalIPs:         externalIPs,
			SourceRanges:        ranges,
			HasSourceRanges:     hasRanges,
			AffinityTimeout:     affinity,
			InternalPolicyLocal: itpLocal,
			ExternalPolicyLocal: etpLocal,
			HealthCheckNodePort: hcPort,
		}
		if svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer {
			p.NodePort = sp.NodePort
		}
		if svc.Spec.Type == v1.ServiceTypeLoadBalancer {
			p.LoadBalancerIPs = lbIPs
		}
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool {
		return ports[i].Name.String()+string(ports[i].Protocol) < ports[j].Name.String()+string(ports[j].Protocol)
	})
	return ports, errs
}

// clusterIPOf returns the Service's ClusterIP of one family (zero if none).
func clusterIPOf(svc *v1.Service, family Family) (netip.Addr, error) {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	for i, s := range ips {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, errf("clusterIPs[%d] %q is not an IP address", i, s)
		}
		a = a.Unmap()
		if i < len(svc.Spec.IPFamilies) && svc.Spec.IPFamilies[i] != FamilyOf(a) {
			return netip.Addr{}, errf("clusterIPs[%d] %s is not of family %s", i, s, svc.Spec.IPFamilies[i])
		}
		if FamilyOf(a) == family {
			return a, nil
		}
	}
	return netip.Addr{}, nil
}

// parseAddrs keeps the valid addresses of one family; other families are
// silently someone else's, unparsable strings are errors.
func parseAddrs(ss []string, family Family, what string) ([]netip.Addr, []error) {
	var out []netip.Addr
	var errs []error
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			errs = append(errs, errf("%s: %q is not an IP address", what, s))
			continue
		}
		a = a.Unmap()
		if FamilyOf(a) == family {
			out = append(out, a)
		}
	}
	return out, errs
}

// parseRanges keeps the valid CIDRs of one family.
func parseRanges(ss []string, family Family) ([]netip.Prefix, []error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, errf("loadBalancerSourceRanges: %q is not a CIDR", s))
			continue
		}
		if FamilyOf(p.Addr()) == family {
			out = append(out, p.Masked())
		}
	}
	return out, errs
}
