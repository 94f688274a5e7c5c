#!/usr/bin/perl
# Async cluster sync ("sync"): three nginx nodes share one Redis.
#
# - Paced load on one key from all three nodes at once: in every sliding
#   window the cluster admits at least N (nobody double counts) and at most
#   N + what the other nodes admit during one interval plus a round trip;
#   no node alone ever admits more than N; published with EVALSHA.
# - Redis data: one HASH per (zone, key) named prefix{zone:key}, listed by
#   redis-cli --scan, fields are time cells (Redis time / ceil(W/20) ms),
#   values add up to the admissions, always a TTL of at most W + one cell,
#   and the key is gone once its admissions are older than that.
# - DEL of the key resets it cluster-wide within one second plus two
#   intervals, also on the node that made every admission itself.
# - Keys that are not plain printable ASCII (binary, {, }, space, x: ...)
#   are named x:<lowercase hex>.
# - count=failed: only admissions whose outcome counts are published.
#
# A node decides at once on the cluster total it last read; before asserting
# what a node decides about a key that changed elsewhere, the test lets it
# read the total (peek(): a request that never counts, then 3 intervals).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $NODES = 3;
my $INTERVAL = 0.05;          # interval=50ms
my $W = 2;                    # zone "load": 20r/2s, cells of 100 ms
my $N = 20;
my $CELL = 0.1;
my $PACE = 0.02;              # each load client: one request per 20 ms at most

my @t = map { TRL->new(workers => 2) } 1 .. $NODES;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;
my $backend = $t[0]->start_backend('BACKEND');

for my $t (@t) {
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=load:1m rate=${N}r/${W}s sync;
    token_ratelimit_zone \$http_x_key zone=slow:1m rate=6r/m sync=async;
    token_ratelimit_zone \$http_x_key zone=hx:1m rate=6r/m sync;
    token_ratelimit_zone \$binary_remote_addr zone=bin:1m rate=6r/m sync;
    token_ratelimit_zone \$http_x_key zone=cf:1m rate=5r/m sync;
    token_ratelimit_redis $raddr interval=50ms timeout=100ms;
    proxy_read_timeout 10s;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /load { token_ratelimit zone=load; empty_gif; }
        location /slow { token_ratelimit zone=slow; empty_gif; }
        location /hx { token_ratelimit zone=hx; empty_gif; }
        location /bin { token_ratelimit zone=bin; empty_gif; }
        location /cf/ {
            token_ratelimit zone=cf count=failed;
            proxy_pass http://127.0.0.1:$backend/;
        }
        # a request that never counts: it makes the node read the key's
        # cluster total (see peek())
        location /peek-slow { token_ratelimit zone=slow count=failed;
                              empty_gif; }
        location /peek-cf { token_ratelimit zone=cf count=failed; empty_gif; }
    }
EOF
    $t->run;
}

sub hit {
    my ($i, $path, $key) = @_;
    my %h = defined $key ? (headers => { 'X-Key' => $key }) : ();
    return $t[$i]->get($path, %h);
}

# A node decides at once on the cluster total it last read.  Before a test
# asserts what a node decides about a key whose count changed on other
# nodes, the node must have read the new total: a request that never counts
# (count=failed, answered 200) for the key on every given node, then three
# intervals.
sub peek {
    my ($zone, $key, @nodes) = @_;
    hit($_, "/peek-$zone", $key) for @nodes;
    sleep 3 * $INTERVAL;
}

# Waits (at most 2 s) until the sum of a Redis hash is the given value.
sub wait_sum {
    my ($key, $want) = @_;
    TRLRedis::wait_for(2, sub { $redis->hsum($key) == $want });
    return $redis->hsum($key);
}

# The most admissions ([send time, node], sorted) within any window of
# length W - 0.1 s, and the index of the first of them.
sub worst_window {
    my (@adm) = @_;
    my ($worst, $worst_at) = (0, 0);
    my $j = 0;
    for my $i (0 .. $#adm) {
        $j = $i if $j < $i;
        $j++ while $j + 1 <= $#adm
                   && $adm[$j + 1][0] <= $adm[$i][0] + $W - 0.1;
        my $n = $j - $i + 1;
        ($worst, $worst_at) = ($n, $i) if $n > $worst;
    }
    return ($worst, $worst_at);
}

