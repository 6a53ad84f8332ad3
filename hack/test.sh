#!/usr/bin/env bash
# Runs every test of kproxy on a fresh machine of this kind (as root):
#   1. installs what is missing (iptables, ipset, conntrack, iproute2; qemu
#      and a Debian kernel for the IPVS VM tests),
#   2. builds etcd, kube-apiserver, kubectl and upstream kube-proxy v1.37.2
#      from the Go module proxy (cached under ~/.cache/kproxy),
#   3. checks gofmt and go vet,
#   4. runs every Go test: pure (golden files), kernel (network namespaces,
#      real traffic), control plane (real apiserver), IPVS (qemu VM), and the
#      benchmark harness' small-N smoke run,
#   5. runs the in-cluster tests in a real kind cluster built offline
#      (hack/test-kind.sh),
#   6. runs each fuzz target for a short while.
# With KPROXY_REQUIRE_KERNEL=1 (as .ci/run sets) a test that would skip for
# lack of root, kernel features or binaries fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "installing host tools"
hack/install-deps.sh
if [[ -x hack/ipvs-vm/setup.sh ]]; then
  hack/ipvs-vm/setup.sh
fi
step "building the upstream control plane and kube-proxy"
hack/build-upstream.sh

step "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [[ -n $unformatted ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

step "go test ./..."
# -count=1: never report cached results; kernel tests must really run.
log=$(mktemp /tmp/kproxy-test.XXXX.log)
set +e
go test -count=1 -timeout 70m ./... 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
  echo "go test failed (exit $status); failing tests:"
  grep -E '^(--- FAIL|FAIL)' "$log" || true
  exit "$status"
fi

step "in-cluster tests: a real kind cluster (hack/test-kind.sh)"
hack/test-kind.sh

step "fuzzing (short runs)"
while read -r pkg target; do
  [[ -z $pkg ]] && continue
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="${KPROXY_FUZZTIME:-15s}" "$pkg"
done < <(grep -rlE '^func Fuzz' --include='*_test.go' . | while read -r f; do
  for t in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$f" | awk '{print $2}'); do echo "./$(dirname "${f#./}") $t"; done
done | sort -u)

step "all tests passed"
