#!/usr/bin/env bash
# Benchmarks mspace against glibc malloc and the peer allocators that are
# installed (jemalloc, tcmalloc, mimalloc), each loaded with LD_PRELOAD into
# the same plain malloc/free programs (bench/*.c).
#
#   scripts/bench.sh [--quick] [--reps N] [--only W1,W2]
#   scripts/bench.sh --instr
#
# Runs are interleaved (mspace glibc jemalloc ... mspace glibc ...), 5
# repetitions (3 and shorter runs with --quick). Progress goes to stderr;
# the tables go to stdout and to bench/results/<date>-<host>.md, the same
# figures in long form to bench/results/<date>-<host>.csv, and a chart of
# each workload's time relative to glibc to bench/results/<date>-<host>.png.
# --instr counts instructions per malloc and per free under callgrind (seed
# and churn) and adds that table to the same .md and .csv. --only runs some
# of the workloads (seed churn medium threads xthread realloc frag sqlite) and writes its
# tables to build/bench/partial/ instead.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

QUICK=0 REPS= ONLY= MODE=bench
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --only) ONLY=${2:?--only needs workload names}; shift ;;
    --instr) MODE=instr ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "bench: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$REPS" ] || { [ $QUICK = 1 ] && REPS=3 || REPS=5; }
case $REPS in '' | *[!0-9]* | 0) echo "bench: --reps needs a positive number" >&2; exit 2 ;; esac
RUN_TIMEOUT=300
START_TIME=$(date +%s)

note() { printf 'bench: %s\n' "$*" >&2; }
q() { [ $QUICK = 1 ] && echo "$2" || echo "$1"; } # full-value quick-value
commas() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; } # 1234567 -> 1,234,567

# ------------------------------------------------------------- workloads
# A workload is a name in WORKLOADS plus:
#   wl_<name>_build   builds what it runs (called once, before any run)
#   wl_<name>_cmd     sets CMD=(program args...) for one run
#   WL_FIGS[<name>]   the "key value" lines it prints that go in the table,
#                     in column order, separated by ";", each written
#                     key:column title:style, style one of
#                       range   "median (min–max)" over the repetitions
#                       median  the median alone
#                       mib     the median of a KiB figure, shown in MiB
#                       mibrange  the same with (min–max)
#   WL_HEAD[<name>]   its headline figure: compared with glibc and the best
#                     peer in its table, shown on the progress lines
#   WL_BETTER[<name>] lower (default) or higher: which way the headline wins
#   WL_ABOUT[<name>]  what it measures (a sentence or two)
# Adding a workload is adding these and its name to WORKLOADS. SUMMARY
# (below) says which figures go in the summary table and the chart.
declare -A WL_FIGS WL_HEAD WL_BETTER WL_ABOUT
WORKLOADS=(seed churn medium threads xthread realloc frag sqlite)

build_prog() { # NAME: build/bench/NAME from bench/NAME.c (and bench/bench.h)
    local src=bench/$1.c bin=build/bench/$1
    mkdir -p build/bench
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ bench/bench.h -nt "$bin" ]; then
        note "building $bin"
        gcc -O2 -g -Wall -Wextra -pthread -o "$bin" "$src" || return 1
    fi
}

SEED_ROUNDS=$(q 200 50)
WL_ABOUT[seed]="The original mspace benchmark: 10,000 malloc(1024) (one byte written each), then the 10,000 frees in the same order; $SEED_ROUNDS rounds per process; warm = median of rounds 2..$SEED_ROUNDS, cold = round 1"
WL_FIGS[seed]="warm_malloc_ns:warm malloc ns:range;warm_free_ns:warm free ns:range;\
warm_pair_ns:warm pair ns:range;cold_malloc_ns:cold malloc ns:median;\
cold_free_ns:cold free ns:median;peak_rss_kb:peak RSS MiB:mib"
WL_HEAD[seed]=warm_pair_ns
wl_seed_build() { build_prog seed; }
wl_seed_cmd() { CMD=("$ROOT/build/bench/seed" "$SEED_ROUNDS"); }

CHURN_PAIRS=$(q 10000000 3000000)
WL_ABOUT[churn]="Small churn, one thread: a working set of 4,096 blocks of random sizes 16–512 B; $(commas $CHURN_PAIRS) times a random block is freed and replaced by a new one of random size (first and last byte written); time per free+malloc pair"
WL_FIGS[churn]="ns_per_pair:ns per pair:range;peak_rss_kb:peak RSS MiB:mib"
WL_HEAD[churn]=ns_per_pair
wl_churn_build() { build_prog churn; }
wl_churn_cmd() { CMD=("$ROOT/build/bench/churn" "$CHURN_PAIRS" 4096); }

MEDIUM_PAIRS=$(q 2000000 500000)
WL_ABOUT[medium]="Medium churn, one thread: the same loop over a working set of 1,000 blocks of 1–64 KiB (a random doubling, then a uniform size within it, so each doubling is as common: buffers, strings, pages), $(commas $MEDIUM_PAIRS) pairs; time per free+malloc pair"
WL_FIGS[medium]="ns_per_pair:ns per pair:range;peak_rss_kb:peak RSS MiB:mib"
WL_HEAD[medium]=ns_per_pair
wl_medium_build() { build_prog churn; }
wl_medium_cmd() { CMD=("$ROOT/build/bench/churn" "$MEDIUM_PAIRS" 1000 1024 6); }

