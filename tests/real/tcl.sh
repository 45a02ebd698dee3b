#!/usr/bin/env bash
# tclsh: a dict/list-heavy script (dict lappend/unset churn, list building,
# lsort, lmap, split/join, string map, regsub, regexp -inline, binary
# format/scan, arrays). Deterministic output, compared with the plain run.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin tcl "$@"
need tclsh || real_end

cat >"$REAL_TMP/work.tcl" <<'TCL'
set n [lindex $argv 0]
set x 99
proc rnd {} { global x; set x [expr {($x * 16807) % 2147483647}] }
# dicts of lists, grown and shrunk
set d [dict create]
for {set i 0} {$i < $n} {incr i} {
    set k "k[expr {[rnd] % 30000}]"
    dict lappend d $k [format %x [rnd]]
    if {$i % 20000 == 19999} {
        foreach key [lrange [lsort [dict keys $d]] 0 4999] { dict unset d $key }
    }
}
set acc 0
dict for {k v} $d { set acc [expr {($acc * 31 + [llength $v] + [string length $k]) % 1000000007}] }
puts "dict [dict size $d] $acc"
# lists: build, sort, map, join, split
set l {}
for {set i 0} {$i < $n} {incr i} { lappend l [list [expr {[rnd] % 1000}] "item$i" [string repeat ab [expr {$i % 40}]]] }
set s [lsort -integer -index 0 [lsort -index 1 $l]]
set j [join [lmap e [lrange $s 0 9999] {lindex $e 1}] ,]
puts "list [llength $s] [string length $j] [lindex $s 0 1] [lindex $s end 1]"
set parts [split [string repeat "alpha,beta;gamma delta," 20000] ",; "]
puts "split [llength $parts] [llength [lsort -unique $parts]]"
# strings: map, regsub, append, binary
set text [string repeat "The quick brown fox 123 jumps over 456 lazy dogs. " 20000]
regsub -all {[0-9]+} $text {<&>} t2
set t3 [string map {quick slow fox cat dogs mice} $t2]
set counts [dict create]
foreach w [regexp -all -inline {[a-z]+} $t3] { dict incr counts $w }
puts "text [string length $t3] [lsort -stride 2 -index 0 $counts]"
set b ""
for {set i 0} {$i < 50000} {incr i} { append b [binary format I $i] }
binary scan $b I* ints
puts "binary [string length $b] [tcl::mathop::+ {*}$ints]"
# arrays and upvar/uplevel churn
array set arr {}
for {set i 0} {$i < 100000} {incr i} { set arr([expr {$i % 7919}],[expr {$i % 13}]) [list $i [rnd]] }
puts "array [array size arr]"
array unset arr *,1*
puts "array-after [array size arr]"
TCL

both dicts-lists tclsh "$REAL_TMP/work.tcl" 250000
real_end
