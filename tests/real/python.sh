#!/usr/bin/env bash
# python3 with 4 threads allocating heavily (dicts, lists, str, bytes joins,
# large buffers, objects handed between threads through a queue), once with
# pymalloc (the default: only blocks > 512 bytes reach malloc) and once with
# PYTHONMALLOC=malloc (every object is a malloc call). The output is a set
# of checksums, which must be the same plain and under mspace.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin python "$@"

# Debian's interpreter rather than a version-manager shim (a shell script).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { need python3; real_end; }
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

cat >"$REAL_TMP/work.py" <<'EOF'
import hashlib, queue, random, sys, threading

ROUNDS = int(sys.argv[1])

def churn(tid, results):
    rng = random.Random(tid)
    h = hashlib.sha256()
    table = {}
    keep = []
    for i in range(ROUNDS):
        key = "k%d-%d" % (tid, rng.randrange(40000))
        table[key] = [rng.randrange(1 << 30) for _ in range(rng.randrange(1, 24))]
        if len(table) > 15000:                 # free a batch of entries
            for k in list(table)[:5000]:
                del table[k]
        s = "-".join(str(x) for x in range(rng.randrange(80)))
        b = b"".join(bytes([j & 255]) * rng.randrange(1, 90) for j in range(rng.randrange(1, 40)))
        h.update(s.encode()); h.update(b)
        if i % 97 == 0:                        # large blocks: mmap/mremap paths
            buf = bytearray(rng.randrange(1 << 16, 3 << 20))
            buf[-1] = i & 255
            buf += b"x" * rng.randrange(1 << 18)   # grow (realloc)
            h.update(buf[-300:])
            keep.append(bytes(buf[:4096]))
            if len(keep) > 50:
                keep = keep[25:]
        if i % 1000 == 0:
            d2 = {("%x" % j) * 3: [j] * 5 for j in range(3000)}
            h.update(repr(sorted(d2.items())[:50]).encode())
    for k in sorted(table):
        h.update(k.encode()); h.update(repr(table[k]).encode())
    results[tid] = (h.hexdigest(), len(table), sum(len(x) for x in keep))

def producer(q, n, seed):
    rng = random.Random(seed)
    for i in range(n):
        q.put([("%d:" % i) * rng.randrange(1, 60), bytes(rng.randrange(1, 3000)), {i: str(i)}])
    q.put(None)

def consumer(q, results, slot):
    h = hashlib.sha256()
    while True:
        item = q.get()
        if item is None:
            break
        h.update(item[0].encode()); h.update(len(item[1]).to_bytes(4, "little"))
        del item                               # freed by a thread that did not allocate it
    results[slot] = h.hexdigest()

results = {}
threads = [threading.Thread(target=churn, args=(t, results)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()
for tid in sorted(results):
    print("churn", tid, *results[tid])

q = queue.Queue(maxsize=256)
res2 = {}
ts = [threading.Thread(target=producer, args=(q, ROUNDS * 2, 7)),
      threading.Thread(target=consumer, args=(q, res2, "handoff"))]
for t in ts: t.start()
for t in ts: t.join()
print("handoff", res2["handoff"])

words = ["%08x" % (random.Random(1).getrandbits(32) ^ i * 2654435761 & 0xffffffff) for i in range(300000)]
words.sort()
print("sorted", hashlib.sha256(" ".join(words).encode()).hexdigest())
EOF

both threads-pymalloc "$PY" "$REAL_TMP/work.py" 12000
if [ "${STEP_MAX_HEAPS:-0}" -ge 2 ]; then
    pass "threads-pymalloc: several thread heaps ($STEP_MAX_HEAPS)"
else
    fail "threads-pymalloc: only ${STEP_MAX_HEAPS:-0} heap(s) for a 5-thread process"
fi
both threads-malloc env PYTHONMALLOC=malloc "$PY" "$REAL_TMP/work.py" 8000
real_end
