# shellcheck shell=bash
# Shared helper for tests/real/*.sh; sourced, never run on its own.
#
# Each real-program test runs the same commands twice: "plain" (glibc malloc,
# LD_PRELOAD removed) and "mspace" (LD_PRELOAD=<libmspace.so>, with
# MSPACE_STATS_FILE so every process writes its counters at exit). It then
# compares exit codes and outputs, and checks that mspace really served the
# run (os_maps >= 1 in at least one stats file). Every check prints one line,
# "ok   ..." or "FAIL ...", and real_end prints "<name>: N passed, N failed".
#
#   real_begin NAME "$@"         parse the library argument, make $REAL_TMP
#   need PROG...                 fail (and say so) if a program is missing
#   both STEP CMD...             run CMD plain, then under mspace, then
#                                check_step STEP
#   run_in MODE STEP CMD...      one run; stdout -> $REAL_TMP/MODE/STEP.out,
#                                stderr -> .err, exit code -> .rc
#   check_step STEP              exit codes, stdout and mspace stats of STEP
#   same_file DESC FILE1 FILE2   byte comparison of two artifacts
#   pass MSG / fail MSG [FILE]   record a check (FILE: tail shown as detail)
#   real_end                     print the summary and exit
#
# In CMD, the word part @MODE@ becomes "plain" or "mspace", so each mode can
# write to its own directory ($REAL_TMP/plain, $REAL_TMP/mspace). Stdin is
# /dev/null unless REAL_STDIN names a file. Every command runs under
# `timeout $REAL_STEP_TIMEOUT` (default 150 s) so a hang fails one step
# instead of the whole script.

REAL_PASS=0
REAL_FAIL=0
REAL_STEP_TIMEOUT=${REAL_STEP_TIMEOUT:-150}

# Microseconds since the epoch (bash 5).
_real_now() { local t=$EPOCHREALTIME; printf '%s' "${t/[.,]/}"; }

