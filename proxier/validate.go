package proxier

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The API server validates names, but a proxy must not trust that: names
// end up inside rule comments and chain-name hashes, and one name that a
// backend cannot write (a quote, a newline, 300 characters) would make the
// whole ruleset fail to load. These checks reject, for one Service only,
// anything the API server itself would reject.

// validateServiceName checks a Service's namespace and name.
func validateServiceName(svc *v1.Service) error {
	for _, f := range []struct{ what, value string }{{"namespace", svc.Namespace}, {"name", svc.Name}} {
		if msgs := validation.IsDNS1123Label(f.value); len(msgs) > 0 {
			return errf("%s %q is invalid: %s", f.what, f.value, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// validatePortName checks a Service port's name (empty is allowed: a
// single unnamed port).
func validatePortName(name string) error {
	if name == "" {
		return nil
	}
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return errf("port name %q is invalid: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}

// validNodePort reports whether a node port (or health check node port)
// is in range; 0 means none.
func validNodePort(p int32) bool { return p >= 0 && p <= 65535 }
