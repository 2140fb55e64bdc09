#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh - run every fuzz target for N seconds (default 15: four targets ~ 60 s); non-zero on any crash.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      e.g. fuzz/run.sh 600 fuzz_pool_open
#
# Each target starts from its committed seeds (fuzz/corpus/<name>/, read only) plus a
# work corpus (FUZZ_WORK, default a temporary folder; keep one to resume longer
# runs). Before fuzzing, the reproducers in fuzz/crashes/<name>/ are replayed as
# regression inputs (FUZZ_SKIP_CRASHES=1 skips them). Crash inputs go to
# FUZZ_ARTIFACTS/<target>/ (default fuzz/build/artifacts). FUZZ_NO_BUILD=1 skips
# fuzz/build.sh; FUZZ_ARGS adds libFuzzer flags (e.g. "-jobs=4 -workers=4").
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/fuzz/build}
secs=${1:-15}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_pool_open fuzz_model fuzz_npy fuzz_safetensors)

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
	FUZZ_BUILD=$build "$root/fuzz/build.sh" >"${TMPDIR:-/tmp}/engrampool-fuzz-build.log" 2>&1 ||
		{ cat "${TMPDIR:-/tmp}/engrampool-fuzz-build.log" >&2; echo "run.sh: build failed" >&2; exit 2; }
fi

work=${FUZZ_WORK:-}
cleanup_work=0
if [ -z "$work" ]; then
	work=$(mktemp -d)
	cleanup_work=1
fi
artifacts=${FUZZ_ARTIFACTS:-$build/artifacts}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
summary=()
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	bin=$build/$t
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is missing" >&2
		failed+=("$t (missing)")
		continue
	fi
	mkdir -p "$work/$name" "$artifacts/$t"
	log=$work/$t.log

	# Regression: every committed reproducer must now pass.
	if [ "${FUZZ_SKIP_CRASHES:-0}" != 1 ] && [ -d "$root/fuzz/crashes/$t" ] &&
		[ -n "$(ls -A "$root/fuzz/crashes/$t" 2>/dev/null | grep -v '\.md$')" ]; then
		mapfile -t repro < <(find "$root/fuzz/crashes/$t" -type f ! -name '*.md' | sort)
		if ! "$bin" -timeout=10 -rss_limit_mb=2048 "${repro[@]}" >"$log.repro" 2>&1; then
			echo "== $t: a committed reproducer still fails (fuzz/crashes/$t):" >&2
			tail -40 "$log.repro" >&2
			failed+=("$t (reproducer)")
			summary+=("$(printf '%-18s reproducer in fuzz/crashes/%s fails' "$t" "$t")")
			continue
		fi
	fi

	# shellcheck disable=SC2086
	timeout -k 10 $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts/$t/" ${FUZZ_ARGS:-} \
		"$work/$name" "$root/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
	corp=$(find "$work/$name" -type f | wc -l)
	line=$(printf '%-18s %4ss  %9s execs  cov %-6s  new corpus %s' "$t" "$secs" "$execs" "${cov:-?}" "$corp")
	if [ $rc -ne 0 ]; then
		line="$line  FAILED (exit $rc)"
		failed+=("$t")
		echo "== $t failed; the end of its log ($log):" >&2
		grep -E 'ERROR|SUMMARY|invariant|fuzz_|Test unit written|runtime error|deadly signal|timeout' "$log" | head -20 >&2
		tail -30 "$log" >&2
	fi
	summary+=("$line")
done

echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
[ $cleanup_work = 1 ] && rm -rf "$work"
if [ ${#failed[@]} -ne 0 ]; then
	echo "run.sh: failures: ${failed[*]} (inputs under $artifacts)" >&2
	exit 1
fi
echo "run.sh: no crashes"
