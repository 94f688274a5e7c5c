#!/usr/bin/perl
# Strict cluster sync ("sync=strict"): every decision is one atomic script
# in Redis, so the cluster is exact.
#
# - Sequential requests over three nodes: the N+1st is rejected at once,
#   whichever node it reaches (no settle time).
# - 90 concurrent requests spread over 3 nodes (2 workers each) with N=30
#   admit exactly 30; Redis holds exactly 30; every 429 has Retry-After.
# - A key known to be blocked is cached locally until its unblock time: a
#   flood from it sends nothing to Redis (INFO commandstats), and once the
#   window has passed it is admitted again.
# - count=failed: requests in flight hold their places cluster-wide; a
#   success gives its place back in Redis, so the other nodes can use it.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $NODES = 3;
my @t = map { TRL->new(workers => 2) } 1 .. $NODES;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;
my $backend = $t[0]->start_backend('BACKEND');

for my $t (@t) {
    # timeout=2s: the exactness below is about the Redis path, not about
    # the fail policy of a slow machine
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=st:1m rate=30r/4s sync=strict;
    token_ratelimit_zone \$http_x_key zone=s3:1m rate=3r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=sf:1m rate=3r/m sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=2s;
    proxy_read_timeout 10s;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /st { token_ratelimit zone=st; empty_gif; }
        location /s3 { token_ratelimit zone=s3; empty_gif; }
        location /sf/ {
            token_ratelimit zone=sf count=failed;
            proxy_pass http://127.0.0.1:$backend/;
        }
    }
EOF
    $t->run;
}

sub hit {
    my ($i, $path, $key) = @_;
    return $t[$i]->get($path, headers => { 'X-Key' => $key });
}

