//go:build kind

package kind

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kproxy/kproxy/internal/testrig"
)

// cluster is the running kind cluster, as hack/kind-offline.sh env tells.
type cluster struct {
	netns      string // the network namespace of its dockerd ("outside")
	kubeconfig string
	dockerHost string
	binDir     string // kind-offline's binaries (kproxy-echo for outside probes)
	script     string // hack/kind-offline.sh
	client     kubernetes.Interface
	nodes      []node
}

type node struct {
	name, ip string
	worker   bool
}

// repoRoot is the repository's top directory (tests run in e2e/kind).
func repoRoot() string {
	dir, _ := filepath.Abs("../..")
	return dir
}

// run runs a command and returns its stdout; the error carries stderr.
func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// scriptEnv reads `hack/kind-offline.sh env`.
func scriptEnv(script string) (map[string]string, error) {
	out, err := run(script, "env")
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// connect builds a client whose connections are dialed inside the cluster's
// network namespace, where kind publishes the API server on 127.0.0.1.
func connect(script string) (*cluster, error) {
	env, err := scriptEnv(script)
	if err != nil {
		return nil, err
	}
	c := &cluster{
		netns:      env["KPROXY_KIND_NETNS"],
		kubeconfig: env["KPROXY_KIND_KUBECONFIG"],
		dockerHost: env["KPROXY_KIND_DOCKER_HOST"],
		binDir:     env["KPROXY_KIND_BIN"],
		script:     script,
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return testrig.DialContextInNetns(ctx, c.netns, network, addr)
	}
	cfg.Timeout = 30 * time.Second
	if c.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	return c, c.loadNodes()
}

func (c *cluster) loadNodes() error {
	list, err := c.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err
	}
	c.nodes = nil
	for _, n := range list.Items {
		nd := node{name: n.Name}
		_, cp := n.Labels["node-role.kubernetes.io/control-plane"]
		nd.worker = !cp
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				nd.ip = a.Address
			}
		}
		c.nodes = append(c.nodes, nd)
	}
	if len(c.nodes) != 3 {
		return fmt.Errorf("want 3 nodes, the cluster has %d", len(c.nodes))
	}
	return nil
}

func (c *cluster) workers() []node {
	var out []node
	for _, n := range c.nodes {
		if n.worker {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) controlPlane() node {
	for _, n := range c.nodes {
		if !n.worker {
			return n
		}
	}
	return node{}
}

// kubectl runs kubectl against the cluster.
func (c *cluster) kubectl(args ...string) (string, error) {
	return run(c.script, append([]string{"kubectl"}, args...)...)
}

// docker runs the docker CLI against the cluster's dockerd.
func (c *cluster) docker(args ...string) (string, error) {
	return run("/usr/bin/docker", append([]string{"-H", c.dockerHost}, args...)...)
}

// onNode runs a command on a kind node (the node's own namespaces).
func (c *cluster) onNode(n node, args ...string) (string, error) {
	return c.docker(append([]string{"exec", n.name}, args...)...)
}

// outside runs a command in the cluster's network namespace: a host on the
// kind network that is not a node (the docker network's host side).
func (c *cluster) outside(args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", c.netns}, args...)...)
}

// deploy runs `hack/kind-offline.sh deploy MODE` (deploy/kind-up.sh with the
// image built from this tree).
func (c *cluster) deploy(t *testing.T, mode string) {
	t.Helper()
	if out, err := run(c.script, "deploy", mode); err != nil {
		t.Fatalf("deploy %s: %v\n%s", mode, err, out)
	}
}

// eventually polls check until it returns nil or the timeout passes.
func eventually(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
