// Package loadgen creates the benchmark's API objects: N ClusterIP Services
// with M endpoints each, every one with an EndpointSlice as the endpoint
// controller would write it (managed-by label, service-name label and the
// endpoints.kubernetes.io/last-change-trigger-time annotation, so proxies
// record network programming latency), plus single "probe" Services whose
// endpoint is a real echo server.
//
// The client should be an admin (system:masters) client: its requests are
// exempt from API Priority and Fairness, so many parallel creators are not
// throttled by the apiserver.
package loadgen
