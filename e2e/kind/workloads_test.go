//go:build kind

package kind

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	testNS    = "kproxy-e2e"
	echoImage = "kproxy.local/echo:dev"
	echoPort  = 8080 // TCP and UDP
	httpPort  = 8081 // readiness
)

func labels(app string) map[string]string { return map[string]string{"app": app} }

// echoPod is the pod template of every workload: kproxy-echo serve, ready
// while /healthz says so, draining for a few seconds after SIGTERM.
func echoPod(app string) corev1.PodTemplateSpec {
	grace := int64(30)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(app)},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            "echo",
				Image:           echoImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"serve", "-tcp", fmt.Sprint(echoPort), "-udp", fmt.Sprint(echoPort), "-http", fmt.Sprint(httpPort), "-drain", "5s"},
				Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(httpPort)}},
					PeriodSeconds:    1,
					FailureThreshold: 1,
				},
			}},
		},
	}
}

// echoDeployment: replicas spread over the workers, rolled one new pod at a
// time with none taken away before its replacement is ready.
func echoDeployment(app string, replicas int32) *appsv1.Deployment {
	pod := echoPod(app)
	pod.Spec.Tolerations = nil // workers only
	// Honor: the tainted control plane is no domain to spread over.
	honor := corev1.NodeInclusionPolicyHonor
	pod.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: labels(app)}, NodeTaintsPolicy: &honor,
	}}
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: testNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels(app)},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one}},
			Template: pod,
		},
	}
}

// clientDaemonSet: one client pod on every node, control plane included.
func clientDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: testNS},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels("client")},
			Template: echoPod("client"),
		},
	}
}

func servicePorts() []corev1.ServicePort {
	return []corev1.ServicePort{
		{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(echoPort)},
		{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, TargetPort: intstr.FromInt32(echoPort)},
	}
}

func service(name string, typ corev1.ServiceType, etp corev1.ServiceExternalTrafficPolicy, externalIPs ...string) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: corev1.ServiceSpec{
			Type:        typ,
			Selector:    labels(name),
			Ports:       servicePorts(),
			ExternalIPs: externalIPs,
		},
	}
	if typ != corev1.ServiceTypeClusterIP {
		svc.Spec.ExternalTrafficPolicy = etp
	}
	return svc
}

// ensureWorkloads creates the namespace, the client DaemonSet, the echo
// Deployments and their Services (idempotent), and waits until every pod
// is ready.
func (c *cluster) ensureWorkloads(ctx context.Context) error {
	cs := c.client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	creates := []func() error{
		func() error {
			_, err := cs.AppsV1().DaemonSets(testNS).Create(ctx, clientDaemonSet(), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.AppsV1().Deployments(testNS).Create(ctx, echoDeployment("echo", 4), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.AppsV1().Deployments(testNS).Create(ctx, echoDeployment("local", 1), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.AppsV1().Deployments(testNS).Create(ctx, echoDeployment("zero", 2), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().Services(testNS).Create(ctx, service("echo", corev1.ServiceTypeNodePort, corev1.ServiceExternalTrafficPolicyCluster, c.workers()[0].ip), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().Services(testNS).Create(ctx, service("local", corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().Services(testNS).Create(ctx, service("zero", corev1.ServiceTypeClusterIP, ""), metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range creates {
		if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return c.waitPodsReady(ctx, 3*time.Minute)
}

// waitPodsReady waits until every pod of the test namespace is Ready.
func (c *cluster) waitPodsReady(ctx context.Context, timeout time.Duration) error {
	return eventually(timeout, func() error {
		pods, err := c.client.CoreV1().Pods(testNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var notReady []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && !podReady(&p) {
				notReady = append(notReady, p.Name)
			}
		}
		if len(notReady) > 0 || len(pods.Items) == 0 {
			return fmt.Errorf("pods not ready: %s", strings.Join(notReady, ", "))
		}
		return nil
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// pods lists the running pods of app: pod name → node name.
func (c *cluster) pods(ctx context.Context, ns, app string) (map[string]string, error) {
	list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out[p.Name] = p.Spec.NodeName
		}
	}
	return out, nil
}

// clientOn returns the client pod running on node n.
func (c *cluster) clientOn(ctx context.Context, n node) (string, error) {
	pods, err := c.pods(ctx, testNS, "client")
	if err != nil {
		return "", err
	}
	for pod, nodeName := range pods {
		if nodeName == n.name {
			return pod, nil
		}
	}
	return "", fmt.Errorf("no client pod on %s", n.name)
}

func (c *cluster) getService(ctx context.Context, name string) (*corev1.Service, error) {
	return c.client.CoreV1().Services(testNS).Get(ctx, name, metav1.GetOptions{})
}