THREAD_PAIRS=$(q 5000000 1500000)
WL_ABOUT[threads]="The same churn in 1, 2 and 4 threads at once, each with its own 4,096-block working set, $(commas $THREAD_PAIRS) pairs per thread; throughput in free+malloc pairs per second over all threads, and scaling = N-thread / 1-thread throughput (this machine has $(nproc) cores, so 4 threads cannot beat 2). *cores busy* = CPU time / wall time of the phase: below 2, the threads did not get two cores to themselves (the machine is shared)"
WL_FIGS[threads]="ops_per_sec_1t:Mpairs/s 1 thread:range;ops_per_sec_2t:Mpairs/s 2 threads:range;\
ops_per_sec_4t:Mpairs/s 4 threads:range;scaling_2t:scaling 2t:median;\
scaling_4t:scaling 4t:median;cores_2t:cores busy 2t:median;cores_4t:cores busy 4t:median;\
peak_rss_kb:peak RSS MiB:mib"
WL_HEAD[threads]=ops_per_sec_2t
WL_BETTER[threads]=higher
wl_threads_build() { build_prog threads; }
wl_threads_cmd() { CMD=("$ROOT/build/bench/threads" "$THREAD_PAIRS" 4096); }

XTHREAD_BLOCKS=$(q 4000000 1000000)
WL_ABOUT[xthread]="Cross-thread frees: a producer thread mallocs $(commas $XTHREAD_BLOCKS) blocks of 64 B and passes them through a bounded ring of 1,024 slots to a consumer thread that reads and frees them (each side publishes its ring index every 64 blocks), the two threads pinned to two different CPUs; wall time per million blocks handed over, and RSS once both threads are done. *cores busy* = CPU time / wall time (the waiting side spins): below 2, other work on the machine took part of a core and the time is inflated. *ring fill* = blocks waiting in the ring on average, out of 1,024: low, the consumer waits for blocks (malloc is the slower side); near 1,024, the producer waits for room (the cross-thread frees are)"
WL_FIGS[xthread]="ms_per_million:ms per million:range;cores:cores busy:median;ring_fill:ring fill:range;rss_end_kb:RSS at end MiB:mib;peak_rss_kb:peak RSS MiB:mib"
WL_HEAD[xthread]=ms_per_million
wl_xthread_build() { build_prog xthread; }
wl_xthread_cmd() { CMD=("$ROOT/build/bench/xthread" "$XTHREAD_BLOCKS" 1024); }

REALLOC_DOUBLING=$(q 20 8) REALLOC_STEPS=$(q 8 3)
WL_ABOUT[realloc]="Realloc growth to 32 MiB, every new byte written: by doubling from 64 B (20 reallocs per buffer, $REALLOC_DOUBLING buffers) and by 4 KiB steps (8,192 reallocs per buffer, $REALLOC_STEPS buffers); ms per 32 MiB buffer. *moves* = small-step reallocs per buffer that returned a new address (by copying or by mremap alike). An allocator that copied on every step would copy 128 GiB per buffer"
WL_FIGS[realloc]="ms_doubling:ms doubling:range;ms_small_steps:ms 4 KiB steps:range;\
moves_small_steps:moves:median;peak_rss_kb:peak RSS MiB:mib"
WL_HEAD[realloc]=ms_small_steps
wl_realloc_build() { build_prog realloc; }
wl_realloc_cmd() { CMD=("$ROOT/build/bench/realloc" "$REALLOC_DOUBLING" "$REALLOC_STEPS" 32 4); }

FRAG_CYCLES=$(q 3 1)
WL_ABOUT[frag]="Large blocks and fragmentation: $FRAG_CYCLES cycle(s) of 200,000 steps, each step freeing the blocks whose time is up and mallocing one (85% 16–512 B, 14.9% 513 B–64 KiB, 0.1% 1–4 MiB; all bytes written, one per page for ≥1 MiB) with a lifetime of 1–64 steps (50%), 64–8,192 steps (25%), the rest of the cycle (23%) or the rest of the program (2%, small and medium only); at the end of each cycle everything but those long-lived blocks is freed (~95% of the bytes). *after free* = RSS right after the last cycle's frees; *settled* = after a further 0.3 s sleep and a burst of 1,000 small malloc/free pairs (no malloc_trim anywhere); *kept* = bytes the program still has live then. RSS from /proc/self/statm"
WL_FIGS[frag]="ms_total:ms total:range;peak_live_kb:peak live MiB:mib;peak_rss_kb:peak RSS MiB:mibrange;\
kept_kb:kept MiB:mib;rss_after_free_kb:RSS after free MiB:mibrange;\
rss_after_free_settled_kb:RSS after free, settled MiB:mibrange;rss_start_kb:RSS at start MiB:mib"
WL_HEAD[frag]=ms_total
wl_frag_build() { build_prog frag; }
wl_frag_cmd() { CMD=("$ROOT/build/bench/frag" 200000 "$FRAG_CYCLES"); }

