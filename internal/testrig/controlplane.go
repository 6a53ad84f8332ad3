package testrig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// APIServerPort is the kube-apiserver's secure port on BridgeIP.
const APIServerPort = 6443

// readyTimeout bounds how long the control plane may take to become ready.
const readyTimeout = 90 * time.Second

// ControlPlane is etcd plus kube-apiserver running in a topology's net
// namespace. etcd listens on 127.0.0.1 there; the apiserver on
// https://198.51.100.1:6443, reachable from every node, pod and the client.
type ControlPlane struct {
	Netns string // the topology's net namespace
	Host  string // https://198.51.100.1:6443
	Dir   string // certs, tokens, kubeconfigs, etcd data

	// AdminKubeconfig is a kubeconfig for user admin (system:masters).
	AdminKubeconfig string
	// KubeProxyKubeconfig is a kubeconfig for user system:kube-proxy, which the
	// default RBAC binds to system:node-proxier.
	KubeProxyKubeconfig string
	// CAFile verifies the apiserver's serving certificate.
	CAFile string

	// Config is an admin config for the test process; it dials through the net
	// namespace, so the root namespace needs no route.
	Config *rest.Config
	Client kubernetes.Interface

	pki       *pki
	bin       string
	scope     Scope
	etcd      *Process
	apiserver *Process

	serviceRange string // --service-cluster-ip-range: dual stack in an IPv6 topology
}

// StartControlPlane starts etcd and kube-apiserver in topo's net namespace and
// waits until /readyz answers; they are stopped when the test ends. It skips
// (or fails, see RequireUpstream) if the upstream binaries are not built. First
// start takes about 3 s.
func StartControlPlane(t testing.TB, topo *Topology) *ControlPlane {
	t.Helper()
	RequireRoot(t)
	RequireUpstream(t)
	cp, err := StartControlPlaneIn(t, topo)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// StartControlPlaneIn is StartControlPlane for any Scope (e.g. a MainScope). If
// the binaries are missing the error wraps ErrUpstreamMissing.
func StartControlPlaneIn(s Scope, topo *Topology) (*ControlPlane, error) {
	bin, err := EnsureUpstream(false)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.TempDir(), "controlplane-")
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	p, err := writePKI(dir, []string{
		BridgeIP, "10.96.0.1", "127.0.0.1", "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
	})
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	cp := &ControlPlane{
		Netns:               topo.Net,
		Host:                "https://" + net.JoinHostPort(BridgeIP, fmt.Sprint(APIServerPort)),
		Dir:                 dir,
		AdminKubeconfig:     filepath.Join(dir, "admin.kubeconfig"),
		KubeProxyKubeconfig: filepath.Join(dir, "kube-proxy.kubeconfig"),
		CAFile:              p.CAFile,
		pki:                 p,
		bin:                 bin,
		scope:               s,
		serviceRange:        ServiceCIDR,
	}
	if topo.IPv6 {
		cp.serviceRange += "," + ServiceCIDRv6
	}
	if err := cp.writeKubeconfig(cp.AdminKubeconfig, "admin", p.AdminToken); err != nil {
		return nil, err
	}
	if err := cp.writeKubeconfig(cp.KubeProxyKubeconfig, "system:kube-proxy", p.KubeProxyToken); err != nil {
		return nil, err
	}
	cp.Config = cp.restConfig(p.AdminToken)
	if cp.Client, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	if err := cp.startEtcd(); err != nil {
		return nil, err
	}
	if err := cp.StartAPIServer(); err != nil {
		return nil, err
	}
	return cp, nil
}

// restConfig returns a config for user (admin or system:kube-proxy) that dials
// through the net namespace.
func (cp *ControlPlane) restConfig(token string) *rest.Config {
	ns := cp.Netns
	return &rest.Config{
		Host:            cp.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.pki.CAPEM},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return DialContextInNetns(ctx, ns, network, addr)
		},
		QPS:   1000,
		Burst: 2000,
	}
}

// KubeProxyConfig returns a config for user system:kube-proxy for the test
// process (dials through the net namespace).
func (cp *ControlPlane) KubeProxyConfig() *rest.Config { return cp.restConfig(cp.pki.KubeProxyToken) }

