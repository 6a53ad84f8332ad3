package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	kpconfig "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/kproxy/kproxy/internal/xtables"
)

// probesFailing returns the requirements of mode with fake probes: the
// named ones fail, and each records that it ran.
func probesFailing(t *testing.T, mode string, ran *[]string, failing ...string) []requirement {
	m, ok := modeNamed(kpconfig.ProxyMode(mode))
	if !ok {
		t.Fatalf("no mode %s", mode)
	}
	needs := m.Needs(xtables.NFT)
	for i, r := range needs {
		needs[i].probe = func(context.Context) error {
			*ran = append(*ran, r.name)
			if slices.Contains(failing, r.name) {
				return errors.New(r.name + " probe failed")
			}
			return nil
		}
	}
	return needs
}

func TestPreflight(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		mode    string
		failing []string
		ran     string   // probes run, in order
		want    []string // in the error; none: no error
	}{
		{ModeIPTables, nil, "iptables", nil},
		{ModeUserspace, nil, "iptables", nil},
		{ModeIPVS, nil, "IPVS ipset iptables", nil},
		{ModeIPTables, []string{"IPVS", "ipset"}, "iptables", nil}, // not needed
		{ModeIPVS, []string{"IPVS"}, "IPVS ipset iptables", []string{
			"this node cannot run --proxy-mode=ipvs", "IPVS: IPVS probe failed", "modprobe -a ip_vs", "--proxy-mode=iptables"}},
		{ModeIPVS, []string{"IPVS", "ipset"}, "IPVS ipset iptables", []string{"IPVS probe failed", "ipset: ipset probe failed", "ip_set"}},
		{ModeIPTables, []string{"iptables"}, "iptables", []string{
			"this node cannot run --proxy-mode=iptables", "iptables: iptables probe failed", "iptables-nft-restore", "CAP_NET_ADMIN", "--iptables-backend"}},
		{ModeUserspace, []string{"iptables"}, "iptables", []string{"--proxy-mode=userspace", "iptables probe failed"}},
	} {
		var ran []string
		err := preflight(ctx, tc.mode, probesFailing(t, tc.mode, &ran, tc.failing...), xtables.NFT)
		if got := strings.Join(ran, " "); got != tc.ran {
			t.Errorf("%s, failing %v: ran %q, want %q", tc.mode, tc.failing, got, tc.ran)
		}
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s, failing %v: %v", tc.mode, tc.failing, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s, failing %v: no error", tc.mode, tc.failing)
			continue
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s, failing %v: error %q lacks %q", tc.mode, tc.failing, msg, w)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: error is not one line: %q", tc.mode, msg)
		}
		if tc.mode != ModeIPVS && strings.Contains(msg, "--proxy-mode=iptables,") {
			t.Errorf("%s: suggests another mode: %q", tc.mode, msg)
		}
	}
}
