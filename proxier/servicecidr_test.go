package proxier

import (
	"fmt"
	"testing"

	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func serviceCIDR(name string, cidrs ...string) *networking.ServiceCIDR {
	return &networking.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networking.ServiceCIDRSpec{CIDRs: cidrs}}
}

// TestTrackerServiceCIDRs: each family's snapshot holds the ranges of that
// family from every ServiceCIDR, sorted and once; a range that does not
// parse is reported and skipped; an update replaces an object's ranges and
// a delete removes them, even when another object holds the same range.
func TestTrackerServiceCIDRs(t *testing.T) {
	var reported []string
	tr := newTestTracker(func(kind, name string, err error) { reported = append(reported, kind+" "+name) })
	tr.OnServiceCIDR(nil, serviceCIDR("kubernetes", "10.96.0.0/16", "fd00:10:96::/112"))
	tr.OnServiceCIDR(nil, serviceCIDR("extra", "10.100.0.0/24", "10.96.0.0/16", "bogus"))
	want := map[Family]string{IPv4: "[10.96.0.0/16 10.100.0.0/24]", IPv6: "[fd00:10:96::/112]"}
	checkCIDRs(t, tr, want)
	if fmt.Sprint(reported) != "[ServiceCIDR extra]" {
		t.Errorf("reported %v, want the bad range of extra once", reported)
	}

	tr.OnServiceCIDR(serviceCIDR("extra", "10.100.0.0/24"), serviceCIDR("extra", "10.200.0.0/24"))
	checkCIDRs(t, tr, map[Family]string{IPv4: "[10.96.0.0/16 10.200.0.0/24]", IPv6: "[fd00:10:96::/112]"})

	tr.OnServiceCIDR(serviceCIDR("extra", "10.200.0.0/24"), nil)
	tr.OnServiceCIDR(nil, serviceCIDR("same", "10.96.0.0/16"))
	tr.OnServiceCIDR(serviceCIDR("same", "10.96.0.0/16"), nil)
	checkCIDRs(t, tr, map[Family]string{IPv4: "[10.96.0.0/16]", IPv6: "[fd00:10:96::/112]"})
}

func checkCIDRs(t *testing.T, tr *Tracker, want map[Family]string) {
	t.Helper()
	c := tr.Checkout()
	for f, w := range want {
		if got := fmt.Sprint(c.Snapshots[f].ServiceCIDRs); got != w {
			t.Errorf("%s ServiceCIDRs = %s, want %s", f, got, w)
		}
	}
}

// TestStripServiceCIDR: the informer keeps a ServiceCIDR's name and ranges
// and drops the rest.
func TestStripServiceCIDR(t *testing.T) {
	c := serviceCIDR("kubernetes", "10.96.0.0/16")
	c.Labels = map[string]string{"a": "b"}
	fatMeta(&c.ObjectMeta)
	c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}
	if _, err := StripObject(c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "kubernetes" || fmt.Sprint(c.Spec.CIDRs) != "[10.96.0.0/16]" {
		t.Errorf("stripping lost what the tracker reads: %+v", c)
	}
	if c.Labels != nil || c.ManagedFields != nil || c.Status.Conditions != nil {
		t.Errorf("not stripped: %+v", c)
	}
}
