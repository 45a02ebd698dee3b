# The SQL of the sqlite workload (scripts/bench.sh): an in-memory database
# whose 64 MiB page cache lives in malloc, filled by 100,000 single-row
# INSERTs in one transaction, then indexed, queried, updated, thinned out
# and vacuumed. Deterministic: every allocator runs the same statements.
#   awk -f bench/sqlite.awk > sqlite.sql
BEGIN {
    print "PRAGMA cache_size = -65536;"
    print "CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, price REAL, note TEXT);"
    print "BEGIN;"
    x = 777
    for (i = 1; i <= 100000; i++) {
        x = (x * 16807) % 2147483647
        printf "INSERT INTO item VALUES(%d, %d, 'name-%d', %d.%02d, '%s');\n", i, x % 97, x % 5000, x % 1000, x % 100, substr("the quick brown fox jumps over the lazy dog again and again", 1 + x % 20, 5 + x % 37)
    }
    print "COMMIT;"
    print "CREATE INDEX item_grp ON item(grp, price);"
    print "CREATE INDEX item_name ON item(name);"
    print "SELECT grp, count(*), round(sum(price), 2), min(name), max(name) FROM item GROUP BY grp ORDER BY grp;"
    print "SELECT name, count(*) FROM item GROUP BY name ORDER BY 2 DESC, 1 LIMIT 20;"
    print "UPDATE item SET note = upper(note) || printf('-%08d', id) WHERE id % 3 = 0;"
    print "DELETE FROM item WHERE id % 7 = 0;"
    print "VACUUM;"
    print "SELECT count(*), round(sum(price), 2) FROM item;"
}