# --- paced load from three nodes ---------------------------------------------

{
    my $dur = 2.2 * $W;
    my $start = time + 0.3;
    my @pids;
    for my $i (0 .. $NODES - 1) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $out = '';
            my $next = $start;
            while (1) {
                my $now = time;
                sleep($next - $now) if $next > $now;
                my $sent = time;
                last if $sent > $start + $dur;
                my $r = $t[$i]->get('/load', headers => { 'X-Key' => 'load' },
                                    timeout => 5);
                $out .= sprintf "%.6f %.6f %d %d\n", $sent, time, $i,
                                $r->{status};
                # never faster than one request per PACE, no catching up
                $next = $sent + $PACE;
            }
            $t[$i]->write_file('load.txt', $out);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;

    my (@adm, %st);
    for my $i (0 .. $NODES - 1) {
        for (split /\n/, $t[$i]->read_file('load.txt')) {
            my ($sent, $recv, $node, $status) = split;
            $st{$status}++;
            push @adm, [$sent, $node] if $status == 200;
        }
    }
    @adm = sort { $a->[0] <=> $b->[0] } @adm;
    diag('load: ' . join(' ', map { "$_=$st{$_}" } sort keys %st));
    is(join(' ', grep { $_ != 200 && $_ != 429 } sort keys %st), '',
       'load: every answer is 200 or 429');

    # Admissions within any window of length W - 0.1 s (client send times:
    # the 0.1 s margin covers the latency between send and decision).
    my ($worst, $worst_at) = worst_window(@adm);
    # On one node a zone never admits more than N per window.
    for my $i (0 .. $NODES - 1) {
        my @mine = grep { $_->[1] == $i } @adm;
        my ($w, $at) = worst_window(@mine);
        cmp_ok($w, '<=', $N, "load: node $i alone never admits more than N "
                             . "per window")
            or diag(join "\n", map { sprintf '%.3f node %d',
                                         $_->[0] - $adm[0][0], $_->[1] }
                               @mine[$at .. $at + $w - 1]);
    }
    # The first window: everyone asks, so the cluster admits at least N.
    my $first = grep { $_->[0] <= $adm[0][0] + $W - 0.1 } @adm;

    # The bound: the other nodes admit at most one request per PACE each;
    # one interval plus a round trip plus 50 ms of scheduling slack.
    my $bound = ($NODES - 1) * POSIX::ceil(($INTERVAL + 0.05) / $PACE);
    diag(sprintf 'load: worst window %d admitted (N=%d, overshoot %d, '
                 . 'allowed %d); first window %d; unsynced nodes would '
                 . 'admit %d', $worst, $N, $worst - $N, $bound, $first,
                 $NODES * $N);
    cmp_ok($first, '>=', $N, 'load: the first window admits at least N');
    cmp_ok($worst, '>=', $N, 'load: some window admits N');
    cmp_ok($worst, '<=', $N + $bound,
           "load: no window admits more than N + $bound")
        or diag(join "\n", map { sprintf '%.3f node %d',
                                     $_->[0] - $adm[0][0], $_->[1] }
                           @adm[$worst_at .. $worst_at + $worst - 1]);
    my %per_node;
    $per_node{$_->[1]}++ for grep { $_->[0] <= $adm[0][0] + $W - 0.1 } @adm;
    diag('load: first window per node: '
         . join(' ', map { "$_=" . ($per_node{$_} // 0) } 0 .. $NODES - 1));
}

# --- Redis data ----------------------------------------------------------

{
    my $c = $redis->commandstats;
    cmp_ok($c->{evalsha} // 0, '>', 0, 'the nodes publish with EVALSHA')
        or diag(join ' ', map { "$_=$c->{$_}" } sort keys %$c);
}

my $sum_key = TRLRedis::key_name('load', 'sum-k');
my $sum_time;
{
    my @st = map { hit($_ % $NODES, '/load', 'sum-k')->{status} } 1 .. 7;
    $sum_time = time;
    is("@st", join(' ', (200) x 7), 'sum-k: 7 admitted over 3 nodes');

    is(wait_sum($sum_key, 7), 7, 'sum-k: the hash values add up to 7');
    my @keys = $redis->scan('trl:*');
    ok((grep { $_ eq $sum_key } @keys), "--scan 'trl:*' lists $sum_key")
        or diag("@keys");
    ok((grep { $_ eq TRLRedis::key_name('load', 'load') } @keys),
       '--scan lists the load key');
    is($redis->cli('TYPE', $sum_key), 'hash', 'the key is a hash');
    my $pttl = $redis->cli('PTTL', $sum_key);
    ok($pttl =~ /^\d+$/ && $pttl > 0 && $pttl <= ($W + $CELL) * 1000,
       "it has a TTL of at most W + one cell (PTTL $pttl)");

    # time cells, and the places a node reserved (l:<node>:<end> = n)
    my %h = $redis->hgetall($sum_key);
    my $now_ms = $redis->time_ms;
    my $now_cell = $now_ms / ($CELL * 1000);
    my %lease = map { $_ => delete $h{$_} } grep { /^l:/ } keys %h;
    my @bad = grep { !/^\d+$/ || $_ > $now_cell + 1
                     || $_ < $now_cell - $W / $CELL - 2 } keys %h;
    ok(%h && !@bad, 'the fields are time cells of 100 ms near Redis time')
        or diag(sprintf 'now cell %.1f, fields %s', $now_cell,
                        join(' ', sort keys %h));
    my @vals = grep { !/^\d+$/ || $_ < 1 } values %h;
    ok(!@vals, 'the values are positive counts') or diag("@vals");
    my @lbad = grep { !/^l:[0-9a-f]{16}:(\d+)$/ || $1 > $now_ms + 2000
                      || $lease{$_} !~ /^\d+$/ || $lease{$_} < 1 }
               keys %lease;
    ok(!@lbad, 'reservations are l:<node>:<end, Redis ms> = places')
        or diag(join ' ', map { "$_=$lease{$_}" } sort keys %lease);

    my $lpttl = $redis->cli('PTTL', TRLRedis::key_name('load', 'load'));
    ok($lpttl =~ /^\d+$/ && $lpttl > 0 && $lpttl <= ($W + $CELL) * 1000,
       "the load key has a TTL too (PTTL $lpttl)");
}

# --- DEL resets the key cluster-wide -----------------------------------------

# Polls every node (a request each in turn) until each has admitted one;
# returns the seconds it took per node (undef: not within 2 s).
sub first_admits {
    my ($key) = @_;
    my $t0 = time;
    my %took;
    while (time < $t0 + 2 && keys %took < $NODES) {
        for my $i (grep { !exists $took{$_} } 0 .. $NODES - 1) {
            $took{$i} = time - $t0
                if hit($i, '/slow', $key)->{status} == 200;
        }
        sleep 0.005;
    }
    return map { $took{$_} } 0 .. $NODES - 1;
}

# SPEC 8: within one second (the longest a node trusts a read that said
# "full") plus two intervals
my $del_limit = 1 + 2 * $INTERVAL + 0.2;
for my $case (['spread', sub { $_[0] % $NODES }],
              ['one node', sub { 0 }]) {
    my ($name, $node) = @$case;
    my $key = "del-$name";
    $key =~ s/ /-/g;
    my $rkey = TRLRedis::key_name('slow', $key);
    my @st = map { hit($node->($_), '/slow', $key)->{status} } 0 .. 5;
    is("@st", '200 200 200 200 200 200', "DEL ($name): 6 of 6 admitted");
    is(wait_sum($rkey, 6), 6, "DEL ($name): 6 in Redis");
    peek('slow', $key, 0 .. $NODES - 1);
    @st = map { hit($_, '/slow', $key)->{status} } 0 .. $NODES - 1;
    is("@st", join(' ', (429) x $NODES), "DEL ($name): every node rejects");

    is($redis->cli('DEL', $rkey), '1', "DEL ($name): redis-cli DEL");
    my @took = first_admits($key);
    diag(sprintf "DEL ($name): nodes admitted again after %s s",
                 join(' ', map { defined $_ ? sprintf('%.3f', $_) : 'never' }
                               @took));
    for my $i (0 .. $NODES - 1) {
        ok(defined $took[$i] && $took[$i] <= $del_limit,
           "DEL ($name): node $i admits again within 1 s + two intervals");
    }
}

# --- key naming ------------------------------------------------------------

{
    my %keys = (
        'plain-Key_1.~!' => 'plain-Key_1.~!',
        'a:b'            => 'a:b',
        'a{b}'           => 'x:617b627d',
        'x:abc'          => 'x:783a616263',
        'x'              => 'x',
        'sp ace'         => 'x:737020616365',
        "\xc3\xa9t\xc3\xa9" => 'x:c3a974c3a9',
        'Z}'             => 'x:5a7d',
    );
    for my $k (sort keys %keys) {
        hit(0, '/hx', $k)->{status} == 200 or diag("hx $k not admitted");
    }
    hit(1, '/bin');
    my @want = sort map { "trl:{hx:$keys{$_}}" } keys %keys;
    my @got;
    TRLRedis::wait_for(2, sub {
        @got = $redis->scan('trl:{hx:*');
        "@got" eq "@want";
    });
    is_deeply(\@got, \@want, 'key names: verbatim or x:<hex>');
    for my $k (sort keys %keys) {
        is(TRLRedis::key_name('hx', $k), "trl:{hx:$keys{$k}}",
           "(the harness names \"$keys{$k}\" the same way)");
    }
    ok(TRLRedis::wait_for(2, sub {
           $redis->cli('EXISTS', 'trl:{bin:x:7f000001}') eq '1'
       }), '$binary_remote_addr 127.0.0.1 is trl:{bin:x:7f000001}')
        or diag(join ' ', $redis->scan('trl:{bin:*'));
    is($redis->hsum('trl:{bin:x:7f000001}'), 1, 'and holds one admission');
}

# --- count=failed: only counted admissions are published ------------------

{
    my $rkey = TRLRedis::key_name('cf', 'cf');
    my @st = map { hit($_ % $NODES, '/cf/?status=200', 'cf')->{status} }
             1 .. 6;
    is("@st", join(' ', (200) x 6), 'count=failed: 6 successes admitted');
    sleep 4 * $INTERVAL;
    is($redis->hsum($rkey), 0, 'count=failed: successes are not published');

    @st = map { hit(0, '/cf/?status=401', 'cf')->{status} } 1 .. 3;
    is("@st", '401 401 401', 'count=failed: 3 failures on node 0');
    is(wait_sum($rkey, 3), 3, 'count=failed: the 3 failures are published');
    peek('cf', 'cf', 1);
    @st = map { hit(1, '/cf/?status=401', 'cf')->{status} } 1 .. 3;
    is("@st", '401 401 429',
       'count=failed: node 1 admits the 2 places left, then rejects');
    is(wait_sum($rkey, 5), 5, 'count=failed: 5 in Redis');
    peek('cf', 'cf', 2);
    is(hit(2, '/cf/?status=200', 'cf')->{status}, 429,
       'count=failed: node 2 rejects, even a would-be success');
    is(hit(2, '/cf/?status=401', 'cf')->{status}, 429,
       'count=failed: node 2 rejects a failure');
}

# --- TTL: nothing stays -------------------------------------------------------

{
    my $wait = $sum_time + $W + $CELL + 0.3 - time;
    sleep $wait if $wait > 0;
    is($redis->cli('EXISTS', $sum_key), '0',
       'sum-k: gone from Redis once its admissions are older than W + cell');
    my @left = grep { !/^-?\d+$/ || $_ == -1 }
               map { $redis->cli('TTL', $_) } $redis->scan('trl:*');
    ok(!@left, 'every key in Redis has a TTL') or diag("@left");
}

$_->stop for @t;
$_->no_alerts for @t;
done_testing;
