package proxier

import (
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
)

// TestReflectorsListFirst: every ListerWatcher the informers use tells
// client-go's Reflector to list, then watch (see listThenWatch), whatever
// the WatchListClient feature gate says.
func TestReflectorsListFirst(t *testing.T) {
	c, err := NewAPIClient(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for name, lw := range map[string]cache.ListerWatcher{
		"services": serviceListWatch(c), "endpointslices": sliceListWatch(c),
		"nodes": nodeListWatch(c, "node1"), "servicecidrs": cidrListWatch(c),
	} {
		if !watchlist.DoesClientNotSupportWatchListSemantics(lw) {
			t.Errorf("%s: the Reflector would use a watch-list stream", name)
		}
	}
}