# A real program (Debian's sqlite3, started by bench/spawn.c so that the
# allocator under test serves it and wait4 reports its peak RSS).
SQLITE_SQL=build/bench/sqlite.sql
WL_ABOUT[sqlite]="A real program: Debian's sqlite3 runs an in-memory database whose 64 MiB page cache lives in malloc (bench/sqlite.awk): 100,000 single-row INSERTs in one transaction, two indexes, GROUP BY queries, an UPDATE of a third of the rows, a DELETE of a seventh, VACUUM; wall time of the whole process, from exec to exit, and its peak RSS"
WL_FIGS[sqlite]="ms_total:ms total:range;peak_rss_kb:peak RSS MiB:mibrange"
WL_HEAD[sqlite]=ms_total
wl_sqlite_build() {
    command -v sqlite3 >/dev/null || { note "sqlite3 is missing: run make deps"; return 1; }
    build_prog spawn || return 1
    [ "$SQLITE_SQL" -nt bench/sqlite.awk ] || awk -f bench/sqlite.awk >"$SQLITE_SQL"
}
wl_sqlite_cmd() { CMD=("$ROOT/build/bench/spawn" "$ROOT/$SQLITE_SQL" sqlite3 :memory:); }

# The summary table and the chart, one row each: workload|figure|label in
# the table|kind|label in the chart; kind time (the chart's main panel: time
# relative to glibc) or mem (its memory panel, in MiB). Which way is better
# comes from WL_BETTER for a headline figure, lower for any other.
SUMMARY=(
    "seed|warm_pair_ns|seed: warm malloc+free pair, ns|time|seed"
    "churn|ns_per_pair|small churn: ns per pair|time|churn"
    "medium|ns_per_pair|medium churn (1–64 KiB): ns per pair|time|medium churn"
    "medium|peak_rss_kb|medium churn: peak RSS, MiB|mem|medium churn"
    "threads|ops_per_sec_2t|threads: Mpairs/s with 2 threads|time|threads 2t"
    "xthread|ms_per_million|cross-thread: ms per million blocks|time|cross-thread"
    "realloc|ms_doubling|realloc: ms per buffer, doubling|time|realloc x2"
    "realloc|ms_small_steps|realloc: ms per buffer, 4 KiB steps|time|realloc +4K"
    "frag|ms_total|frag: ms total|time|frag"
    "frag|peak_rss_kb|frag: peak RSS, MiB|mem|frag peak"
    "frag|rss_after_free_settled_kb|frag: RSS after free (settled), MiB|mem|frag settled"
    "sqlite|ms_total|sqlite3: ms total|time|sqlite3"
    "sqlite|peak_rss_kb|sqlite3: peak RSS, MiB|mem|sqlite3"
)

if [ -n "$ONLY" ]; then
    sel=()
    for w in ${ONLY//,/ }; do
        [ -n "${WL_FIGS[$w]:-}" ] || { note "unknown workload: $w (have: ${WORKLOADS[*]})"; exit 2; }
        sel+=("$w")
    done
    WORKLOADS=("${sel[@]}")
fi

# figs_of WORKLOAD: FIGS=(key:title:style ...)
figs_of() { IFS=';' read -r -a FIGS <<<"${WL_FIGS[$1]}"; }
better_of() { # WORKLOAD FIGURE -> lower|higher
    if [ "$2" = "${WL_HEAD[$1]}" ]; then echo "${WL_BETTER[$1]:-lower}"; else echo lower; fi
}

# ------------------------------------------------------------ allocators
# name and LD_PRELOAD value ("" runs the program as is: glibc malloc).
ALLOCS=() declare -A PRELOAD
MISSING_NOTES=()
add_alloc() { # NAME PATH-or-empty [HOW-TO-GET-IT]
    if [ -n "$2" ] && [ ! -f "$2" ]; then
        note "skipping $1: ${2} not found${3:+ ($3)}"
        MISSING_NOTES+=("$1 skipped: $2 not found${3:+ ($3)}")
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
# The hardened build, to show what its checks cost; not a peer.
add_alloc mspace-secure "$ROOT/libmspace-secure.so" "build it with make"
add_alloc glibc ""
add_alloc jemalloc "$(find_lib libjemalloc.so.2)" "apt-get install libjemalloc2"
add_alloc tcmalloc "$(find_lib libtcmalloc_minimal.so.4)" "apt-get install libtcmalloc-minimal4"
add_alloc mimalloc "$(find_lib libmimalloc.so.2)" "apt-get install libmimalloc2.0"
for a in mspace jemalloc; do # required: the comparison is pointless without them
    [ -n "${PRELOAD[$a]+set}" ] || { note "FAILED: $a is required"; exit 1; }
done
PEERS=()
for a in "${ALLOCS[@]}"; do case $a in mspace*) ;; *) PEERS+=("$a") ;; esac; done

