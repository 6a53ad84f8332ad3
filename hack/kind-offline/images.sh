#!/usr/bin/env bash
# Builds the images of the offline kind cluster into the namespaced dockerd,
# with no registry: root filesystems are assembled on the host (debootstrap
# and apt in a chroot, from the host's Debian mirror; the cluster's network
# namespace has no way out) and imported with `docker import`.
#
# Usage: images.sh rootfs|node|kproxy|kube-proxy|echo
#   rootfs      only the cached Debian root filesystems of the others
#   node        the kind node image: Debian bookworm + kind v0.33.0's base
#               files + containerd, kubelet, kubeadm, ..., with the control
#               plane, etcd, coredns and pause images preloaded
#   kproxy      Debian trixie + deploy/image-packages.txt + kproxy: the same
#               content as deploy/Dockerfile builds
#   kube-proxy  the same base + upstream kube-proxy (for take-over tests)
#   echo        FROM scratch: the project's echo server (e2e/kind/echo)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOTFS="$KIND_CACHE/rootfs"
IMAGES="$KIND_CACHE/images"
mkdir -p "$ROOTFS" "$IMAGES"

# debian_rootfs DIR RELEASE PACKAGE-FILE: debootstrap (once), then apt-get
# install of the packages listed in PACKAGE-FILE (# comments allowed), again
# only when the list changed.
debian_rootfs() {
  local dir="$1" release="$2" list="$3" want
  want=$(sed 's/#.*//' "$list" | xargs)
  [[ -f $dir/.kproxy-packages && $(cat "$dir/.kproxy-packages") == "$want" ]] && return 0
  if [[ ! -f $dir/.kproxy-debootstrap ]]; then
    rm -rf "$dir"
    step "debootstrap $release into $dir" \
      debootstrap --variant=minbase "$release" "$dir" "$(debian_mirror)" >"$KIND_LOGS/debootstrap-$release.log"
    touch "$dir/.kproxy-debootstrap"
  fi
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
  # A private mount namespace: the chroot's /proc goes away with it.
  step "apt-get install $want ($release)" unshare -m --propagation private bash -euc "
    mount -t proc proc '$dir/proc'
    chroot '$dir' apt-get update -q
    DEBIAN_FRONTEND=noninteractive chroot '$dir' apt-get install -y -q --no-install-recommends $want
    chroot '$dir' apt-get clean
  " >"$KIND_LOGS/apt-$release.log"
  rm -rf "$dir/var/lib/apt/lists/"* "$dir/usr/sbin/policy-rc.d"
  : >"$dir/etc/resolv.conf"
  echo "$want" >"$dir/.kproxy-packages"
}

# import_dir DIR IMAGE [docker import --change ...]: DIR becomes IMAGE.
import_dir() {
  local dir="$1" image="$2"
  shift 2
  tar -C "$dir" --exclude=./.kproxy-packages --exclude=./.kproxy-debootstrap -c . | $DOCKER import "$@" - "$image" >/dev/null
  log "imported $image"
}

# scratch_image IMAGE BINARY DEST: an image holding only BINARY at DEST.
scratch_image() {
  local image="$1" binary="$2" dest="$3" dir
  dir=$(mktemp -d)
  mkdir -p "$dir/tmp" "$dir/$(dirname "$dest")"
  cp "$binary" "$dir/$dest"
  import_dir "$dir" "$image" --change "ENV PATH=/usr/local/bin:/usr/bin:/bin" --change "ENTRYPOINT [\"$dest\"]"
  rm -rf "$dir"
}

# preload_images: the images kubeadm and kubelet need, saved for the node
# image (kind-preload.service imports them at boot).
preload_images() {
  local out="$ROOTFS/node/kind/images" image
  mkdir -p "$out"
  rm -f "$out"/*.tar
  scratch_image "$IMAGE_REPO/kube-apiserver:$K8S_VERSION" "$UPSTREAM_BIN/kube-apiserver" /usr/local/bin/kube-apiserver
  scratch_image "$IMAGE_REPO/kube-controller-manager:$K8S_VERSION" "$UPSTREAM_BIN/kube-controller-manager" /usr/local/bin/kube-controller-manager
  scratch_image "$IMAGE_REPO/kube-scheduler:$K8S_VERSION" "$UPSTREAM_BIN/kube-scheduler" /usr/local/bin/kube-scheduler
  scratch_image "$IMAGE_REPO/etcd:$ETCD_IMAGE_VERSION" "$UPSTREAM_BIN/etcd" /usr/local/bin/etcd
  scratch_image "$IMAGE_REPO/pause:$PAUSE_VERSION" "$KIND_BIN/pause" /pause
  scratch_image "$IMAGE_REPO/coredns:$COREDNS_VERSION" "$KIND_BIN/coredns" /coredns
  for image in kube-apiserver:$K8S_VERSION kube-controller-manager:$K8S_VERSION kube-scheduler:$K8S_VERSION \
    etcd:$ETCD_IMAGE_VERSION pause:$PAUSE_VERSION coredns:$COREDNS_VERSION; do
    $DOCKER save -o "$out/$(echo "$image" | tr '/:' '__').tar" "$IMAGE_REPO/$image"
  done
}

node() {
  local r="$ROOTFS/node"
  debian_rootfs "$r" bookworm "$here/node-packages.txt"
  "$here/node-rootfs.sh" "$r"
  step "preloading the control plane images" preload_images
  local raw="$NODE_IMAGE-raw" ctx
  step "importing the node image" import_dir "$r" "$raw" \
    --change 'ENV container=docker' --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
  # docker import cannot set STOPSIGNAL (systemd stops on SIGRTMIN+3); a
  # build with no RUN step adds it without a network.
  ctx=$(mktemp -d)
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$raw" >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 $DOCKER build -q -t "$NODE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  $DOCKER rmi "$raw" >/dev/null
}

# proxy_image IMAGE BINARY: the proxy image (kproxy, or upstream kube-proxy):
# Debian trixie with deploy/image-packages.txt, as deploy/Dockerfile.
proxy_image() {
  local image="$1" binary="$2" r="$ROOTFS/proxy-base" dir
  debian_rootfs "$r" trixie "$REPO/deploy/image-packages.txt"
  dir=$(mktemp -d)
  cp -a "$r/." "$dir/"
  install -m 755 "$binary" "$dir/usr/local/bin/$(basename "$binary")"
  import_dir "$dir" "$image" --change "ENTRYPOINT [\"/usr/local/bin/$(basename "$binary")\"]"
  rm -rf "$dir"
}

case "${1:-}" in
  rootfs) # the Debian parts alone (network and disk, little CPU)
    debian_rootfs "$ROOTFS/node" bookworm "$here/node-packages.txt"
    debian_rootfs "$ROOTFS/proxy-base" trixie "$REPO/deploy/image-packages.txt"
    ;;
  node) node ;;
  kproxy)
    # Always from this tree, as deploy/Dockerfile builds it.
    (cd "$REPO" && CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X main.versionString=$(git describe --always --dirty 2>/dev/null || echo dev)" \
      -o "$KIND_BIN/kproxy" ./cmd/kproxy)
    proxy_image "${KPROXY_IMAGE:-kproxy:dev}" "$KIND_BIN/kproxy"
    ;;
  kube-proxy) proxy_image "kproxy.local/kube-proxy:$K8S_VERSION" "$UPSTREAM_BIN/kube-proxy" ;;
  echo) scratch_image kproxy.local/echo:dev "$KIND_BIN/kproxy-echo" /kproxy-echo ;;
  *) echo "usage: $0 node|kproxy|kube-proxy|echo" >&2; exit 2 ;;
esac
