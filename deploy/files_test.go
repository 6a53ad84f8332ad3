package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// kindCluster is the part of kind's v1alpha4 Cluster that matters here
// (kind's Go module is not a dependency of kproxy).
type kindCluster struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Networking struct {
		KubeProxyMode string `json:"kubeProxyMode"`
		PodSubnet     string `json:"podSubnet"`
		ServiceSubnet string `json:"serviceSubnet"`
	} `json:"networking"`
	Nodes []struct {
		Role string `json:"role"`
	} `json:"nodes"`
}

// TestKindClusterConfig checks one control-plane and two workers without
// kube-proxy, and that its pod subnet is the ConfigMap's clusterCIDR.
func TestKindClusterConfig(t *testing.T) {
	data, err := os.ReadFile("kind/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c kindCluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	if c.Networking.KubeProxyMode != "none" {
		t.Errorf("kubeProxyMode %q, want none", c.Networking.KubeProxyMode)
	}
	var roles []string
	for _, n := range c.Nodes {
		roles = append(roles, n.Role)
	}
	if !slices.Equal(roles, []string{"control-plane", "worker", "worker"}) {
		t.Errorf("node roles %q", roles)
	}
	cfg := kubeProxyConfig(t, decodeManifests(t, kustomize(t, "overlays/iptables")).configMap(t, "kproxy"))
	if cfg.ClusterCIDR != c.Networking.PodSubnet {
		t.Errorf("ConfigMap clusterCIDR %q != kind podSubnet %q", cfg.ClusterCIDR, c.Networking.PodSubnet)
	}
}

// TestDockerfile checks what can be checked without a Docker engine: a
// static multi-stage build of ./cmd/kproxy and a runtime stage with both
// iptables backends (and the wrapper choosing one), ipset, conntrack and kmod.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	stages := regexp.MustCompile(`(?m)^FROM \S+( AS (\S+))?$`).FindAllStringSubmatch(text, -1)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	last := text[strings.LastIndex(text, "\nFROM "):]
	build := regexp.MustCompile(`CGO_ENABLED=0 go build [^\n]*\\\n\s*-o /out/kproxy \./cmd/kproxy`)
	if !build.MatchString(text) {
		t.Error("kproxy is not built static (CGO_ENABLED=0) from ./cmd/kproxy")
	}
	if _, err := os.Stat("../cmd/kproxy"); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/kproxy: %v", err)
	}
	install := regexp.MustCompile(`apt-get install[^\n]*\\\n\s*([^\n]*)`).FindStringSubmatch(last)
	if install == nil {
		t.Fatal("the runtime stage installs no packages")
	}
	for _, pkg := range []string{"iptables", "ipset", "conntrack", "kmod"} {
		if !slices.Contains(strings.Fields(install[1]), pkg) {
			t.Errorf("runtime stage does not install %s (installs %q)", pkg, install[1])
		}
	}
	for _, want := range []string{"iptables-wrapper-installer.sh", "COPY --from=build /out/kproxy /usr/local/bin/kproxy", `ENTRYPOINT ["/usr/local/bin/kproxy"]`} {
		if !strings.Contains(last, want) {
			t.Errorf("runtime stage lacks %q", want)
		}
	}
	// The DaemonSet runs what the image holds.
	_, c := decodeManifests(t, kustomize(t, "overlays/iptables")).daemonSet(t)
	if !slices.Equal(c.Command, []string{"/usr/local/bin/kproxy"}) {
		t.Errorf("DaemonSet command %q is not the image's binary", c.Command)
	}
}

// TestKindScripts runs kind-up.sh and kind-down.sh with docker, kind and
// kubectl replaced by stubs that log their arguments (the stub kubectl
// renders "apply -k" with the real kubectl), so the order of steps and the
// kustomization the script writes are checked without a Docker engine.
func TestKindScripts(t *testing.T) {
	for _, s := range []string{"kind-up.sh", "kind-down.sh"} {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Fatalf("bash -n %s: %v\n%s", s, err, out)
		}
	}
	real := kubectl(t)
	stubs := t.TempDir()
	log := filepath.Join(stubs, "calls.log")
	rendered := filepath.Join(stubs, "rendered.yaml")
	stub := func(name, body string) {
		script := "#!/bin/sh\necho \"" + name + " $*\" >> " + log + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("docker", "exit 0")
	stub("kind", `case "$1" in get) echo other-cluster;; esac; exit 0`)
	stub("kubectl", `prev=""; for a in "$@"; do
  if [ "$prev" = "-k" ]; then exec `+real+` kustomize "$a" > `+rendered+`; fi
  prev="$a"; done
case "$*" in *"get daemonset"*) exit 1;; *"create configmap"*) echo "kind: ConfigMap";; *"-f -"*) cat >/dev/null;; esac
exit 0`)

	run := func(script string, args ...string) string {
		os.Remove(log)
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+stubs+":"+os.Getenv("PATH"), "KIND_CLUSTER_NAME=kt", "KPROXY_IMAGE=registry.example:5000/kproxy:v1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", script, args, err, out)
		}
		calls, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		return string(calls)
	}

	calls := run("./kind-up.sh", "ipvs")
	wantOrder := []string{
		"docker build -f " + mustAbs(t, ".") + "/Dockerfile -t registry.example:5000/kproxy:v1 " + mustAbs(t, ".."),
		"kind create cluster --name kt --config " + mustAbs(t, "kind/cluster.yaml"),
		"kind load docker-image registry.example:5000/kproxy:v1 --name kt",
		"kubectl --context kind-kt -n kube-system create configmap kproxy-apiserver --from-literal=host=kt-control-plane --from-literal=port=6443",
		"kubectl --context kind-kt apply --server-side --force-conflicts -k ",
		"kubectl --context kind-kt -n kube-system rollout status daemonset kproxy",
	}
	pos := 0
	for _, w := range wantOrder {
		i := strings.Index(calls[pos:], w)
		if i < 0 {
			t.Fatalf("kind-up.sh did not run %q (in order); calls:\n%s", w, calls)
		}
		pos += i + len(w)
	}
	data, err := os.ReadFile(rendered)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeManifests(t, data)
	_, c := m.daemonSet(t)
	if c.Image != "registry.example:5000/kproxy:v1" {
		t.Errorf("deployed image %q", c.Image)
	}
	if v, _ := argValue(c.Args, "proxy-mode"); v != "ipvs" {
		t.Errorf("deployed mode %q", v)
	}
	if v, _ := argValue(c.Args, "conntrack-max-per-core"); v != "0" {
		t.Errorf("kind deployment without --conntrack-max-per-core=0: %q", c.Args)
	}

	if out, err := exec.Command("bash", "./kind-up.sh", "nftables").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage:") {
		t.Errorf("kind-up.sh accepted an unknown mode: %v\n%s", err, out)
	}
	if calls := run("./kind-down.sh"); strings.Contains(calls, "delete") {
		t.Errorf("kind-down.sh deleted a cluster that does not exist: %s", calls)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