env_for() { # ALLOCATOR -> ENVV=(env ...) that runs a command under it
    ENVV=(env -u MSPACE_STATS -u MSPACE_STATS_FILE)
    if [ -n "${PRELOAD[$1]}" ]; then ENVV+=(LD_PRELOAD="${PRELOAD[$1]}"); else ENVV+=(-u LD_PRELOAD); fi
}

DATE=$(date +%F)
HOST=$(uname -n)
RESULTS=bench/results
# A partial run (--only) is for development: it leaves the day's results be.
[ -n "$ONLY" ] && [ $MODE = bench ] && RESULTS=build/bench/partial
mkdir -p "$RESULTS" build/bench
MD=$RESULTS/$DATE-$HOST.md
CSV=$RESULTS/$DATE-$HOST.csv
PNG=$RESULTS/$DATE-$HOST.png
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
[ -n "$(git status --porcelain -- core interpose 2>/dev/null)" ] && REV="$REV+uncommitted changes"
INSTR_HEADING="## Instructions per call (callgrind)"

version_of() { # allocator -> package version
    local pkg
    case $1 in
    glibc) pkg=libc6 ;; jemalloc) pkg=libjemalloc2 ;;
    tcmalloc) pkg=libtcmalloc-minimal4 ;; mimalloc) pkg=libmimalloc2.0 ;;
    mspace | mspace-secure) echo "$REV"; return ;;
    esac
    dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo "?"
}
machine_line() {
    echo "$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc) cores, Linux $(uname -r)"
}
allocators_line() {
    local a
    for a in "${ALLOCS[@]}"; do printf '%s %s; ' "$a" "$(version_of "$a")"; done | sed 's/; $//'
}

