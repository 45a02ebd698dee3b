#!/usr/bin/env bash
# Benchmarks mspace against glibc malloc and the peer allocators that are
# installed (jemalloc, tcmalloc, mimalloc), each loaded with LD_PRELOAD into
# the same plain malloc/free programs.
#
#   scripts/bench.sh [--quick] [--reps N]
#
# Runs are interleaved (mspace glibc jemalloc ... mspace glibc ...), 5
# repetitions (3 and fewer rounds with --quick). Progress goes to stderr;
# the markdown table goes to stdout and to bench/results/<date>-<host>.md,
# the same figures in long form to bench/results/<date>-<host>.csv.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

QUICK=0
REPS=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$REPS" ] || { [ $QUICK = 1 ] && REPS=3 || REPS=5; }
case $REPS in '' | *[!0-9]* | 0) echo "bench: --reps needs a positive number" >&2; exit 2 ;; esac
RUN_TIMEOUT=300

note() { printf 'bench: %s\n' "$*" >&2; }

# ------------------------------------------------------------- workloads
# A workload is a name in WORKLOADS plus:
#   wl_<name>_build   builds what it runs (called once, before any run)
#   wl_<name>_cmd     sets CMD=(program args...) for one run
#   WL_FIGS[<name>]   the "key value" lines it prints that go in the table,
#                     in column order, separated by ";", each written
#                     key:column title:range|median
#                     (range shows "median (min–max)" over the repetitions)
#   WL_RATIO[<name>]  the figure compared with glibc and the best peer
#                     (lower is better)
#   WL_ABOUT[<name>]  one line saying what it measures
# Adding a workload is adding these and its name to WORKLOADS.
declare -A WL_FIGS WL_RATIO WL_ABOUT
WORKLOADS=(seed)

SEED_ROUNDS=200
[ $QUICK = 1 ] && SEED_ROUNDS=50
WL_ABOUT[seed]="10,000 malloc(1024) (one byte written each), then the 10,000 frees in the same order; $SEED_ROUNDS rounds per process; warm = median of rounds 2..$SEED_ROUNDS, cold = round 1"
WL_FIGS[seed]="warm_malloc_ns:warm malloc ns:range;warm_free_ns:warm free ns:range;\
warm_pair_ns:warm pair ns:range;cold_malloc_ns:cold malloc ns:median;\
cold_free_ns:cold free ns:median;peak_rss_kb:peak RSS KiB:median"
WL_RATIO[seed]=warm_pair_ns
wl_seed_build() {
    mkdir -p build/bench
    if [ ! -x build/bench/seed ] || [ bench/seed.c -nt build/bench/seed ]; then
        note "building build/bench/seed"
        gcc -O2 -Wall -Wextra -o build/bench/seed bench/seed.c || return 1
    fi
}
wl_seed_cmd() { CMD=("$ROOT/build/bench/seed" "$SEED_ROUNDS"); }

# figs_of WORKLOAD: FIGS=(key:title:style ...)
figs_of() { IFS=';' read -r -a FIGS <<<"${WL_FIGS[$1]}"; }

# ------------------------------------------------------------ allocators
# name and LD_PRELOAD value ("" runs the program as is: glibc malloc).
ALLOCS=() declare -A PRELOAD
add_alloc() { # NAME PATH-or-empty [HOW-TO-GET-IT]
    if [ -n "$2" ] && [ ! -f "$2" ]; then
        note "skipping $1: ${2} not found${3:+ ($3)}"
        return
    fi
    ALLOCS+=("$1")
    PRELOAD[$1]=$2
}
find_lib() { # SONAME: first match in the usual library directories
    local d multiarch
    multiarch=$(gcc -print-multiarch 2>/dev/null)
    for d in ${multiarch:+/usr/lib/$multiarch /lib/$multiarch} /usr/lib64 /usr/lib /usr/local/lib; do
        [ -f "$d/$1" ] && { printf '%s\n' "$d/$1"; return; }
    done
    printf '%s\n' "/usr/lib/${multiarch:-x86_64-linux-gnu}/$1"
}
add_alloc mspace "$ROOT/libmspace.so" "build it with make"
add_alloc glibc ""
add_alloc jemalloc "$(find_lib libjemalloc.so.2)" "apt-get install libjemalloc2"
add_alloc tcmalloc "$(find_lib libtcmalloc_minimal.so.4)" "apt-get install libtcmalloc-minimal4"
add_alloc mimalloc "$(find_lib libmimalloc.so.2)" "apt-get install libmimalloc2.0"
PEERS=()
for a in "${ALLOCS[@]}"; do [ "$a" != mspace ] && PEERS+=("$a"); done

