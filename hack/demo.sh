#!/usr/bin/env bash
# The local demo: installs what is missing, builds etcd + kube-apiserver
# from the Go module proxy (cached), then runs hack/demo (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh
hack/build-upstream.sh >/dev/null
exec go run ./hack/demo "$@"
