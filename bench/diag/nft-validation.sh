#!/bin/bash
# Diagnostic (not a test, not a published figure): how much of a one-Service
# nftables delta is the kernel's validation of the whole table. nf_tables
# validates every chain reachable from the base chains at commit when the
# transaction adds a rule with a dnat (or another expression with a validate
# hook) or a jump/goto verdict; plain set elements and accept verdicts skip it.
#
# It builds, in a network namespace of its own (deleted on exit), a table of
# N service chains with M "numgen ... dnat to" rules each and a verdict map
# jumping to them (upstream's shape without its other chains), then times
# `nft -f` of single deltas, three times each. Nothing is sent; the rules are
# never hit. Usage (root): N=5000 M=10 bench/diag/nft-validation.sh
set -euo pipefail
ns="kpt-nftval-$$"
services=${N:-5000}
endpoints=${M:-10}
table_file=$(mktemp)
trap 'ip netns delete "$ns" 2>/dev/null || true; rm -f "$table_file"' EXIT
ip netns add "$ns"

write_table() {
  echo "table ip t {"
  echo " set plain { type ipv4_addr; }"
  echo " map services { type ipv4_addr . inet_service : verdict; }"
  echo " chain nat-prerouting { type nat hook prerouting priority -100; ip daddr . tcp dport vmap @services; }"
  for s in $(seq 1 "$services"); do
    echo " chain svc$s {"
    for e in $(seq 0 $((endpoints - 1))); do
      echo "  meta l4proto tcp numgen random mod $endpoints $e dnat to 10.244.$((s % 250)).$e:8080"
    done
    echo " }"
  done
  echo "}"
  echo "add element ip t services {"
  for s in $(seq 1 "$services"); do echo " 10.96.$((s / 250)).$((s % 250)) . 80 : goto svc$s,"; done
  echo "}"
}

# timed LABEL NFT-INPUT: seconds one nft -f of the input takes.
timed() {
  local start end
  start=$(date +%s.%N)
  ip netns exec "$ns" nft -f - <<<"$2"
  end=$(date +%s.%N)
  printf '%-45s %.4f s\n' "$1" "$(echo "$end - $start" | bc)"
}

write_table >"$table_file"
timed "load $services x $endpoints" "$(cat "$table_file")"
for i in 1 2 3; do
  timed "set element (no validation)" "add element ip t plain { 192.0.2.$i }"
  timed "verdict map element: accept (no validation)" "add element ip t services { 10.98.0.$i . 80 : accept }"
  timed "new chain, counter rule (no validation)" "add chain ip t plain$i
add rule ip t plain$i counter"
  timed "verdict map element: goto" "add element ip t services { 10.97.0.$i . 80 : goto svc9 }"
  timed "new chain, dnat rule" "add chain ip t dnat$i
add rule ip t dnat$i meta l4proto tcp dnat to 10.0.0.$i:80"
done
