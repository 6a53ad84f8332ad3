#!/usr/bin/env bash
# The in-cluster tests (e2e/kind): a real kind cluster built offline by
# hack/kind-offline.sh (1 control plane + 2 workers), upstream kube-proxy
# taken over by kproxy and back, services, rolling updates, mode switches.
# The tests bring the cluster up and take it down, and fail when the
# machine's root network namespace or a host-wide sysctl changed.
# Needs root; the first run builds and caches the cluster's binaries and
# images (README, Deploying: cold and warm times of `up`).
# On failure the messages of each failed step are printed again at the end,
# where a CI log's tail shows them.
#
# Environment: KPROXY_KIND_REUSE=1 uses a cluster already up (and keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
go vet -tags kind ./e2e/kind
log=$(mktemp /tmp/kproxy-kind.XXXX.log)
set +e
go test -tags kind -count=1 -timeout 60m -v ./e2e/kind "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
  echo; echo "kind tests failed (exit $status); what each failed test printed (last 40 lines):"
  hack/failed-output.awk "$log"
fi
exit "$status"
