#!/usr/bin/env bash
# Runs the libFuzzer target (tests/fuzz/fuzz_malloc.c) under
# LD_PRELOAD=build/fuzz/libmspace.so and reports "fuzz: N passed, N failed"
# with the executions done:
#   1. the fuzzer ran its time with no crash, hang or model failure;
#   2. its allocations, libFuzzer's own included, went through mspace: the
#      file that MSPACE_STATS_FILE asks for was written at exit and counts
#      large blocks, which only the model's inputs make.
# usage: tests/fuzz/fuzz.sh SECONDS CORPUS_DIR [libFuzzer options...]
#   make fuzz   a long run that keeps its corpus in build/fuzz/corpus
#   make test   25 s from an empty corpus with -seed=1 (tests/run.sh)
# A failing input is saved in build/fuzz/crashes/; replay it with
#   LD_PRELOAD=build/fuzz/libmspace.so build/fuzz/fuzz_malloc FILE
set -u
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 SECONDS CORPUS_DIR [libFuzzer options...]" >&2; exit 2; }
seconds=$1 corpus=$2
shift 2
B=build/fuzz
mkdir -p "$corpus" $B/crashes
work=$(mktemp -d /tmp/mspace-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

# -timeout: an input running this long is a hang (a lock never released).
LD_PRELOAD="$PWD/$B/libmspace.so" MSPACE_STATS_FILE="$work/stats.%p" \
    $B/fuzz_malloc -max_total_time="$seconds" -timeout=60 -print_final_stats=1 \
    -artifact_prefix=$B/crashes/ "$@" "$corpus" >"$work/log" 2>&1 &
pid=$!
wait $pid
rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
inputs=$(find "$corpus" -type f | wc -l)
passed=0 failed=0
if [ $rc -eq 0 ] && [ -n "$runs" ] && ! grep -q '^==[0-9]*== ERROR\|^FAIL' "$work/log"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL fuzz: the fuzzer exited with status $rc"
    grep -E '^FAIL model|^SUMMARY|Test unit written|^==[0-9]+== ERROR' "$work/log"
    echo "the end of its output:"
    grep -v '^#[0-9]' "$work/log" | tail -n 30
fi
large=$(sed -n 's/^mspace: large_allocs //p' "$work/stats.$pid" 2>/dev/null)
if [ "${large:-0}" -gt 0 ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL fuzz: no mspace statistics from the fuzzer (pid $pid): was libmspace.so preloaded?"
fi
echo "fuzz: $passed passed, $failed failed (${runs:-0} executions in $seconds s, ${rate:-0}/s, corpus $inputs inputs, mspace made ${large:-0} large blocks)"
[ $failed -eq 0 ]
