#!/usr/bin/env bash
# git on a generated tree of 2,000 files: init, add, commit, three rounds of
# edits (diff, add, commit), log, blame, gc, repack, fsck, archive. Every
# git command runs plain in plain/repo and under mspace in mspace/repo;
# author, committer and dates are fixed, so object ids and every output must
# be identical. Pack files are not compared byte for byte (threaded delta
# search may order them differently); their contents are.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin git "$@"
need git awk sed || real_end
cd "$REAL_TMP" || real_end

export HOME=$REAL_TMP/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL=committer@example.com
export GIT_AUTHOR_DATE="2024-01-02T03:04:05+0000" GIT_COMMITTER_DATE="2024-01-02T03:04:05+0000"
export GIT_CONFIG_COUNT=3
export GIT_CONFIG_KEY_0=gc.auto GIT_CONFIG_VALUE_0=0
export GIT_CONFIG_KEY_1=maintenance.auto GIT_CONFIG_VALUE_1=false
export GIT_CONFIG_KEY_2=pack.threads GIT_CONFIG_VALUE_2=2
mkdir -p "$HOME"

# 40 directories x 50 files of 20-120 lines each.
mkdir -p src
awk 'BEGIN {
    x = 4242
    for (d = 0; d < 40; d++) {
        system("mkdir -p src/dir" d)
        for (f = 0; f < 50; f++) {
            name = sprintf("src/dir%d/file%02d.txt", d, f)
            x = (x * 16807) % 2147483647; lines = 20 + x % 100
            for (l = 0; l < lines; l++) {
                x = (x * 16807) % 2147483647
                printf "line %d of %s: value %d %s\n", l, name, x, (x % 3 ? "alpha" : "beta gamma") > name
            }
            close(name)
        }
    }
}'
for mode in plain mspace; do
    cp -r src "$mode/repo"
done

# Deterministic edits between commits (not a git command: runs unpreloaded).
edit_tree() { # MODE ROUND
    local repo=$REAL_TMP/$1/repo r=$2
    find "$repo" -path "$repo/.git" -prune -o -name "file*$r.txt" -print | sort |
        xargs sed -i "s/alpha/alpha-r$r/; 3d; \$a appended in round $r"
    rm -rf "$repo/dir$((r * 7))"
    mkdir -p "$repo/new$r"
    seq 1 $((r * 2000)) >"$repo/new$r/numbers.txt"
}

g() { # STEP git-args... (run in MODE/repo)
    local step=$1; shift
    both "$step" git -C "$REAL_TMP/@MODE@/repo" "$@"
}

g init init -q -b main
g add-1 add -A
g commit-1 commit -q -m "initial import"
for r in 1 2 3; do
    edit_tree plain $r
    edit_tree mspace $r
    g "diff-$r" diff --stat -p
    g "add-$((r + 1))" add -A
    g "status-$r" status --porcelain=v2
    g "commit-$((r + 1))" commit -q -m "round $r of edits"
done
g head rev-parse HEAD 'HEAD^{tree}'
g log log --stat --format="%H %T %an %ad %s"
g log-patch log -p --format=%H
g blame blame -w dir1/file01.txt
g gc gc -q
g repack repack -a -d -f -q --window=50 --depth=20
g fsck fsck --full --strict --no-progress
g objects cat-file --batch-all-objects --batch-check
g rev-list rev-list --objects --all
g archive archive --format=tar HEAD
g grep grep -c "beta gamma" HEAD~2
commits=$(grep -c '^[0-9a-f]\{40\} [0-9a-f]\{40\} ' "$REAL_TMP/plain/log.out")
if [ "$commits" -eq 4 ] && [ -s "$REAL_TMP/plain/diff-3.out" ]; then
    pass "history: 4 commits, HEAD $(head -c 12 "$REAL_TMP/plain/head.out") in both runs"
else
    fail "history: expected 4 commits and a non-empty diff, got $commits commits (test setup problem)"
fi
real_end
