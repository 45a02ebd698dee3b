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
compressible_input "$IN"

both compress-12 zstd -q -T2 -12 -c "$IN"
both compress-3 zstd -q -T2 -c "$IN"
both decompress-12 zstd -q -dc "$REAL_TMP/@MODE@/compress-12.out"
both decompress-3 zstd -q -dc "$REAL_TMP/@MODE@/compress-3.out"
same_file "round trip -12 under mspace" "$IN" "$REAL_TMP/mspace/decompress-12.out"
same_file "round trip -3 under mspace" "$IN" "$REAL_TMP/mspace/decompress-3.out"
same_file "round trip -12 plain" "$IN" "$REAL_TMP/plain/decompress-12.out"
real_end
