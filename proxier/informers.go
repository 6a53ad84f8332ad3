package proxier

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// The selectors kube-proxy v1.37 lists with (cmd/kube-proxy/app/server.go).
// Services and EndpointSlices are filtered differently: a Service is
// dropped when another proxy owns it or it is headless by spec (clusterIP
// None), whatever its labels say; an EndpointSlice only when it carries the
// headless label, whatever its service-proxy-name label says (it follows
// its Service).
const (
	ServiceLabelSelector       = "!" + LabelServiceProxyName
	ServiceFieldSelector       = "spec.clusterIP!=" + v1.ClusterIPNone
	EndpointSliceLabelSelector = "!" + LabelHeadless
)

// ServiceListed reports whether the Service informer lists svc: what
// ServiceLabelSelector and ServiceFieldSelector select, for callers that
// read objects from elsewhere (kproxy render).
func ServiceListed(svc *v1.Service) bool {
	_, other := svc.Labels[LabelServiceProxyName]
	return !other && svc.Spec.ClusterIP != v1.ClusterIPNone
}

// EndpointSliceListed reports whether the EndpointSlice informer lists es
// (EndpointSliceLabelSelector).
func EndpointSliceListed(es *discovery.EndpointSlice) bool {
	_, headless := es.Labels[LabelHeadless]
	return !headless
}

// StartInformers starts the Service, EndpointSlice, Node and ServiceCIDR
// informers that feed the loop, waits until the first three have synced and
// tells the loop. The ServiceCIDRs, as kube-proxy's, do not hold back the
// first sync: they reach the rules with the sync after they arrive.
// Services and EndpointSlices come from Reflectors of kproxy's own (see
// relistBackoff), the Node and ServiceCIDRs from informers.
func StartInformers(ctx context.Context, client *APIClient, nodeName string, resync time.Duration, l *Loop) error {
	serviceStore := runReflector(ctx, serviceListWatch(client), &v1.Service{}, "services", resync, l.tracker.Transform,
		func(o, n any) { l.OnTrackedService(asTracked[*TrackedService](o), asTracked[*TrackedService](n)) })
	sliceStore := runReflector(ctx, sliceListWatch(client), &discovery.EndpointSlice{}, "endpointslices", resync, l.tracker.Transform,
		func(o, n any) { l.OnTrackedSlice(asTracked[*TrackedSlice](o), asTracked[*TrackedSlice](n)) })
	nodeInf := newInformer(nodeListWatch(client, nodeName), &v1.Node{}, resync)
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { l.OnNode(asNode(o)) },
		UpdateFunc: func(_, n any) { l.OnNode(asNode(n)) },
		DeleteFunc: func(any) { l.OnNode(nil) },
	}); err != nil {
		return fmt.Errorf("node informer: %w", err)
	}
	cidrInf := newInformer(cidrListWatch(client), &networking.ServiceCIDR{}, resync)
	if _, err := cidrInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { l.OnServiceCIDR(nil, asServiceCIDR(o)) },
		UpdateFunc: func(o, n any) { l.OnServiceCIDR(asServiceCIDR(o), asServiceCIDR(n)) },
		DeleteFunc: func(o any) { l.OnServiceCIDR(asServiceCIDR(o), nil) },
	}); err != nil {
		return fmt.Errorf("servicecidr informer: %w", err)
	}
	go cidrInf.RunWithContext(ctx)
	go nodeInf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), serviceStore.HasSynced, sliceStore.HasSynced, nodeInf.HasSynced) {
		return fmt.Errorf("informer caches did not sync: %w", ctx.Err())
	}
	l.OnSynced()
	return nil
}

// The as* helpers unwrap the tombstones a delete may deliver.
func asTracked[T *TrackedService | *TrackedSlice](o any) T {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	t, _ := o.(T)
	return t
}

func asNode(o any) *v1.Node {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	n, _ := o.(*v1.Node)
	return n
}

func asServiceCIDR(o any) *networking.ServiceCIDR {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	c, _ := o.(*networking.ServiceCIDR)
	return c
}

// newInformer is an informer of lw's objects (stripped, see StripObject).
func newInformer(lw cache.ListerWatcher, obj runtime.Object, resync time.Duration) cache.SharedIndexInformer {
	inf := cache.NewSharedIndexInformer(lw, obj, resync, cache.Indexers{})
	_ = inf.SetTransform(StripObject) // cannot fail before the informer runs
	return inf
}
