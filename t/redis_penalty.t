#!/usr/bin/perl
# Cluster-wide progressive penalties: three nginx nodes share one Redis
# (interval=50ms, timeout=100ms), zones of 2r/2s.
#
# - sync=strict (penalty=2s:2:6s:3s): the request over the limit on node 0
#   starts the penalty in Redis (pu = Redis time + 2000 ms, pv = 1, PTTL =
#   block + forgive); every node answers 429 with Retry-After 2, node 0 from
#   its zone (no script call), the others from Redis; blocked requests are
#   not counted.  After the block, with the window free, the next violation
#   (node 1) blocks 4 s (pv 2); the next (node 2) 6 s, the cap (8 s
#   uncapped), pv 3; 3 s of quiet after the block end forgive it: 2 s again.
#   A key admitted after its block keeps its violations for the whole
#   forgive time (its TTL covers the end of the block plus forgive), so a
#   violation inside forgive still escalates.
# - sync (async, penalty=4s:2:16s:3s): the violation on node 0 blocks the
#   key there at once; within two intervals plus a read the other nodes
#   reject it too, with Retry-After the rest of the block (still after the
#   window freed the count, so not because of the count); Redis has pu/pv;
#   the hammering on every node extends the block nowhere: pu does not
#   move, and every node admits the key once it has passed.  An admission
#   another node publishes during the block keeps the TTL at block +
#   forgive.
# - dry_run limits (per limit and token_ratelimit_dry_run on) never start a
#   penalty, neither strict nor async: no pu/pv in Redis, nothing blocks
#   the key once the window has passed.
#
# Times are scheduled from the block ends Redis reports (Redis and nginx run
# on this host: one clock).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $NODES = 3;
my $INTERVAL = 0.05;

my @t = map { TRL->new(workers => 2) } 1 .. $NODES;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;

for my $t (@t) {
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=sp:1m rate=2r/2s sync=strict;
    token_ratelimit_zone \$http_x_key zone=ap:1m rate=2r/2s sync;
    token_ratelimit_zone \$http_x_key zone=sd:1m rate=2r/2s sync=strict;
    token_ratelimit_zone \$http_x_key zone=ad:1m rate=2r/2s sync;
    token_ratelimit_redis $raddr interval=50ms timeout=100ms;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        add_header X-Status "[\$token_ratelimit_status]" always;

        location /sp { token_ratelimit zone=sp penalty=2s:2:6s:3s; empty_gif; }

        location /ap { token_ratelimit zone=ap penalty=4s:2:16s:3s; empty_gif; }
        # a request that never counts (count=failed, answered 200): it makes
        # the node read the key from Redis
        location /peek-ap { token_ratelimit zone=ap count=failed; empty_gif; }

        location /sd-dry { token_ratelimit zone=sd penalty=5s dry_run;
                           empty_gif; }
        location /sd-ldry { token_ratelimit zone=sd penalty=5s;
                            token_ratelimit_dry_run on; empty_gif; }
        location /sd { token_ratelimit zone=sd; empty_gif; }

        location /ad-dry { token_ratelimit zone=ad penalty=5s dry_run;
                           empty_gif; }
        location /ad-ldry { token_ratelimit zone=ad penalty=5s;
                            token_ratelimit_dry_run on; empty_gif; }
        location /ad { token_ratelimit zone=ad; empty_gif; }
        location /peek-ad { token_ratelimit zone=ad count=failed; empty_gif; }
    }
EOF
    $t->run;
}

