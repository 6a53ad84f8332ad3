package deploy

import (
	"net"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// wantRules is the whole ClusterRole: anything more is a permission kproxy
// does not use (TestServiceAccountPermissions checks the other direction).
var wantRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"servicecidrs"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// TestOverlays renders each mode's overlay and checks what the DaemonSet
// promises: namespace, host network, priority, tolerations, node name flag,
// mounts, privileges per mode, probes on the configured healthz port, rolling
// update, and a ConfigMap that kube-proxy's own type decodes strictly with
// production conntrack defaults.
func TestOverlays(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			m := decodeManifests(t, kustomize(t, "overlays/"+mode))
			checkDeployment(t, m, mode)

			cfg := kubeProxyConfig(t, m.configMap(t, "kproxy"))
			if got := *cfg.Conntrack.MaxPerCore; got != 32768 {
				t.Errorf("conntrack.maxPerCore = %d, want kube-proxy's production default 32768", got)
			}
			if got := cfg.Conntrack.TCPEstablishedTimeout.Duration; got != 24*time.Hour {
				t.Errorf("conntrack.tcpEstablishedTimeout = %v, want 24h", got)
			}
			_, c := m.daemonSet(t)
			for _, flag := range []string{"conntrack-max-per-core", "conntrack-tcp-timeout-established"} {
				if v, ok := argValue(c.Args, flag); ok {
					t.Errorf("the shipped overlay overrides --%s=%s", flag, v)
				}
			}
		})
	}
}

// TestKindOverlays renders what kind-up.sh deploys (overlay + components/kind)
// and checks the conntrack sysctls are left alone, as kind does for kube-proxy.
func TestKindOverlays(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			m := decodeManifests(t, kustomize(t, kindKustomization(t, mode)))
			checkDeployment(t, m, mode)
			_, c := m.daemonSet(t)
			for _, flag := range []string{"conntrack-max-per-core", "conntrack-tcp-timeout-established", "conntrack-tcp-timeout-close-wait"} {
				if v, _ := argValue(c.Args, flag); v != "0" {
					t.Errorf("--%s = %q, want 0 in kind", flag, v)
				}
			}
		})
	}
}

