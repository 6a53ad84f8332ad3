package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kpconfig "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/kproxy/kproxy/internal/testrig"
)

// modes are the proxy modes, one overlay each.
var modes = []string{"iptables", "ipvs", "userspace"}

// kubectl returns upstream kubectl, or skips (fails with
// KPROXY_REQUIRE_KERNEL=1) if hack/build-upstream.sh has not run.
func kubectl(t testing.TB) string {
	t.Helper()
	bin, err := testrig.UpstreamBinary(testrig.BinKubectl)
	if err != nil {
		testrig.RequireUpstream(t)
		if bin, err = testrig.UpstreamBinary(testrig.BinKubectl); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// kustomize renders a kustomization directory (relative to deploy/) with
// "kubectl kustomize", which runs on the host and touches nothing.
func kustomize(t testing.TB, dir string) []byte {
	t.Helper()
	cmd := exec.Command(kubectl(t), "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v: %s", dir, err, stderr.String())
	}
	return out
}

// kindKustomization writes, in a temporary directory, the kustomization
// kind-up.sh writes for mode (the overlay plus components/kind) and returns
// the directory.
func kindKustomization(t testing.TB, mode string) string {
	t.Helper()
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(here, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
components:
  - %s
`, rel("overlays/"+mode), rel("components/kind"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// manifests are the objects of one rendered overlay, decoded strictly: an
// unknown or misspelt field fails the test.
type manifests struct {
	ServiceAccounts []*corev1.ServiceAccount
	ClusterRoles    []*rbacv1.ClusterRole
	Bindings        []*rbacv1.ClusterRoleBinding
	ConfigMaps      []*corev1.ConfigMap
	DaemonSets      []*appsv1.DaemonSet
}

func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 && !bytes.Equal(bytes.TrimSpace(d), []byte("---")) {
			docs = append(docs, d)
		}
	}
	return docs
}

// appendNew appends a new zero object to list and returns it to decode into.
func appendNew[T any](list *[]*T) any {
	o := new(T)
	*list = append(*list, o)
	return o
}

func decodeManifests(t testing.TB, data []byte) *manifests {
	t.Helper()
	m := &manifests{}
	kinds := map[string]func() any{
		"v1 ServiceAccount":                               func() any { return appendNew(&m.ServiceAccounts) },
		"rbac.authorization.k8s.io/v1 ClusterRole":        func() any { return appendNew(&m.ClusterRoles) },
		"rbac.authorization.k8s.io/v1 ClusterRoleBinding": func() any { return appendNew(&m.Bindings) },
		"v1 ConfigMap":                                    func() any { return appendNew(&m.ConfigMaps) },
		"apps/v1 DaemonSet":                               func() any { return appendNew(&m.DaemonSets) },
	}
	for _, doc := range splitYAML(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		newObj, ok := kinds[tm.APIVersion+" "+tm.Kind]
		if !ok {
			t.Fatalf("unexpected object %s %s in the manifests", tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, newObj()); err != nil {
			t.Fatalf("strict decoding of %s: %v", tm.Kind, err)
		}
	}
	return m
}

// daemonSet returns the one DaemonSet and its one container.
func (m *manifests) daemonSet(t testing.TB) (*appsv1.DaemonSet, *corev1.Container) {
	t.Helper()
	if len(m.DaemonSets) != 1 || len(m.DaemonSets[0].Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one DaemonSet with one container, got %d DaemonSets", len(m.DaemonSets))
	}
	ds := m.DaemonSets[0]
	return ds, &ds.Spec.Template.Spec.Containers[0]
}

func (m *manifests) configMap(t testing.TB, name string) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range m.ConfigMaps {
		if cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %q in the manifests", name)
	return nil
}

// configKey is the ConfigMap key holding the KubeProxyConfiguration.
const configKey = "config.conf"

// kubeProxyConfig decodes the ConfigMap's KubeProxyConfiguration strictly,
// with kube-proxy's own type.
func kubeProxyConfig(t testing.TB, cm *corev1.ConfigMap) *kpconfig.KubeProxyConfiguration {
	t.Helper()
	data, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, configKey)
	}
	c := &kpconfig.KubeProxyConfiguration{}
	if err := yaml.UnmarshalStrict([]byte(data), c); err != nil {
		t.Fatalf("ConfigMap %s %s: %v", cm.Name, configKey, err)
	}
	if c.APIVersion != "kubeproxy.config.k8s.io/v1alpha1" || c.Kind != "KubeProxyConfiguration" {
		t.Fatalf("ConfigMap %s %s: apiVersion %q kind %q", cm.Name, configKey, c.APIVersion, c.Kind)
	}
	return c
}

// testConfig is the ConfigMap's configuration adapted for tests: conntrack
// sysctls are left alone (nf_conntrack_max is host-wide). Everything else is
// the shipped text.
func testConfig(t testing.TB, cm *corev1.ConfigMap) string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data[configKey]), &doc); err != nil {
		t.Fatal(err)
	}
	ct, _ := doc["conntrack"].(map[string]any)
	if ct == nil {
		ct = map[string]any{}
	}
	ct["maxPerCore"] = 0
	ct["tcpEstablishedTimeout"] = "0s"
	ct["tcpCloseWaitTimeout"] = "0s"
	doc["conntrack"] = ct
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// argValue returns the value of --name=value in args, the last one winning.
func argValue(args []string, name string) (string, bool) {
	val, found := "", false
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			val, found = v, true
		}
	}
	return val, found
}
