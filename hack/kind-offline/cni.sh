#!/usr/bin/env bash
# The pod network of the offline kind cluster, in place of kindnetd (whose
# image cannot be had without a registry): on every node a ptp CNI config for
# the node's podCIDR, a route to every other node's podCIDR through that
# node's address (all nodes share the "kind" docker network), and kindnetd's
# masquerade of pod traffic leaving the pod network. Static: nodes added
# later need a rerun.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POD_SUBNET=10.244.0.0/16
mapfile -t nodes < <(kc get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')
for row in "${nodes[@]}"; do
  read -r name cidr ip <<<"$row"
  [[ -n $cidr ]] || die "node $name has no podCIDR yet"
  $DOCKER exec -i "$name" sh -c 'mkdir -p /etc/cni/net.d && cat >/etc/cni/net.d/10-kproxy-static.conflist' <<JSON
{"cniVersion": "0.4.0", "name": "kproxy-static", "plugins": [
  {"type": "ptp", "ipMasq": false, "mtu": 1500,
   "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state", "ranges": [[{"subnet": "$cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  for other in "${nodes[@]}"; do
    read -r oname ocidr oip <<<"$other"
    [[ $oname == "$name" ]] || $DOCKER exec "$name" ip route replace "$ocidr" via "$oip"
  done
  $DOCKER exec "$name" sh -c "iptables -t nat -C POSTROUTING -s $POD_SUBNET ! -d $POD_SUBNET -j MASQUERADE 2>/dev/null ||
    iptables -t nat -A POSTROUTING -s $POD_SUBNET ! -d $POD_SUBNET -j MASQUERADE"
  log "pod network on $name: $cidr (node $ip)"
done
