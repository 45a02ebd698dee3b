#!/usr/bin/env bash
# The profiling tools end to end on real programs: scripts/mspace-run
# --prof on GNU sort and on python3 (which forks nothing but allocates a
# lot), google-pprof reading the profiles, scripts/mspace-prof-svg drawing
# one, and mspace-run --leaks reporting on a program that closes stderr.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin profile "$@"
need google-pprof dot sort python3 awk || real_end
RUN=$(dirname "$0")/../../scripts/mspace-run
SVG=$(dirname "$0")/../../scripts/mspace-prof-svg

if "$RUN" --help | grep -q -- '--prof FILE' && "$SVG" --help | grep -q 'PROFILE PROGRAM'; then
    pass "--help of both scripts"
else
    fail "--help of mspace-run or mspace-prof-svg"
fi

IN=$REAL_TMP/input.txt
awk 'BEGIN { x = 7; for (i = 0; i < 300000; i++) { x = (x * 16807) % 2147483647; printf "%08x line %d\n", x, i } }' >"$IN"

# pprof_total PROGRAM PROFILE: the megabytes allocated over the run, from
# google-pprof's Total line (the programs free most of it before exit).
pprof_total() {
    env -u LD_PRELOAD google-pprof --text --alloc_space "$1" "$2" 2>/dev/null |
        awk '$1 == "Total:" { print $2 + 0 }'
}

prof=$REAL_TMP/sort.%p.heap
if "$RUN" --lib "$REAL_LIB" --prof "$prof" --prof-sample 65536 -- sort -S 40M "$IN" >"$REAL_TMP/sorted" 2>"$REAL_TMP/sort.err" &&
    sort -S 40M "$IN" | cmp -s - "$REAL_TMP/sorted"; then
    pass "sort under --prof: same output"
else
    fail "sort under --prof" "$REAL_TMP/sort.err"
fi
files=("$REAL_TMP"/sort.*.heap)
total=$(pprof_total "$(command -v sort)" "${files[0]}")
# sort allocates its 40 MB buffer in one block.
if awk -v t="${total:-0}" 'BEGIN { exit !(t >= 40) }'; then
    pass "google-pprof reads sort's profile: ${total} MB allocated"
else
    fail "google-pprof on sort's profile: total '${total:-none}' MB, expected >= 40" "${files[0]}"
fi
if out=$("$SVG" --alloc "${files[0]}" "$(command -v sort)" "$REAL_TMP/sort.svg" 2>&1) && grep -q '<svg' "$REAL_TMP/sort.svg"; then
    pass "mspace-prof-svg drew $out ($(wc -c <"$REAL_TMP/sort.svg") bytes)"
else
    fail "mspace-prof-svg did not draw an SVG"
fi

py=$REAL_TMP/py.%p.heap
PY=$(python3 -c 'import sys; print(sys.executable)') # not a wrapper script
if "$RUN" --lib "$REAL_LIB" --prof "$py" -- "$PY" -c 'x = [bytes(1000) for _ in range(50000)]; print(len(x))' \
    >"$REAL_TMP/py.out" 2>"$REAL_TMP/py.err" && grep -qx 50000 "$REAL_TMP/py.out"; then
    pass "python3 under --prof: same output"
else
    fail "python3 under --prof" "$REAL_TMP/py.err"
fi
files=("$REAL_TMP"/py.*.heap)
total=$(pprof_total "$PY" "${files[0]}")
if [ ${#files[@]} -eq 1 ] && [ -e "${files[0]}" ] && awk -v t="${total:-0}" 'BEGIN { exit !(t > 0) }'; then
    pass "google-pprof reads python3's profile: ${total} MB allocated"
else
    fail "google-pprof on python3's profile (${#files[@]} files): total '${total:-none}'"
fi

# sort closes stderr before exit: the report must still come out.
if "$RUN" --lib "$REAL_LIB" --leaks -- sort "$IN" 2>"$REAL_TMP/leaks.err" >/dev/null &&
    grep -q '^mspace: leak summary: ' "$REAL_TMP/leaks.err"; then
    pass "mspace-run --leaks: $(grep '^mspace: leak summary: ' "$REAL_TMP/leaks.err" | cut -c23-)"
else
    fail "mspace-run --leaks printed no summary" "$REAL_TMP/leaks.err"
fi

# --json: the statistics at exit as one JSON object whose parts add up.
if "$RUN" --lib "$REAL_LIB" --json "$REAL_TMP/sort.%p.json" -- sort "$IN" >/dev/null &&
    files=("$REAL_TMP"/sort.*.json) && [ ${#files[@]} -eq 1 ] &&
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["in_use"] + d["free"] + d["overhead"] == d["mapped"] > 0, d
assert d["calls_counted"] and d["mallocs"] > 0, d' "${files[0]}" 2>"$REAL_TMP/json.err"; then
    pass "mspace-run --json: sort's statistics parse and add up"
else
    fail "mspace-run --json" "$REAL_TMP/json.err"
fi
real_end
