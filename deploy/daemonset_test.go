package deploy

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kproxy/kproxy/internal/testrig"
)

// deployIPTables applies the iptables overlay for real (the DaemonSet object
// is stored but nothing runs it: there is no controller-manager) plus the
// kproxy-apiserver ConfigMap pointing at the rig's apiserver, and returns
// the rendered manifests.
func deployIPTables(t *testing.T, cp *testrig.ControlPlane) *manifests {
	t.Helper()
	data := kustomize(t, "overlays/iptables")
	if out, err := applyFile(t, cp, data, false); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kproxy-apiserver", Namespace: "kube-system"},
		Data:       map[string]string{"host": testrig.BridgeIP, "port": fmt.Sprint(testrig.APIServerPort)},
	}
	_, err := cp.Client.CoreV1().ConfigMaps("kube-system").Create(context.Background(), cm, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return decodeManifests(t, data)
}

// serviceAccountToken mints a token for the DaemonSet's ServiceAccount with
// the TokenRequest API (no controller-manager runs to create one).
func serviceAccountToken(t *testing.T, cp *testrig.ControlPlane, m *manifests) string {
	t.Helper()
	ds, _ := m.daemonSet(t)
	out, err := cp.Kubectl("create", "token", ds.Spec.Template.Spec.ServiceAccountName, "-n", ds.Namespace, "--duration=1h")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestServiceAccountPermissions asks the apiserver, with a token of the
// DaemonSet's ServiceAccount, what it may do: everything in the ClusterRole,
// and none of what kube-proxy's system:node-proxier has on top (endpoints,
// update on events) or anything else. TestDaemonSetPod shows kproxy works
// with exactly this and is never refused.
func TestServiceAccountPermissions(t *testing.T) {
	_, cp := cluster(t)
	m := deployIPTables(t, cp)
	cfg := rest.CopyConfig(cp.Config)
	cfg.BearerToken = serviceAccountToken(t, cp, m)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), nil, metav1.CreateOptions{})
	if err == nil && review.Status.UserInfo.Username != "system:serviceaccount:kube-system:kproxy" {
		t.Errorf("token authenticates as %q", review.Status.UserInfo.Username)
	}
	type access struct{ group, resource, verb string }
	var allowed []access
	for _, r := range m.ClusterRoles[0].Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					allowed = append(allowed, access{g, res, v})
				}
			}
		}
	}
	denied := []access{
		{"", "endpoints", "list"}, {"", "endpoints", "watch"}, // node-proxier has them
		{"", "events", "update"}, {"events.k8s.io", "events", "update"}, // node-proxier has them
		{"", "services", "get"}, {"", "services", "update"}, {"", "nodes", "patch"},
		{"discovery.k8s.io", "endpointslices", "create"}, {"", "pods", "list"},
		{"", "secrets", "get"}, {"", "configmaps", "list"},
	}
	can := func(a access) bool {
		r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
				Group: a.group, Resource: a.resource, Verb: a.verb,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review %+v: %v", a, err)
		}
		return r.Status.Allowed
	}
	for _, a := range allowed {
		if !can(a) {
			t.Errorf("ServiceAccount may not %s %s.%s", a.verb, a.resource, a.group)
		}
	}
	for _, a := range denied {
		if can(a) {
			t.Errorf("ServiceAccount may %s %s.%s: more than kproxy needs", a.verb, a.resource, a.group)
		}
	}
}

// saMount is where the kubelet mounts the ServiceAccount token and CA, and
// where rest.InClusterConfig reads them (/var/run is /run).
const saMount = "/run/secrets/kubernetes.io/serviceaccount"

