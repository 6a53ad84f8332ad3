#!/usr/bin/env bash
# Starts (up) or stops (down) the dockerd of the offline kind cluster inside a
# network namespace of its own ($KIND_NETNS), so its bridges, addresses and
# iptables rules never exist in the machine's root network namespace. Its
# data root and run dir are ours alone and removed by down.
#
# Usage: dockerd.sh up|down
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The docker network the kind nodes share: links between our namespaces use
# 198.51.100.0/24, an address block no real network uses.
KIND_SUBNET=198.51.100.0/24
KIND_GATEWAY=198.51.100.1

running() { [[ -f $KIND_RUN/dockerd.pid ]] && kill -0 "$(cat "$KIND_RUN/dockerd.pid")" 2>/dev/null; }

# cgroup_mounts: the host's mounts under /sys/fs/cgroup as "fstype options
# mountpoint" lines (cgroup v1, hybrid or v2 alike). `ip netns exec` mounts a
# fresh /sys, which hides them, and dockerd needs them.
cgroup_mounts() {
  awk '$5 ~ "^/sys/fs/cgroup" { for (i = 7; $i != "-"; i++); print $(i+1), $(i+3), $5 }' /proc/self/mountinfo
}

up() {
  running && { log "dockerd is already running (pid $(cat "$KIND_RUN/dockerd.pid"))"; return 0; }
  mkdir -p "$KIND_RUN" "$KIND_DATA"
  # dockerd creates /lib/modules for kind's bind mount when the host has none;
  # down removes it again.
  [[ -e /lib/modules ]] || touch "$KIND_RUN/lib-modules-absent"
  ip netns list | grep -qw "$KIND_NETNS" || ip netns add "$KIND_NETNS"
  in_netns ip link set lo up
  cgroup_mounts >"$KIND_RUN/cgroup-mounts"
  # nohup: dockerd outlives this script; down stops it by its pid file.
  nohup ip netns exec "$KIND_NETNS" "$here/in-netns-dockerd.sh" "$KIND_RUN/cgroup-mounts" \
    --data-root "$KIND_DATA/docker" --exec-root "$KIND_RUN/exec" \
    --pidfile "$KIND_RUN/dockerd.pid" -H "$DOCKER_HOST" \
    --storage-driver overlay2 --bridge none --dns "$KIND_GATEWAY" \
    --add-runtime kproxy-runc="$here/runc-wrap" --default-runtime kproxy-runc \
    >"$KIND_LOGS/dockerd.log" 2>&1 &
  for _ in $(seq 60); do
    if $DOCKER info >/dev/null 2>&1; then
      log "dockerd up in netns $KIND_NETNS (pid $(cat "$KIND_RUN/dockerd.pid"))"
      ensure_kind_network
      return 0
    fi
    sleep 1
  done
  tail -20 "$KIND_LOGS/dockerd.log" >&2
  die "dockerd did not start (log: $KIND_LOGS/dockerd.log)"
}

# ensure_kind_network creates the "kind" network before kind does, so the
# nodes get addresses from our block (kind uses an existing network as is).
ensure_kind_network() {
  $DOCKER network inspect kind >/dev/null 2>&1 && return 0
  $DOCKER network create kind --driver bridge --subnet "$KIND_SUBNET" --gateway "$KIND_GATEWAY" \
    -o com.docker.network.bridge.enable_ip_masquerade=true \
    -o com.docker.network.driver.mtu=1500 >/dev/null
}

down() {
  if running; then
    local pid
    pid=$(cat "$KIND_RUN/dockerd.pid")
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { log "dockerd $pid did not stop; killing it"; kill -9 "$pid"; }
  fi
  # Container shims of dockerd's containerd may outlive it: they are ours
  # (their command line names our exec root), and are ended by pid.
  local shims
  shims=$(pgrep -f -- "$KIND_RUN/exec" || true)
  [[ -z $shims ]] || kill -9 $shims 2>/dev/null || true
  if ip netns list | grep -qw "$KIND_NETNS"; then ip netns del "$KIND_NETNS"; fi
  if [[ -e $KIND_RUN/lib-modules-absent ]]; then rmdir /lib/modules 2>/dev/null || true; fi
  rm -rf "$KIND_DATA" "$KIND_RUN"
  log "dockerd stopped, netns $KIND_NETNS and $KIND_DATA removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
