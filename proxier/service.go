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
	clusterIP, err := clusterIPOf(svc, family)
	if err != nil {
		return nil, []error{err}
	}
	if !clusterIP.IsValid() {
		// The Service has no IP of this family: nothing to program here.
		return nil, nil
	}
	shared, errs := sharedByPorts(svc, family, clusterIP)
	ports, portErrs := servicePorts(svc, shared)
	return ports, append(errs, portErrs...)
}

// portsShare is what every port of one Service has in common.
type portsShare struct {
	clusterIP                            netip.Addr
	externalIPs, loadBalancerIPs         []netip.Addr
	sourceRanges                         []netip.Prefix
	hasSourceRanges                      bool
	externalLocal, internalLocal         bool
	affinityTimeout, healthCheckNodePort int32
}

// sharedByPorts reads the Service-wide fields of one family; a bad value
// is dropped (or defaulted) and returned as an error.
func sharedByPorts(svc *v1.Service, family Family, clusterIP netip.Addr) (portsShare, []error) {
	sh := portsShare{clusterIP: clusterIP}
	var errs, e []error
	sh.externalIPs, e = parseAddrs(svc.Spec.ExternalIPs, family, "externalIPs")
	errs = append(errs, e...)
	sh.loadBalancerIPs, e = parseAddrs(loadBalancerVIPs(svc), family, "loadBalancer ingress")
	errs = append(errs, e...)
	sh.sourceRanges, e = parseRanges(svc.Spec.LoadBalancerSourceRanges, family)
	errs = append(errs, e...)
	sh.hasSourceRanges = len(svc.Spec.LoadBalancerSourceRanges) > 0
	if slices.ContainsFunc(sh.sourceRanges, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		// A zero-masked range (0.0.0.0/0, ::/0) allows any source of its
		// family: no firewall at all, as in kube-proxy.
		sh.sourceRanges, sh.hasSourceRanges = nil, false
	}
	externallyReachable := svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer || len(sh.externalIPs) > 0
	sh.externalLocal = externallyReachable && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	sh.internalLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	var err error
	if sh.affinityTimeout, err = affinityTimeoutOf(svc); err != nil {
		errs = append(errs, err)
	}
	if sh.healthCheckNodePort, err = healthCheckNodePortOf(svc, sh.externalLocal); err != nil {
		errs = append(errs, err)
	}
	return sh, errs
}

// loadBalancerVIPs are the ingress IPs traffic arrives at unchanged (IP
// mode VIP, the default); a Proxy-mode ingress is the balancer's business.
func loadBalancerVIPs(svc *v1.Service) []string {
	var ips []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP != "" && (ing.IPMode == nil || *ing.IPMode == v1.LoadBalancerIPModeVIP) {
			ips = append(ips, ing.IP)
		}
	}
	return ips
}

// affinityTimeoutOf is the ClientIP affinity timeout, 0 for none; an out
// of range timeout gets the default and an error.
func affinityTimeoutOf(svc *v1.Service) (int32, error) {
	if svc.Spec.SessionAffinity != v1.ServiceAffinityClientIP {
		return 0, nil
	}
	timeout := int32(DefaultAffinityTimeout)
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		timeout = *c.ClientIP.TimeoutSeconds
	}
	if timeout <= 0 || timeout > 86400 {
		return DefaultAffinityTimeout, errf("sessionAffinity timeout %d out of range (1-86400), using %d", timeout, DefaultAffinityTimeout)
	}
	return timeout, nil
}

// healthCheckNodePortOf is the port kube-proxy serves a LoadBalancer
// Service's local-endpoint health on (externalTrafficPolicy Local), or 0.
func healthCheckNodePortOf(svc *v1.Service, externalLocal bool) (int32, error) {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer || !externalLocal {
		return 0, nil
	}
	port := svc.Spec.HealthCheckNodePort
	if !validNodePort(port) {
		return 0, errf("healthCheckNodePort %d out of range, serving no health check", port)
	}
	return port, nil
}

// servicePorts builds each valid port of svc, sorted by name and protocol;
// an invalid or duplicate port is skipped with an error.
func servicePorts(svc *v1.Service, sh portsShare) ([]ServicePort, []error) {
	var errs []error
	names := map[string]bool{}
	numbers := map[[2]any]bool{}
	ports := make([]ServicePort, 0, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		proto := sp.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		if err := portProblem(sp, proto, names, numbers); err != nil {
			errs = append(errs, err)
			continue
		}
		names[sp.Name] = true
		numbers[[2]any{sp.Port, proto}] = true
		ports = append(ports, sh.port(svc, sp, proto))
	}
	sort.Slice(ports, func(i, j int) bool {
		return ports[i].Name.String()+string(ports[i].Protocol) < ports[j].Name.String()+string(ports[j].Protocol)
	})
	return ports, errs
}

// portProblem says what is wrong with one port, given the names and
// number/protocol pairs of the ports already taken.
func portProblem(sp *v1.ServicePort, proto v1.Protocol, names map[string]bool, numbers map[[2]any]bool) error {
	switch err := validatePortName(sp.Name); {
	case err != nil:
		return err
	case !ValidProtocol(proto):
		return errf("port %q: unknown protocol %q", sp.Name, sp.Protocol)
	case sp.Port <= 0 || sp.Port > 65535:
		return errf("port %q: port %d out of range", sp.Name, sp.Port)
	case !validNodePort(sp.NodePort):
		return errf("port %q: nodePort %d out of range", sp.Name, sp.NodePort)
	case names[sp.Name]:
		return errf("duplicate port name %q", sp.Name)
	case numbers[[2]any{sp.Port, proto}]:
		return errf("port %q: duplicate port %d/%s", sp.Name, sp.Port, proto)
	}
	return nil
}

// port is one valid port of svc with what its ports share.
func (sh portsShare) port(svc *v1.Service, sp *v1.ServicePort, proto v1.Protocol) ServicePort {
	p := ServicePort{
		Name:                ServicePortName{NamespacedName: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, Port: sp.Name, Protocol: proto},
		ClusterIP:           sh.clusterIP,
		Port:                sp.Port,
		Protocol:            proto,
		ExternalIPs:         sh.externalIPs,
		SourceRanges:        sh.sourceRanges,
		HasSourceRanges:     sh.hasSourceRanges,
		AffinityTimeout:     sh.affinityTimeout,
		InternalPolicyLocal: sh.internalLocal,
		ExternalPolicyLocal: sh.externalLocal,
		HealthCheckNodePort: sh.healthCheckNodePort,
	}
	if svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer {
		p.NodePort = sp.NodePort
	}
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer {
		p.LoadBalancerIPs = sh.loadBalancerIPs
	}
	return p
}

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
