#!/usr/bin/env bash
# Turns the Debian root filesystem $1 into a kind node, as kind v0.33.0's
# base image does (its files come from the Go module cache), with the static
# binaries of build-bins.sh. Idempotent: run on every `up`, so the node image
# always carries the binaries just built.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
r="$1"
kf="$(cd / && GOFLAGS= go env GOMODCACHE)/sigs.k8s.io/kind@$KIND_VERSION/images/base/files"
[[ -d $kf ]] || (cd / && GOFLAGS= go mod download "sigs.k8s.io/kind@$KIND_VERSION")

# kind's base files: entrypoint, containerd and kubelet units, sysctls.
install -m 755 "$kf"/usr/local/bin/* "$r/usr/local/bin/"
mkdir -p "$r/kind/bin" "$r/etc/containerd" "$r/etc/default" "$r/etc/sysctl.d" \
  "$r/etc/systemd/system/kubelet.service.d" "$r/etc/kubernetes/manifests" "$r/kind/manifests"
install -m 644 "$kf/kind/README.txt" "$r/kind/"
install -m 755 "$kf"/kind/bin/* "$r/kind/bin/"
install -m 644 "$kf/etc/crictl.yaml" "$r/etc/"
install -m 644 "$kf"/etc/containerd/* "$r/etc/containerd/"
install -m 644 "$kf"/etc/default/* "$r/etc/default/"
install -m 644 "$kf"/etc/sysctl.d/* "$r/etc/sysctl.d/"
install -m 644 "$kf"/etc/systemd/system/*.service "$kf"/etc/systemd/system/*.slice "$r/etc/systemd/system/"
install -m 644 "$kf"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"
# The sandbox image: our preloaded pause, under the local image repository.
sed -i "s#sandbox_image = \"[^\"]*\"#sandbox_image = \"$IMAGE_REPO/pause:$PAUSE_VERSION\"#" "$r/etc/containerd/config.toml"
grep -q "sandbox_image = \"$IMAGE_REPO/pause:$PAUSE_VERSION\"" "$r/etc/containerd/config.toml" ||
  die "could not set containerd's sandbox_image"

# Binaries; runc is our wrapper around Debian's (see runc-wrap).
install -m 755 "$KIND_BIN/containerd" "$KIND_BIN/ctr" "$KIND_BIN/containerd-shim-runc-v2" "$KIND_BIN/crictl" "$r/usr/local/bin/"
mkdir -p "$r/usr/local/sbin"
install -m 755 "$here/runc-wrap" "$r/usr/local/sbin/runc"
install -m 755 "$UPSTREAM_BIN/kubelet" "$UPSTREAM_BIN/kubeadm" "$UPSTREAM_BIN/kubectl" "$r/usr/bin/"
mkdir -p "$r/opt/cni/bin"
for p in host-local loopback ptp portmap bridge; do ln -sf "/usr/lib/cni/$p" "$r/opt/cni/bin/$p"; done
echo "$K8S_VERSION" >"$r/kind/version"

# What kind's base Dockerfile does after copying its files.
if [[ ! -f $r/etc/containerd/cri-base.json ]]; then
  chroot "$r" sh -c 'ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" >/etc/containerd/cri-base.json'
fi
find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/lib/systemd/system/local-fs.target.wants/* \
  "$r"/lib/systemd/system/sockets.target.wants/*udev* "$r"/lib/systemd/system/sockets.target.wants/*initctl* \
  "$r"/lib/systemd/system/basic.target.wants/*
grep -q '^ReadKMsg=no' "$r/etc/systemd/journald.conf" || echo 'ReadKMsg=no' >>"$r/etc/systemd/journald.conf"
ln -sf /lib/systemd/systemd "$r/sbin/init"

install -m 644 "$here/node-units/"*.service "$r/etc/systemd/system/"
install -m 644 "$here/node-units/sysctl-pins" "$r/kind/sysctl-pins"
chroot "$r" systemctl enable -q kubelet.service containerd.service undo-mount-hacks.service \
  kind-preload.service kproxy-sysctl-pins.service
chroot "$r" systemctl mask -q systemd-binfmt.service
