#!/usr/bin/env bash
# sqlite3: 100,000 single-row INSERTs in one transaction (a 64 MB page
# cache, so the cache lives in malloc), indexes, GROUP BY / join / window /
# json queries, UPDATE, DELETE, VACUUM, then a full .dump and an
# integrity check. Query output and the dump must match the plain run.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin sqlite "$@"
need sqlite3 awk || real_end

awk 'BEGIN {
    print "PRAGMA cache_size = -65536;"
    print "CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, price REAL, note TEXT);"
    print "CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT);"
    print "BEGIN;"
    for (g = 0; g < 97; g++) printf "INSERT INTO grp VALUES(%d, %cgroup-%02d%c);\n", g, 39, g, 39
    x = 777
    for (i = 1; i <= 100000; i++) {
        x = (x * 16807) % 2147483647
        printf "INSERT INTO item VALUES(%d, %d, %cname-%d%c, %d.%02d, %c%s%c);\n", i, x % 97, 39, x % 5000, 39, x % 1000, x % 100, 39, substr("the quick brown fox jumps over the lazy dog again and again", 1 + x % 20, 5 + x % 37), 39
    }
    print "COMMIT;"
    print "CREATE INDEX item_grp ON item(grp, price);"
    print "CREATE INDEX item_name ON item(name);"
    print "SELECT grp, count(*), round(sum(price), 2), round(avg(price), 4), min(name), max(name) FROM item GROUP BY grp ORDER BY grp;"
    print "SELECT g.label, count(DISTINCT i.name), length(group_concat(i.note, \047|\047)) FROM item i JOIN grp g ON g.id = i.grp WHERE i.price > 500 GROUP BY g.label ORDER BY 2 DESC, 1 LIMIT 20;"
    print "SELECT name, price, rank() OVER (PARTITION BY grp ORDER BY price DESC, id) AS r FROM item WHERE grp IN (3, 50) ORDER BY grp, r LIMIT 40;"
    print "SELECT json_group_array(json_object(\047id\047, id, \047n\047, name)) FROM (SELECT id, name FROM item WHERE note LIKE \047%fox%\047 ORDER BY id LIMIT 200);"
    print "UPDATE item SET note = upper(note) || printf(\047-%08d\047, id) WHERE id % 3 = 0;"
    print "DELETE FROM item WHERE price < 100;"
    print "VACUUM;"
    print "SELECT count(*), sum(length(note)), total(price) FROM item;"
    print "SELECT substr(note, 1, 8) AS k, count(*) FROM item GROUP BY k HAVING count(*) > 100 ORDER BY 2 DESC, 1 LIMIT 30;"
}' >"$REAL_TMP/load.sql"

REAL_STDIN=$REAL_TMP/load.sql both load-and-query sqlite3 "$REAL_TMP/@MODE@/t.db"
both dump sqlite3 "$REAL_TMP/@MODE@/t.db" .dump
both integrity sqlite3 "$REAL_TMP/@MODE@/t.db" "PRAGMA integrity_check;"
both memory-db sqlite3 :memory: "CREATE TABLE m(a, b); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000) INSERT INTO m SELECT i, hex(randomblob(0)) || printf('%0*d', i % 300, i) FROM c; SELECT count(*), sum(length(b)) FROM m; SELECT a % 10, count(*), max(length(b)) FROM m GROUP BY 1 ORDER BY 1;"
real_end