func (cp *ControlPlane) writeKubeconfig(path, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testrig"] = &clientcmdapi.Cluster{Server: cp.Host, CertificateAuthorityData: cp.pki.CAPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["testrig"] = &clientcmdapi.Context{Cluster: "testrig", AuthInfo: user}
	cfg.CurrentContext = "testrig"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

func (cp *ControlPlane) startEtcd() error {
	p, err := StartProcessIn(cp.scope, cp.Netns, filepath.Join(cp.bin, BinEtcd),
		"--name=testrig",
		"--data-dir="+filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379",
		"--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=testrig=http://127.0.0.1:2380",
		"--initial-cluster-state=new",
		"--unsafe-no-fsync", // throwaway store
		"--log-level=warn",
	)
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	cp.etcd = p
	return nil
}

// StartAPIServer starts kube-apiserver (after StopAPIServer) and waits for
// /readyz.
func (cp *ControlPlane) StartAPIServer() error {
	if cp.apiserver != nil {
		if exited, _ := cp.apiserver.Exited(); !exited {
			return fmt.Errorf("kube-apiserver (pid %d) is already running", cp.apiserver.PID())
		}
	}
	p := cp.pki
	proc, err := StartProcessIn(cp.scope, cp.Netns, filepath.Join(cp.bin, BinKubeAPIServer),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address="+BridgeIP,
		"--advertise-address="+BridgeIP,
		fmt.Sprintf("--secure-port=%d", APIServerPort),
		"--tls-cert-file="+p.CertFile,
		"--tls-private-key-file="+p.KeyFile,
		"--token-auth-file="+p.TokenFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.SAPubFile,
		"--service-account-signing-key-file="+p.SAKeyFile,
		"--service-cluster-ip-range="+cp.serviceRange,
		"--authorization-mode=RBAC",
		"--allow-privileged=true", // as kubeadm sets it: kube-proxy (and kproxy in ipvs mode) run privileged
		"--profiling=false",
	)
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	cp.apiserver = proc
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	return cp.WaitReady(ctx)
}

// WaitReady polls /readyz until it answers "ok".
func (cp *ControlPlane) WaitReady(ctx context.Context) error {
	rc := cp.Client.Discovery().RESTClient()
	var lastErr error
	for {
		body, err := rc.Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		lastErr = err
		for _, p := range []*Process{cp.etcd, cp.apiserver} {
			if exited, werr := p.Exited(); exited {
				return fmt.Errorf("%s exited (%v) before the control plane was ready; last lines:\n%s", p.Name, werr, p.Tail(20))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("control plane not ready: %w (last: %v); kube-apiserver log tail:\n%s", ctx.Err(), lastErr, cp.apiserver.Tail(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// APIServerPID returns the running kube-apiserver's PID.
func (cp *ControlPlane) APIServerPID() int { return cp.apiserver.PID() }

// APIServer returns the running kube-apiserver process (e.g. for its log).
func (cp *ControlPlane) APIServer() *Process { return cp.apiserver }

// Etcd returns the etcd process.
func (cp *ControlPlane) Etcd() *Process { return cp.etcd }

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL); etcd keeps the
// state.
func (cp *ControlPlane) StopAPIServer() error { return cp.apiserver.Stop() }

// KillAPIServer SIGKILLs kube-apiserver (an abrupt outage).
func (cp *ControlPlane) KillAPIServer() error { return cp.apiserver.Kill() }

// Restart stops kube-apiserver and starts it again with the same flags,
// certificates and data; kubeconfigs stay valid.
func (cp *ControlPlane) Restart() error {
	if err := cp.StopAPIServer(); err != nil {
		return err
	}
	return cp.StartAPIServer()
}

// Stop stops kube-apiserver and etcd. The scope's cleanup does the same.
func (cp *ControlPlane) Stop() error {
	return errors.Join(cp.apiserver.Stop(), cp.etcd.Stop())
}

// Kubectl runs upstream kubectl with the admin kubeconfig inside the net
// namespace and returns its stdout.
func (cp *ControlPlane) Kubectl(args ...string) (string, error) {
	argv := append([]string{filepath.Join(cp.bin, BinKubectl), "--kubeconfig=" + cp.AdminKubeconfig}, args...)
	return Exec(cp.Netns, argv...)
}
