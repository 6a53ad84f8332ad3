#!/usr/bin/env bash
# Installs the host tools the kernel tests need (Debian/Ubuntu), only if missing.
# Idempotent and quiet: does nothing (and runs no apt-get) when everything is present.
set -euo pipefail

# command -> Debian package
declare -A pkgs=(
  [ip]=iproute2
  [iptables]=iptables
  [iptables-restore]=iptables
  [ipset]=ipset
  [conntrack]=conntrack
  [nft]=nftables
  [curl]=curl
)

missing=()
for cmd in "${!pkgs[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! [[ -x "/usr/sbin/$cmd" || -x "/sbin/$cmd" ]]; then
    missing+=("${pkgs[$cmd]}")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
