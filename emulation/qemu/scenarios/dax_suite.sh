#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dax_suite.sh - in the guest: the project's `dax` meson suite against /dev/dax0.0, then stat.
# Usage: dax_suite.sh BUILD_ROOT TESTS_SH. TESTS_SH is the suite as written on the host by
# suite_script.py (meson itself starts too slowly under TCG). A skip counts as a failure.
set -euo pipefail
BUILD=$1
source "$(dirname "$0")/guest_lib.sh"
daxctl list
say "dax suite on $DEV"
source "$2"
[ "$EP_FAILED" = 0 ] || fail "$EP_FAILED dax test(s) failed"
[ "$EP_SKIPPED" = 0 ] || fail "$EP_SKIPPED dax test(s) skipped although $DEV exists"
[ "$EP_PASSED" -gt 0 ] || fail "no dax test ran"
"$EP" stat "dax:$DEV" | tee "${TMPDIR:-/tmp}/stat.txt"
grep -q "^dax region  $(basename "$DEV") in region" "${TMPDIR:-/tmp}/stat.txt" || fail "stat does not show $DEV as a dax region"
say "dax suite: $EP_PASSED tests passed on $DEV"
