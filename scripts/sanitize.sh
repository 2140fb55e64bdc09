#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sanitize.sh - the sanitizer builds CI runs after the main suites:
#   asan: AddressSanitizer + UndefinedBehaviorSanitizer over the unit and emu suites
#   tsan: ThreadSanitizer over the concurrent parts (agent pipeline, gather threads, import copy threads,
#         readers racing a writer)
# Each gets its own build directory; CUDA, benchmarks and examples are left out.
# Usage: scripts/sanitize.sh [asan|tsan|all]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
which=${1:-all}
# -O1 with line tables only (-g1): reports keep file:line stacks, and g++ compiles the
# sanitized tree in about 2/3 of the time full debug info takes.
common=(-Doptimization=1 -Ddebug=false -Db_ndebug=false -Dc_args=-g1 -Dcpp_args=-g1 -Dcuda=disabled -Dbenchmarks=disabled
  -Dexamples=disabled)

# ninja prints compile errors on stdout: keep it quiet on success, show it on failure.
build() {
  local out
  out=$(ninja "$@" 2>&1) || { echo "$out" | grep -v '^\[' >&2; echo "sanitize: build failed: ninja $*" >&2; exit 1; }
}

configure() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    out=$(meson setup "$dir" "${common[@]}" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  fi
}

if [ "$which" = asan ] || [ "$which" = all ]; then
  configure build-asan -Db_sanitize=address,undefined -Db_lundef=false
  build -C build-asan
  # halt_on_error: a UBSan report fails the test instead of scrolling by.
  # handle_segv/handle_sigbus=0: the SIGBUS guard and the read-only-mapping tests need
  # the real signals. The install test links an uninstrumented program: left out.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:handle_segv=0:handle_sigbus=0:allow_user_segv_handler=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --no-rebuild --print-errorlogs --suite unit --suite emu \
      --no-suite qemu --no-suite install --timeout-multiplier 3
fi

if [ "$which" = tsan ] || [ "$which" = all ]; then
  configure build-tsan -Db_sanitize=thread -Db_lundef=false
  build -C build-tsan tests/test_agent_rows tests/test_agent_cache tests/test_agent_capi tests/test_gather_engine \
    tests/test_unit_import_copy \
    tests/test_emu_concurrent pool_manager/engrampool
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    meson test -C build-tsan --no-rebuild --print-errorlogs --timeout-multiplier 4 \
      agent_rows agent_cache agent_capi gather_engine emu_concurrent unit_import_copy
fi
