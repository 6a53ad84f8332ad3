#!/usr/bin/env bash
# A real kind cluster (1 control plane + 2 workers, no kube-proxy) with kproxy
# as its DaemonSet, on a machine with no container registry: Go module proxy
# and Debian packages only. Everything is built once and cached under
# ~/.cache/kproxy/kind-offline; dockerd runs in a network namespace of its
# own, so nothing changes in the machine's root network namespace.
#
# Usage:
#   hack/kind-offline.sh up [MODE|none]   build what is missing, start dockerd,
#                                         create the cluster, deploy kproxy in
#                                         MODE (iptables; none: no proxy)
#   hack/kind-offline.sh deploy MODE      rebuild the kproxy image from this tree
#                                         and (re)deploy it with deploy/kind-up.sh
#   hack/kind-offline.sh kubectl ARGS...  kubectl against the cluster
#   hack/kind-offline.sh env              the variables tests use to reach it
#   hack/kind-offline.sh down             delete the cluster, stop dockerd,
#                                         remove its namespace and data root
# On a machine with docker and a registry, use deploy/kind-up.sh instead.
# Environment: KIND_CLUSTER_NAME (kproxy), KPROXY_CACHE (~/.cache/kproxy),
# KPROXY_KIND_KEEP=1 keeps a cluster whose `up` failed, for debugging.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kind-offline"
source "$here/lib.sh"
[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, dockerd, chroot)"

install_tools() {
  local missing=() cmd
  declare -A pkgs=([dockerd]=docker.io [debootstrap]=debootstrap [jq]=jq [runc]=runc [ip]=iproute2)
  for cmd in "${!pkgs[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("${pkgs[$cmd]}")
  done
  [[ -x $DOCKER ]] || missing+=(docker.io)
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]} (apt); no service is started"
  # policy-rc.d keeps apt from starting docker in the root network namespace.
  local rc_made=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && rc_made=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
  [[ -z $rc_made ]] || rm -f /usr/sbin/policy-rc.d
}

deploy() {
  local mode="$1"
  step "kproxy image from this tree" "$here/images.sh" kproxy
  step "deploy/kind-up.sh $mode" in_netns env KUBECONFIG="$KUBECONFIG_FILE" PATH="$KIND_BIN:$UPSTREAM_BIN:$PATH" \
    KIND_CLUSTER_NAME="$CLUSTER" "$REPO/deploy/kind-up.sh" --no-build "$mode"
}

up() {
  local mode="${1:-iptables}" start=$SECONDS
  if [[ ${KPROXY_KIND_KEEP:-0} != 1 ]]; then
    trap 'log "up failed: removing what it made (KPROXY_KIND_KEEP=1 keeps it)"; down' ERR
  fi
  log "conditions: commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  step "host tools" install_tools
  step "binaries (cached in $KIND_BIN; tens of minutes on 2 cores the first time)" "$here/build-bins.sh"
  step "dockerd in network namespace $KIND_NETNS" "$here/dockerd.sh" up
  step "node image (Debian bookworm rootfs cached)" "$here/images.sh" node
  step "echo image" "$here/images.sh" echo
  step "kube-proxy $K8S_VERSION image" "$here/images.sh" kube-proxy
  step "kind create cluster $CLUSTER" "$here/cluster.sh" create
  step "pod network" wait_and_cni
  step "test images into the nodes" "$here/cluster.sh" load kproxy.local/echo:dev "kproxy.local/kube-proxy:$K8S_VERSION"
  [[ $mode == none ]] || deploy "$mode"
  step "nodes Ready" kc wait --for=condition=Ready nodes --all --timeout=180s
  trap - ERR
  log "conditions: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  log "cluster $CLUSTER is up in $((SECONDS - start))s; kubectl: hack/kind-offline.sh kubectl get pods -A"
}

# wait_and_cni waits for every node to have its podCIDR, then wires the pods.
wait_and_cni() {
  for _ in $(seq 120); do
    [[ $(kc get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR}{" "}{end}' 2>/dev/null | wc -w) == 3 ]] && break
    sleep 1
  done
  "$here/cni.sh"
}

down() {
  trap - ERR
  if [[ -S $KIND_RUN/docker.sock ]]; then "$here/cluster.sh" delete; fi
  "$here/dockerd.sh" down
}

case "${1:-}" in
  up) shift; up "$@" ;;
  deploy) shift; deploy "${1:?usage: $0 deploy MODE}" ;;
  down) down ;;
  kubectl) shift; kc "$@" ;;
  env)
    echo "KPROXY_KIND_NETNS=$KIND_NETNS"
    echo "KPROXY_KIND_KUBECONFIG=$KUBECONFIG_FILE"
    echo "KPROXY_KIND_DOCKER_HOST=$DOCKER_HOST"
    echo "KPROXY_KIND_CLUSTER=$CLUSTER"
    echo "KPROXY_KIND_BIN=$KIND_BIN"
    ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
