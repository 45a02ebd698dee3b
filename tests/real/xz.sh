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
compressible_input "$IN"

both compress xz -T2 -1 -c "$IN"
both decompress xz -T2 -dc "$REAL_TMP/@MODE@/compress.out"
same_file "round trip under mspace" "$IN" "$REAL_TMP/mspace/decompress.out"
same_file "round trip plain" "$IN" "$REAL_TMP/plain/decompress.out"
real_end
