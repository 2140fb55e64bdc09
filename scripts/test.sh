#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test.sh - the whole test suite, from a fresh machine: install, build, run every suite.
# Hardware suites (dax, cuda) skip with exit 77 where the hardware is absent.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILD_DIR:-build}
"$here/scripts/build.sh" "$builddir"
cd "$here"
start=$(date +%s)
meson test -C "$builddir" --no-rebuild --print-errorlogs \
  --suite unit --suite emu --suite dax --suite cuda --suite qemu
echo "test: main suites passed in $(( $(date +%s) - start )) s" >&2

# Sanitizers (ASan+UBSan over unit+emu, TSan over the concurrent parts) and a short
# libFuzzer run over the parsers; EP_QUICK=1 skips both (local iteration).
if [ "${EP_QUICK:-0}" != 1 ]; then
  start=$(date +%s)
  "$here/scripts/sanitize.sh" all
  echo "test: sanitizer builds passed in $(( $(date +%s) - start )) s" >&2
  start=$(date +%s)
  "$here/fuzz/run.sh" "${EP_FUZZ_SECONDS:-15}"
  echo "test: fuzz smoke run passed in $(( $(date +%s) - start )) s" >&2
fi
