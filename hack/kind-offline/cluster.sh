#!/usr/bin/env bash
# Creates (create), loads images into (load) or deletes (delete) the kind
# cluster on the namespaced dockerd: deploy/kind/cluster.yaml (1 control
# plane, 2 workers, no kube-proxy) plus what this machine needs, written to
# $KIND_RUN.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PATH="$KIND_BIN:$PATH"
ln -sf "$DOCKER" "$KIND_BIN/docker"

# config: the user's cluster config, and
#  - disableDefaultCNI: kindnetd's image needs a registry; cni.sh stands in;
#  - imageRepository: the preloaded control plane images' local name;
#  - failCgroupV1: false on a cgroup v1 host (kubelet >= 1.35 refuses v1).
config() {
  local out="$KIND_RUN/cluster.yaml"
  sed 's/^\(  serviceSubnet: .*\)$/\1\n  disableDefaultCNI: true/' "$REPO/deploy/kind/cluster.yaml" >"$out"
  grep -q 'disableDefaultCNI: true' "$out" || die "could not add disableDefaultCNI to $out"
  cat >>"$out" <<YAML
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    imageRepository: $IMAGE_REPO
YAML
  if [[ $(stat -fc %T /sys/fs/cgroup) != cgroup2fs ]]; then
    log "cgroup v1 host: kubelet runs with failCgroupV1: false"
    cat >>"$out" <<'YAML'
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
YAML
  fi
  echo "$out"
}

case "${1:-}" in
  create)
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
      log "cluster $CLUSTER exists"
    else
      kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --config "$(config)" \
        --kubeconfig "$KUBECONFIG_FILE" --wait 0s >"$KIND_LOGS/kind-create.log" 2>&1 ||
        { tail -30 "$KIND_LOGS/kind-create.log" >&2; die "kind create cluster failed (log: $KIND_LOGS/kind-create.log)"; }
    fi
    ;;
  load) # load IMAGE...: images of the namespaced dockerd into every node
    shift
    kind load docker-image --name "$CLUSTER" "$@" >/dev/null
    ;;
  delete)
    kind delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 create|load IMAGE...|delete" >&2; exit 2 ;;
esac
