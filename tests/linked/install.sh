#!/usr/bin/env bash
# `make install PREFIX=...` installs the library, the header and a
# pkg-config file that together build a working -lmspace program
# (tests/linked/linked.c), which then runs without LD_PRELOAD.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { # name command...
    local name=$1; shift
    if "$@" >"$tmp/out" 2>&1; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL install: $name"; sed 's/^/    /' "$tmp/out" | tail -n 10
    fi
}
prefix=$tmp/prefix
# A recursive make must not inherit the outer make's jobserver.
check "make install" env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install PREFIX="$prefix"
check "lib/libmspace.so installed" test -f "$prefix/lib/libmspace.so"
check "lib/libmspace-secure.so installed" test -f "$prefix/lib/libmspace-secure.so"
check "include/mspace.h installed" test -f "$prefix/include/mspace.h"
check "lib/pkgconfig/mspace.pc installed" test -f "$prefix/lib/pkgconfig/mspace.pc"
flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs mspace 2>"$tmp/err")
flags=$(echo $flags) # pkg-config leaves a trailing space
check "pkg-config --cflags --libs mspace" test "$flags" = "-I$prefix/include -L$prefix/lib -lmspace"
# shellcheck disable=SC2086
check "build with the pkg-config flags" \
    cc -std=gnu11 -Wall -Wextra -o "$tmp/linked" tests/linked/linked.c $flags -Wl,-rpath,"$prefix/lib"
check "linked against libmspace.so" sh -c "readelf -d '$tmp/linked' | grep -q 'NEEDED.*libmspace.so'"
# The program's own checks join ours; a crash or a missing summary is a failure.
out=$(env -u LD_PRELOAD "$tmp/linked" 2>&1); rc=$?
printf '%s\n' "$out" | grep -v ' passed, .* failed'
line=$(printf '%s\n' "$out" | grep -E '^linked: [0-9]+ passed, [0-9]+ failed$')
if [ $rc -eq 0 ] && [ -n "$line" ]; then
    pass=$((pass + $(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')))
    fail=$((fail + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
else
    fail=$((fail + 1)); echo "FAIL install: the linked program (exit $rc): $out"
fi
echo "install: $pass passed, $fail failed"
