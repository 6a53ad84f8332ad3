package userspace

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

// A sync reports the proxy port each service port is redirected to, so
// that the conntrack cleanup keeps the flows its listeners answer (their
// reply source is the node's listener, not an endpoint: without this the
// cleanup deleted every live UDP flow at every sync); a service port whose
// traffic is rejected is reported without a port, so its flows go.
func TestSyncReportsRedirects(t *testing.T) {
	p, f := newFakeProxier(t)
	name := spName("default", "web", "http", v1.ProtocolTCP)
	res := syncOK(t, p, webSnapshot(0, "10.244.1.10:8080"), false)
	var want proxier.RedirectPorts
	for _, l := range p.Listeners() {
		if l.External {
			want.External = uint16(l.ProxyPort)
		} else {
			want.Internal = uint16(l.ProxyPort)
		}
	}
	if want.Internal == 0 || want.External == 0 {
		t.Fatalf("setup: listeners %v, want an internal and an external one", p.Listeners())
	}
	if got := res.Redirects[name]; got != want || len(res.Redirects) != 1 {
		t.Errorf("Redirects = %v, want only %s: %+v", res.Redirects, name, want)
	}
	nat := strings.Join(append(f.Chain("nat", chainServices), f.Chain("nat", chainNodePorts)...), "\n")
	for _, port := range []uint16{want.Internal, want.External} {
		if !strings.Contains(nat, fmt.Sprintf("--to-ports %d", port)) {
			t.Errorf("reported port %d is in no REDIRECT rule:\n%s", port, nat)
		}
	}

	res = syncOK(t, p, webSnapshot(0), false)
	if got := res.Redirects[name]; got != (proxier.RedirectPorts{}) {
		t.Errorf("with no endpoint (rejected): Redirects[%s] = %+v, want no port", name, got)
	}
}