sub tally {
    my %n;
    $n{$_->{status}}++ for @_;
    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

sub evals {
    my $c = $redis->commandstats;
    return ($c->{evalsha} // 0) + ($c->{eval} // 0) + ($c->{fcall} // 0)
         + ($c->{evalsha_ro} // 0) + ($c->{eval_ro} // 0);
}

# --- sequential: exact at once ---------------------------------------------

{
    my @st = map { hit($_ % $NODES, '/s3', 'seq')->{status} } 0 .. 5;
    is("@st", '200 200 200 429 429 429',
       'N=3 over three nodes: 3 admitted, then every node rejects at once');
    is($redis->hsum(TRLRedis::key_name('s3', 'seq')), 3,
       'Redis holds exactly the 3 admissions');
}

# --- 90 concurrent requests over 3 nodes, N=30 --------------------------------

my $burst_end;
{
    my $raw = TRL::build_request('GET', '/st', headers => { 'X-Key' => 'k' });
    my @resp = TRL::collect_responses(
        20, TRL::send_all(map { [$t[$_ % $NODES], $raw] } 1 .. 90));
    $burst_end = time;
    my $ok = grep { $_->{status} == 200 } @resp;
    my $rej = grep { $_->{status} == 429 } @resp;
    is($ok, 30, '90 concurrent over 3 nodes, N=30: exactly 30 admitted')
        or diag(tally(@resp));
    is($rej, 60, '60 rejected') or diag(tally(@resp));
    my @per = map { my $i = $_; scalar grep { $_->{status} == 200 }
                    @resp[grep { ($_ + 1) % $NODES == $i } 0 .. 89] }
              0 .. $NODES - 1;
    diag("admitted per node: @per");
    my @bad = grep { $_->{status} == 429
                     && ($_->{headers}{'retry-after'} // '') !~ /^[1-5]$/ }
              @resp;
    ok(!@bad, 'every 429 has Retry-After between 1 and 5 s (W=4s)')
        or diag(join ' ', map { $_->{headers}{'retry-after'} // 'none' } @bad);
    is($redis->hsum(TRLRedis::key_name('st', 'k')), 30,
       'Redis holds exactly 30 (rejections are not counted)');
    my $pttl = $redis->cli('PTTL', TRLRedis::key_name('st', 'k'));
    ok($pttl =~ /^\d+$/ && $pttl > 0 && $pttl <= 4200,
       "the key has a TTL of at most W + one cell (PTTL $pttl)");
}

# --- the blocked key is cached locally ----------------------------------------

{
    # every node answers a few more: now each knows the key is blocked
    for my $i (0 .. $NODES - 1) {
        hit($i, '/st', 'k') for 1 .. 6;
    }
    my $before = evals();
    my $t0 = time;
    my $raw = TRL::build_request('GET', '/st', headers => { 'X-Key' => 'k' });
    my @resp;
    push @resp, TRL::collect_responses(
        20, TRL::send_all(map { [$t[$_ % $NODES], $raw] } 1 .. 50)) for 1 .. 3;
    my $after = evals();
    # a block is trusted for a second: a flood that lasts longer (a slow
    # or sanitizer build) may ask again once a second per node and worker
    my $secs = int(time - $t0);
    is(scalar(grep { $_->{status} == 429 } @resp), 150,
       'a flood of 150 from the blocked key: all rejected')
        or diag(tally(@resp));
    diag("script calls during the flood: " . ($after - $before));
    cmp_ok($after - $before, '<=', 2 * $NODES * (1 + $secs),
           'the flood sent (next to) nothing to Redis: the block is cached');
    ok($before > 0, '(scripts were called before: commandstats works)');
}

# --- count=failed: places held in flight, given back cluster-wide -------------

{
    my $rkey = TRLRedis::key_name('sf', 'sf');
    my $raw = TRL::build_request('GET', '/sf/?status=200&delay=1000',
                                 headers => { 'X-Key' => 'sf' });
    my $started = time;
    my @socks = TRL::send_all(map { [$t[0], $raw] } 1 .. 3);
    sleep 0.3;
    is(hit(1, '/sf/?status=401', 'sf')->{status}, 429,
       'count=failed: 3 successes in flight on node 0 hold every place; '
       . 'node 1 rejects');
    my @resp = TRL::collect_responses(20, @socks);
    is(join(' ', map { $_->{status} } @resp), '200 200 200',
       'the 3 in flight succeed');
    cmp_ok(time - $started, '>=', 0.9, '(they were held by the backend)');
    ok(TRLRedis::wait_for(1, sub { $redis->hsum($rkey) == 0 }),
       'their places are given back in Redis')
        or diag("$rkey holds " . $redis->hsum($rkey));

    my $n2 = hit(2, '/sf/?status=401', 'sf')->{status};
    is($n2, 401, 'node 2 gets a place that was given back');
    my $n1 = hit(1, '/sf/?status=401', 'sf')->{status};
    is($n1, 401, 'node 1, which saw the key blocked while the places were '
                 . 'held, gets one too (a cached block must not outlive '
                 . 'the give-back)');
    # the rest, whatever happened above: exactly 3 places in all
    my $got = grep { $_ == 401 } $n1, $n2;
    my @more;
    for (1 .. 4) {
        push @more, hit($_ % 2 ? 2 : 0, '/sf/?status=401', 'sf')->{status};
        last if $more[-1] == 429;
    }
    $got += grep { $_ == 401 } @more;
    is($got, 3, 'after the give-back the cluster admits exactly 3 more')
        or diag("node 2: $n2, node 1: $n1, then @more");
    is(join(' ', map { hit($_, '/sf/?status=401', 'sf')->{status} }
                 0 .. $NODES - 1), '429 429 429', 'then every node rejects');
    is($redis->hsum($rkey), 3, 'Redis holds the 3 failures');
}

# --- the cache lasts until the unblock time only ------------------------------

{
    # admissions expire after W, at worst one cell (200 ms) late
    my $wait = $burst_end + 4 + 0.2 + 0.2 - time;
    sleep $wait if $wait > 0;
    my @st = map { hit($_ % $NODES, '/st', 'k')->{status} } 0 .. 5;
    is("@st", join(' ', (200) x 6),
       'the window has passed: every node admits the key again');
    is($redis->hsum_window(TRLRedis::key_name('st', 'k'), 4000, 200), 6,
       'Redis counts from scratch (the cells in the window hold 6)');
}

$_->stop for @t;
$_->no_alerts for @t;
done_testing;
