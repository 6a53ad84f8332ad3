//go:build kind

package kind

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startLoads starts constant TCP requests to the echo Service from the
// client pod of every node (ClusterIP) and from outside the cluster (the
// NodePort of every node). Stop them with stopLoads.
func startLoads(t *testing.T, ctx context.Context) []*load {
	t.Helper()
	svc, err := kc.getService(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	var loads []*load
	for _, n := range kc.nodes {
		l, err := kc.startLoad(from{pod: mustClient(t, ctx, n)}, "tcp", hostPort(svc.Spec.ClusterIP, 80))
		if err != nil {
			t.Fatal(err)
		}
		loads = append(loads, l)
		if l, err = kc.startLoad(outsideCluster, "tcp", hostPort(n.ip, svc.Spec.Ports[0].NodePort)); err != nil {
			t.Fatal(err)
		}
		loads = append(loads, l)
	}
	time.Sleep(3 * time.Second) // every load is sending before the change starts
	return loads
}

// stopLoads stops the loads and returns their summaries (logged); a load
// that cannot be read fails the test.
func stopLoads(t *testing.T, loads []*load) []summary {
	t.Helper()
	var out []summary
	for _, l := range loads {
		s, err := l.stop()
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%s: %s", l.name, s)
		if s.Sent < 50 {
			t.Errorf("%s: only %d requests sent", l.name, s.Sent)
		}
		out = append(out, s)
	}
	return out
}

// requireNoFailures stops the loads: every request must have been answered.
func requireNoFailures(t *testing.T, loads []*load) {
	t.Helper()
	for _, s := range stopLoads(t, loads) {
		if s.Failed > 0 {
			t.Errorf("%d of %d requests failed, want 0: %v", s.Failed, s.Sent, s.Errors)
		}
	}
}

// longestOutage stops the loads and returns the longest outage any saw.
func longestOutage(t *testing.T, loads []*load) float64 {
	t.Helper()
	worst := 0.0
	for _, s := range stopLoads(t, loads) {
		worst = max(worst, s.Outage)
	}
	return worst
}

// waitDaemonSet waits until every pod of the DaemonSet runs its current
// template and is ready.
func waitDaemonSet(ctx context.Context, ns, name string, timeout time.Duration) error {
	return eventually(timeout, func() error {
		ds, err := kc.client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := ds.Status
		if st.ObservedGeneration < ds.Generation || st.DesiredNumberScheduled != 3 ||
			st.UpdatedNumberScheduled != 3 || st.NumberReady != 3 || st.NumberUnavailable != 0 {
			return fmt.Errorf("daemonset %s/%s: %+v", ns, name, st)
		}
		return nil
	})
}

// iptablesSave returns the rules of both iptables backends on node n.
func iptablesSave(n node) (string, error) {
	var all []string
	for _, cmd := range []string{"iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save"} {
		out, err := kc.onNode(n, cmd)
		if err != nil {
			return "", err
		}
		all = append(all, out)
	}
	return strings.Join(all, "\n"), nil
}

// chainsWithPrefix lists the chains of an iptables-save dump that start with
// one of the prefixes.
func chainsWithPrefix(dump string, prefixes ...string) []string {
	var out []string
	for _, line := range strings.Split(dump, "\n") {
		if !strings.HasPrefix(line, ":") {
			continue
		}
		chain := strings.Fields(line[1:])[0]
		for _, p := range prefixes {
			if strings.HasPrefix(chain, p) {
				out = append(out, chain)
			}
		}
	}
	return out
}
