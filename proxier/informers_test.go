package proxier

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// The informers filter Services and EndpointSlices with different
// selectors, as kube-proxy v1.37 does: a Service with a ClusterIP is
// proxied even when it carries the headless label, a slice is used even
// when it carries a service-proxy-name label its Service does not. The
// in-process predicates (kproxy render) agree with the selector strings.
func TestInformerSelectors(t *testing.T) {
	svcLabels, err := labels.Parse(ServiceLabelSelector)
	if err != nil {
		t.Fatal(err)
	}
	svcFields, err := fields.ParseSelector(ServiceFieldSelector)
	if err != nil {
		t.Fatal(err)
	}
	sliceLabels, err := labels.Parse(EndpointSliceLabelSelector)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		labels    map[string]string
		clusterIP string
		svc, es   bool
	}{
		{"plain", nil, "10.96.0.1", true, true},
		{"headless label, has a ClusterIP", map[string]string{LabelHeadless: ""}, "10.96.0.1", true, false},
		{"another proxy's", map[string]string{LabelServiceProxyName: "x"}, "10.96.0.1", false, true},
		{"clusterIP None", nil, v1.ClusterIPNone, false, true},
	} {
		s := svc("ns", "a", tc.clusterIP, func(s *v1.Service) { s.Labels = tc.labels })
		es := slice("ns", "a", "a-1")
		for k, v := range tc.labels {
			es.Labels[k] = v
		}
		gotSvc := svcLabels.Matches(labels.Set(s.Labels)) && svcFields.Matches(fields.Set{"spec.clusterIP": s.Spec.ClusterIP})
		if gotSvc != tc.svc || ServiceListed(s) != tc.svc {
			t.Errorf("%s: Service listed by selector %v, by ServiceListed %v, want %v", tc.name, gotSvc, ServiceListed(s), tc.svc)
		}
		gotES := sliceLabels.Matches(labels.Set(es.Labels))
		if gotES != tc.es || EndpointSliceListed(es) != tc.es {
			t.Errorf("%s: slice listed by selector %v, by EndpointSliceListed %v, want %v", tc.name, gotES, EndpointSliceListed(es), tc.es)
		}
	}
}
