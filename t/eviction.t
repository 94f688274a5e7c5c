#!/usr/bin/perl
# Eviction cannot free an attacker: when a small zone is flooded with fresh
# keys, the least recently used open keys go first, keys at their limit
# stay (and stay blocked), no request fails, and the "is full" warning is
# logged at most once a minute.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use TRL;

my $t = TRL->new;

# Zone "low" has its rate lowered by a reload later on.
sub conf {
    my ($low_rate) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=small:64k rate=2r/m;
    token_ratelimit_zone \$http_x_key zone=low:64k rate=$low_rate;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            token_ratelimit zone=small;
            empty_gif;
        }
        location /low {
            token_ratelimit zone=low;
            empty_gif;
        }
    }
EOF
}

$t->write_config(conf('3r/m'));
$t->run;

# --- a keep-alive connection with pipelined HTTP/1.1 requests -------------

sub ka_connect { $t->connect_keepalive }

sub ka_raw {
    my ($key, $path) = @_;
    $path //= '/';
    return "GET $path HTTP/1.1\r\nHost: localhost\r\nX-Key: $key\r\n\r\n";
}

sub ka_pipeline { TRL::pipeline(@_) }

sub one {
    my ($s, $key, $path) = @_;
    return (ka_pipeline($s, ka_raw($key, $path)))[0];
}

my $s = ka_connect();

# Blocked keys: each at its limit (2 of 2) and rejected once.
my @blocked = map { "blocked-$_" } 1 .. 8;
for my $k (@blocked) {
    my @r = ka_pipeline($s, map { ka_raw($k) } 1 .. 3);
    is(join(' ', map { $_->{status} } @r), '200 200 429', "$k: blocked");
}

# Open keys: used once early, not at their limit.
my @open = map { "open-$_" } 1 .. 8;
for my $k (@open) {
    is(one($s, $k)->{headers}{'x-ratelimit-remaining'}, 1, "$k: used once");
}

