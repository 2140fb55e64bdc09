#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test.sh - the whole test suite, from a fresh machine: install, build, run every suite.
# Hardware suites (dax, cuda) skip with exit 77 where the hardware is absent.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILD_DIR:-build}
"$here/scripts/build.sh" "$builddir"
cd "$here"
meson test -C "$builddir" --no-rebuild --print-errorlogs \
  --suite unit --suite emu --suite dax --suite cuda --suite qemu
