package faults

import (
	"context"
	"fmt"
	"net"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
)

// createEntry creates an entry's namespaces, Services and EndpointSlices
// through the apiserver (status is not written: no entry the apiserver
// accepts needs one). It returns one error per object the apiserver
// refused.
func (r *rig) createEntry(ctx context.Context, e flowtest.BadInput) []error {
	var errs []error
	for _, svc := range e.Services {
		if err := r.ensureNamespace(ctx, svc.Namespace); err != nil {
			return []error{err}
		}
		s := svc.DeepCopy()
		s.ResourceVersion = ""
		if _, err := r.cp.Client.CoreV1().Services(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("Service %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	for _, sl := range e.Slices {
		if err := r.ensureNamespace(ctx, sl.Namespace); err != nil {
			return []error{err}
		}
		s := sl.DeepCopy()
		s.ResourceVersion = ""
		if _, err := r.cp.Client.DiscoveryV1().EndpointSlices(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("EndpointSlice %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	return errs
}

// ensureNamespace creates an API namespace unless it exists.
func (r *rig) ensureNamespace(ctx context.Context, name string) error {
	nc := r.cp.Client.CoreV1().Namespaces()
	if _, err := nc.Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil
	}
	_, err := nc.Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

// caseTarget resolves a corpus case aimed at a ClusterIP to "ip:port" of
// the entry's Service; ok is false for other cases (NodePorts, external
// addresses, UDP), which the API-level test does not probe.
func caseTarget(e flowtest.BadInput, c flowtest.Case) (string, bool) {
	if c.Dest != flowtest.ToClusterIP || c.Source != flowtest.FromLocalPod {
		return "", false
	}
	for _, s := range e.Services {
		if s.Name != c.Service {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Name == c.Port && p.Protocol == v1.ProtocolTCP {
				return net.JoinHostPort(s.Spec.ClusterIP, fmt.Sprint(p.Port)), true
			}
		}
	}
	return "", false
}

// logLines returns the lines of log that contain every one of parts.
func logLines(log string, parts ...string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// checkNoPanic fails when kproxy has exited or its log shows a panic or a
// fatal error.
func (r *rig) checkNoPanic() {
	r.t.Helper()
	r.failIfExited()
	log := r.kp.Log()
	for _, bad := range []string{"panic:", "[running]:", "fatal error:", "SIGSEGV"} {
		if l := logLines(log, bad); len(l) > 0 {
			r.t.Errorf("kproxy log shows %q: %s", bad, l[0])
		}
	}
}
