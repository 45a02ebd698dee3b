#!/usr/bin/env bash
# Debian packages the tests and benchmarks need.
#
#   scripts/deps.sh --install       apt-get install those of them that are
#                                   missing (as root), or print the sudo
#                                   command to run and exit 1
#   scripts/deps.sh --check-test    quick check for `make test`
#   scripts/deps.sh --check-bench   quick check for `make bench`
#
# A check looks at the dpkg database only (one dpkg-query call, well under a
# second). If something is missing it installs it when we are root, and
# otherwise prints the exact command to run and exits 1.
set -u

# Real-program tests (tests/real/*.sh), building the test programs, the
# sanitizer builds (gcc's libasan/libubsan come with gcc), the fuzzer (clang
# with libFuzzer, which is in libclang-rt-14-dev), and heap profiles and leak
# reports: libunwind (dlopen'ed), google-pprof to read the profiles, graphviz
# for scripts/mspace-prof-svg. xmllint checks malloc_info's XML, pkg-config
# the installed mspace.pc, readelf what a -lmspace program needs.
TEST_PKGS=(build-essential gcc g++ make coreutils python3 git sqlite3 tcl perl
           xz-utils zstd clang libclang-rt-14-dev libunwind8 google-perftools graphviz
           libxml2-utils pkg-config binutils)
# Benchmarks: the peer allocators, charts, timing, instruction counts.
BENCH_PKGS=(build-essential gcc make coreutils libjemalloc2 libjemalloc-dev
            libtcmalloc-minimal4 libmimalloc2.0 libunwind-dev gnuplot-nox time
            valgrind sqlite3)

# Commands checked instead when there is no dpkg (not Debian).
TEST_CMDS=(gcc g++ make sort python3 git sqlite3 tclsh perl xz zstd clang google-pprof dot
           xmllint pkg-config readelf)
BENCH_CMDS=(gcc make sqlite3)

say() { printf 'deps: %s\n' "$*" >&2; }

usage() {
    echo "usage: $0 --install | --check-test | --check-bench" >&2
    exit 2
}

# Unique list of the arguments, order kept.
uniq_words() {
    local w seen=" " out=()
    for w in "$@"; do
        case $seen in *" $w "*) continue ;; esac
        seen+="$w "
        out+=("$w")
    done
    printf '%s\n' "${out[@]}"
}

# Prints the packages among "$@" that are not installed.
missing_pkgs() {
    local installed p
    # One line per known package, "ii |name" when it is fully installed.
    installed=" $(dpkg-query -W -f='${db:Status-Abbrev}|${Package}\n' "$@" 2>/dev/null |
                  sed -n 's/^ii *|\([^:]*\).*/\1/p' | tr '\n' ' ')"
    for p in "$@"; do
        case $installed in *" $p "*) ;; *) printf '%s\n' "$p" ;; esac
    done
}

is_root() { [ "$(id -u)" -eq 0 ]; }

apt_install() { # packages...
    local opts=(-y -q -o DPkg::Lock::Timeout=300)
    say "apt-get install ${opts[*]} $*"
    if DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@"; then
        return 0
    fi
    # Usually a stale or empty package list: refresh it once and retry.
    say "apt-get install failed; running apt-get update and trying again"
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@"
}

# install PACKAGES...: apt-get install those not installed yet.
install() {
    local pkgs missing
    mapfile -t pkgs < <(uniq_words "$@")
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
        say "apt-get/dpkg not found: this is not a Debian-like system."
        say "install the equivalents of: ${pkgs[*]}"
        return 1
    fi
    mapfile -t missing < <(missing_pkgs "${pkgs[@]}")
    if [ ${#missing[@]} -eq 0 ]; then
        say "all ${#pkgs[@]} packages are installed"
        return 0
    fi
    if ! is_root; then
        say "not root; run this, then try again:"
        echo "sudo apt-get install -y ${missing[*]}"
        return 1
    fi
    if ! apt_install "${missing[@]}"; then
        say "FAILED to install: ${missing[*]}"
        return 1
    fi
    mapfile -t missing < <(missing_pkgs "${pkgs[@]}")
    if [ ${#missing[@]} -gt 0 ]; then
        say "still not installed after apt-get: ${missing[*]}"
        return 1
    fi
    say "installed; all ${#pkgs[@]} packages present"
}

# check test|bench: install what is missing (or say how).
check() {
    local what pkgs cmds missing=() c
    if [ "$1" = test ]; then
        what="the tests" pkgs=("${TEST_PKGS[@]}") cmds=("${TEST_CMDS[@]}")
    else
        what="the benchmarks" pkgs=("${BENCH_PKGS[@]}") cmds=("${BENCH_CMDS[@]}")
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        for c in "${cmds[@]}"; do
            command -v "$c" >/dev/null 2>&1 || missing+=("$c")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        say "no dpkg here, and commands for $what are missing: ${missing[*]}"
        return 1
    fi
    mapfile -t missing < <(missing_pkgs "${pkgs[@]}")
    [ ${#missing[@]} -eq 0 ] && return 0
    say "packages for $what are not installed: ${missing[*]}"
    install "${pkgs[@]}"
}

[ $# -eq 1 ] || usage
case $1 in
--install) install "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}" ;;
--check-test) check test ;;
--check-bench) check bench ;;
-h | --help) usage ;;
*) usage ;;
esac