func checkDeployment(t *testing.T, m *manifests, mode string) {
	t.Helper()
	ds, c := m.daemonSet(t)
	spec := ds.Spec.Template.Spec
	if ds.Namespace != "kube-system" {
		t.Errorf("DaemonSet namespace %q, want kube-system", ds.Namespace)
	}
	if !spec.HostNetwork {
		t.Error("DaemonSet is not hostNetwork")
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == ""
	}) {
		t.Errorf("no toleration of every taint: %+v", spec.Tolerations)
	}
	if ds.Spec.UpdateStrategy.Type != "RollingUpdate" {
		t.Errorf("update strategy %q", ds.Spec.UpdateStrategy.Type)
	}

	// Mode and node name.
	if v, _ := argValue(c.Args, "proxy-mode"); v != mode {
		t.Errorf("--proxy-mode = %q, want %q (args %q)", v, mode, c.Args)
	}
	if !slices.Contains(c.Args, "--hostname-override=$(NODE_NAME)") {
		t.Errorf("no --hostname-override=$(NODE_NAME) in %q", c.Args)
	}
	if e := envVar(c, "NODE_NAME"); e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME is not the downward-API spec.nodeName: %+v", e)
	}
	for _, name := range []string{"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} {
		e := envVar(c, name)
		if e == nil || e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Optional == nil || !*e.ValueFrom.ConfigMapKeyRef.Optional {
			t.Errorf("%s is not an optional ConfigMap reference: %+v", name, e)
		}
	}

	// Mounts.
	for _, want := range []struct {
		path     string
		readOnly bool
	}{{"/run/xtables.lock", false}, {"/lib/modules", true}} {
		vm := mountAt(c, want.path)
		if vm == nil {
			t.Errorf("nothing mounted at %s", want.path)
			continue
		}
		v := volume(spec.Volumes, vm.Name)
		if v == nil || v.HostPath == nil || v.HostPath.Path != want.path {
			t.Errorf("%s is not the host's %s: %+v", want.path, want.path, v)
		}
		if vm.ReadOnly != want.readOnly {
			t.Errorf("%s readOnly = %v, want %v", want.path, vm.ReadOnly, want.readOnly)
		}
	}
	cfgPath, ok := argValue(c.Args, "config")
	if !ok {
		t.Fatalf("no --config in %q", c.Args)
	}
	vm := mountAt(c, cfgPath[:strings.LastIndex(cfgPath, "/")])
	if vm == nil {
		t.Fatalf("--config=%s is not under a mount", cfgPath)
	}
	if v := volume(spec.Volumes, vm.Name); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != "kproxy" {
		t.Errorf("--config is not from ConfigMap kproxy: %+v", v)
	}
	cfg := kubeProxyConfig(t, m.configMap(t, "kproxy"))

	// Privileges: capabilities instead of privileged, except ipvs.
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no securityContext")
	}
	privileged := sc.Privileged != nil && *sc.Privileged
	if mode == "ipvs" {
		if !privileged {
			t.Error("ipvs mode writes /proc/sys/net/ipv4/vs and loads modules: the container must be privileged")
		}
	} else {
		if privileged {
			t.Errorf("%s mode runs privileged", mode)
		}
		if sc.Capabilities == nil || !reflect.DeepEqual(sortedCaps(sc.Capabilities.Add), []string{"NET_ADMIN", "NET_RAW"}) {
			t.Errorf("capabilities %+v, want add NET_ADMIN, NET_RAW", sc.Capabilities)
		}
		if sc.Capabilities == nil || !reflect.DeepEqual(sortedCaps(sc.Capabilities.Drop), []string{"ALL"}) {
			t.Errorf("capabilities %+v, want drop ALL", sc.Capabilities)
		}
	}

	// Probes on the healthz server the config binds.
	_, port, err := net.SplitHostPort(cfg.HealthzBindAddress)
	if err != nil {
		t.Fatalf("healthzBindAddress %q: %v", cfg.HealthzBindAddress, err)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/livez"}, {"readiness", c.ReadinessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.Parse(port) {
			t.Errorf("%s probe %s:%s, want %s on healthz port %s", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, port)
		}
	}

	// Identity and permissions.
	if len(m.ServiceAccounts) != 1 || m.ServiceAccounts[0].Name != spec.ServiceAccountName || m.ServiceAccounts[0].Namespace != ds.Namespace {
		t.Errorf("DaemonSet service account %q is not the manifests' ServiceAccount", spec.ServiceAccountName)
	}
	if len(m.ClusterRoles) != 1 || !reflect.DeepEqual(m.ClusterRoles[0].Rules, wantRules) {
		t.Errorf("ClusterRole rules:\n got %+v\nwant %+v", m.ClusterRoles, wantRules)
	}
	if len(m.Bindings) != 1 || len(m.Bindings[0].Subjects) != 1 ||
		m.Bindings[0].RoleRef.Name != m.ClusterRoles[0].Name ||
		m.Bindings[0].Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: spec.ServiceAccountName, Namespace: ds.Namespace}) {
		t.Errorf("ClusterRoleBinding does not bind the ClusterRole to the ServiceAccount: %+v", m.Bindings)
	}
}

func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func mountAt(c *corev1.Container, path string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volume(vols []corev1.Volume, name string) *corev1.Volume {
	for i := range vols {
		if vols[i].Name == name {
			return &vols[i]
		}
	}
	return nil
}

func sortedCaps(caps []corev1.Capability) []string {
	var out []string
	for _, c := range caps {
		out = append(out, string(c))
	}
	sort.Strings(out)
	return out
}
