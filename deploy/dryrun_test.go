package deploy

import (
	"bytes"
	"strings"
	"testing"
)

// TestServerSideDryRun applies the base, every overlay and every kind
// variant with "kubectl apply --server-side --dry-run=server" against the
// real kube-apiserver: schema, defaulting, validation and admission (e.g. the
// priority class must exist) all run; nothing is stored. A manifest with a
// deliberate error must be refused, so the check is known to bite.
func TestServerSideDryRun(t *testing.T) {
	_, cp := cluster(t)
	dirs := map[string]string{"base": "base"}
	for _, mode := range modes {
		dirs["overlays/"+mode] = "overlays/" + mode
		dirs["kind/"+mode] = kindKustomization(t, mode)
	}
	for name, dir := range dirs {
		t.Run(strings.ReplaceAll(name, "/", "-"), func(t *testing.T) {
			data := kustomize(t, dir)
			out, err := applyFile(t, cp, data, true)
			if err != nil {
				t.Fatalf("server-side dry run of %s: %v", name, err)
			}
			if n := strings.Count(out, "serverside-applied (server dry run)"); n != len(splitYAML(data)) {
				t.Errorf("%d of %d objects applied:\n%s", n, len(splitYAML(data)), out)
			}
		})
	}
	t.Run("broken", func(t *testing.T) {
		data := bytes.Replace(kustomize(t, "overlays/iptables"), []byte("type: FileOrCreate"), []byte("type: NoSuchType"), 1)
		if out, err := applyFile(t, cp, data, true); err == nil || !strings.Contains(err.Error(), "NoSuchType") {
			t.Errorf("a DaemonSet with an invalid hostPath type passed the dry run: %v\n%s", err, out)
		}
	})
}
