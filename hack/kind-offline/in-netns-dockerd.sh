#!/usr/bin/env bash
# Runs under `ip netns exec` (a private mount namespace with a fresh /sys):
# mounts the host's cgroup hierarchies again, as listed in $1, then execs
# dockerd with the remaining arguments.
set -euo pipefail
mounts="$1"
shift
while read -r fstype options mountpoint; do
  mkdir -p "$mountpoint"
  mount -t "$fstype" -o "$options" "$fstype" "$mountpoint"
done <"$mounts"
exec dockerd "$@"
