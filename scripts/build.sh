#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build.sh - install dependencies (setup.sh), configure and build. Usage: scripts/build.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
"$here/scripts/setup.sh" "$builddir"
cd "$here"
# ninja prints compile errors on stdout: quiet on success, shown on failure.
out=$(ninja -C "$builddir" 2>&1) || { echo "$out" | grep -v '^\[' >&2; echo "build: failed" >&2; exit 1; }
echo "build: $builddir ready ($(nproc) cores)" >&2
