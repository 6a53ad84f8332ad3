package testrig

import (
	"context"
	"errors"

	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ApplyEndpointSlice creates es, or replaces the slice of that name.
func ApplyEndpointSlice(ctx context.Context, client kubernetes.Interface, es *discovery.EndpointSlice) error {
	c := client.DiscoveryV1().EndpointSlices(es.Namespace)
	cur, err := c.Get(ctx, es.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = c.Create(ctx, es, metav1.CreateOptions{})
	case err == nil:
		es.ResourceVersion = cur.ResourceVersion
		_, err = c.Update(ctx, es, metav1.UpdateOptions{})
	}
	return err
}

// DeleteService deletes a Service and the named EndpointSlices; objects
// already gone are not an error.
func DeleteService(ctx context.Context, client kubernetes.Interface, ns, name string, slices ...string) error {
	errs := []error{client.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})}
	for _, s := range slices {
		errs = append(errs, client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, s, metav1.DeleteOptions{}))
	}
	for i, err := range errs {
		if apierrors.IsNotFound(err) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}