# ================================================== instruction counts
# Instructions per malloc and per free: each program runs under callgrind
# (LD_BIND_NOW, so every call goes straight from the program to the
# allocator's entry point); the inclusive cost of the calls the program's
# own code makes to malloc (free) over their number is the figure. The entry
# names are the same for all five allocators here (malloc, free), but the
# aliases are accepted too.
if [ $MODE = instr ]; then
    command -v valgrind >/dev/null || { note "valgrind not found (apt-get install valgrind)"; exit 1; }
    INSTR_SEED_ROUNDS=20 INSTR_CHURN_PAIRS=200000
    build_prog seed && build_prog churn || { note "FAILED to build"; exit 1; }
    declare -A IR CALLS
    OUT=build/bench/instr.tsv # program allocator what calls instructions
    : >"$OUT"
    n=0 total=$((2 * ${#ALLOCS[@]}))
    note "callgrind: seed ($INSTR_SEED_ROUNDS rounds) and churn ($INSTR_CHURN_PAIRS pairs) under ${ALLOCS[*]}"
    for prog in seed churn; do
        for a in "${ALLOCS[@]}"; do
            n=$((n + 1))
            case $prog in
            seed) args=("$INSTR_SEED_ROUNDS") ;;
            churn) args=("$INSTR_CHURN_PAIRS" 4096) ;;
            esac
            cg=build/bench/callgrind.$prog.$a.out
            env_for "$a"
            t0=$(date +%s.%N)
            if ! "${ENVV[@]}" LD_BIND_NOW=1 timeout -k 5 600 valgrind --tool=callgrind \
                --callgrind-out-file="$cg" "$ROOT/build/bench/$prog" "${args[@]}" \
                >build/bench/callgrind.log 2>&1; then
                note "[$n/$total] $prog $a: FAILED under valgrind"
                tail -n 5 build/bench/callgrind.log | sed 's/^/    | /' >&2
                continue
            fi
            # Calls whose caller is in the program's own object (its main;
            # the loops are inlined there) to an entry point named below.
            awk -v prog="/build/bench/$prog" -v p="$prog" -v a="$a" '
                function nm(s, ns,   id, rest) {
                    if (match(s, /^\([0-9]+\)/)) {
                        id = substr(s, 2, RLENGTH - 2); rest = substr(s, RLENGTH + 1)
                        sub(/^ /, "", rest)
                        if (rest != "") names[ns, id] = rest
                        return names[ns, id]
                    }
                    return s
                }
                BEGIN {
                    split("malloc tc_malloc je_malloc mi_malloc __libc_malloc", m, " ")
                    split("free tc_free je_free mi_free __libc_free cfree", f, " ")
                    for (i in m) kind[m[i]] = "malloc"
                    for (i in f) kind[f[i]] = "free"
                }
                /^ob=/  { ob = nm(substr($0, 4), "ob"); next }
                /^cob=/ { cob = nm(substr($0, 5), "ob"); next }
                /^fn=/  { fn = nm(substr($0, 4), "fn"); next }
                /^cfn=/ { cfn = nm(substr($0, 5), "fn"); next }
                /^calls=/ {
                    split(substr($0, 7), c, " ")
                    getline
                    if (index(ob, prog) && (cfn in kind)) {
                        k = kind[cfn]; calls[k] += c[1]; ir[k] += $2
                        lib = cob == "" ? ob : cob; sub(/.*\//, "", lib)
                        if (index(" " sym[k] " ", " " cfn "@" lib " ") == 0) sym[k] = sym[k] (sym[k] == "" ? "" : " ") cfn "@" lib
                    }
                    cob = ""
                    next
                }
                END {
                    for (k in calls) printf "%s\t%s\t%s\t%.0f\t%.0f\t%s\n", p, a, k, calls[k], ir[k], sym[k]
                }' "$cg" >>"$OUT"
            t1=$(date +%s.%N)
            summary=$(awk -F '\t' -v p="$prog" -v a="$a" '$1 == p && $2 == a {
                printf "%s %.0f instr (%s calls, %s)  ", $3, $5 / $4, $4, $6 }' "$OUT")
            note "[$n/$total] $prog $a: ${summary:-no malloc/free calls found} ($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s)"
        done
    done
    while IFS=$'\t' read -r p a k calls ir _; do
        IR[$p|$a|$k]=$(awk -v c="$calls" -v i="$ir" 'BEGIN { printf "%.0f", i / c }')
        CALLS[$p|$a|$k]=$calls
    done <"$OUT"
    section=build/bench/instr.md
    {
        echo "$INSTR_HEADING"
        echo
        echo "\`make bench-instr\`, $(date '+%F %H:%M'), mspace $REV, valgrind $(valgrind --version | sed 's/^valgrind-//'): instructions per call,"
        echo "each the inclusive Ir (callgrind) of every call the program makes to \`malloc\` / \`free\`, slow paths and"
        echo "set-up included, over the number of calls. seed: $INSTR_SEED_ROUNDS rounds ($(commas $((INSTR_SEED_ROUNDS * 10000))) mallocs"
        echo "and frees); churn: $(commas $INSTR_CHURN_PAIRS) pairs on 4,096 live blocks (plus filling and emptying the working set)."
        echo "Unlike the timings, these do not move with the load on the machine."
        echo
        echo "| allocator | seed malloc | seed free | churn malloc | churn free |"
        echo "|---|---:|---:|---:|---:|"
        for a in "${ALLOCS[@]}"; do
            echo "| $a | ${IR[seed|$a|malloc]:-?} | ${IR[seed|$a|free]:-?} | ${IR[churn|$a|malloc]:-?} | ${IR[churn|$a|free]:-?} |"
        done
        echo
        printf 'Calls counted:'
        for a in "${ALLOCS[@]}"; do
            printf ' %s %s/%s, %s/%s;' "$a" "${CALLS[seed|$a|malloc]:-?}" "${CALLS[seed|$a|free]:-?}" \
                "${CALLS[churn|$a|malloc]:-?}" "${CALLS[churn|$a|free]:-?}"
        done | sed 's/;$/ (seed malloc\/free, churn malloc\/free)./'
        echo
        printf 'Entry points seen (function@object):'
        awk -F '\t' '{ gsub(/@[?]+/, "", $6); n = split($6, e, " ")
                        for (i = 1; i <= n; i++) if (index(" " s[$2] " ", " " e[i] " ") == 0) s[$2] = s[$2] " " e[i] }
            END { for (a in s) printf "%s:%s\n", a, s[a] }' "$OUT" | sort | tr '\n' ';' | sed 's/;/; /g; s/; $/./; s/^/ /'
        echo
    } >"$section"
    cat "$section"
    # Into today's results: replace an earlier section, or add one.
    if [ -f "$MD" ]; then
        awk -v h="$INSTR_HEADING" '$0 == h { exit } { print }' "$MD" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$MD.tmp"
        { echo; cat "$section"; } >>"$MD.tmp" && mv "$MD.tmp" "$MD"
    else
        { echo "# mspace benchmark, $DATE, $HOST"; echo; echo "- machine: $(machine_line)"; echo; cat "$section"; } >"$MD"
    fi
    {
        if [ -f "$CSV" ]; then grep -v '^instr_' "$CSV"; else echo "workload,allocator,figure,median,min,max,runs"; fi
        awk -F '\t' '{ v = sprintf("%.1f", $5 / $4); printf "instr_%s,%s,%s_instructions,%s,%s,%s,1\n", $1, $2, $3, v, v, v }' "$OUT"
    } >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"
    echo
    note "added the table to $MD and $CSV ($(($(date +%s) - START_TIME)) s)"
    exit 0
fi

# ------------------------------------------------------------------ runs
for w in "${WORKLOADS[@]}"; do
    "wl_${w}_build" || { note "FAILED to build workload $w"; exit 1; }
done

RAW=build/bench/raw.tsv        # workload allocator rep figure value
: >"$RAW"
FAILED=()
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
total=$((REPS * ${#WORKLOADS[@]} * ${#ALLOCS[@]})) n=0
note "$REPS repetitions x ${#WORKLOADS[@]} workload(s) (${WORKLOADS[*]}) x ${#ALLOCS[@]} allocators (${ALLOCS[*]}); load average $LOAD_START"
# Other work running right now (the load average also remembers what just
# finished): cores kept busy over half a second, from /proc/stat.
cpu_busy_idle() { awk '$1 == "cpu" { printf "%.0f %.0f\n", $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat; }
read -r b0 i0 <<<"$(cpu_busy_idle)"; sleep 0.5; read -r b1 i1 <<<"$(cpu_busy_idle)"
OTHERS=$(awk -v b="$((b1 - b0))" -v i="$((i1 - i0))" -v n="$(nproc)" 'BEGIN { printf "%.1f", (b + i > 0 ? n * b / (b + i) : 0) }')
awk -v o="$OTHERS" 'BEGIN { exit !(o >= 0.5) }' &&
    note "other work is running ($OTHERS of $(nproc) cores busy): timings will be noisy, the 2-thread ones most"

run_one() { # WORKLOAD ALLOCATOR REP
    local w=$1 a=$2 rep=$3 out err rc fig key shown="" t0 dt
    "wl_${w}_cmd"
    env_for "$a"
    err=$(mktemp)
    t0=$(date +%s%N)
    out=$(timeout -k 5 "$RUN_TIMEOUT" "${ENVV[@]}" "${CMD[@]}" 2>"$err"); rc=$?
    dt=$(( ($(date +%s%N) - t0) / 1000000 ))
    n=$((n + 1))
    if [ $rc -ne 0 ]; then
        note "[$n/$total] $w $a rep $rep: FAILED (exit $rc)"
        tail -n 5 "$err" | sed 's/^/    | /' >&2
        FAILED+=("$w/$a/rep$rep")
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
    shown=$(printf '%s\n' "$out" | awk -v k="${WL_HEAD[$w]}" '$1 == k { print $2 }')
    note "[$n/$total] $w $a rep $rep: ${WL_HEAD[$w]} ${shown:-?} (${dt} ms; $(($(date +%s) - START_TIME)) s so far)"
}

for rep in $(seq 1 "$REPS"); do
    for w in "${WORKLOADS[@]}"; do
        for a in "${ALLOCS[@]}"; do
            run_one "$w" "$a" "$rep"
        done
    done
done
ELAPSED=$(($(date +%s) - START_TIME))

# --------------------------------------------------------------- summary
# workload allocator figure median min max count
SUMMARY_TSV=build/bench/summary.tsv
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
    END { flush() }' >"$SUMMARY_TSV"

declare -A MED MIN MAX
while IFS=$'\t' read -r w a fig med lo hi _; do
    MED[$w|$a|$fig]=$med MIN[$w|$a|$fig]=$lo MAX[$w|$a|$fig]=$hi
done <"$SUMMARY_TSV"

fmt() { # number -> 3 significant digits below 100, integer above
    awk -v x="$1" 'BEGIN { if (x >= 100) printf "%d", x + 0.5; else if (x >= 10) printf "%.1f", x; else printf "%.2f", x }'
}
fmt_fig() { # FIGURE-KEY number -> shown value (KiB in MiB, per second in millions)
    case $1 in
    *_kb) awk -v x="$2" 'BEGIN { printf "%.1f", x / 1024 }' ;;
    ops_per_sec*) fmt "$(awk -v x="$2" 'BEGIN { print x / 1e6 }')" ;;
    *) fmt "$2" ;;
    esac
}
ratio() { # a b -> a/b with 2 decimals, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
time_ratio() { # WORKLOAD FIGURE ALLOCATOR -> time relative to glibc (lower is better)
    local v=${MED[$1|$3|$2]:-} g=${MED[$1|glibc|$2]:-}
    if [ "$(better_of "$1" "$2")" = higher ]; then ratio "$g" "$v"; else ratio "$v" "$g"; fi
}
best_peer() { # WORKLOAD FIGURE -> "name value" of the best peer
    local w=$1 f=$2 a v best="" bestv="" dir
    dir=$(better_of "$w" "$f")
    for a in "${PEERS[@]}"; do
        v=${MED[$w|$a|$f]:-}
        [ -z "$v" ] && continue
        if [ -z "$bestv" ] || awk -v x="$v" -v y="$bestv" -v d="$dir" \
            'BEGIN { exit !(d == "higher" ? x > y : x < y) }'; then
            best=$a bestv=$v
        fi
    done
    echo "$best $bestv"
}

{
    echo "# mspace benchmark, $DATE, $HOST"
    echo
    echo "- machine: $(machine_line); shared with other work: at the start, load average $LOAD_START and $OTHERS cores busy"
    echo "- $REPS interleaved repetitions per allocator$([ $QUICK = 1 ] && echo " (--quick: shorter runs)"); figures are medians over them, (min–max) where shown; the whole run took ${ELAPSED} s"
    echo "- allocators: $(allocators_line)"
    for m in "${MISSING_NOTES[@]}"; do echo "- $m"; done
    echo
    echo "## Summary"
    echo
    echo "Each workload's headline figure as a ratio to glibc, lower is better (for throughput, the"
    echo "inverse of the throughput ratio: time for the same work), with the median itself in brackets."
    echo
    head="| figure |" rule="|---|"
    for a in "${ALLOCS[@]}"; do head+=" $a |" rule+="---:|"; done
    echo "$head"
    echo "$rule"
    for row in "${SUMMARY[@]}"; do
        IFS='|' read -r w f label _ _ <<<"$row"
        case " ${WORKLOADS[*]} " in *" $w "*) ;; *) continue ;; esac
        line="| $label |"
        for a in "${ALLOCS[@]}"; do
            v=${MED[$w|$a|$f]:-}
            if [ -z "$v" ]; then line+=" failed |"; continue; fi
            line+=" $(time_ratio "$w" "$f" "$a")× ($(fmt_fig "$f" "$v")) |"
        done
        echo "$line"
    done
    echo
    echo "![time relative to glibc per workload, and memory]($DATE-$HOST.png)"
    for w in "${WORKLOADS[@]}"; do
        echo
        echo "## $w"
        echo
        echo "${WL_ABOUT[$w]}."
        echo
        hf=${WL_HEAD[$w]} dir=$(better_of "$w" "${WL_HEAD[$w]}")
        read -r best bestv <<<"$(best_peer "$w" "$hf")"
        figs_of "$w"
        head="| allocator |" rule="|---|" htitle=""
        for fig in "${FIGS[@]}"; do
            IFS=: read -r key title _ <<<"$fig"
            head+=" $title |" rule+="---:|"
            [ "$key" = "$hf" ] && htitle=$title
        done
        head+=" $htitle vs glibc ($dir is better) | vs best peer${best:+ ($best)} |"
        rule+="---:|---:|"
        echo "$head"
        echo "$rule"
        for a in "${ALLOCS[@]}"; do
            row="| $a |"
            if [ -z "${MED[$w|$a|$hf]:-}" ]; then
                echo "$row failed |"
                continue
            fi
            for fig in "${FIGS[@]}"; do
                IFS=: read -r key _ style <<<"$fig"
                k="$w|$a|$key"
                if [ -z "${MED[$k]:-}" ]; then
                    row+=" ? |"
                    continue
                fi
                case $style in
                range | mibrange)
                    row+=" $(fmt_fig "$key" "${MED[$k]}") ($(fmt_fig "$key" "${MIN[$k]}")–$(fmt_fig "$key" "${MAX[$k]}")) |" ;;
                *) row+=" $(fmt_fig "$key" "${MED[$k]}") |" ;;
                esac
            done
            v=${MED[$w|$a|$hf]}
            row+=" $(ratio "$v" "${MED[$w|glibc|$hf]:-}")× | $(ratio "$v" "$bestv")× |"
            echo "$row"
        done
    done
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo
        echo "Failed runs: ${FAILED[*]}"
    fi
    # An instruction-count table made earlier today (make bench-instr) stays.
    if [ -f "$MD" ] && grep -qxF "$INSTR_HEADING" "$MD"; then
        echo
        awk -v h="$INSTR_HEADING" '$0 == h { on = 1 } on { print }' "$MD"
    fi
} >"$MD.tmp"

