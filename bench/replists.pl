#!/usr/bin/perl
# replists.pl DIR [N] - the lists of make bench-reputation, the same on
# every run (a fixed-seed LCG, not Perl's rand): N (default 1000000)
# disjoint IPv4 ranges "a.b.c.d-e.f.g.h" of 1 to 256 addresses, in order,
# spread over 1.0.0.0-223.255.255.255 and clear of the ranges a
# reputation list may not cover (private, loopback, link-local, CGNAT).
#   DIR/r1m.txt     all N ranges
#   DIR/r100k.txt   every 10th of them;  DIR/r1k.txt  every 1000th
#   DIR/geo1m.conf  the N ranges as nginx geo "ranges" lines ("a-b 1;")
#   DIR/addrs.txt   "listed ADDR" (the first address of the middle range,
#                   one of every list) and "unlisted ADDR" (the address
#                   right after it: in a gap of every list)
use strict;
use warnings;

my ($dir, $n) = @ARGV;
die "usage: $0 DIR [N]\n" unless defined $dir && -d $dir;
$n //= 1000000;
die "N must be a multiple of 2000\n" unless $n =~ /^\d+$/ && $n && $n % 2000 == 0;

# Numerical Recipes' 32-bit LCG: the same numbers on every platform
my $seed = 13;
sub rnd { $seed = (1664525 * $seed + 1013904223) % 4294967296; $seed >> 8 }

my @holes = map { [ip($_->[0]), ip($_->[0]) + 2 ** (32 - $_->[1]) - 1] }
    (['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8],
     ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]);
my $end = ip('223.255.255.255');
# the mean stride that spreads N ranges over the space (holes aside)
my $gap = int(3.5e9 / $n) - 128;
$gap = 2 if $gap < 2;

open my $r1m, '>', "$dir/r1m.txt" or die "$dir/r1m.txt: $!";
open my $r100k, '>', "$dir/r100k.txt" or die;
open my $r1k, '>', "$dir/r1k.txt" or die;
open my $geo, '>', "$dir/geo1m.conf" or die;
print $_ "# make bench-reputation (bench/replists.pl): $n ranges, seed 13\n"
    for $r1m, $r100k, $r1k;
my ($a, $listed, $unlisted) = (ip('1.0.0.0'));
for my $i (0 .. $n - 1) {
    $a += rnd() % (2 * $gap);
    my $b = $a + rnd() % 256;
    for my $h (@holes) {
        ($a, $b) = ($h->[1] + 1, $h->[1] + 1 + $b - $a)
            if $a <= $h->[1] && $b >= $h->[0];
    }
    die "$n ranges do not fit below 224.0.0.0\n" if $b >= $end;
    my $line = addr($a) . '-' . addr($b);
    print $r1m "$line\n";
    print $geo "$line 1;\n";
    print $r100k "$line\n" if $i % 10 == 0;
    print $r1k "$line\n" if $i % 1000 == 0;
    ($listed, $unlisted) = (addr($a), addr($b + 1)) if $i == $n / 2;
    $a = $b + 2;
}
close $_ or die for $r1m, $r100k, $r1k, $geo;
open my $fh, '>', "$dir/addrs.txt" or die;
print $fh "listed $listed\nunlisted $unlisted\n";
close $fh;

sub ip { my @o = split /\./, shift; ($o[0] << 24) | ($o[1] << 16) | ($o[2] << 8) | $o[3] }
sub addr { my $v = shift; join '.', $v >> 24, ($v >> 16) & 255, ($v >> 8) & 255, $v & 255 }
