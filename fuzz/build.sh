#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build.sh - build the libFuzzer targets (clang, ASan + UBSan + coverage) into fuzz/build/.
#
#   fuzz/build.sh            configure once, then build incrementally
#   FUZZ_BUILD=DIR fuzz/build.sh   another build folder
#   JOBS=N                   parallel compile jobs (default: nproc)
#
# Only the library and the fuzz targets are compiled (no CLI, tests or benchmarks).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/fuzz/build}
jobs=${JOBS:-$(nproc)}
export CC=${CC:-clang} CXX=${CXX:-clang++}

if ! command -v "$CXX" >/dev/null; then
	echo "build.sh: $CXX not found (apt-get install clang libclang-rt-14-dev)" >&2
	exit 2
fi
# libFuzzer's runtime ships in libclang-rt-NN-dev on Debian: check before a long build.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t *, size_t) { return 0; }\n' \
	>"$probe/p.cpp"
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
	cat "$probe/err" >&2
	echo "build.sh: $CXX cannot link -fsanitize=fuzzer (Debian: apt-get install libclang-rt-14-dev)" >&2
	exit 2
fi

san_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined'
if [ ! -f "$build/meson/compile_commands.json" ]; then
	mkdir -p "$build"
	meson setup "$build/meson" "$root" \
		--buildtype=debugoptimized -Db_ndebug=false \
		-Db_sanitize=address,undefined -Db_lundef=false \
		"-Dcpp_args=$san_args" "-Dc_args=$san_args" \
		-Dcuda=disabled -Dtests=disabled -Dbenchmarks=disabled -Dexamples=disabled \
		-Dnuma=disabled -Ddaxctl=disabled -Dpmem2=disabled -Dhwloc=disabled >"$build/meson-setup.log" ||
		{ cat "$build/meson-setup.log" >&2; exit 1; }
else
	# Picks up new library sources (meson regenerates compile_commands.json).
	meson setup --reconfigure "$build/meson" "$root" >"$build/meson-setup.log" 2>&1 ||
		{ cat "$build/meson-setup.log" >&2; exit 1; }
fi
python3 "$root/fuzz/configure.py" "$build/meson" "$build" "$root"
ninja -C "$build" -f fuzz.ninja -j "$jobs"
echo "fuzz targets in $build:"
ls "$build" | grep '^fuzz_' || true
