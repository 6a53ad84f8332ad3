package proxier

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
)

// APIClient reads what kproxy proxies from the API server: Services,
// EndpointSlices, Nodes and ServiceCIDRs, over REST clients whose scheme
// knows only their API groups. client-go's Clientset (and its informer
// factory) goes through a scheme that registers every API group at
// start: their code and type data then stay in every kproxy's memory.
type APIClient struct {
	core, discovery, networking rest.Interface
}

// apiScheme holds the kinds kproxy reads (and "kproxy render" decodes).
var apiScheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	utilruntime.Must(v1.AddToScheme(s))
	utilruntime.Must(discovery.AddToScheme(s))
	utilruntime.Must(networking.AddToScheme(s))
	return s
})

var (
	apiCodecs = sync.OnceValue(func() serializer.CodecFactory { return serializer.NewCodecFactory(apiScheme()) })
	apiParams = sync.OnceValue(func() runtime.ParameterCodec { return runtime.NewParameterCodec(apiScheme()) })
)

// Decoder decodes the kinds APIClient reads, and v1 Lists, from YAML or
// JSON.
func Decoder() runtime.Decoder { return apiCodecs().UniversalDeserializer() }

// NewAPIClient returns an APIClient for cfg. Its REST clients share one
// HTTP client and, as a Clientset's, one rate limiter.
func NewAPIClient(cfg *rest.Config) (*APIClient, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.ContentType == "" { // as the Clientset: protobuf, JSON as a fallback
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	}
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("API client: a QPS of %v needs a burst above 0", cfg.QPS)
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	c := &APIClient{}
	for _, g := range []struct {
		rc      *rest.Interface
		apiPath string
		gv      schema.GroupVersion
	}{
		{&c.core, "/api", v1.SchemeGroupVersion},
		{&c.discovery, "/apis", discovery.SchemeGroupVersion},
		{&c.networking, "/apis", networking.SchemeGroupVersion},
	} {
		gc := rest.CopyConfig(cfg)
		gc.APIPath, gc.GroupVersion = g.apiPath, &g.gv
		gc.NegotiatedSerializer = apiCodecs().WithoutConversion()
		if *g.rc, err = rest.RESTClientForConfigAndClient(gc, httpClient); err != nil {
			return nil, fmt.Errorf("API client for %s: %w", g.gv, err)
		}
	}
	return c, nil
}

// Node reads the Node named name.
func (c *APIClient) Node(ctx context.Context, name string) (*v1.Node, error) {
	n := &v1.Node{}
	return n, c.core.Get().Resource("nodes").Name(name).Do(ctx).Into(n)
}

// listWatch lists and watches resource in every namespace, with the
// options tweak sets; newList is the list a reply decodes into. The
// Reflectors on top list first, then use watch-list streams (listFirst).
func listWatch(rc rest.Interface, resource string, newList func() runtime.Object, tweak func(*metav1.ListOptions)) *listFirst {
	request := func(o *metav1.ListOptions) *rest.Request {
		tweak(o)
		var timeout time.Duration
		if o.TimeoutSeconds != nil {
			timeout = time.Duration(*o.TimeoutSeconds) * time.Second
		}
		return rc.Get().Resource(resource).VersionedParams(o, apiParams()).Timeout(timeout)
	}
	return &listFirst{ListWatch: &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list := newList()
			err := request(&o).Do(ctx).Into(list)
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.Watch = true
			return request(&o).Watch(ctx)
		},
	}}
}
