# Shared settings and helpers of hack/kind-offline.sh (sourced, not run).
#
# Everything built is cached under $KIND_CACHE and reused; everything that
# runs (dockerd, its network namespace, its data root) lives under names of
# our own and is removed by `hack/kind-offline.sh down`.

KIND_VERSION=v0.33.0
K8S_VERSION=v1.37.2
CONTAINERD_VERSION=v2.3.4
CRICTL_VERSION=v1.37.0
# kubeadm v1.37's own image versions (cmd/kubeadm/app/constants).
COREDNS_VERSION=v1.14.6
PAUSE_VERSION=3.10.2
ETCD_IMAGE_VERSION=3.7.0-0
# kubeadm's imageRepository: the control plane images are built here and
# preloaded under this local name; nothing is ever pulled.
IMAGE_REPO=kproxy.local/k8s

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KPROXY_CACHE="${KPROXY_CACHE:-$HOME/.cache/kproxy}"
KIND_CACHE="$KPROXY_CACHE/kind-offline"
KIND_BIN="$KIND_CACHE/bin"
UPSTREAM_BIN="$KPROXY_CACHE/upstream-$K8S_VERSION/bin"
KIND_LOGS="$KIND_CACHE/logs"

# The cluster's dockerd: its own network namespace, run dir and data root.
KIND_NETNS="${KPROXY_KIND_NETNS:-kproxy-kind}"
KIND_RUN=/run/kproxy-kind
KIND_DATA=/var/lib/kproxy-kind
export DOCKER_HOST="unix://$KIND_RUN/docker.sock"
# Debian's docker CLI, the same release as the dockerd it talks to.
DOCKER=/usr/bin/docker

CLUSTER="${KIND_CLUSTER_NAME:-kproxy}"
KUBECONFIG_FILE="$KIND_RUN/kubeconfig-$CLUSTER"
NODE_IMAGE="kproxy.local/kind-node:$K8S_VERSION"

mkdir -p "$KIND_BIN" "$KIND_LOGS"

log() { printf '[kind-offline %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# step "what" cmd...: runs cmd, printing what is done and how long it took.
step() {
  local what="$1" start=$SECONDS
  shift
  log ">>> $what"
  "$@"
  log "    done: $what ($((SECONDS - start))s)"
}

# in_netns cmd...: runs cmd in the cluster's network namespace (where kind
# publishes the API server port on 127.0.0.1).
in_netns() { ip netns exec "$KIND_NETNS" "$@"; }

# kc args...: kubectl against the cluster.
kc() { in_netns "$UPSTREAM_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# debian_mirror: the mirror the host's apt uses, so chroots install the same
# packages from the same place.
debian_mirror() {
  local m=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $m && -f /etc/apt/sources.list ]]; then
    m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
  fi
  [[ -n $m ]] || die "cannot find the host's Debian mirror in /etc/apt"
  echo "$m"
}
