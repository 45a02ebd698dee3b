#!/usr/bin/env bash
# xz -T2: compress a generated ~57 MB file with two encoder threads (1 MiB
# blocks, so both threads work), then decompress with two threads. The
# compressed bytes must equal the plain run's, and both round trips must
# give back the input.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin xz "$@"
need xz awk || real_end

IN=$REAL_TMP/input.txt
awk 'BEGIN {
    x = 31337
    for (i = 0; i < 1100000; i++) {
        x = (x * 16807) % 2147483647
        printf "%07d %s %d %08x %s\n", i, substr("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor", 1 + x % 40, 10 + x % 30), x % 100000, x, (x % 5 ? "ok" : "retry")
    }
}' >"$IN"
echo "  input: $(wc -c <"$IN") bytes"

both compress xz -T2 -1 -c "$IN"
both decompress xz -T2 -dc "$REAL_TMP/@MODE@/compress.out"
same_file "round trip under mspace" "$IN" "$REAL_TMP/mspace/decompress.out"
same_file "round trip plain" "$IN" "$REAL_TMP/plain/decompress.out"
real_end
