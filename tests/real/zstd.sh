#!/usr/bin/env bash
# zstd -T2: compress a generated ~57 MB file at level 12 and at the default
# level with two worker threads, decompress both. The compressed bytes must
# equal the plain run's, and every round trip must give back the input.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin zstd "$@"
need zstd awk || real_end

IN=$REAL_TMP/input.txt
awk 'BEGIN {
    x = 31337
    for (i = 0; i < 1100000; i++) {
        x = (x * 16807) % 2147483647
        printf "%07d %s %d %08x %s\n", i, substr("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor", 1 + x % 40, 10 + x % 30), x % 100000, x, (x % 5 ? "ok" : "retry")
    }
}' >"$IN"
echo "  input: $(wc -c <"$IN") bytes"

both compress-12 zstd -q -T2 -12 -c "$IN"
both compress-3 zstd -q -T2 -c "$IN"
both decompress-12 zstd -q -dc "$REAL_TMP/@MODE@/compress-12.out"
both decompress-3 zstd -q -dc "$REAL_TMP/@MODE@/compress-3.out"
same_file "round trip -12 under mspace" "$IN" "$REAL_TMP/mspace/decompress-12.out"
same_file "round trip -3 under mspace" "$IN" "$REAL_TMP/mspace/decompress-3.out"
same_file "round trip -12 plain" "$IN" "$REAL_TMP/plain/decompress-12.out"
real_end
