#!/usr/bin/env bash
# Runs every test group and adds up their "N passed, N failed" lines.
# A program that crashes, hangs (timeout) or prints no summary counts as one
# failure, so a broken test can never pass silently.
set -u
cd "$(dirname "$0")/.."
LIB="$PWD/libmspace.so"
B=build/tests
total_pass=0 total_fail=0 failed_names=()

run_one() { # name timeout_seconds command...
    local name=$1 limit=$2; shift 2
    local out rc line p f
    printf '%-34s ' "$name"
    out=$(timeout -k 5 "$limit" "$@" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        p=0 f=1
        printf 'no summary (exit %d)\n' "$rc"
        printf '%s\n' "$out" | tail -n 15 | sed 's/^/    | /'
    else
        p=$(printf '%s' "$line" | sed -E 's/(^|.*[^0-9])([0-9]+) passed, [0-9]+ failed.*/\2/')
        f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1 && line="$line (but exit $rc)"
        printf '%s\n' "${line##*: }"
        [ "$f" -gt 0 ] && printf '%s\n' "$out" | grep -E 'FAIL|rror|mspace:' | head -n 20 | sed 's/^/    | /'
    fi
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    [ "$f" -gt 0 ] && failed_names+=("$name")
}

echo "== core unit tests (no preload)"
for t in $B/unit/*; do [ -x "$t" ] && run_one "unit/${t##*/}" 120 "$t"; done

echo "== core unit tests under ASan and UBSan (build/san)"
for t in build/san/tests/unit/*; do [ -x "$t" ] && run_one "unit-san/${t##*/}" 300 "$t"; done

echo "== API, misuse, stress, faults (LD_PRELOAD=libmspace.so)"
for t in $B/api/* $B/misuse/* $B/stress/* $B/faults/*; do
    [ -x "$t" ] || continue
    case $t in *.d|*.o) continue ;; esac
    rel=${t#$B/}
    run_one "$rel" 180 env LD_PRELOAD="$LIB" "$t"
done
[ -x $B/soak/soak ] && run_one "soak/soak (5 s smoke run)" 60 env LD_PRELOAD="$LIB" $B/soak/soak 5

echo "== installed and linked with -lmspace (no preload)"
for t in tests/linked/*.sh; do
    [ -x "$t" ] && run_one "linked/${t##*/}" 120 "$t"
done

echo "== API and misuse under the hardened build (LD_PRELOAD=libmspace-secure.so)"
for t in $B/api/* $B/misuse/* $B/stress/model_random $B/faults/oom $B/faults/limits $B/faults/populate; do
    [ -x "$t" ] || continue
    case $t in *.d|*.o) continue ;; esac
    run_one "secure: ${t#$B/}" 180 env LD_PRELOAD="$PWD/libmspace-secure.so" "$t"
done
run_one "secure: real/python.sh" 300 tests/real/python.sh "$PWD/libmspace-secure.so"

echo "== the shadow model under UBSan (LD_PRELOAD=build/ubsan/libmspace.so)"
run_one "stress/model_random (UBSan)" 180 env LD_PRELOAD="$PWD/build/ubsan/libmspace.so" \
    UBSAN_OPTIONS=print_stacktrace=1 $B/stress/model_random

echo "== fuzzing: 25 s of libFuzzer from an empty corpus, fixed seed"
rm -rf build/fuzz/short-corpus
run_one "fuzz/short" 120 tests/fuzz/fuzz.sh 25 build/fuzz/short-corpus -seed=1

echo "== real programs (LD_PRELOAD=libmspace.so vs plain)"
for t in tests/real/*.sh; do
    [ -x "$t" ] && run_one "real/${t##*/}" 300 "$t" "$LIB"
done

[ ${#failed_names[@]} -gt 0 ] && echo "failing: ${failed_names[*]}"
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
