#!/usr/bin/env bash
# Fetches Debian's haproxy (and the two libraries it needs beyond a base
# system) into ${KPROXY_CACHE:-$HOME/.cache/kproxy}/haproxy/ without
# installing the package: no service is started and nothing outside the
# cache changes. The userspace benchmark (bench/userspace) runs it side by
# side with kproxy's userspace proxy as the reference TCP proxy.
# Prints the path of a wrapper that runs it. A second run is instant.
set -euo pipefail

dir="${KPROXY_CACHE:-$HOME/.cache/kproxy}/haproxy"
wrapper="$dir/haproxy"
if [[ -x "$wrapper" ]] && "$wrapper" -v >/dev/null 2>&1; then
  echo "$wrapper"
  exit 0
fi
mkdir -p "$dir/debs" "$dir/root"
exec 9>"$dir/.lock"
flock 9
cd "$dir/debs"
if ! ls haproxy_*.deb >/dev/null 2>&1; then
  echo "fetch-haproxy: downloading haproxy from Debian" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  # apt-get download runs as _apt when it can; the cache dir may not be
  # writable for it, which only makes apt print a warning.
  apt-get download -qq haproxy liblua5.3-0 libopentracing-c-wrapper0 libopentracing1 2>&1 | grep -v '^W:' >&2 || true
fi
for deb in *.deb; do
  dpkg-deb -x "$deb" "$dir/root"
done
libdir="$(dirname "$(find "$dir/root" -name 'liblua5.3.so.0' | head -1)")"
cat >"$wrapper" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$libdir" exec "$dir/root/usr/sbin/haproxy" "\$@"
WRAP
chmod +x "$wrapper"
"$wrapper" -v >/dev/null
echo "$wrapper"