sub hit {
    my ($i, $path, $key) = @_;
    return $t[$i]->get($path, headers => { 'X-Key' => $key });
}
sub hits { my ($i, $path, $key, $n) = @_; map { hit($i, $path, $key) } 1 .. $n }
sub codes { join ' ', map { $_->{status} } @_ }
sub ra { $_[0]{headers}{'retry-after'} // 'none' }
sub ras { join ' ', map { ra($_) } @_ }
sub st { $_[0]{headers}{'x-status'} // '' }

# Every response a 429 whose Retry-After lies in [lo, hi].
sub all_429 {
    my ($lo, $hi, @r) = @_;
    return !grep { $_->{status} != 429 || ra($_) !~ /^\d+$/
                   || ra($_) < $lo || ra($_) > $hi } @r;
}

sub now_ms { int(time * 1000) }

# Sleeps until local time (ms) reaches the given value; returns how late.
sub wait_until_ms {
    my ($at) = @_;
    my $wait = ($at - now_ms()) / 1000;
    sleep $wait if $wait > 0;
    return now_ms() - $at;
}

# The penalty fields of a Redis key: (pu, pv), undef where missing.
sub penalty_of {
    my ($rkey) = @_;
    my %h = $redis->hgetall($rkey);
    return ($h{pu}, $h{pv});
}

# The admissions in the time cells of a key (pu and pv aside).
sub cells {
    my ($rkey) = @_;
    my %h = $redis->hgetall($rkey);
    my $n = 0;
    $n += $h{$_} for grep { /^\d+$/ } keys %h;
    return $n;
}

sub pttl { my $p = $redis->cli('PTTL', $_[0]); $p =~ /^-?\d+$/ ? $p : -99 }

sub evals {
    my $c = $redis->commandstats;
    return ($c->{evalsha} // 0) + ($c->{eval} // 0);
}

# "blocked for S.MMMs (violation V)" lines of node i for a zone and key.
sub blocked {
    my ($i, $zone, $key) = @_;
    return map { /blocked for (\d+\.\d{3})s \(violation (\d+)\)/ ? "$1/v$2" : () }
           grep { /zone "\Q$zone\E", key "\Q$key\E"/ }
           split /\n/, $t[$i]->error_log;
}

# ==========================================================================
# sync=strict: 2 s, 4 s, 6 s (cap), forgiven after 3 s of quiet
# ==========================================================================

my $SP = TRLRedis::key_name('sp', 'sp');
my $SQ = TRLRedis::key_name('sp', 'sq');
my ($pu1, $pu2, $pu3, $sq_pu, $sq_admitted);

# --- violation 1 on node 0 ---------------------------------------------------
{
    my @r = hits(0, '/sp', 'sp', 3);
    my $redis_now = $redis->time_ms;
    is(codes(@r), '200 200 429',
       'strict v1: node 0 admits 2, the 3rd request is a violation');
    # the later of the 2 s block and the window's free place (2 s after
    # the first admission, on Redis's 100 ms cells): 2 or 3, never less
    like(ra($r[2]), qr/^[23]$/,
         'strict v1: Retry-After 2 or 3 (penalty base 2 s, the window)');

    my ($pu, $pv) = penalty_of($SP);
    $pu1 = $pu // 0;
    is($pv, 1, 'strict v1: Redis pv is 1');
    my $left = $pu1 - $redis_now;
    ok($left > 1700 && $left <= 2000,
       "strict v1: Redis pu is Redis TIME + 2000 ms (pu - TIME = $left)");
    my $pttl = pttl($SP);
    ok($pttl > 4500 && $pttl <= 5000,
       "strict v1: PTTL covers the block and forgive: 2 s + 3 s (PTTL $pttl)");
    is(join(' ', blocked(0, 'sp', 'sp')), '2.000/v1',
       'strict v1: node 0 logs "blocked for 2.000s (violation 1)"');

    # node 0 answers from its zone: no script call
    my $e0 = evals();
    @r = hits(0, '/sp', 'sp', 5);
    my $e1 = evals();
    ok(all_429(1, 2, @r), 'strict v1: node 0 rejects every request, '
                          . 'Retry-After 1-2')
        or diag(codes(@r) . ' / ' . ras(@r));
    is($e1 - $e0, 0, 'strict v1: node 0 answers from its zone, '
                     . 'no script call to Redis');

    # a second key, blocked just after, for the forgive memory below (not
    # before the check above: a block is trusted from the zone for 1 s)
    @r = hits(0, '/sp', 'sq', 3);
    is(codes(@r), '200 200 429', 'strict: key sq violates on node 0 too');
    ($sq_pu) = penalty_of($SQ);
    $sq_pu //= 0;

    # the other nodes learn it from Redis, then answer from their zones
    for my $i (1, 2) {
        my $before = evals();
        @r = hits($i, '/sp', 'sp', 5);
        my $calls = evals() - $before;
        ok(all_429(1, 2, @r), "strict v1: node $i rejects every request, "
                              . 'Retry-After 1-2')
            or diag(codes(@r) . ' / ' . ras(@r));
        ok($calls >= 1 && $calls <= 2,
           "strict v1: node $i asked Redis ($calls script calls for 5 "
           . 'requests), then its zone');
    }
    is(cells($SP), 2, 'strict v1: blocked requests are not counted in Redis');
    my ($pu_now, $pv_now) = penalty_of($SP);
    ok(($pu_now // 0) == $pu1 && ($pv_now // 0) == 1,
       'strict v1: the rejections during the block neither extend it nor '
       . 'count as violations');
    is(join(' ', map { blocked($_, 'sp', 'sp') } 1, 2), '',
       'strict v1: nodes 1 and 2 start no penalty of their own');
}

# --- after the block: violation 2 on node 1 ----------------------------------
my $v2_at;
{
    # the block ends at pu1; admissions of v1 left the window by v1 + 2.1 s
    my $late = wait_until_ms($pu1 + 300);
    diag("strict v2 ran ${late} ms late") if $late > 100;
    my @r = hits(1, '/sp', 'sp', 3);
    $v2_at = now_ms();
    my $redis_now = $redis->time_ms;
    is(codes(@r), '200 200 429',
       'strict v2: after the block node 1 admits 2, then a violation');
    is(ra($r[2]), 4, 'strict v2: Retry-After 4 (2 s x 2)');
    my ($pu, $pv) = penalty_of($SP);
    $pu2 = $pu // 0;
    is($pv, 2, 'strict v2: Redis pv is 2');
    my $left = $pu2 - $redis_now;
    ok($left > 3700 && $left <= 4000,
       "strict v2: Redis pu is TIME + 4000 ms (pu - TIME = $left)");
    my $pttl = pttl($SP);
    ok($pttl > 6500 && $pttl <= 7000,
       "strict v2: PTTL covers 4 s + 3 s (PTTL $pttl)");
    is(join(' ', blocked(1, 'sp', 'sp')), '4.000/v2',
       'strict v2: node 1 logs "blocked for 4.000s (violation 2)"');
    for my $i (0, 2) {
        my @o = hits($i, '/sp', 'sp', 3);
        ok(all_429(3, 4, @o), "strict v2: node $i rejects with Retry-After "
                              . '3-4, the penalty (the window alone: <= 2)')
            or diag(codes(@o) . ' / ' . ras(@o));
    }
}

# --- key sq: admitted after its block, it still remembers its violation ----
{
    my $late = wait_until_ms($sq_pu + 300);
    diag("strict sq admission ran ${late} ms late") if $late > 100;
    my $r = hit(1, '/sp', 'sq');
    my $at = $sq_admitted = now_ms();
    is($r->{status}, 200, 'strict sq: admitted once after its block');
    my $pttl = pttl($SQ);
    my $need = $sq_pu + 3000 - $at;
    # An admission after the block keeps the TTL over the forgive time
    # (keep() in the Lua scripts of src/core/sync.cpp), so pu/pv outlive
    # the block until forgive is over.
    ok($pttl >= $need - 150,
       "strict sq: the TTL still covers the end of the block + forgive "
       . "(PTTL $pttl, block end + 3 s is $need ms away)");
}

# --- a window-free moment of the 4 s block: still blocked, nothing counted ---
{
    my $late = wait_until_ms($v2_at + 2300);
    diag("strict v2 + 2.3 s ran ${late} ms late") if $late > 100;
    is($redis->hsum_window($SP, 2000, 100), 0,
       'strict v2 + 2.3 s: the window holds no admission (the rejections '
       . 'during the block were not counted)');
    my @r = map { hit($_, '/sp', 'sp') } 0 .. $NODES - 1;
    ok(all_429(1, 2, @r), 'strict v2 + 2.3 s: the window is free, but every '
                          . 'node still rejects, Retry-After 1-2')
        or diag(codes(@r) . ' / ' . ras(@r));
}

# --- key sq: a violation inside forgive escalates --------------------------
SKIP: {
    my $late = wait_until_ms($sq_pu + 2700);
    # the admission must have left the window (2 s + a cell), forgive (3 s)
    # must not be over
    skip "scheduling: ran ${late} ms late", 2
        if $late > 200 || now_ms() - $sq_admitted < 2150;
    my @r = hits(2, '/sp', 'sq', 3);
    is(codes(@r), '200 200 429',
       'strict sq: 2.7 s after its block (forgive 3 s), 2 admitted, '
       . 'then a violation');
    my (undef, $pv) = penalty_of($SQ);
    # The violations were kept (see the TTL above): this is violation 2.
    is(ra($r[2]) . '/pv' . ($pv // 'none'), '4/pv2',
       'strict sq: the violation inside forgive escalates: Retry-After 4, '
       . 'pv 2');
}

# --- violation 3 on node 2: the cap --------------------------------------
{
    my $late = wait_until_ms($pu2 + 300);
    diag("strict v3 ran ${late} ms late") if $late > 100;
    my @r = hits(2, '/sp', 'sp', 3);
    my $redis_now = $redis->time_ms;
    is(codes(@r), '200 200 429',
       'strict v3: after the block node 2 admits 2, then a violation');
    is(ra($r[2]), 6, 'strict v3: Retry-After 6, the cap (8 s uncapped)');
    my ($pu, $pv) = penalty_of($SP);
    $pu3 = $pu // 0;
    is($pv, 3, 'strict v3: Redis pv is 3');
    my $left = $pu3 - $redis_now;
    ok($left > 5700 && $left <= 6000,
       "strict v3: Redis pu is TIME + 6000 ms (pu - TIME = $left)");
    my $pttl = pttl($SP);
    ok($pttl > 8500 && $pttl <= 9000,
       "strict v3: PTTL covers 6 s + 3 s (PTTL $pttl)");
    is(join(' ', blocked(2, 'sp', 'sp')), '6.000/v3',
       'strict v3: node 2 logs "blocked for 6.000s (violation 3)"');
    for my $i (0, 1) {
        my @o = hits($i, '/sp', 'sp', 3);
        ok(all_429(5, 6, @o), "strict v3: node $i rejects with Retry-After "
                              . '5-6')
            or diag(codes(@o) . ' / ' . ras(@o));
    }
}

# (forgiveness of key sp is checked at the end: the async and dry-run parts
# run while its 6 s block and 3 s of forgive go by)

# ==========================================================================
# sync (async): node 0 starts the penalty, the others adopt it
# ==========================================================================

{
    my $AK = TRLRedis::key_name('ap', 'ak');
    # the admissions are published before the violation (two workers
    # publish each on its own; see the TTL below)
    my @r = hits(0, '/ap', 'ak', 2);
    sleep 3 * $INTERVAL;
    push @r, hit(0, '/ap', 'ak');
    my $tv = now_ms();
    is(codes(@r), '200 200 429',
       'async: node 0 admits 2, the 3rd request is a violation');
    is(ra($r[2]), 4, 'async: Retry-After 4 (penalty 4 s)');
    # (a zone keeps the end of a block in 16 ms units, rounded up: right
    # after the violation 4.0xx s are left, Retry-After 5)
    my @again = hits(0, '/ap', 'ak', 3);
    ok(all_429(4, 5, @again),
       'async: node 0 blocks the key at once (Retry-After 4-5)')
        or diag(codes(@again) . ' / ' . ras(@again));

    # nodes 1 and 2: a request that never counts (it makes the node read
    # the key) every 10 ms until the node rejects with the penalty's
    # Retry-After (the count alone would give at most 2)
    my %took;
    while (now_ms() < $tv + 2000 && keys %took < 2) {
        for my $i (grep { !exists $took{$_} } 1, 2) {
            my $p = hit($i, '/peek-ap', 'ak');
            $took{$i} = now_ms() - $tv
                if $p->{status} == 429 && ra($p) =~ /^\d+$/ && ra($p) >= 3;
        }
        sleep 0.01;
    }
    diag('async: the penalty reached node 1 after '
         . ($took{1} // 'never') . ' ms, node 2 after '
         . ($took{2} // 'never') . ' ms');
    my $limit_ms = 1000 * (2 * $INTERVAL + 0.25);
    for my $i (1, 2) {
        ok(defined $took{$i} && $took{$i} <= $limit_ms,
           "async: node $i rejects the key within two intervals plus a "
           . "read (<= $limit_ms ms)");
    }

    my ($pu, $pv) = penalty_of($AK);
    $pu //= 0;
    is($pv, 1, 'async: Redis pv is 1');
    my $from_v = $pu - $tv;
    ok($from_v > 3800 && $from_v <= 4300,
       "async: Redis pu is the violation + 4000 ms (+ the publish; "
       . "pu - violation = $from_v)");
    my $pttl = pttl($AK);
    my $need = $pu + 3000 - now_ms();
    ok(abs($pttl - $need) <= 150,
       "async: PTTL covers the block and forgive 3 s (PTTL $pttl, block end "
       . "+ 3 s is $need ms away)");

    for my $i (1, 2) {
        my $want = POSIX::ceil(($pu - now_ms()) / 1000);
        my @o = hits($i, '/ap', 'ak', 3);
        ok(all_429($want - 1, $want + 1, @o),
           "async: node $i rejects the key with Retry-After the rest of the "
           . "block ($want)")
            or diag(codes(@o) . ' / ' . ras(@o));
    }

    # hammering on every node during the block
    for my $at (800, 1500) {
        wait_until_ms($tv + $at);
        my @h = map { hits($_, '/ap', 'ak', 4) } 0 .. $NODES - 1;
        my $want = POSIX::ceil(($pu - now_ms()) / 1000);
        ok(all_429($want - 1, $want + 1, @h),
           "async: at violation + $at ms every node rejects, Retry-After "
           . "the rest ($want)")
            or diag(codes(@h) . ' / ' . ras(@h));
    }

    # the window no longer holds the two admissions: the penalty alone
    wait_until_ms($tv + 2400);
    is($redis->hsum_window($AK, 2000, 100), 0,
       'async: violation + 2.4 s: the window holds no admission (nothing '
       . 'during the block was counted)');
    my @h = map { hits($_, '/ap', 'ak', 3) } 0 .. $NODES - 1;
    my $want = POSIX::ceil(($pu - now_ms()) / 1000);
    ok(all_429($want - 1, $want + 1, @h),
       "async: violation + 2.4 s: every node, its own count below the "
       . "limit, still rejects, Retry-After the rest ($want)")
        or diag(codes(@h) . ' / ' . ras(@h));

    sleep 3 * $INTERVAL;                # what they published has arrived
    my ($pu_after, $pv_after) = penalty_of($AK);
    is(($pu_after // 'none') . '/' . ($pv_after // 'none'), "$pu/1",
       'async: the hammering did not move pu (nor pv) in Redis');
    is(join(' ', blocked(0, 'ap', 'ak')), '4.000/v1',
       'async: node 0 logged the one penalty it started');
    is(join(' ', map { blocked($_, 'ap', 'ak') } 1, 2), '',
       'async: nodes 1 and 2 adopted it, they started none');

    # the block was not extended anywhere: node 0 admits the key, nodes 1
    # and 2 would (a request that does not count: the cluster holds N = 2,
    # SPEC 8 forbids a third admission on a third node)
    wait_until_ms($pu + 300);
    my @after = (hit(0, '/ap', 'ak'), map { hit($_, '/peek-ap', 'ak') } 1, 2);
    is(codes(@after), '200 200 200',
       'async: 300 ms after the block end every node admits the key');
}

# --- async: a later publish of admissions keeps the forgive time ---------------
{
    my $AK2 = TRLRedis::key_name('ap', 'ak2');
    my @r = hits(0, '/ap', 'ak2', 2);
    sleep 3 * $INTERVAL;
    push @r, hit(0, '/ap', 'ak2');
    is(codes(@r), '200 200 429', 'async ak2: a violation on node 0');
    sleep 3 * $INTERVAL;
    my ($pu) = penalty_of($AK2);
    $pu //= 0;
    # node 2 never asked for the key: it never decides on its own count
    # (SPEC 8), Redis refuses it, and its read is published without a
    # penalty (forgive 0)
    my $r = hit(2, '/ap', 'ak2');
    is($r->{status}, 429, 'async ak2: node 2, new to the key, rejects it');
    sleep 3 * $INTERVAL;
    my $pttl = pttl($AK2);
    my $need = $pu + 3000 - now_ms();
    # A node that started no penalty publishes with forgive 0; keep()
    # never shortens the TTL of a key with a penalty, so pu and pv stay
    # until forgive is over.  (Two workers of one node would race the
    # same way.)
    ok(abs($pttl - $need) <= 150,
       "async ak2: after node 2's read is published the TTL still "
       . "covers the block and forgive (PTTL $pttl, block end + 3 s is "
       . "$need ms away)");
}

# ==========================================================================
# dry_run never starts a penalty
# ==========================================================================

{
    my @cases = (['strict', 'sd', '/sd-dry', 'k1'],
                 ['strict', 'sd', '/sd-ldry', 'k2'],
                 ['async', 'ad', '/ad-dry', 'k1'],
                 ['async', 'ad', '/ad-ldry', 'k2']);
    for my $c (@cases) {
        my ($mode, $zone, $path, $key) = @$c;
        my @r = hits(0, $path, $key, 4);
        # Strict: the first rejection, the one Redis decides, passes as
        # dry run like the later ones answered from the zone's cache.
        is(join(' ', map { $_->{status} . st($_) } @r),
           '200[PASSED] 200[PASSED] 200[REJECTED_DRY_RUN] 200[REJECTED_DRY_RUN]',
           "dry run $mode $path: 4 pass, the 3rd and 4th as rejections in a "
           . 'dry run');
    }
    my $t_dry = now_ms();

    sleep 3 * $INTERVAL;                # the async nodes have published
    for my $c (@cases) {
        my ($mode, $zone, $path, $key) = @$c;
        my $rkey = TRLRedis::key_name($zone, $key);
        my %h = $redis->hgetall($rkey);
        my $cells = grep { /^\d+$/ } keys %h;
        ok($cells && !exists $h{pu} && !exists $h{pv},
           "dry run $mode $path: Redis has its admissions but no pu/pv")
            or diag(join ' ', map { "$_=$h{$_}" } sort keys %h);
        is(join(' ', blocked(0, $zone, $key)), '',
           "dry run $mode $path: no penalty logged");
    }
    ok(scalar(grep { /limiting requests, dry run, by zone "[sa]d"/ }
              split /\n/, $t[0]->error_log),
       'dry run: the rejections were logged as dry run');

    # nodes 1 and 2 read the async keys
    hit($_, '/peek-ad', $_ == 1 ? 'k1' : 'k2') for 1, 2;
    hit($_, '/peek-ad', $_ == 1 ? 'k2' : 'k1') for 1, 2;

    # once the window has passed nothing blocks the keys anywhere (a 5 s
    # penalty would)
    wait_until_ms($t_dry + 2400);
    for my $c (@cases) {
        my ($mode, $zone, $path, $key) = @$c;
        my @r = map { hit($_, "/$zone", $key) } 0 .. $NODES - 1;
        is(codes(@r[0, 1]), '200 200',
           "dry run $mode $path: after the window nodes 0 and 1 admit the "
           . 'key: no penalty blocks it')
            or diag(ras(@r));
    }
}

# ==========================================================================
# sync=strict: forgiven after 3 s of quiet
# ==========================================================================

{
    # an admission inside forgive is no trouble; it also keeps the key (its
    # pu and pv) in Redis past the forgive time, so it is the strict script
    # that forgives, not the expiry of the key
    wait_until_ms($pu3 + 2600);
    is(hit(1, '/sp', 'sp')->{status}, 200,
       'strict forgive: admitted 2.6 s after the 6 s block');
    my $late = wait_until_ms($pu3 + 3000 + 400);
    diag("strict forgive ran ${late} ms late") if $late > 100;
    my (undef, $pv_before) = penalty_of($SP);
    is($pv_before, 3, 'strict forgive: 3.4 s after the block Redis still '
                      . 'has pv 3');
    my @r = hits(0, '/sp', 'sp', 2);
    my $redis_now = $redis->time_ms;
    is(codes(@r), '200 429',
       'strict forgive: 3.4 s after the 6 s block (forgive 3 s), the 2nd '
       . 'place is admitted, then a violation');
    like(ra($r[1]), qr/^[23]$/,
         'strict forgive: Retry-After 2 (base) or 3 (the window) again');
    my ($pu, $pv) = penalty_of($SP);
    is($pv, 1, 'strict forgive: Redis pv is 1 again');
    my $left = ($pu // 0) - $redis_now;
    ok($left > 1700 && $left <= 2000,
       "strict forgive: Redis pu is TIME + 2000 ms (pu - TIME = $left)");
    is(join(' ', blocked(0, 'sp', 'sp')), '2.000/v1 2.000/v1',
       'strict forgive: node 0 logs violation 1 again');
}

$_->stop for @t;
$_->no_alerts for @t;
done_testing;