# ------------------------------------------------------------------ runs
for w in "${WORKLOADS[@]}"; do
    "wl_${w}_build" || { note "FAILED to build workload $w"; exit 1; }
done

mkdir -p build/bench
RAW=build/bench/raw.tsv        # workload allocator rep figure value
: >"$RAW"
FAILED=()
total=$((REPS * ${#WORKLOADS[@]} * ${#ALLOCS[@]})) n=0
note "$REPS repetitions x ${#WORKLOADS[@]} workload(s) x ${#ALLOCS[@]} allocators (${ALLOCS[*]})"

run_one() { # WORKLOAD ALLOCATOR REP
    local w=$1 a=$2 rep=$3 out err rc fig key shown=""
    local -a envv
    "wl_${w}_cmd"
    if [ -n "${PRELOAD[$a]}" ]; then
        envv=(env -u MSPACE_STATS -u MSPACE_STATS_FILE LD_PRELOAD="${PRELOAD[$a]}")
    else
        envv=(env -u MSPACE_STATS -u MSPACE_STATS_FILE -u LD_PRELOAD)
    fi
    err=$(mktemp)
    out=$(timeout -k 5 "$RUN_TIMEOUT" "${envv[@]}" "${CMD[@]}" 2>"$err"); rc=$?
    n=$((n + 1))
    if [ $rc -ne 0 ]; then
        note "[$n/$total] $w $a rep $rep: FAILED (exit $rc)"
        tail -n 5 "$err" | sed 's/^/    | /' >&2
        FAILED+=("$w/$a")
        rm -f "$err"
        return
    fi
    rm -f "$err"
    figs_of "$w"
    for fig in "${FIGS[@]}"; do
        key=${fig%%:*}
        printf '%s\n' "$out" | awk -v w="$w" -v a="$a" -v r="$rep" -v k="$key" \
            '$1 == k { printf "%s\t%s\t%s\t%s\t%s\n", w, a, r, k, $2 }' >>"$RAW"
    done
    shown=$(printf '%s\n' "$out" | awk -v k="${WL_RATIO[$w]}" '$1 == k { print $2 }')
    note "[$n/$total] $w $a rep $rep: ${WL_RATIO[$w]} ${shown:-?}"
}

for rep in $(seq 1 "$REPS"); do
    for w in "${WORKLOADS[@]}"; do
        for a in "${ALLOCS[@]}"; do
            run_one "$w" "$a" "$rep"
        done
    done
done

# --------------------------------------------------------------- summary
# workload allocator figure median min max count
SUMMARY=build/bench/summary.tsv
sort -t "$(printf '\t')" -k1,1 -k2,2 -k4,4 -k5,5g "$RAW" | awk -F '\t' '
    function flush() {
        if (cnt == 0) return
        med = cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", pw, pa, pf,
               med == int(med) ? sprintf("%d", med) : sprintf("%.2f", med), v[1], v[cnt], cnt
        cnt = 0
    }
    { if ($1 != pw || $2 != pa || $4 != pf) { flush(); pw = $1; pa = $2; pf = $4 }
      v[++cnt] = $5 }
    END { flush() }' >"$SUMMARY"

declare -A MED MIN MAX
while IFS=$'\t' read -r w a fig med lo hi _; do
    MED[$w|$a|$fig]=$med MIN[$w|$a|$fig]=$lo MAX[$w|$a|$fig]=$hi
done <"$SUMMARY"

fmt() { # number -> 1 decimal below 1000, integer above
    awk -v x="$1" 'BEGIN { if (x >= 1000) printf "%d", x + 0.5; else printf "%.1f", x }'
}
ratio() { # a b -> a/b with 2 decimals, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

DATE=$(date +%F)
HOST=$(uname -n)
RESULTS=bench/results
mkdir -p "$RESULTS"
MD=$RESULTS/$DATE-$HOST.md
CSV=$RESULTS/$DATE-$HOST.csv
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
[ -n "$(git status --porcelain -- core interpose 2>/dev/null)" ] && REV="$REV+uncommitted changes"

version_of() { # allocator -> package version
    local pkg
    case $1 in
    glibc) pkg=libc6 ;; jemalloc) pkg=libjemalloc2 ;;
    tcmalloc) pkg=libtcmalloc-minimal4 ;; mimalloc) pkg=libmimalloc2.0 ;;
    mspace) echo "$REV"; return ;;
    esac
    dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo "?"
}

