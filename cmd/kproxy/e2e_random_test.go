package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// randomizer applies a seeded random sequence of Service and EndpointSlice
// creates, updates and deletes, over a small pool of names so that the
// same objects change many times.
type randomizer struct {
	t    *testing.T
	cp   *testrig.ControlPlane
	rng  *rand.Rand
	pods []*testrig.Pod
}

const randomNames = 5

func newRandomizer(t *testing.T, cp *testrig.ControlPlane, seed uint64, pods []*testrig.Pod) *randomizer {
	return &randomizer{t: t, cp: cp, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), pods: pods}
}

func (r *randomizer) step(ctx context.Context, i int) {
	t := r.t
	t.Helper()
	n := r.rng.IntN(randomNames)
	name := fmt.Sprintf("r%d", n)
	svcs := r.cp.Client.CoreV1().Services("default")
	eps := r.cp.Client.DiscoveryV1().EndpointSlices("default")
	var what string
	var err error
	switch op := r.rng.IntN(10); {
	case op < 4: // create or update a Service
		cur, gerr := svcs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) {
			s := r.newService(name)
			what = fmt.Sprintf("create Service %s (%s, %d ports)", name, s.Spec.Type, len(s.Spec.Ports))
			_, err = svcs.Create(ctx, s, metav1.CreateOptions{})
		} else if gerr != nil {
			err = gerr
		} else {
			what = "update Service " + name + ": " + r.mutateService(cur)
			_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		}
	case op < 5:
		what = "delete Service " + name
		err = svcs.Delete(ctx, name, metav1.DeleteOptions{})
	case op < 9: // create or update a slice
		s := slice(name, name+"-1", r.endpoints()...)
		cur, gerr := eps.Get(ctx, s.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) {
			what = fmt.Sprintf("create EndpointSlice %s (%d endpoints)", s.Name, len(s.Endpoints))
			_, err = eps.Create(ctx, s, metav1.CreateOptions{})
		} else if gerr != nil {
			err = gerr
		} else {
			cur.Endpoints = s.Endpoints
			what = fmt.Sprintf("update EndpointSlice %s (%d endpoints)", s.Name, len(s.Endpoints))
			_, err = eps.Update(ctx, cur, metav1.UpdateOptions{})
		}
	default:
		what = "delete EndpointSlice " + name + "-1"
		err = eps.Delete(ctx, name+"-1", metav1.DeleteOptions{})
	}
	if apierrors.IsNotFound(err) {
		what += " (not there)"
		err = nil
	}
	if err != nil {
		t.Fatalf("random step %d: %s: %v", i, what, err)
	}
	t.Logf("random step %2d: %s", i, what)
}

func (r *randomizer) newService(name string) *v1.Service {
	types := []v1.ServiceType{v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer}
	s := service(name, types[r.rng.IntN(len(types))], tcpPort("http", 80))
	if r.rng.IntN(2) == 0 {
		s.Spec.Ports = append(s.Spec.Ports, udpPort("dns", 53))
	}
	if s.Spec.Type != v1.ServiceTypeClusterIP && r.rng.IntN(2) == 0 {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}
	return s
}

// mutateService changes one thing and says what.
func (r *randomizer) mutateService(s *v1.Service) string {
	switch r.rng.IntN(5) {
	case 0:
		if s.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
			s.Spec.SessionAffinity, s.Spec.SessionAffinityConfig = v1.ServiceAffinityNone, nil
			return "affinity off"
		}
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		return "affinity ClientIP"
	case 1:
		s.Spec.Ports[0].Port = int32(80 + r.rng.IntN(3))
		return fmt.Sprintf("port %d", s.Spec.Ports[0].Port)
	case 2:
		if len(s.Spec.ExternalIPs) > 0 {
			s.Spec.ExternalIPs = nil
			return "no externalIPs"
		}
		s.Spec.ExternalIPs = []string{fmt.Sprintf("192.0.2.%d", 10+r.rng.IntN(5))}
		return "externalIPs " + s.Spec.ExternalIPs[0]
	case 3:
		if s.Spec.Type == v1.ServiceTypeClusterIP {
			s.Spec.Type = v1.ServiceTypeNodePort
			return "type NodePort"
		}
		s.Spec.Type = v1.ServiceTypeClusterIP
		s.Spec.ExternalTrafficPolicy = ""
		s.Spec.HealthCheckNodePort = 0
		s.Spec.AllocateLoadBalancerNodePorts = nil
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = 0
		}
		return "type ClusterIP"
	default:
		if len(s.Spec.Ports) > 1 {
			s.Spec.Ports = s.Spec.Ports[:1]
			return "one port"
		}
		s.Spec.Ports = append(s.Spec.Ports, udpPort("dns", 53))
		return "two ports"
	}
}

// endpoints picks a random subset of the pods with random conditions.
func (r *randomizer) endpoints() []discovery.Endpoint {
	var out []discovery.Endpoint
	for _, p := range r.pods {
		if r.rng.IntN(2) == 0 {
			continue
		}
		switch r.rng.IntN(4) {
		case 0:
			out = append(out, endpoint(p, false, true, true)) // terminating, serving
		case 1:
			out = append(out, endpoint(p, false, false, false)) // not ready
		default:
			out = append(out, endpoint(p, true, true, false))
		}
	}
	return out
}

// checkTraffic probes every random Service's TCP ClusterIP whose slice has
// a ready endpoint: the answer must come from one of the slice's ready
// endpoints.
func (r *randomizer) checkTraffic(ns string) {
	t := r.t
	t.Helper()
	ctx := t.Context()
	probed := 0
	defer func() { t.Logf("probed %d random Services with ready endpoints", probed) }()
	for n := 0; n < randomNames; n++ {
		name := fmt.Sprintf("r%d", n)
		s, err := r.cp.Client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		es, err := r.cp.Client.DiscoveryV1().EndpointSlices("default").Get(ctx, name+"-1", metav1.GetOptions{})
		if err != nil {
			continue
		}
		var ready []string
		for _, ep := range es.Endpoints {
			if *ep.Conditions.Ready {
				for _, p := range r.pods {
					if p.IP == ep.Addresses[0] {
						ready = append(ready, p.Name)
					}
				}
			}
		}
		if len(ready) == 0 || s.Spec.Ports[0].Protocol != v1.ProtocolTCP {
			continue
		}
		probed++
		addr := net.JoinHostPort(s.Spec.ClusterIP, fmt.Sprint(s.Spec.Ports[0].Port))
		reply, err := testrig.ProbeTCP(ns, addr, 2*time.Second)
		if err != nil || !slices.Contains(ready, reply.Name) {
			t.Errorf("Service %s (%s): answered by %q (%v), want one of %v", name, addr, reply.Name, err, ready)
		}
	}
}
