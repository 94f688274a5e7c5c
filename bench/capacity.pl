#!/usr/bin/perl
# capacity.pl - part 3 of make bench: how many keys a 1m zone holds,
# token_ratelimit against limit_req, for 48-byte and 112-byte keys
# (bench/memory.conf.in; bench/hclient.pl sends the keys):
#   trl  first-evict  keys inserted (100r/d: all live) before the first
#                     [warn] "token_ratelimit zone ... is full"
#   trl  held@2x      of 2x that many keys, how many are still held (each
#                     re-requested, newest first: Remaining 99 -> 98 shows
#                     the earlier request was kept)
#   both first-key    largest K such that, on a fresh nginx, after K
#                     distinct keys the first one is still there (binary
#                     search; limit_req at 1r/m: its second request is 503)
#   lr   held@2x      as for trl, after 2x limit_req's first-key figure
# Writes memory.txt.
use strict;
use warnings;
use File::Basename qw(dirname);
use Time::HiRes qw(time);
use lib dirname(__FILE__) . '/lib';
use Bench;

my $out = Bench::out();
my $t0 = time;
my ($t, $port);
Bench::note('memory: keys a 1m zone holds (48- and 112-byte keys)');

sub fresh {         # a fresh nginx with bench/memory.conf.in
    $t->stop if $t;
    $t = Bench::nginx('bench/memory.conf.in', 'memory/prefix', workers => 1);
    Bench::start($t);
    $port = $t->port;
}

sub client {        # client(ARGS...): hclient.pl's summary line
    my $f = "$out/memory/client.txt";
    Bench::run_to($f, 'perl', 'bench/hclient.pl', '--port', $port,
                  '--timeout', 120, @_)
        or Bench::die_("the memory client failed: " . Bench::slurp($f));
    return Bench::slurp($f);
}

sub field {         # field(NAME, LINE): NAME=value in LINE, or 0
    return $_[1] =~ /(?:^|\s)\Q$_[0]\E=(\S+)/ ? $1 : 0;
}

# kept(KIND, LEN, K): on a fresh nginx, is the first of K keys still held
# after all K were inserted?
sub kept {
    my ($kind, $len, $k) = @_;
    fresh();
    my @p = ('--path', "/$kind-$len", '--key-len', $len);
    client(@p, '--from', 1, '--to', $k, '--pipeline', 256);
    return field('status_503', client(@p, '--from', 1, '--to', 1)) == 1
        if $kind eq 'lr';
    return field('remaining_98', client(@p, '--from', 1, '--to', 1,
                                        '--hist', 'X-RateLimit-Remaining')) == 1;
}

# first_key(KIND, LEN): kept's largest K, by binary search (bounded: 2^20
# keys, then "1048576+")
sub first_key {
    my ($kind, $len) = @_;
    my ($lo, $hi) = (1, 4096);
    while (kept($kind, $len, $hi)) {
        $lo = $hi;
        $hi *= 2;
        return "$lo+" if $hi > 1048576;
    }
    while ($hi - $lo > 1) {
        my $mid = int(($lo + $hi) / 2);
        if (kept($kind, $len, $mid)) { $lo = $mid } else { $hi = $mid }
    }
    return $lo;
}

# held(KIND, LEN, N, [FROM]): insert keys 1..N on a fresh nginx (with FROM:
# keys FROM..N on the running one), then re-request N..1: how many were
# still held
sub held {
    my ($kind, $len, $n, $from) = @_;
    unless ($from) {
        fresh();
        $from = 1;
    }
    my @p = ('--path', "/$kind-$len", '--key-len', $len, '--pipeline', 256);
    client(@p, '--from', $from, '--to', $n) if $from <= $n;
    return field('status_503', client(@p, '--from', 1, '--to', $n,
                                      '--reverse')) if $kind eq 'lr';
    return field('remaining_98', client(@p, '--from', 1, '--to', $n,
                 '--reverse', '--hist', 'X-RateLimit-Remaining'));
}

my @mem;
for my $len (48, 112) {
    # token_ratelimit: keys inserted before the first "is full" warning
    fresh();
    my $log = $t->dir . '/logs/error.log';
    my $line = client('--path', "/trl-$len", '--from', 1, '--to', 1000000,
                      '--key-len', $len, '--index', '--pipeline', 32,
                      '--stop-file', $log, '--stop-re', "zone \"m$len\" is full");
    my $last = field('last', $line);
    my ($first) = $t->error_log =~ /zone "m$len" is full.*?request: "GET \S+\?i=(\d+)/;
    Bench::run_to("$out/memory/trl-$len.error.log", 'cat', $log);
    my $held = 'none';
    if (defined $first) {
        $first--;
        $held = held('trl', $len, 2 * $first, $last + 1);
    } else {
        Bench::note("  trl $len: no \"is full\" warning after $last keys");
        $first = 'none';
    }
    push @mem, "mem.trl.$len.first_evict $first",
               "mem.trl.$len.held_after_2x $held";
    Bench::note("  trl $len-byte keys: first eviction after $first keys;"
                . " held $held of " . ($first eq 'none' ? '-' : 2 * $first));
    my $k = first_key('trl', $len);
    push @mem, "mem.trl.$len.first_key_kept $k";
    Bench::note("  trl $len-byte keys: first key kept up to $k keys");

    $k = first_key('lr', $len);
    $held = $k =~ /^\d+$/ ? held('lr', $len, 2 * $k) : 'none';
    push @mem, "mem.limit_req.$len.first_key_kept $k",
               "mem.limit_req.$len.held_after_2x $held";
    Bench::note("  limit_req $len-byte keys: first key kept up to $k keys;"
                . " held $held of " . 2 * ($k =~ s/\+$//r));
}
$t->stop;
open my $fh, '>', "$out/memory.txt" or die;
print $fh "$_\n" for @mem;
close $fh;
Bench::meta('time.memory_s ' . int(time - $t0));