{
    echo "workload,allocator,figure,median,min,max,runs"
    tr '\t' ',' <"$SUMMARY_TSV"
    [ -f "$CSV" ] && grep '^instr_' "$CSV"
    true
} >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"
mv "$MD.tmp" "$MD"

# ----------------------------------------------------------------- chart
# Left: time relative to glibc per workload (log scale), one bar per
# allocator. Right: frag's memory in MiB.
chart() {
    local dat=build/bench/chart-time.dat mem=build/bench/chart-mem.dat gp=build/bench/chart.gp
    local a row w f label kind short i colors="" nt=0 nm=0
    command -v gnuplot >/dev/null || { note "gnuplot not found: no chart (apt-get install gnuplot-nox)"; return 1; }
    { printf 'workload'; for a in "${ALLOCS[@]}"; do printf '\t%s' "$a"; done; echo; } >"$mem"
    sed '1s/\tglibc/\tglibc (= 1)/' "$mem" >"$dat"
    for row in "${SUMMARY[@]}"; do
        IFS='|' read -r w f label kind short <<<"$row"
        case " ${WORKLOADS[*]} " in *" $w "*) ;; *) continue ;; esac
        if [ "$kind" = time ]; then
            nt=$((nt + 1))
            { printf '"%s"' "$short"; for a in "${ALLOCS[@]}"; do
                v=$(time_ratio "$w" "$f" "$a"); printf '\t%s' "${v/n\/a/?}"; done; echo; } >>"$dat"
        else
            nm=$((nm + 1))
            { printf '"%s"' "$short"; for a in "${ALLOCS[@]}"; do
                v=${MED[$w|$a|$f]:-}; printf '\t%s' "$([ -n "$v" ] && awk -v x="$v" 'BEGIN { printf "%.1f", x / 1024 }' || echo '?')"; done; echo; } >>"$mem"
        fi
    done
    for a in "${ALLOCS[@]}"; do
        case $a in
        mspace) colors+=" #d62728" ;; glibc) colors+=" #8c8c8c" ;; jemalloc) colors+=" #1f77b4" ;;
        tcmalloc) colors+=" #2ca02c" ;; mimalloc) colors+=" #ff7f0e" ;; *) colors+=" #9467bd" ;;
        esac
    done
    local na=${#ALLOCS[@]} term='pngcairo size 1700,640 font "DejaVu Sans,12" noenhanced'
    local out=$PNG
    gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 || {
        term='svg size 1700,640 font "DejaVu Sans,12" noenhanced'; out=${PNG%.png}.svg; }
    # The bytes the program still uses after its frees, as a line.
    local kept
    kept=$(awk -v x="${MED[frag|glibc|kept_kb]:-0}" 'BEGIN { printf "%.1f", x / 1024 }')
    # Log axis from below the fastest to above the slowest ratio.
    local yr
    yr=$(awk -F '\t' 'NR > 1 { for (i = 2; i <= NF; i++) if ($i != "?") {
            v = $i + 0; if (min == "" || v < min) min = v; if (max == "" || v > max) max = v } }
        END { if (min == "") { min = 1; max = 1 }
              if (min > 0.5) min = 0.5; if (max < 2) max = 2
              printf "%g:%g", min / 1.8, max * 3 }' "$dat")
    cat >"$gp" <<EOF
