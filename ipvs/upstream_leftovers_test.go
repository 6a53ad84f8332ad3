package ipvs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

// savedTables is an IPTables that returns fixed iptables-save texts and
// records what is restored.
type savedTables struct {
	saves    map[string]string
	restored []string
}

func (s *savedTables) Save(_ context.Context, table string) ([]byte, error) {
	return []byte(s.saves[table]), nil
}

func (s *savedTables) Restore(_ context.Context, data []byte, _ bool) error {
	s.restored = append(s.restored, string(data))
	return nil
}

// kube-proxy's ipvs mode, abridged: its own chains and jumps to them, and
// chains of kproxy's names using its sets.
var upstreamIPVSFilter = `*filter
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-A INPUT -m comment --comment "kproxy ipvs" -j KUBE-IPVS-FILTER
-A OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
COMMIT
`

// TestRemoveUpstreamLeftovers: with kube-proxy's ipvs chains present, one
// restore deletes the jumps to them (whatever their comment) and the
// chains, flushes kproxy-named chains that use its sets, then its sets
// are destroyed; kproxy's own chains and jumps stay. Without them nothing
// is touched.
func TestRemoveUpstreamLeftovers(t *testing.T) {
	k := &savedTables{saves: map[string]string{"filter": upstreamIPVSFilter, "nat": "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"}}
	var destroyed []string
	destroy := func(n string) error { destroyed = append(destroyed, n); return nil }
	if err := removeUpstreamLeftovers(context.Background(), k, destroy, proxier.IPv6); err != nil {
		t.Fatal(err)
	}
	if len(k.restored) != 1 {
		t.Fatalf("restored %d times, want once", len(k.restored))
	}
	got := k.restored[0]
	for _, want := range []string{
		`-D INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT`,
		`-D OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER`,
		":KUBE-IPVS-FILTER - [0:0]\n", "-X KUBE-NODE-PORT\n", "-X KUBE-IPVS-OUT-FILTER\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("restore lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(got, "-D INPUT -m comment --comment \"kubernetes ipvs access filter\" -j KUBE-IPVS-FILTER") {
		t.Errorf("kube-proxy's jump to a chain of kproxy's names stays:\n%s", got)
	}
	if strings.Contains(got, "kproxy ipvs") || strings.Contains(got, "-X KUBE-IPVS-FILTER") {
		t.Errorf("restore removes a chain of kproxy's names:\n%s", got)
	}
	if d := fmt.Sprint(destroyed); !strings.Contains(d, "KUBE-6-HEALTH-CHECK-NODE-PORT") || !strings.Contains(d, "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS ") {
		t.Errorf("destroyed %s", d)
	}

	own := &savedTables{saves: map[string]string{"filter": "*filter\n:KUBE-IPVS-FILTER - [0:0]\nCOMMIT\n"}}
	destroyed = nil
	if err := removeUpstreamLeftovers(context.Background(), own, destroy, proxier.IPv4); err != nil || len(own.restored) > 0 || len(destroyed) > 0 {
		t.Errorf("without kube-proxy's chains: err %v, restored %q, destroyed %q", err, own.restored, destroyed)
	}
}
