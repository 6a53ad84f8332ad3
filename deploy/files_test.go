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
// static multi-stage build of ./cmd/kproxy, pinned base images, and a
// runtime stage that installs exactly deploy/image-packages.txt (iptables
// with both backends, ipset, conntrack, kmod, nftables, ca-certificates)
// and nothing fetched from elsewhere: no iptables-wrapper, no git clone.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	stages := regexp.MustCompile(`(?m)^FROM (\S+)( AS (\S+))?$`).FindAllStringSubmatch(text, -1)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	// Base images are pinned: a Go minor version and a Debian release by
	// codename, never latest/stable/testing.
	args := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ARG (\w+)=(\S+)$`).FindAllStringSubmatch(text, -1) {
		args[m[1]] = m[2]
	}
	if !regexp.MustCompile(`^1\.\d+$`).MatchString(args["GO_VERSION"]) {
		t.Errorf("GO_VERSION %q is not a pinned Go minor version", args["GO_VERSION"])
	}
	if r := args["DEBIAN_RELEASE"]; !regexp.MustCompile(`^[a-z]+$`).MatchString(r) || slices.Contains([]string{"stable", "testing", "unstable", "sid", "latest"}, r) {
		t.Errorf("DEBIAN_RELEASE %q is not a pinned Debian release", r)
	}
	for _, st := range stages {
		if img := st[1]; strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") {
			t.Errorf("stage image %s is not pinned", img)
		}
	}
	last := text[strings.LastIndex(text, "\nFROM "):]
	build := regexp.MustCompile(`CGO_ENABLED=0 go build [^\n]*-X main\.versionString=\$\{VERSION\}[^\n]*\\\n\s*-o /out/kproxy \./cmd/kproxy`)
	if !build.MatchString(text) {
		t.Error("kproxy is not built static (CGO_ENABLED=0) from ./cmd/kproxy with its version in main.versionString")
	}
	if _, err := os.Stat("../cmd/kproxy"); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/kproxy: %v", err)
	}
	// The runtime stage installs the package list, and only it.
	if !strings.Contains(last, "COPY deploy/image-packages.txt /tmp/image-packages.txt") ||
		!regexp.MustCompile(`sed -e 's/#\.\*//' /tmp/image-packages\.txt \\\n\s*\| xargs -r env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends`).MatchString(last) {
		t.Errorf("the runtime stage does not install deploy/image-packages.txt with xargs apt-get install:\n%s", last)
	}
	if n := strings.Count(text, "apt-get install"); n != 1 {
		t.Errorf("%d apt-get install commands, want the one reading image-packages.txt", n)
	}
	pkgs := imagePackages(t)
	for _, pkg := range []string{"iptables", "ipset", "conntrack", "kmod", "nftables", "ca-certificates"} {
		if !slices.Contains(pkgs, pkg) {
			t.Errorf("image-packages.txt lacks %s (has %q)", pkg, pkgs)
		}
	}
	code := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(text, "")
	for _, banned := range []string{"iptables-wrapper", "git clone", "git checkout"} {
		if strings.Contains(code, banned) {
			t.Errorf("the Dockerfile still uses %q", banned)
		}
	}
	for _, want := range []string{"COPY --from=build /out/kproxy /usr/local/bin/kproxy", `ENTRYPOINT ["/usr/local/bin/kproxy"]`} {
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

// imagePackages reads image-packages.txt as the Dockerfile does (sed
// drops comments, xargs splits on blanks) and checks each name is a
// Debian package name.
func imagePackages(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("image-packages.txt")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, p := range strings.Fields(line) {
			if !regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`).MatchString(p) {
				t.Errorf("image-packages.txt: %q is not a package name", p)
			}
			if slices.Contains(pkgs, p) {
				t.Errorf("image-packages.txt lists %s twice", p)
			}
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
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
