# Sourced by the GPU check scripts (scripts/gpu-check, scripts/gpu-check-multi):
# with DEBS_DIR=DIR, the Debian .deb files there (e.g. libjansson-dev,
# libpcre2-dev and their libraries) unpacked into a private prefix that
# pkg-config and the loader then find, for GPU machines whose image lacks
# those -dev packages and has no network. Without DEBS_DIR, nothing.
# shellcheck shell=bash
if [ -n "${DEBS_DIR:-}" ]; then
    deps=/tmp/voltbatch-deps
    for f in "$DEBS_DIR"/*.deb; do dpkg -x "$f" "$deps"; done
    sed -i "s|^prefix=/usr\$|prefix=$deps/usr|" "$deps"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
    export PKG_CONFIG_PATH=$deps/usr/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