set terminal $term
set output "$out"
set datafile separator "\t"
set datafile missing "?"
set key autotitle columnheader
colors = "${colors# }"
na = $na
bw = 1.0 / (na + 1.0)
# x of allocator i's bar (i = 2..na+1) in the group of data row r
x(r, i) = r + (i - 2 - (na - 1) / 2.0) * bw
set style fill solid 0.9 border rgb "#333333"
set grid ytics lc rgb "#dddddd"
set xtics nomirror scale 0 font ",12"
set ytics nomirror
set border 3
set multiplot
set origin 0, 0
set size 0.7, 1
set title "$DATE $HOST: time relative to glibc, median of $REPS runs (log scale; below the line = faster than glibc)" font ",13"
set logscale y
set yrange [$yr]
set xrange [-0.6:$nt - 0.4]
set ylabel "time / glibc's time"
set ytics ("0.01" 0.01, "0.02" 0.02, "0.05" 0.05, "0.1" 0.1, "0.2" 0.2, "0.5" 0.5, "1" 1, "2" 2, "5" 5, "10" 10, "20" 20, "50" 50, "100" 100)
set key top left horizontal samplen 1.5 font ",12"
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "#444444" front
plot for [i=2:na+1] "$dat" using (x(\$0, i)):(column(i)):(x(\$0, i) - bw / 2):(x(\$0, i) + bw / 2):(1):(column(i)) \
         with boxxyerror lc rgb word(colors, i - 1), \
     "$dat" using 0:(NaN):xtic(1) notitle, \
     for [i=2:na+1] "$dat" using (x(\$0, i)):(column(i) >= 1 ? column(i) : NaN):(sprintf("%.2f", column(i))) \
         with labels rotate by 90 left offset 0, 0.3 font ",9" notitle, \
     for [i=2:na+1] "$dat" using (x(\$0, i)):(column(i) < 1 ? column(i) : NaN):(sprintf("%.2f", column(i))) \
         with labels rotate by 90 right offset 0, -0.3 font ",9" notitle