// podSandbox starts argv as the kubelet would run the DaemonSet's container
// on node: the environment is exactly the container's env (and PATH), the
// ServiceAccount directory is mounted at saMount. It runs in a private mount
// namespace (ip netns exec makes one, unshare makes it private) with a tmpfs
// over /run, so nothing is mounted or created in the host's /run.
func podSandbox(t *testing.T, node *testrig.Node, saDir string, env []string, argv []string) *testrig.Process {
	t.Helper()
	script := `set -e
sa="$1"; shift
mount -t tmpfs -o mode=0755,size=4m kproxy-pod-run /run
mkdir -p ` + saMount + `
mount --bind "$sa" ` + saMount + `
exec env -i "$@"`
	args := []string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "pod-sandbox", saDir}
	args = append(args, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	args = append(args, env...)
	args = append(args, argv...)
	return testrig.StartProcess(t, node.Netns, args...)
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestDaemonSetPod runs kproxy as the iptables DaemonSet's pod would run on
// node1, taking everything from the applied manifests as the kubelet would:
// command and args with $(VAR) expanded, env from the downward API and the
// kproxy-apiserver ConfigMap, the config file from ConfigMap kproxy, and the
// in-cluster credentials (a TokenRequest token of the DaemonSet's
// ServiceAccount and the CA) at the ServiceAccount mount. The one test-only
// change is conntrack.* = 0 in the config (nf_conntrack_max is host-wide).
// kproxy must become ready on the readiness probe, pass the liveness probe,
// serve a ClusterIP, and never be refused by the apiserver: with RBAC on,
// that shows it needs no permission the ClusterRole does not grant.
func TestDaemonSetPod(t *testing.T) {
	topo, cp := cluster(t)
	testrig.CheckRootNetnsUnchanged(t)
	bin := testrig.RequireKproxyBinary(t)
	m := deployIPTables(t, cp)
	ds, c := m.daemonSet(t)
	node := topo.Node(1)
	backend := topo.Node(2).Pods[0]
	testrig.StartEchoServers(t, backend.Netns, backend.Name, backend.IP, []int{8080}, testrig.TCP)
	svc := webService(t, cp, "deploy-pod", backend)
	ctx := context.Background()

	// The kubelet's part: env.
	envMap := map[string]string{}
	var env []string
	for _, e := range c.Env {
		val := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			val = node.Name
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := cp.Client.CoreV1().ConfigMaps(ds.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("env %s: %v", e.Name, err)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Fatalf("env %s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			val = v
		default:
			t.Fatalf("env %s: source %+v not emulated", e.Name, e.ValueFrom)
		}
		envMap[e.Name] = val
		env = append(env, e.Name+"="+val)
	}
	if envMap["KUBERNETES_SERVICE_HOST"] != testrig.BridgeIP {
		t.Fatalf("KUBERNETES_SERVICE_HOST = %q from the manifests", envMap["KUBERNETES_SERVICE_HOST"])
	}

	// Volumes: ConfigMap volumes become directories; hostPath volumes are the
	// same paths on this host.
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		v := volume(ds.Spec.Template.Spec.Volumes, vm.Name)
		if v == nil || v.ConfigMap == nil {
			continue
		}
		cm, err := cp.Client.CoreV1().ConfigMaps(ds.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for k, data := range cm.Data {
			if cm.Name == "kproxy" && k == configKey {
				data = testConfig(t, cm)
			}
			if err := os.WriteFile(filepath.Join(dir, k), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mounts[vm.MountPath] = dir
	}
	if len(mounts) == 0 {
		t.Fatal("the DaemonSet mounts no ConfigMap")
	}

	// Command and args, as the kubelet expands them, with ConfigMap mount
	// paths mapped to their directories.
	argv := append([]string{bin}, c.Args...)
	if len(c.Command) != 1 {
		t.Fatalf("command %q: want the binary alone", c.Command)
	}
	for i := 1; i < len(argv); i++ {
		argv[i] = varRef.ReplaceAllStringFunc(argv[i], func(ref string) string {
			if v, ok := envMap[ref[2:len(ref)-1]]; ok {
				return v
			}
			return ref
		})
		for path, dir := range mounts {
			argv[i] = strings.Replace(argv[i], "="+path+"/", "="+dir+"/", 1)
		}
	}
	if v, _ := argValue(argv, "hostname-override"); v != node.Name {
		t.Fatalf("--hostname-override = %q after expansion", v)
	}

	// The ServiceAccount volume.
	saDir := t.TempDir()
	ca, err := os.ReadFile(cp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"token": serviceAccountToken(t, cp, m), "ca.crt": string(ca), "namespace": ds.Namespace,
	} {
		if err := os.WriteFile(filepath.Join(saDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	kp := podSandbox(t, node, saDir, env, argv)
	t.Logf("kproxy argv %q", argv)

	// Probes, as the kubelet sends them to a hostNetwork pod: at the node IP.
	probeURL := func(p *corev1.Probe) string {
		return "http://" + net.JoinHostPort(node.IP, p.HTTPGet.Port.String()) + p.HTTPGet.Path
	}
	waitHTTP200(t, node.Netns, probeURL(c.ReadinessProbe), kp, 60*time.Second)
	waitHTTP200(t, node.Netns, probeURL(c.LivenessProbe), kp, 10*time.Second)

	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	waitAnsweredBy(t, node.Pods[0].Netns, vip, backend.Name, 30*time.Second)
	if r, err := testrig.ProbeTCP(node.Netns, vip, 2*time.Second); err != nil || r.Name != backend.Name {
		t.Errorf("ClusterIP from the node itself: %+v, %v", r, err)
	}

	// It really ran in-cluster, in its own mount namespace.
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", kp.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mi), " "+saMount+" ") {
		t.Errorf("kproxy's mount namespace has nothing at %s", saMount)
	}
	if hostMI, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(hostMI), "/run/secrets") {
		t.Errorf("the ServiceAccount mount leaked into the host's mount namespace")
	}
	if slices.Contains(argv, "--kubeconfig") || strings.Contains(strings.Join(argv, " "), "--kubeconfig=") {
		t.Errorf("the DaemonSet passes a kubeconfig: %q", argv)
	}

	// Never refused: it needs nothing the ClusterRole lacks. client-go's
	// reflectors and kproxy's Node read log every refusal ("... is
	// forbidden: User ... cannot ..."); removing "get" on nodes from the
	// ClusterRole makes this fail.
	if strings.Contains(strings.ToLower(kp.Log()), "forbidden") {
		t.Errorf("kproxy logged a forbidden request:\n%s", kp.Tail(30))
	}
}