# Seconds with one decimal from a microsecond count.
_real_secs() { printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

pass() { REAL_PASS=$((REAL_PASS + 1)); printf '  ok   %s\n' "$1"; }

fail() {
    REAL_FAIL=$((REAL_FAIL + 1))
    printf '  FAIL %s\n' "$1"
    if [ $# -ge 2 ] && [ -s "$2" ]; then
        tail -n "${3:-10}" "$2" | cut -c1-200 | sed 's/^/       | /'
    fi
}

real_begin() {
    REAL_NAME=$1
    REAL_LIB=${2:-}
    REAL_START=$(_real_now)
    REAL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mspace-real-$REAL_NAME.XXXXXX") || {
        echo "FAIL $REAL_NAME: mktemp -d failed"
        echo "$REAL_NAME: 0 passed, 1 failed"
        exit 1
    }
    trap 'rm -rf "$REAL_TMP"' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    mkdir -p "$REAL_TMP/plain" "$REAL_TMP/mspace" "$REAL_TMP/stats"
    # Same locale and zone for both runs; no stray allocator settings.
    export LC_ALL=C TZ=UTC
    unset MSPACE_STATS MSPACE_STATS_FILE
    echo "$REAL_NAME: plain vs LD_PRELOAD=${REAL_LIB:-?} (work dir $REAL_TMP)"
    if [ -z "$REAL_LIB" ]; then
        fail "usage: $0 /abs/path/to/libmspace.so"
        real_end
    fi
    case $REAL_LIB in /*) ;; *) REAL_LIB=$PWD/$REAL_LIB ;; esac
    if [ ! -f "$REAL_LIB" ]; then
        fail "library not found: $REAL_LIB (build it with make)"
        real_end
    fi
}

# need PROG...: every program must be on PATH; a missing one is a failure,
# never a silent skip. Returns 1 if any is missing.
need() {
    local p missing=()
    for p in "$@"; do
        command -v "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    fail "missing program(s): ${missing[*]} (scripts/deps.sh --install should have installed them)"
    return 1
}

run_in() {
    local mode=$1 step=$2; shift 2
    local args=("${@//@MODE@/$mode}") base=$REAL_TMP/$mode/$step stats=$REAL_TMP/stats/$step
    local envv t0 rc
    if [ "$mode" = mspace ]; then
        rm -rf "$stats" && mkdir -p "$stats"
        envv=(env LD_PRELOAD="$REAL_LIB" MSPACE_STATS_FILE="$stats/stats.%p")
    else
        envv=(env -u LD_PRELOAD)
    fi
    t0=$(_real_now)
    timeout -k 5 "$REAL_STEP_TIMEOUT" "${envv[@]}" "${args[@]}" \
        <"${REAL_STDIN:-/dev/null}" >"$base.out" 2>"$base.err"
    rc=$?
    echo "$rc" >"$base.rc"
    echo $(($(_real_now) - t0)) >"$base.us"
    return "$rc"
}

both() {
    local step=$1; shift
    run_in plain "$step" "$@"
    run_in mspace "$step" "$@"
    check_step "$step"
}

# "exit 139 (SIGSEGV)" style text for an exit code.
_real_status() {
    local rc=$1 sig
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        printf 'exit %d (timed out after %ss or killed)' "$rc" "$REAL_STEP_TIMEOUT"
    elif [ "$rc" -gt 128 ] && sig=$(kill -l $((rc - 128)) 2>/dev/null); then
        printf 'exit %d (SIG%s)' "$rc" "$sig"
    else
        printf 'exit %d' "$rc"
    fi
}

check_step() {
    local step=$1 p=$REAL_TMP/plain/$1 m=$REAL_TMP/mspace/$1
    local prc mrc times
    prc=$(cat "$p.rc" 2>/dev/null || echo missing)
    mrc=$(cat "$m.rc" 2>/dev/null || echo missing)
    times="plain $(_real_secs "$(cat "$p.us")")s, mspace $(_real_secs "$(cat "$m.us")")s"
    if [ "$prc" != 0 ]; then
        fail "$step: the plain run failed ($(_real_status "$prc")): test setup problem, not mspace" "$p.err"
    elif grep -q 'cannot be preloaded' "$m.err"; then
        fail "$step: the dynamic loader could not preload $REAL_LIB" "$m.err"
    elif [ "$mrc" != 0 ]; then
        fail "$step: $(_real_status "$mrc") under mspace, exit 0 plain ($times)$([ -s "$m.err" ] && echo "; mspace stderr:")" "$m.err" 15
    elif ! cmp -s "$p.out" "$m.out"; then
        fail "$step: output differs under mspace ($(wc -c <"$p.out") bytes plain, $(wc -c <"$m.out") mspace)"
        if [ "$(wc -c <"$p.out")" -lt 20000000 ]; then
            diff "$p.out" "$m.out" | head -n 12 | cut -c1-200 | sed 's/^/       | /'
        else
            cmp "$p.out" "$m.out" 2>&1 | sed 's/^/       | /'
        fi
    else
        pass "$step: same output, exit 0 ($times)"
    fi
    check_stats "$step"
}

# check_stats STEP: some process of the mspace run wrote os_maps >= 1.
check_stats() {
    local step=$1 dir=$REAL_TMP/stats/$1 files n used max heaps
    files=("$dir"/stats.*)
    if [ ! -e "${files[0]}" ]; then
        fail "$step: no stats file in the mspace run (was libmspace.so loaded? does it honour MSPACE_STATS_FILE?)"
        return
    fi
    n=${#files[@]}
    read -r used max heaps < <(awk '$1 == "mspace:" && $2 == "os_maps" { if ($3 > 0) used++; if ($3 > m) m = $3 }
                   $1 == "mspace:" && $2 == "heaps" { if ($3 > h) h = $3 }
                   END { printf "%d %d %d\n", used, m, h }' "${files[@]}")
    # shellcheck disable=SC2034 # read by the test scripts
    STEP_MAX_HEAPS=$heaps
    if [ "$used" -ge 1 ]; then
        pass "$step: mspace served $used of $n processes (max os_maps $max, max heaps $heaps)"
    else
        fail "$step: os_maps is 0 (or absent) in all $n stats files: mspace served nothing"
    fi
}

# compressible_input FILE: ~57 MB of deterministic, compressible text lines
# (the same bytes every run), for the compressor tests.
compressible_input() {
    awk 'BEGIN {
        x = 31337
        for (i = 0; i < 1100000; i++) {
            x = (x * 16807) % 2147483647
            printf "%07d %s %d %08x %s\n", i, substr("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor", 1 + x % 40, 10 + x % 30), x % 100000, x, (x % 5 ? "ok" : "retry")
        }
    }' >"$1"
    echo "  input: $(wc -c <"$1") bytes"
}

same_file() {
    local desc=$1
    if [ ! -f "$2" ] || [ ! -f "$3" ]; then
        fail "$desc: missing file ($2 or $3)"
    elif cmp -s "$2" "$3"; then
        pass "$desc: identical ($(wc -c <"$2") bytes)"
    else
        fail "$desc: files differ: $(cmp "$2" "$3" 2>&1 | head -n 1)"
    fi
}

real_end() {
    echo "$REAL_NAME: took $(_real_secs $(($(_real_now) - REAL_START)))s"
    echo "$REAL_NAME: $REAL_PASS passed, $REAL_FAIL failed"
    [ "$REAL_FAIL" -eq 0 ] && exit 0
    exit 1
}
