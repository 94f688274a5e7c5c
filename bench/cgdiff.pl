#!/usr/bin/perl
# cgdiff.pl DIR BASE COLUMN K1 K2 - where a column's instructions per
# request go, against a base column (stock), function by function.
#
# Reads DIR/<col>.<K>.annotate.txt (callgrind_annotate --inclusive=no) of
# both columns at K1 and K2 requests.  Per function, its instructions per
# request are (Ir(K2) - Ir(K1)) / (K2 - K1), which cancels start-up; the
# table lists the functions by their per-request difference, COLUMN minus
# BASE, largest first, and marks those of the module (its .so).
use strict;
use warnings;

my ($dir, $base, $col, $k1, $k2) = @ARGV;
die "usage: $0 DIR BASE COLUMN K1 K2\n" unless defined $k2 && $k2 > $k1;

sub read_annotate {
    my ($file) = @_;
    my (%ir, $total);
    open my $fh, '<', $file or die "$file: $!\n";
    while (<$fh>) {
        next unless /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.+?)\s*$/;
        my ($n, $what) = ($1, $2);
        $n =~ tr/,//d;
        if ($what eq 'PROGRAM TOTALS') {
            $total = $n;
            next;
        }
        $ir{$what} += $n;
    }
    close $fh;
    return (\%ir, $total);
}

sub per_request {
    my ($name) = @_;
    my ($a, $ta) = read_annotate("$dir/$name.$k1.annotate.txt");
    my ($b, $tb) = read_annotate("$dir/$name.$k2.annotate.txt");
    my %per;
    for my $f (keys %$a, keys %$b) {
        $per{$f} = (($b->{$f} // 0) - ($a->{$f} // 0)) / ($k2 - $k1);
    }
    return (\%per, (($tb // 0) - ($ta // 0)) / ($k2 - $k1));
}

my ($pb, $tb) = per_request($base);
my ($pc, $tc) = per_request($col);

my %diff;
for my $f (keys %$pb, keys %$pc) {
    $diff{$f} = ($pc->{$f} // 0) - ($pb->{$f} // 0);
}

printf "# %s against %s: instructions per request, (Ir(%d) - Ir(%d)) / %d\n",
    $col, $base, $k2, $k1, $k2 - $k1;
printf "# total: %s %.1f, %s %.1f, difference %+.1f\n", $col, $tc, $base, $tb,
    $tc - $tb;
my $module = 0;
for my $f (keys %$pc) {
    $module += $pc->{$f} if $f =~ /token_ratelimit|\/src\/(core|nginx)\//;
}
printf "# in the module's own code (its .so): %.1f per request\n", $module;
printf "#\n# %9s %9s %9s  %s\n", 'diff', $col, $base, 'file:function [object]';

my @rows = sort { $diff{$b} <=> $diff{$a} } grep { abs($diff{$_}) >= 0.5 }
    keys %diff;
for my $f (@rows) {
    my $mark = $f =~ /token_ratelimit|\/src\/(core|nginx)\// ? '*' : ' ';
    printf "%s %+9.1f %9.1f %9.1f  %s\n", $mark, $diff{$f}, $pc->{$f} // 0,
        $pb->{$f} // 0, $f;
}
print "# (* : the module's code)\n";
