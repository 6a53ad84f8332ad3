package proxier_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// reports records the tracker's invalid-object reports.
type reports struct{ got []string }

func (r *reports) invalid(kind, name string, err error) {
	if err == nil || err.Error() == "" {
		panic(fmt.Sprintf("empty report for %s %s", kind, name))
	}
	r.got = append(r.got, kind+" "+name)
}

// TestBadInputCorpus feeds every corpus entry, and all of them at once,
// through the Tracker: nothing panics, each invalid object is reported
// exactly once, the valid Services (and valid parts) are in the snapshot,
// and the snapshot only holds well-formed ports and endpoints.
func TestBadInputCorpus(t *testing.T) {
	entries := flowtest.BadInputs()
	if len(entries) < 50 {
		t.Fatalf("corpus has %d entries, want at least 50", len(entries))
	}
	for _, e := range append(entries, flowtest.Combined(entries)) {
		t.Run(e.Name, func(t *testing.T) {
			var r reports
			snap := e.Build(r.invalid).Snapshots[proxier.IPv4]
			checkReports(t, r.got, e.Reports)
			checkProgrammed(t, snap, &e)
			checkWellFormed(t, snap)
		})
	}
}

func checkReports(t *testing.T, got, want []string) {
	t.Helper()
	got, want = slices.Clone(got), slices.Clone(want)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("invalid-object reports:\n got %q\nwant %q (each exactly once)", got, want)
	}
}

func checkProgrammed(t *testing.T, snap *proxier.Snapshot, e *flowtest.BadInput) {
	t.Helper()
	want := map[string]bool{}
	for _, p := range e.Programmed {
		want[flowtest.QualifiedName(p)] = true
	}
	for _, svc := range e.Services {
		name := svc.Namespace + "/" + svc.Name
		got := false
		for n, s := range snap.Services {
			if n.String() == name && len(s.Ports) > 0 {
				got = true
			}
		}
		if got != want[name] {
			t.Errorf("Service %q programmed = %v, want %v", name, got, want[name])
		}
	}
}

// checkWellFormed is what every backend may assume about a snapshot.
func checkWellFormed(t *testing.T, snap *proxier.Snapshot) {
	t.Helper()
	for name, svc := range snap.Services {
		seen := map[string]bool{}
		for _, p := range svc.Ports {
			switch {
			case !proxier.ValidProtocol(p.Protocol):
				t.Errorf("%s: port %s has protocol %q", name, p.Name, p.Protocol)
			case p.Port < 1 || p.Port > 65535, p.NodePort < 0 || p.NodePort > 65535:
				t.Errorf("%s: port %s has port %d nodePort %d", name, p.Name, p.Port, p.NodePort)
			case p.HealthCheckNodePort < 0 || p.HealthCheckNodePort > 65535:
				t.Errorf("%s: port %s has healthCheckNodePort %d", name, p.Name, p.HealthCheckNodePort)
			case !p.ClusterIP.IsValid() || proxier.FamilyOf(p.ClusterIP) != snap.Family:
				t.Errorf("%s: port %s has ClusterIP %v", name, p.Name, p.ClusterIP)
			case p.AffinityTimeout < 0 || p.AffinityTimeout > 86400:
				t.Errorf("%s: port %s has affinity %d", name, p.Name, p.AffinityTimeout)
			case strings.ContainsAny(p.Name.String(), "\"\n\r\x00") || len(p.Name.String()) > 200:
				t.Errorf("%s: port name %q cannot be written into a rule comment", name, p.Name)
			}
			key := fmt.Sprint(p.Port, p.Protocol)
			if seen[key] || seen[p.Name.Port] {
				t.Errorf("%s: duplicate port %s", name, p.Name)
			}
			seen[key], seen[p.Name.Port] = true, true
			for _, a := range append(slices.Clone(p.ExternalIPs), p.LoadBalancerIPs...) {
				if proxier.FamilyOf(a) != snap.Family {
					t.Errorf("%s: address %s of the wrong family", name, a)
				}
			}
			for _, ep := range p.Endpoints {
				if !ep.IP.IsGlobalUnicast() || proxier.FamilyOf(ep.IP) != snap.Family || ep.Port < 1 || ep.Port > 65535 {
					t.Errorf("%s: bad endpoint %s", name, ep)
				}
			}
			for _, u := range p.Usable.AllReachable {
				if !slices.ContainsFunc(p.Endpoints, func(e proxier.Endpoint) bool { return e.AddrPort() == u.AddrPort() }) {
					t.Errorf("%s: usable endpoint %s is not an endpoint", name, u)
				}
			}
		}
	}
}

// TestBadInputReportedOncePerChange: an informer resync (same
// resourceVersion) reports nothing again; a real change reports again.
func TestBadInputReportedOncePerChange(t *testing.T) {
	var r reports
	tr := proxier.NewTracker(flowtest.ThisNode, []proxier.Family{proxier.IPv4}, r.invalid, flowtest.Node().CreationTimestamp.Time)
	var bad flowtest.BadInput
	for _, e := range flowtest.BadInputs() {
		if e.Name == "svc-port-zero" {
			bad = e
		}
	}
	svc := bad.Services[0]
	tr.OnService(nil, svc)
	tr.OnService(svc, svc) // periodic resync
	tr.OnService(svc, svc)
	if len(r.got) != 1 {
		t.Fatalf("reports after add and two resyncs: %q, want one", r.got)
	}
	next := svc.DeepCopy()
	next.ResourceVersion = "2"
	next.Labels = map[string]string{"changed": "yes"}
	tr.OnService(svc, next)
	if len(r.got) != 2 {
		t.Fatalf("reports after a change: %q, want two", r.got)
	}
	tr.OnService(next, nil)
	if len(r.got) != 2 {
		t.Fatalf("a delete was reported: %q", r.got)
	}
}