{
    echo "# mspace benchmark, $DATE, $HOST"
    echo
    echo "- machine: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc) cores, Linux $(uname -r)"
    echo "- $REPS interleaved repetitions per allocator$([ $QUICK = 1 ] && echo " (--quick)"); figures are medians over them, (min–max) where shown"
    printf -- '- allocators:'
    for a in "${ALLOCS[@]}"; do printf ' %s %s;' "$a" "$(version_of "$a")"; done
    echo
    for w in "${WORKLOADS[@]}"; do
        echo
        echo "## $w"
        echo
        echo "${WL_ABOUT[$w]}."
        echo
        best="" bestv=""
        for a in "${PEERS[@]}"; do
            v=${MED[$w|$a|${WL_RATIO[$w]}]:-}
            [ -z "$v" ] && continue
            if [ -z "$bestv" ] || awk -v x="$v" -v y="$bestv" 'BEGIN { exit !(x < y) }'; then
                best=$a bestv=$v
            fi
        done
        figs_of "$w"
        head="| allocator |" rule="|---|"
        for fig in "${FIGS[@]}"; do
            IFS=: read -r _ title _ <<<"$fig"
            head+=" $title |" rule+="---:|"
        done
        ratio_title=${WL_RATIO[$w]%_ns}
        head+=" ${ratio_title//_/ } vs glibc | vs best peer${best:+ ($best)} |"
        rule+="---:|---:|"
        echo "$head"
        echo "$rule"
        for a in "${ALLOCS[@]}"; do
            row="| $a |"
            if [ -z "${MED[$w|$a|${WL_RATIO[$w]}]:-}" ]; then
                echo "$row failed |"
                continue
            fi
            for fig in "${FIGS[@]}"; do
                IFS=: read -r key _ style <<<"$fig"
                k="$w|$a|$key"
                if [ -z "${MED[$k]:-}" ]; then
                    row+=" ? |"
                elif [ "$style" = range ]; then
                    row+=" $(fmt "${MED[$k]}") ($(fmt "${MIN[$k]}")–$(fmt "${MAX[$k]}")) |"
                else
                    row+=" $(fmt "${MED[$k]}") |"
                fi
            done
            v=${MED[$w|$a|${WL_RATIO[$w]}]}
            row+=" $(ratio "$v" "${MED[$w|glibc|${WL_RATIO[$w]}]:-}")× | $(ratio "$v" "$bestv")× |"
            echo "$row"
        done
    done
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo
        echo "Failed runs: ${FAILED[*]}"
    fi
} >"$MD.tmp" && mv "$MD.tmp" "$MD"

{
    echo "workload,allocator,figure,median,min,max,runs"
    tr '\t' ',' <"$SUMMARY"
} >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"

cat "$MD"
echo
note "wrote $MD and $CSV"
[ ${#FAILED[@]} -eq 0 ]
