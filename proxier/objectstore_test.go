package proxier

import (
	"fmt"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// storeEvents records what an objectStore hands on, as "old>new" names.
type storeEvents []string

func (e *storeEvents) record(old, cur any) {
	name := func(o any) string {
		if o == nil {
			return "-"
		}
		s := o.(*v1.Service)
		return s.Name + "@" + s.ResourceVersion
	}
	*e = append(*e, name(old)+">"+name(cur))
}

func svcAt(name, rv string) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
}

func keepAsIs(o any) (any, error) { return o, nil }

func TestObjectStoreHandsOnChanges(t *testing.T) {
	var got storeEvents
	s := newObjectStore(keepAsIs, got.record)
	if s.HasSynced() {
		t.Fatal("synced before the first list")
	}
	check := func(step string, want ...string) {
		t.Helper()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: handed on %q, want %q", step, got, want)
		}
		got = nil
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Replace([]any{svcAt("a", "1"), svcAt("b", "1")}, "1"))
	check("first list", "->a@1", "->b@1")
	if !s.HasSynced() {
		t.Error("not synced after the first list")
	}
	must(s.Add(svcAt("c", "2")))
	must(s.Update(svcAt("a", "3")))
	must(s.Delete(svcAt("b", "4")))
	must(s.Delete(svcAt("never", "4")))
	check("watch events", "->c@2", "a@1>a@3", "b@1>-")
	must(s.Delete(cache.DeletedFinalStateUnknown{Key: "ns/c", Obj: svcAt("c", "2")}))
	check("tombstone", "c@2>-")
	must(s.Replace([]any{svcAt("a", "5"), svcAt("d", "5")}, "5"))
	check("relist", "a@3>a@5", "->d@5")
	must(s.Add(svcAt("c", "6")))
	must(s.Replace([]any{svcAt("d", "5")}, "7"))
	check("relist dropping objects", "->c@6", "a@5>-", "c@6>-", "d@5>d@5")
	must(s.Resync())
	check("resync", "d@5>d@5")
}

func TestObjectStoreTransforms(t *testing.T) {
	var got []string
	s := newObjectStore(func(o any) (any, error) {
		return fmt.Sprintf("tracked %s", o.(*v1.Service).Name), nil
	}, func(old, cur any) { got = append(got, fmt.Sprint(old, "|", cur)) })
	if err := s.Replace([]any{svcAt("a", "1")}, "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(svcAt("a", "2")); err != nil {
		t.Fatal(err)
	}
	want := []string{"<nil>|tracked a", "tracked a|tracked a"}
	if !slices.Equal(got, want) {
		t.Errorf("handed on %q, want %q (the transformed forms)", got, want)
	}
}
