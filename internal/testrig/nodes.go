package testrig

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeObject returns the Kubernetes Node for a topology node: name "node<i>",
// podCIDR 10.244.<i>.0/24, InternalIP 198.51.100.(10+i), Ready; in a
// dual-stack topology also the IPv6 pod CIDR and InternalIP.
func NodeObject(n *Node) *corev1.Node {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   n.Name,
			Labels: map[string]string{corev1.LabelHostname: n.Name, corev1.LabelOSStable: "linux"},
		},
		Spec: corev1.NodeSpec{PodCIDR: n.PodCIDR.String(), PodCIDRs: []string{n.PodCIDR.String()}},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: n.IP},
				{Type: corev1.NodeHostName, Address: n.Name},
			},
			Conditions: []corev1.NodeCondition{{
				Type:               corev1.NodeReady,
				Status:             corev1.ConditionTrue,
				Reason:             "KubeletReady",
				LastHeartbeatTime:  metav1.Now(),
				LastTransitionTime: metav1.Now(),
			}},
		},
	}
	if n.IPv6 != "" {
		node.Spec.PodCIDRs = append(node.Spec.PodCIDRs, n.PodCIDRv6.String())
		node.Status.Addresses = append(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: n.IPv6})
	}
	return node
}

// CreateNodes creates (or updates) a Node object for every topology node, with
// its status (addresses, Ready) set through the status subresource.
func (cp *ControlPlane) CreateNodes(ctx context.Context, topo *Topology) error {
	for _, n := range topo.Nodes {
		if err := cp.CreateNode(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// CreateNode creates (or updates) the Node object for one topology node.
func (cp *ControlPlane) CreateNode(ctx context.Context, n *Node) error {
	want := NodeObject(n)
	nodes := cp.Client.CoreV1().Nodes()
	got, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil {
			got.Labels, got.Spec.PodCIDR, got.Spec.PodCIDRs = want.Labels, want.Spec.PodCIDR, want.Spec.PodCIDRs
			got, err = nodes.Update(ctx, got, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	got.Status = want.Status
	if _, err := nodes.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set status of node %s: %w", n.Name, err)
	}
	return nil
}
