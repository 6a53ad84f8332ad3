package main

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The apiserver allocates the background's ClusterIPs anywhere in the
// Service CIDR, the soak's fixed band included: a churned Service deleted
// and recreated would find its address taken ("provided IP is already
// allocated"). reserveChurnIPs holds the churned Services' and the
// marker's addresses with placeholder Services while the background is
// created; releaseChurnIPs deletes them before the churn starts.
func (e *env) reserveChurnIPs(ctx context.Context, c config) error {
	for i, ip := range soakIPs(c) {
		svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: reserveName(i), Namespace: "default"},
			Spec: v1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip}, Ports: []v1.ServicePort{{Port: 80, Protocol: v1.ProtocolTCP}}}}
		if _, err := e.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("reserve %s: %w", ip, err)
		}
	}
	return nil
}

func (e *env) releaseChurnIPs(ctx context.Context, c config) error {
	for i := range soakIPs(c) {
		err := e.client.CoreV1().Services("default").Delete(ctx, reserveName(i), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("release %s: %w", reserveName(i), err)
		}
	}
	return nil
}

// soakIPs are the addresses of the Services the soak creates after the
// background: the churned ones and the marker.
func soakIPs(c config) []string {
	ips := make([]string, 0, c.churned+1)
	for i := range c.churned {
		ips = append(ips, churnIP(i))
	}
	return append(ips, markerIP)
}

func reserveName(i int) string { return fmt.Sprintf("reserve-%d", i) }
