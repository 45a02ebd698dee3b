#!/usr/bin/env bash
# perl: hash- and regex-heavy script (hashes of arrays, deletes, big strings,
# global matches and substitutions, sorting records with a comparator) and
# an ithreads script whose threads fill hashes and pass items through a
# Thread::Queue to the main thread. Output is checksums; hash seeds fixed.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
real_begin perl "$@"
need perl || real_end
export PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0

cat >"$REAL_TMP/hashes.pl" <<'PERL'
use strict; use warnings;
use Digest::MD5 qw(md5_hex);
my $n = shift // 120000;
my ($x, %h, %idx, @keep) = (12345);
sub rnd { $x = ($x * 16807) % 2147483647; return $x }
for my $i (1 .. $n) {
    my $k = sprintf "key%06d-%s", rnd() % 60000, join "", map { chr(97 + rnd() % 26) } 1 .. (rnd() % 12 + 1);
    push @{ $h{substr $k, 0, 7} }, $k;
    $idx{$k} .= sprintf "%x;", $i;
    if ($i % 5000 == 0) {                     # big strings, then drop them
        push @keep, "abc" x (rnd() % 200000);
        shift @keep if @keep > 8;
        delete @idx{ grep { /[aeiou]{2}/ } keys %idx };
    }
}
my $ctx = Digest::MD5->new;
for my $b (sort keys %h) { $ctx->add($b, scalar @{ $h{$b} }, join ",", sort @{ $h{$b} }) }
print "buckets ", scalar(keys %h), " ", $ctx->hexdigest, "\n";
print "index ", scalar(keys %idx), " ", md5_hex(join "\n", map { "$_=$idx{$_}" } sort keys %idx), "\n";
# regex heavy: tokenize a generated text, count words, substitute
my $text = join " ", map { ("lorem", "ipsum$_", "dolor", "sit" x ($_ % 4), "amet,") } 1 .. 60000;
my %wc; $wc{lc $1}++ while $text =~ /(\w+)/g;
(my $t2 = $text) =~ s/(\d+)/<$1>/g;
$t2 =~ s/\b(\w)(\w*)\b/\U$1\E$2/g;
my @parts = split /,\s*/, $t2;
print "words ", scalar(keys %wc), " ", md5_hex(join ",", map { "$_:$wc{$_}" } sort keys %wc), "\n";
print "subst ", length($t2), " ", scalar(@parts), " ", md5_hex($t2), "\n";
# nested structures, sort with custom comparator, sprintf/pack
my @recs = map { { id => $_, name => "n" . (rnd() % 1000), tags => [ map { rnd() % 50 } 1 .. 5 ] } } 1 .. 60000;
my @sorted = sort { $a->{name} cmp $b->{name} or $b->{tags}[0] <=> $a->{tags}[0] or $a->{id} <=> $b->{id} } @recs;
print "records ", md5_hex(join "|", map { pack("N", $_->{id}) . $_->{name} . "@{$_->{tags}}" } @sorted), "\n";
print "keep ", length(join "", @keep), "\n";
PERL

cat >"$REAL_TMP/threads.pl" <<'PERL'
use strict; use warnings;
use threads; use Thread::Queue; use Digest::MD5 qw(md5_hex);
my $q = Thread::Queue->new;
my @w = map {
    my $t = $_;
    threads->create(sub {
        my (%h, $x); $x = 1000 + $t;
        for my $i (1 .. 80000) {
            $x = ($x * 16807) % 2147483647;
            $h{ $x % 20000 } .= chr(65 + $x % 26);
            $q->enqueue([ $t, $i, "v" x ($x % 300) ]) if $i % 10 == 0;
        }
        return md5_hex(join ",", map { "$_=$h{$_}" } sort { $a <=> $b } keys %h);
    });
} 0 .. 2;
my @sums = map { $_->join } @w;
$q->end;
my ($n, $len) = (0, 0);
while (defined(my $item = $q->dequeue)) { $n++; $len += length $item->[2] }
print "thread $_ $sums[$_]\n" for 0 .. $#sums;
print "queue $n $len\n";
PERL

both hashes-regex perl "$REAL_TMP/hashes.pl"
if perl -Mthreads -e 1 2>/dev/null; then
    both ithreads perl "$REAL_TMP/threads.pl"
else
    fail "ithreads: this perl has no thread support (perl -Mthreads failed)"
fi
real_end
