package xtables

import (
	"context"
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestSelectInNetns writes rules with one backend in a fresh network
// namespace and checks that detection picks that backend (and nft in an
// empty namespace, where both are empty).
func TestSelectInNetns(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		rules [][]string // commands run in the namespace first
		want  Backend
	}{
		{"empty namespace", nil, NFT},
		{"legacy rules", [][]string{
			{"iptables-legacy", "-w", "-t", "nat", "-N", "KUBE-SERVICES"},
			{"iptables-legacy", "-w", "-t", "nat", "-A", "PREROUTING", "-j", "KUBE-SERVICES"},
		}, Legacy},
		{"legacy IPv6 rules only", [][]string{
			{"ip6tables-legacy", "-w", "-t", "filter", "-A", "INPUT", "-j", "ACCEPT"},
		}, Legacy},
		{"more nft rules than legacy", [][]string{
			{"iptables-legacy", "-w", "-t", "filter", "-A", "INPUT", "-j", "ACCEPT"},
			{"iptables-nft", "-w", "-t", "filter", "-N", "KUBE-FIREWALL"},
			{"iptables-nft", "-w", "-t", "filter", "-A", "INPUT", "-j", "KUBE-FIREWALL"},
		}, NFT},
		{"kubelet's hint in legacy, more nft rules", [][]string{
			{"iptables-legacy", "-w", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"},
			{"iptables-nft", "-w", "-t", "filter", "-A", "INPUT", "-j", "ACCEPT"},
			{"iptables-nft", "-w", "-t", "filter", "-A", "OUTPUT", "-j", "ACCEPT"},
		}, Legacy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testrig.NewNetns(t, "xtables")
			for _, cmd := range tc.rules {
				testrig.Run(t, ns, cmd...)
			}
			env := ExecEnv(ns)
			if !env.installed(Legacy) || !env.installed(NFT) {
				t.Skip("needs both iptables-legacy and iptables-nft")
			}
			c, err := Select(ctx, Auto, env)
			if err != nil || c.Backend != tc.want {
				t.Fatalf("Select = %+v, %v; want %s", c, err, tc.want)
			}
			t.Logf("chose %s: %s", c.Backend, c.Reason)
			if err := ProbeRestore(ctx, env, proxier.IPv4, c.Backend); err != nil {
				t.Errorf("ProbeRestore(%s): %v", c.Backend, err)
			}
		})
	}
}
