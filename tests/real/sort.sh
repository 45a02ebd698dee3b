#!/usr/bin/env bash
# GNU sort on a generated ~50 MB file: a default sort (one big buffer),
# a 2-thread sort with -S 100M on numeric and text keys, and a small-buffer
# unique sort that spills to temporary files and merges them. Outputs are
# compared byte for byte (sha256 shown) between plain and mspace runs.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin sort "$@"
need sort awk sha256sum || real_end

# 1,000,000 lines (~52 MB) of "word word number hex" from a Park-Miller generator:
# deterministic, many duplicate keys, nothing sorted.
IN=$REAL_TMP/input.txt
awk 'BEGIN {
    x = 12345
    for (i = 0; i < 1000000; i++) {
        x = (x * 16807) % 2147483647; a = x % 5000
        x = (x * 16807) % 2147483647; b = x % 977
        x = (x * 16807) % 2147483647; n = x % 1000000 - 500000
        x = (x * 16807) % 2147483647
        printf "w%05dq%s lemma%03d %d %08x%08x%06d\n", a, substr("abcdefghijklmnopqrstuvwxyz", a % 26 + 1, a % 9 + 1), b, n, x, i * 2654435761 % 4294967296, i
    }
}' >"$IN"
echo "  input: $(wc -l <"$IN") lines, $(wc -c <"$IN") bytes"

sort_step() { # STEP sort-args...
    local step=$1; shift
    both "$step" sort "$@" "$IN"
    printf '       %s sha256 %s\n' "$step" "$(sha256sum <"$REAL_TMP/plain/$step.out" | cut -c1-16)"
    rm -f "$REAL_TMP"/plain/"$step".out "$REAL_TMP"/mspace/"$step".out
}

sort_step sort-default
sort_step sort-parallel --parallel=2 -S 100M -k3,3n -k2,2 -k1,1
mkdir -p "$REAL_TMP/plain/t" "$REAL_TMP/mspace/t"
sort_step sort-spill-unique --parallel=2 -S 4M -T "$REAL_TMP/@MODE@/t" -u -k2,2 -k1,1
real_end
