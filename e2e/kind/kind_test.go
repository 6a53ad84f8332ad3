//go:build kind

package kind

import (
	"context"
	"testing"
)

// TestKind runs the in-cluster scenarios in order: each builds on the
// cluster state the previous ones left (the first deploys upstream
// kube-proxy, the second takes over with kproxy, ...). A failed step is
// reported and the next ones still run where they can.
type step struct {
	name string
	run  func(*testing.T, context.Context)
}

func TestKind(t *testing.T) {
	ctx := context.Background()
	steps := []step{
		{"kube-proxy-baseline", testKubeProxyBaseline},
		{"takeover-from-kube-proxy", testTakeoverFromKubeProxy},
		{"daemonset-ready-and-probed", testDaemonSetReady},
		{"coredns-from-every-node", testCoreDNS},
		{"clusterip-from-every-node", testClusterIP},
		{"nodeport-and-externalip", testNodePortAndExternalIP},
		{"external-traffic-policy-local", testExternalTrafficPolicyLocal},
		{"readiness-leaves-service", testReadiness},
		{"scale-to-zero-refuses", testScaleToZero},
		{"rolling-update-of-workload", testRollingUpdateWorkload},
		{"rolling-update-of-kproxy", testRollingUpdateKproxy},
		{"mode-switch-userspace-and-back", testModeSwitch},
		{"unsupported-mode-never-ready", testUnsupportedMode},
	}
	if *scaleServices > 0 {
		steps = append(steps, step{"scale-kproxy", testScale("kproxy", "kproxy")})
	}
	steps = append(steps, step{"way-back-to-kube-proxy", testWayBackToKubeProxy})
	if *scaleServices > 0 {
		steps = append(steps, step{"scale-kube-proxy", testScale("kube-proxy", "kube-proxy")})
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { s.run(t, ctx) })
	}
}
