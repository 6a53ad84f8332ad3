#!/usr/bin/env bash
# Builds, once, the static binaries of the offline kind cluster from the Go
# module proxy into $KIND_BIN (under ~/.cache/kproxy): kind itself,
# containerd 2.x with ctr and its runc shim, crictl, coredns, and the
# project's pause and echo servers (kproxy itself: images.sh kproxy). The
# Kubernetes node components come from hack/build-upstream.sh (the versions
# hack/upstream/go.mod pins).
# A binary already there is not rebuilt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export CGO_ENABLED=0 GOBIN="$KIND_BIN"
unset GOFLAGS

# install NAME PKG@VERSION [go install args...]: go install, skipped when built.
install_bin() {
  local name="$1" pkg="$2"
  shift 2
  [[ -x $KIND_BIN/$name ]] && return 0
  step "building $name ($pkg)" go install -trimpath "$@" "$pkg"
}

# go install cannot name the module of a package@version, so it runs outside
# any module.
cd /

install_bin kind "sigs.k8s.io/kind@$KIND_VERSION" -ldflags="-s -w"
install_bin crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" -ldflags="-s -w"
ctrd="github.com/containerd/containerd/v2"
ctrd_flags=(-tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w -X $ctrd/version.Version=$CONTAINERD_VERSION")
install_bin containerd "$ctrd/cmd/containerd@$CONTAINERD_VERSION" "${ctrd_flags[@]}"
install_bin ctr "$ctrd/cmd/ctr@$CONTAINERD_VERSION" "${ctrd_flags[@]}"
install_bin containerd-shim-runc-v2 "$ctrd/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" "${ctrd_flags[@]}"
install_bin coredns "github.com/coredns/coredns@$COREDNS_VERSION" -ldflags="-s -w"

# The project's own binaries are rebuilt every time (they follow the tree).
cd "$REPO"
go build -trimpath -ldflags="-s -w" -o "$KIND_BIN/pause" ./hack/kind-offline/pause
go build -trimpath -ldflags="-s -w" -o "$KIND_BIN/kproxy-echo" ./e2e/kind/echo

step "building the Kubernetes $K8S_VERSION node components" \
  "$REPO/hack/build-upstream.sh" kubelet kubeadm kube-scheduler kube-controller-manager >/dev/null