# The capacity of a 64k zone is a few hundred keys (80 + 4 bytes a key, at
# most 65536 / 84 = 780); 16000 fresh keys are more than 20 times that.
my $FLOOD = 16000;
my $BATCH = 400;
my $start = time;
my (%status, $bad_headers);
for (my $i = 0; $i < $FLOOD; $i += $BATCH) {
    my @r = ka_pipeline($s, map { ka_raw("fresh-$_") } $i .. $i + $BATCH - 1);
    for (@r) {
        $status{$_->{status}}++;
        $bad_headers++ unless ($_->{headers}{'x-ratelimit-remaining'} // '')
                              eq '1';
    }
}
my $took = time - $start;
diag(sprintf "flood: %d requests in %.2f s", $FLOOD, $took);
is(join(' ', map { "$_:$status{$_}" } sort keys %status), "200:$FLOOD",
   'flood: every fresh key admitted, no request failed');
ok(!$bad_headers, 'flood: every fresh key had 1 place left');

# A blocked key stays blocked; the flood could not free it.
for my $k (@blocked) {
    my $r = one($s, $k);
    is($r->{status}, 429, "$k: still rejected after the flood");
}

# An open key used early was evicted: it has its full quota again.
for my $k (@open) {
    my $r = one($s, $k);
    is($r->{status}, 200, "$k: admitted");
    is($r->{headers}{'x-ratelimit-remaining'}, 1,
       "$k: was evicted (full quota again)");
}

# The flood is still going on: a second round, and blocked keys are still
# rejected (a rejection keeps a key blocked).
for my $round (1 .. 2) {
    my %st;
    for (my $i = 0; $i < 4000; $i += $BATCH) {
        $st{$_->{status}}++ for ka_pipeline($s,
            map { ka_raw("fresh-$round-$_") } $i .. $i + $BATCH - 1);
    }
    is(join(' ', map { "$_:$st{$_}" } sort keys %st), '200:4000',
       "flood round $round: all admitted");
    is(join(' ', map { one($s, $_)->{status} } @blocked),
       join(' ', (429) x @blocked), "flood round $round: blocked keys still "
                                    . 'rejected');
}

# The capacity, measured: 3000 keys used once each, then asked again,
# newest first.  A key still in the zone answers with 0 places left (and
# is now at its limit, so it stays); an evicted one comes back with 1 left,
# and, being open, it can only push out other keys already counted as
# evicted.  Survivors plus the blocked keys fill the zone.
{
    my @keys = map { "cap-$_" } 1 .. 3000;
    for (my $i = 0; $i < @keys; $i += $BATCH) {
        my $end = $i + $BATCH - 1 < $#keys ? $i + $BATCH - 1 : $#keys;
        ka_pipeline($s, map { ka_raw($_) } @keys[$i .. $end]);
    }
    my $kept = 0;
    my @rev = reverse @keys;
    for (my $i = 0; $i < @rev; $i += $BATCH) {
        my $end = $i + $BATCH - 1 < $#rev ? $i + $BATCH - 1 : $#rev;
        $kept += grep { ($_->{headers}{'x-ratelimit-remaining'} // '') eq '0' }
            ka_pipeline($s, map { ka_raw($_) } @rev[$i .. $end]);
    }
    my $capacity = $kept + @blocked;
    diag("measured capacity of a 64k zone: about $capacity keys");
    cmp_ok($capacity, '>', 100, 'the 64k zone holds some hundreds of keys');
    cmp_ok($capacity, '<', 780, 'and no more than 64k / 84 bytes');
    cmp_ok($FLOOD, '>=', 20 * $capacity, 'the flood was 20 times the capacity');
}

close $s;

# Keys that reach their limit because a reload lowered the rate: "a
# changed rate applies at once to the kept counts", so they are at their
# limit and must outlive a flood of fresh keys as well as any blocked key.
# Zone "low": 3r/m, then 2r/m; keys used twice (open at 3r/m, at their
# limit at 2r/m) and keys used once (open either way, to be evicted).
$s = ka_connect();
my @lowered = map { "lowered-$_" } 1 .. 8;
my @low_open = map { "low-open-$_" } 1 .. 8;
is(join(' ', map { $_->{status} }
            ka_pipeline($s, map { (ka_raw($_, '/low')) x 2 } @lowered)),
   join(' ', (200) x 16), 'zone low: keys used twice at 3r/m');
is(join(' ', map { $_->{status} }
            ka_pipeline($s, map { ka_raw($_, '/low') } @low_open)),
   join(' ', (200) x 8), 'zone low: keys used once at 3r/m');
close $s;
my ($rc, $out) = $t->reload(conf('2r/m'));
is($rc, 0, 'reload: zone low 3r/m -> 2r/m') or diag($out);
$s = ka_connect();
{
    my %st;
    for (my $i = 0; $i < $FLOOD; $i += $BATCH) {
        $st{$_->{status}}++ for ka_pipeline($s,
            map { ka_raw("fresh-low-$_", '/low') } $i .. $i + $BATCH - 1);
    }
    is(join(' ', map { "$_:$st{$_}" } sort keys %st), "200:$FLOOD",
       'zone low: flood at 2r/m, all admitted');
}
is(join(' ', map { one($s, $_, '/low')->{headers}{'x-ratelimit-remaining'} }
             @low_open),
   join(' ', (1) x @low_open), 'zone low: keys used once were evicted');
# A key whose kept count reaches the limit only through a lowered rate is
# still on its stripe's open LRU list; eviction re-checks it against the
# current rate and keeps it.
is(join(' ', map { one($s, $_, '/low')->{status} } @lowered),
   join(' ', (429) x @lowered),
   'zone low: keys at their limit through the lowered rate still rejected '
   . 'after the flood');
close $s;

# nginx is still fine.
is($t->get('/', headers => { 'X-Key' => 'after' })->{status}, 200,
   'nginx answers after the flood');
ok(kill(0, $t->master_pid), 'master still running');

# At most one "is full" line per zone per minute; there were evictions of
# live counts in both zones, so exactly one each.
for my $zone ('small', 'low') {
    my @full = grep { /zone "$zone" is full/ } split /\n/, $t->error_log;
    is(scalar @full, 1, "zone $zone: one \"is full\" warning in all the "
                        . 'flooding') or diag(join "\n", @full);
    like($full[0] // '', qr/\[warn\].*token_ratelimit zone "$zone" is full: \d+ keys with live counts were evicted since the last report; consider a larger zone/,
         "zone $zone: the warning names the zone and the number of keys");
}

$t->stop;
$t->no_alerts;
done_testing;