unset arrow 1
unset logscale y
set origin 0.7, 0
set size 0.3, 1
set title "peak resident memory, MiB (frag: also settled)" font ",13"
set xtics font ",11"
if ($kept > 0) {
    set arrow 2 from graph 0, first $kept to graph 1, first $kept nohead dt 3 lc rgb "#444444" front
    set xlabel "dotted: the $kept MiB frag still uses after its frees;\nfrag settled = RSS after those frees, settled" font ",10"
}
set yrange [0:*]
set ytics auto
set xrange [-0.6:$nm - 0.4]
set offsets 0, 0, graph 0.14, 0
set ylabel ""
unset key
plot for [i=2:na+1] "$mem" using (x(\$0, i)):(column(i)):(x(\$0, i) - bw / 2):(x(\$0, i) + bw / 2):(0):(column(i)) \
         with boxxyerror lc rgb word(colors, i - 1), \
     "$mem" using 0:(NaN):xtic(1) notitle, \
     for [i=2:na+1] "$mem" using (x(\$0, i)):(column(i)):(sprintf("%.0f", column(i))) \
         with labels rotate by 90 left offset 0, 0.3 font ",9" notitle
unset multiplot
EOF
    [ $nm -gt 0 ] || sed -i '/^set origin 0.7,/,/^unset multiplot/{/^unset multiplot/!d}; s/^set size 0.7, 1/set size 1, 1/' "$gp"
    if gnuplot "$gp" 2>build/bench/chart.log; then
        note "chart: $out"
        [ "$out" = "$PNG" ] || sed -i "s|($DATE-$HOST.png)|($DATE-$HOST.svg)|" "$MD"
    else
        note "gnuplot failed: $(head -n 3 build/bench/chart.log)"
    fi
}
chart

cat "$MD"
echo
note "wrote $MD, $CSV and the chart in ${ELAPSED} s of runs"
[ ${#FAILED[@]} -eq 0 ]
