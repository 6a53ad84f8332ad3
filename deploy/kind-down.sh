#!/usr/bin/env bash
# Deletes the kind cluster made by deploy/kind-up.sh (its nodes are
# containers, so every rule kproxy wrote goes with them).
#
# Usage: deploy/kind-down.sh        Environment: KIND_CLUSTER_NAME (default kproxy)
set -euo pipefail
cluster="${KIND_CLUSTER_NAME:-kproxy}"
command -v kind >/dev/null || { echo "$0: kind not found in PATH" >&2; exit 1; }
if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
  kind delete cluster --name "${cluster}"
else
  echo "no kind cluster named ${cluster}"
fi
