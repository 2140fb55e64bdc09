#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# install_and_link.sh - `meson install` into a scratch prefix, then build an
# out-of-tree C program against it with pkg-config only, and run it.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --destdir "$tmp/root" >/dev/null
pc=$(find "$tmp/root" -name engrampool.pc | head -1)
[ -n "$pc" ] || { echo "engrampool.pc was not installed"; exit 1; }
hdr=$(find "$tmp/root" -path '*include/engrampool/engrampool.h' | head -1)
[ -n "$hdr" ] || { echo "engrampool.h was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR=$tmp/root
flags=$(pkg-config --cflags --libs engrampool)
echo "pkg-config engrampool: $flags"
cc -std=c11 -Wall -Werror "$src/consumer.c" $flags -o "$tmp/consumer"
libdir=$(dirname "$(find "$tmp/root" -name "libengrampool.so.0" | head -1)")
LD_LIBRARY_PATH=$libdir "$tmp/consumer" "file:$tmp/pool.raw"
# Only the C ABI is exported: internal C++ symbols stay hidden.
so=$(ls "$libdir"/libengrampool.so.* | head -1)
if nm -D --defined-only "$so" | grep -q ' T _ZN10engrampool'; then
  echo "internal C++ symbols are exported from $so"; exit 1
fi
nm -D --defined-only "$so" | grep -q ' T ep_pool_open' || { echo "ep_pool_open not exported"; exit 1; }
echo "install + pkg-config link: ok"
