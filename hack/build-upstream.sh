#!/usr/bin/env bash
# Builds the upstream binaries the test rig runs (etcd, kube-apiserver, kube-proxy,
# kubectl; versions pinned in hack/upstream/go.mod) from the Go module proxy into
#   ${KPROXY_CACHE:-$HOME/.cache/kproxy}/upstream-v1.37.2/bin/
# A binary that already exists there is not rebuilt, so reruns are instant.
# Needs only Go (>= 1.26) and access to the module proxy. Prints the bin dir on stdout.
#
# Usage: hack/build-upstream.sh [COMPONENT...]
# Named components (kubelet, kubeadm, kube-scheduler, kube-controller-manager:
# the node components of hack/kind-offline.sh) are built too, the same way.
set -euo pipefail

K8S_VERSION=v1.37.2
K8S_MINOR=37
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/upstream"
bin="${KPROXY_CACHE:-$HOME/.cache/kproxy}/upstream-${K8S_VERSION}/bin"
mkdir -p "$bin"
# Concurrent runs (e.g. two test packages) wait for each other instead of
# writing the same files.
exec 9>"$bin/.lock"
flock 9

log() { echo "build-upstream: $*" >&2; }

# Version ldflags as in kubernetes hack/lib/version.sh; without them the binaries
# report v0.0.0-master.
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldx=""
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldx+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$K8S_MINOR"
  ldx+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
done

export CGO_ENABLED=0
# GOFLAGS from the caller (e.g. -mod=vendor) must not leak into this module.
unset GOFLAGS
cd "$mod"

# build NAME PKG [extra go build args...]: builds into a temp file, then renames, so
# an interrupted build never leaves a half-written binary that a rerun would skip.
build() {
  local name="$1" pkg="$2"
  shift 2
  if [[ -x "$bin/$name" ]]; then
    return 0
  fi
  log "building $name ($pkg) ..."
  local start=$SECONDS
  go build -trimpath "$@" -o "$bin/.$name.tmp" "$pkg"
  mv -f "$bin/.$name.tmp" "$bin/$name"
  log "built $name in $((SECONDS - start))s"
}

# The control plane first: it is what most tests need.
# etcd's main package is the module root; the default output name would be "server".
build etcd go.etcd.io/etcd/server/v3 -ldflags="-s -w"
for cmd in kube-apiserver kube-proxy kubectl "$@"; do
  case "$cmd" in
    kube-apiserver | kube-proxy | kubectl | kubelet | kubeadm | kube-scheduler | kube-controller-manager) ;;
    *) log "unknown component $cmd"; exit 2 ;;
  esac
  build "$cmd" "k8s.io/kubernetes/cmd/$cmd" -tags=selinux,notest,grpcnotrace -ldflags="all=$ldx -s -w"
done

echo "$bin"
