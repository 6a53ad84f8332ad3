// Package healthcheck serves kproxy's health endpoints, with kube-proxy's
// paths, status codes and JSON bodies so that load balancers and probes
// configured for kube-proxy keep working:
//
//   - ProxyHealth is the proxy health server (--healthz-bind-address):
//     /healthz fails (503) when a queued update of any IP family has waited
//     longer than the health timeout (2× the sync period) or when the Node is
//     being deleted; /livez ignores node eligibility. It implements
//     proxier.HealthRecorder.
//   - ServiceHealth runs one HTTP server per healthCheckNodePort of the
//     externalTrafficPolicy=Local Services, answering 200 when this node has
//     a local ready endpoint and the proxy is healthy, 503 otherwise. It is
//     fed by a proxier.AfterSync hook.
package healthcheck
