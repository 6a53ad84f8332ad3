#!/usr/bin/env bash
# setup.sh — prepare the throwaway qemu VM the IPVS kernel tests run in.
#
# Installs qemu-system-x86, busybox-static, kmod, cpio (apt), downloads (never
# installs) Debian's linux-image-cloud-amd64 kernel package, and builds under
# ${KPROXY_CACHE:-~/.cache/kproxy}/ipvs-vm/:
#   vmlinuz        the guest kernel
#   base.cpio.gz   busybox + the kernel modules IPVS tests need + the host's
#                  iproute2, iptables (nft) and ipset with their libraries
#   VERSION        kernel version; the build is skipped when it is current
# Idempotent; about 30 s the first time (apt), instant afterwards.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KPROXY_CACHE:-$HOME/.cache/kproxy}/ipvs-vm
mkdir -p "$CACHE/debs"
# Concurrent runs (two test packages, two checkouts) wait for each other:
# one's rm -rf of kroot would pull files from under the other's copy.
exec 9>"$CACHE/.lock"
flock 9
sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v depmod >/dev/null || [[ -x /usr/sbin/depmod ]] || need+=(kmod)
command -v cpio >/dev/null || need+=(cpio)
command -v ip >/dev/null || [[ -x /usr/sbin/ip ]] || need+=(iproute2)
[[ -x /usr/sbin/xtables-nft-multi ]] || need+=(iptables)
[[ -x /usr/sbin/ipset ]] || need+=(ipset)
if ((${#need[@]})); then
  echo "ipvs-vm: apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin

# The kernel ABI number changes with security updates: resolve it each time,
# but only download when it changed.
KPKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
if [[ -z $KPKG ]]; then
  $sudo apt-get update -qq >/dev/null
  KPKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
fi
STAMP="$KPKG $(sha256sum "$HERE/setup.sh" "$HERE/init" "$HERE/modules.txt" | sha256sum | cut -c1-12)"
if [[ -f $CACHE/VERSION && $(cat "$CACHE/VERSION") == "$STAMP" && -f $CACHE/base.cpio.gz ]]; then
  exit 0
fi
echo "ipvs-vm: building for $KPKG" >&2
( cd "$CACHE/debs" && ls "$KPKG"_*.deb >/dev/null 2>&1 || apt-get download "$KPKG" 2>/dev/null )
rm -rf "$CACHE/kroot" && mkdir -p "$CACHE/kroot"
dpkg-deb -x "$CACHE/debs/$KPKG"_*.deb "$CACHE/kroot"
V=$(ls "$CACHE/kroot/lib/modules" | head -1)
depmod -b "$CACHE/kroot" "$V"
cp "$CACHE/kroot/boot/vmlinuz-$V" "$CACHE/vmlinuz"

STAGE=$(mktemp -d "$CACHE/stage.XXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,proc,sys,dev,run,tmp,mnt,etc,root,lib/modules/$V}
ln -s ../run "$STAGE/var" 2>/dev/null || true
rm -f "$STAGE/var"; mkdir -p "$STAGE/var"; ln -s ../run "$STAGE/var/run"

# Host tools the tests use (real iproute2 for 'ip netns', iptables-nft, ipset).
TOOLS=(/usr/sbin/ip /usr/sbin/xtables-nft-multi /usr/sbin/ipset /usr/bin/nsenter)
copy_with_libs() {
  local f=$1 lib
  mkdir -p "$STAGE$(dirname "$f")"; cp -L "$f" "$STAGE$f"
  for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
    [[ -e $STAGE$lib ]] && continue
    mkdir -p "$STAGE$(dirname "$lib")"; cp -L "$lib" "$STAGE$lib"
  done
}
for t in "${TOOLS[@]}"; do [[ -e $t ]] && copy_with_libs "$t"; done
XT=/usr/lib/x86_64-linux-gnu/xtables
for so in "$XT"/*.so; do copy_with_libs "$so"; done

# busybox applets, except where a real tool was copied.
cp /bin/busybox "$STAGE/bin/busybox"
for p in $(/bin/busybox --list-full); do
  [[ -e $STAGE/$p || -L $STAGE/$p ]] || ln -s /bin/busybox "$STAGE/$p"
done
for n in ip nsenter; do
  for d in bin sbin usr/bin; do [[ -L $STAGE/$d/$n ]] && rm -f "$STAGE/$d/$n"; done
done
[[ -e $STAGE/usr/bin/nsenter ]] || ln -s /bin/busybox "$STAGE/usr/bin/nsenter"
for n in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
  for d in bin sbin usr/bin; do rm -f "$STAGE/$d/$n"; done
  ln -sf xtables-nft-multi "$STAGE/usr/sbin/$n"
done

# Modules, in dependency order (modprobe on the host resolves them).
: > "$STAGE/etc/modules.order.ipvsvm"
missing=()
while read -r m; do
  [[ -z $m || $m == \#* ]] && continue
  if ! deps=$(modprobe -d "$CACHE/kroot" -S "$V" --show-depends "$m" 2>/dev/null); then missing+=("$m"); continue; fi
  while read -r kw path _; do
    [[ $kw == insmod ]] || continue
    rel=${path#"$CACHE/kroot/lib/modules/$V/"}
    if [[ ! -e $STAGE/lib/modules/$V/$rel ]]; then
      mkdir -p "$STAGE/lib/modules/$V/$(dirname "$rel")"
      cp "$path" "$STAGE/lib/modules/$V/$rel"
      echo "$rel" >> "$STAGE/etc/modules.order.ipvsvm"
    fi
  done <<< "$deps"
done < <(sed 's/#.*//' "$HERE/modules.txt" | tr ' ' '\n')
cp "$CACHE/kroot/lib/modules/$V"/modules.{builtin,builtin.modinfo,order} "$STAGE/lib/modules/$V/"
depmod -b "$STAGE" "$V"
((${#missing[@]})) && echo "ipvs-vm: not in this kernel: ${missing[*]}" >&2

cp "$HERE/init" "$STAGE/init"; chmod 755 "$STAGE/init"
echo "root:x:0:0:root:/root:/bin/sh" > "$STAGE/etc/passwd"
printf 'hosts: files\n' > "$STAGE/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' > "$STAGE/etc/hosts"
# ipset (and iptables) resolve protocol names ("tcp") through /etc/protocols.
for f in /etc/protocols /etc/services; do [[ -f $f ]] && cp "$f" "$STAGE$f"; done
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -1) > "$CACHE/base.cpio.gz.tmp"
mv "$CACHE/base.cpio.gz.tmp" "$CACHE/base.cpio.gz"
rm -rf "$CACHE/kroot"
echo "$STAMP" > "$CACHE/VERSION"
echo "ipvs-vm: built $CACHE/base.cpio.gz ($(du -h "$CACHE/base.cpio.gz" | cut -f1), $(wc -l < "$STAGE/etc/modules.order.ipvsvm") modules) for $V" >&2
