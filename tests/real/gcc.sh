#!/usr/bin/env bash
# gcc -O2 -g on a generated C file of 2,000 functions and g++ -O2 on a
# generated template-heavy C++ file, with the whole toolchain (gcc, cc1,
# as, collect2, ld) under mspace. The objects must be byte-identical to the
# plain build, and the linked programs (which malloc too) must print the
# same thing.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin gcc "$@"
need gcc g++ awk size || real_end
cd "$REAL_TMP" || real_end

awk -v n=2000 'BEGIN {
    print "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>"
    for (i = 0; i < n; i++) {
        printf "static unsigned long f%d(unsigned long x) {\n", i
        printf "    unsigned long acc = x * %du + %du;\n", i * 2 + 1, i
        printf "    if (x %% %d == 0) {\n", i % 7 + 2
        printf "        char *p = malloc(%d + (x & 255));\n", i % 300 + 1
        printf "        if (!p) abort();\n"
        printf "        memset(p, (int)x, %d);\n", i % 300 + 1
        printf "        acc += (unsigned char)p[x %% %d];\n", i % 300 + 1
        printf "        free(p);\n    }\n"
        printf "    acc ^= acc >> %d;\n", i % 13 + 1
        if (i % 4 != 0)
            printf "    acc += f%d(acc >> 7);\n", i - 1
        printf "    return acc;\n}\n"
    }
    printf "static unsigned long (*const tab[%d])(unsigned long) = {\n", n
    for (i = 0; i < n; i++) printf "f%d,%s", i, (i % 16 == 15) ? "\n" : ""
    print "};"
    print "int main(void) {"
    print "    unsigned long sum = 0;"
    printf "    for (unsigned i = 0; i < %d; i++) {\n", n
    print "        sum = sum * 1099511628211u ^ tab[i](i * 2654435761u);"
    print "        if (i % 500 == 499) printf(\"%u %016lx\\n\", i, sum);"
    print "    }"
    print "    printf(\"sum %016lx\\n\", sum);"
    print "    return 0;"
    print "}"
}' >gen.c

awk -v n=10 'BEGIN {
    print "#include <algorithm>\n#include <cstdio>\n#include <functional>\n#include <map>"
    print "#include <memory>\n#include <set>\n#include <string>\n#include <unordered_map>\n#include <vector>"
    print "template <int N> struct Node { std::string key; std::vector<long> v; std::map<std::string, long> m; };"
    for (i = 0; i < n; i++) {
        printf "static long g%d(long seed) {\n", i
        printf "    std::map<std::string, std::vector<Node<%d>>> tbl;\n", i
        printf "    std::unordered_map<long, std::unique_ptr<Node<%d>>> own;\n", i
        printf "    for (long k = 0; k < %d; k++) {\n", 40 + i % 30
        printf "        Node<%d> nd; nd.key = std::to_string(seed * %d + k);\n", i, i + 3
        printf "        nd.v.assign(k %% 17 + 1, k); nd.m[nd.key + \"x\"] = k;\n"
        printf "        own[k] = std::make_unique<Node<%d>>(nd);\n", i
        printf "        tbl[nd.key.substr(0, 2)].push_back(std::move(nd));\n"
        printf "    }\n"
        printf "    std::set<long> s; long acc = 0;\n"
        printf "    for (auto &kv : tbl) for (auto &nd : kv.second) { acc += (long)nd.v.size(); s.insert(acc %% %d); }\n", i + 7
        printf "    std::vector<long> w(s.begin(), s.end());\n"
        printf "    std::sort(w.begin(), w.end(), std::greater<long>());\n"
        printf "    std::function<long(long)> f = [&](long x) { return x + (long)own.size() + (w.empty() ? 0 : w[0]); };\n"
        printf "    return f(acc);\n}\n"
    }
    print "int main() {\n    long sum = 0;"
    for (i = 0; i < n; i++) printf "    sum = sum * 31 + g%d(%d);\n", i, i
    print "    std::printf(\"sum %ld\\n\", sum);\n    return 0;\n}"
}' >gen.cc
echo "  generated gen.c ($(wc -l <gen.c) lines), gen.cc ($(wc -l <gen.cc) lines)"

same_obj() { # DESC FILE: compare plain/FILE and mspace/FILE, show sizes if not
    same_file "$1" "plain/$2" "mspace/$2" ||
        size "plain/$2" "mspace/$2" 2>&1 | sed 's/^/       | /'
}

both cc1-O2-g gcc -O2 -g -c gen.c -o @MODE@/gen.o
same_obj "gen.o (plain vs mspace build)" gen.o
both link-c gcc @MODE@/gen.o -o @MODE@/gen
both run-c "$REAL_TMP/@MODE@/gen"

both cc1plus-O2 g++ -O2 -std=c++17 -c gen.cc -o @MODE@/gencc.o
same_obj "gencc.o (plain vs mspace build)" gencc.o
both link-cc g++ @MODE@/gencc.o -o @MODE@/gencc
both run-cc "$REAL_TMP/@MODE@/gencc"
real_end
