#!/usr/bin/env bash
# Builds the kproxy image, creates a kind cluster without kube-proxy (one
# control-plane, two workers; deploy/kind/cluster.yaml), loads the image into
# it and deploys kproxy in the chosen mode. Running it again rebuilds and
# redeploys, so it also switches modes on an existing cluster.
#
# Usage: deploy/kind-up.sh [--no-build] [iptables|ipvs|userspace]   (default: iptables)
#   --no-build: the image exists already (hack/kind-offline.sh builds it
#   offline, with the same content as deploy/Dockerfile).
# Environment: KIND_CLUSTER_NAME (default kproxy), KPROXY_IMAGE (default
# kproxy:dev), KPROXY_ROLLOUT_TIMEOUT (default 180s). Needs docker, kind and
# kubectl. ipvs mode needs the ip_vs modules loaded on the host (kind nodes
# share the host's kernel).
set -euo pipefail

build=1
if [[ "${1:-}" == --no-build ]]; then
  build=0
  shift
fi
mode="${1:-iptables}"
case "$mode" in
  iptables | ipvs | userspace) ;;
  *)
    echo "usage: $0 [iptables|ipvs|userspace]" >&2
    exit 2
    ;;
esac
cluster="${KIND_CLUSTER_NAME:-kproxy}"
image="${KPROXY_IMAGE:-kproxy:dev}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ctx="kind-${cluster}"

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found in PATH" >&2; exit 1; }
done

if [[ "${build}" == 1 ]]; then
  echo ">>> building ${image}"
  docker build -f "${root}/deploy/Dockerfile" -t "${image}" "${root}"
fi

if ! kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
  echo ">>> creating kind cluster ${cluster}"
  kind create cluster --name "${cluster}" --config "${root}/deploy/kind/cluster.yaml"
fi

echo ">>> loading ${image} into ${cluster}"
kind load docker-image "${image}" --name "${cluster}"

# kproxy must reach the apiserver without a Service (it is what programs
# Services): the control-plane node's name resolves on every kind node.
kubectl --context "${ctx}" -n kube-system create configmap kproxy-apiserver \
  --from-literal=host="${cluster}-control-plane" --from-literal=port=6443 \
  --dry-run=client -o yaml | kubectl --context "${ctx}" apply -f -

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
image_name="${image%:*}"
image_tag="${image##*:}"
if [[ "${image_name}" == "${image}" || "${image_tag}" == */* ]]; then
  image_name="${image}" image_tag="latest"
fi
# kustomize wants relative paths to other kustomizations.
overlay="$(realpath --relative-to="${work}" "${root}/deploy/overlays/${mode}")"
component="$(realpath --relative-to="${work}" "${root}/deploy/components/kind")"
cat >"${work}/kustomization.yaml" <<KUST
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${overlay}
components:
  - ${component}
images:
  - name: kproxy
    newName: ${image_name}
    newTag: ${image_tag}
KUST

echo ">>> deploying kproxy in ${mode} mode"
existed=0
kubectl --context "${ctx}" -n kube-system get daemonset kproxy >/dev/null 2>&1 && existed=1
kubectl --context "${ctx}" apply --server-side --force-conflicts -k "${work}"
if [[ "${existed}" == 1 ]]; then
  # Same tag, new image: restart the pods so they run what was just built.
  kubectl --context "${ctx}" -n kube-system rollout restart daemonset kproxy
fi
kubectl --context "${ctx}" -n kube-system rollout status daemonset kproxy --timeout="${KPROXY_ROLLOUT_TIMEOUT:-180s}"
echo ">>> kproxy (${mode}) is running on every node of ${cluster}"
