#!/usr/bin/perl
# token_ratelimit_api with cluster-wide zones and lists: two nginx nodes
# (2 workers each) share one real Redis.
#
# - The JSON's "redis" object (address, up, outages, failures, down_since)
#   and each sync zone's "cluster" statistics (published and reads grow
#   with traffic, last_success recent, strict_calls; errors and fallback
#   grow while Redis is down; outages counts the outage, once).
# - DELETE {loc}/zones/NAME/keys?key=K in a sync=async and a sync=strict
#   zone resets the key cluster-wide: "cluster":true, the Redis key is gone,
#   the other node admits the key again (async: within two intervals and
#   some slack; strict: within about a second, whatever rejections that
#   node had cached).  A reset made while the node has lost Redis says
#   "cluster":true only if it does reach Redis once Redis answers.
# - Cluster-wide runtime lists (the Redis hash <prefix>lists, field = the
#   entry's id, a decimal number below 2^53): a POST on node A answers
#   "cluster":true, is in the hash, and is listed and applied on node B
#   within ~1.5 s; DELETE on B removes it on A and from the hash; expired
#   entries vanish on both; an entry added while Redis is down is applied
#   locally and reaches Redis and B once Redis is back; an entry deleted
#   while Redis is unreachable does not come back (tombstones); entries
#   are published again into a Redis that lost its data.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $INTERVAL = 0.05;
my $SYNC = 1.5;                 # lists: reconcile about every second
my @t = map { TRL->new(workers => 2) } 0 .. 1;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;

for my $t (@t) {
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=as:1m rate=3r/m sync;
    token_ratelimit_zone \$http_x_key zone=st:1m rate=3r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=loc:1m rate=3r/m;
    token_ratelimit_zone \$http_x_key zone=hi:1m rate=60000r/m;
    token_ratelimit_zone \$http_x_key zone=ap:1m rate=2r/m sync;
    token_ratelimit_zone \$http_x_key zone=sp:1m rate=2r/m sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=200ms;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        add_header X-S \$token_ratelimit_status always;

        location /as  { token_ratelimit zone=as; empty_gif; }
        location /st  { token_ratelimit zone=st; empty_gif; }
        location /loc { token_ratelimit zone=loc; empty_gif; }
        # where runtime entries are checked: never limited by itself
        location /hi  { token_ratelimit zone=hi; empty_gif; }
        location /ap  { token_ratelimit zone=ap penalty=5m; empty_gif; }
        location /sp  { token_ratelimit zone=sp penalty=5m; empty_gif; }
        # a request that never counts: makes the node read the key's total
        location /peek-as { token_ratelimit zone=as count=failed; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
    $t->run;
}

my $json = JSON::PP->new->allow_bignum;

sub api {
    my ($i, $method, $path) = @_;
    my $r = $t[$i]->request(TRL::build_request($method, "/api$path",
        $method eq 'POST' ? (body => '') : ()));
    $r->{json} = eval { $json->decode($r->{body}) };
    return $r;
}
sub all { api($_[0], 'GET', '/')->{json} || {} }
sub hit {
    my ($i, $path, $key, $addr) = @_;
    my %h = (defined $key ? ('X-Key' => $key) : (),
             defined $addr ? ('X-Forwarded-For' => $addr) : ());
    return $t[$i]->get($path, headers => \%h);
}
sub codes {
    my ($i, $p, $k, $n) = @_;
    return join ' ', map { hit($i, $p, $k)->{status} } 1 .. $n;
}
sub peek {
    my ($key, @nodes) = @_;
    hit($_, '/peek-as', $key) for @nodes;
    sleep 3 * $INTERVAL;
}
sub wait_for { TRLRedis::wait_for(@_) }
sub list_ids {
    my ($i) = @_;
    my $l = api($i, 'GET', '/lists')->{json} || [];
    return sort map { "$_->{id}" } @$l;
}
sub listed { my ($i, $id) = @_; return grep { $_ eq $id } list_ids($i) }
# the entries' fields of the hash (the design may keep other fields in it,
# such as an epoch: those are not entries)
sub hash_ids {
    my %h = $redis->hgetall('trl:lists');
    return sort grep { /^\d+$/ } keys %h;
}
sub in_hash { my ($id) = @_; return grep { $_ eq $id } hash_ids() }

# --- the redis object and cluster statistics --------------------------------

{
    is(codes(0, '/as', 'a1', 3), '200 200 200', 'as: 3 admitted on node 0');
    is(codes(0, '/st', 'b1', 3), '200 200 200', 'st: 3 admitted on node 0');
    is(codes(0, '/loc', 'c1', 1), '200', 'loc: admitted');
    ok(wait_for(2, sub { $redis->hsum(TRLRedis::key_name('as', 'a1')) == 3 }),
       'as: the 3 admissions are in Redis');

    my $j = all(0);
    my $rd = $j->{redis} || {};
    is($rd->{address}, $raddr, 'redis.address');
    ok($rd->{up}, 'redis.up true');
    is($rd->{outages}, 0, 'redis.outages 0');
    ok(exists $rd->{down_since} && !defined $rd->{down_since},
       'redis.down_since null');
    ok(defined $rd->{failures}, 'redis.failures');

    is($j->{zones}{as}{sync}, 'async', 'as: sync async');
    is($j->{zones}{st}{sync}, 'strict', 'st: sync strict');
    is($j->{zones}{loc}{sync}, 'off', 'loc: sync off');
    ok(!exists $j->{zones}{loc}{cluster}, 'loc: no cluster statistics');
    my $c = $j->{zones}{as}{cluster} || {};
    is_deeply([sort keys %$c],
              [sort qw(published reads errors last_success lag_ms
                       strict_calls strict_cached fallback)],
              'as: cluster statistics');
    cmp_ok($c->{published}, '>=', 3, "as: published ($c->{published})");
    ok(defined $c->{last_success} && abs($c->{last_success} - time) <= 3,
       'as: last_success recent');
    is($c->{errors}, 0, 'as: no errors');
    is($c->{fallback}, 0, 'as: no fallback');
    my $s = $j->{zones}{st}{cluster} || {};
    cmp_ok($s->{strict_calls}, '>=', 3,
           "st: strict_calls ($s->{strict_calls})");
    ok(defined $s->{last_success} && abs($s->{last_success} - time) <= 3,
       'st: last_success recent');

    # node 1 reads what node 0 published
    my $r0 = (all(1)->{zones}{as}{cluster} || {})->{reads} // 0;
    peek('a1', 1);
    is(codes(1, '/as', 'a1', 1), '429', 'as: node 1 sees the 3 of node 0');
    my $r1 = (all(1)->{zones}{as}{cluster} || {})->{reads} // 0;
    cmp_ok($r1, '>', $r0, "as: node 1 reads grow ($r0 -> $r1)");
    my $p0 = (all(0)->{zones}{as}{cluster} || {})->{published};
    is(codes(0, '/as', 'a2', 2), '200 200', 'as: 2 more on node 0');
    ok(wait_for(2, sub {
           ((all(0)->{zones}{as}{cluster} || {})->{published} // 0) >= $p0 + 2
       }), 'as: published grows with traffic');
}

# --- DELETE resets a key cluster-wide ----------------------------------------

# Polls node i until it admits the key; the seconds it took (undef: never
# within secs).
sub admits_within {
    my ($i, $path, $key, $secs) = @_;
    my $t0 = time;
    while (time < $t0 + $secs) {
        return time - $t0 if hit($i, $path, $key)->{status} == 200;
        sleep 0.01;
    }
    return undef;
}

{
    my $rkey = TRLRedis::key_name('as', 'd1');
    my @st = map { hit($_ % 2, '/as', 'd1')->{status} } 0 .. 2;
    is("@st", '200 200 200', 'async DELETE: 3 admitted over both nodes');
    ok(wait_for(2, sub { $redis->hsum($rkey) == 3 }), 'async: 3 in Redis');
    peek('d1', 0, 1);
    is(join(' ', map { hit($_, '/as', 'd1')->{status} } 0, 1), '429 429',
       'async: both nodes reject');

    # by hash: refused in a sync zone (the other nodes hash differently,
    # Redis names the key), and nothing reset
    my $h = api(0, 'DELETE', '/zones/as/keys?hash=' . ('0' x 32));
    is($h->{status}, 400, 'async: DELETE by hash refused (400)');
    is(hit(0, '/as', 'd1')->{status}, 429, 'async: still rejected');

    my $r = api(0, 'DELETE', '/zones/as/keys?key=d1');
    is($r->{status}, 200, 'async: DELETE on node 0');
    ok($r->{json} && $r->{json}{cluster} && $r->{json}{known},
       'async: "cluster":true, "known":true') or diag($r->{body});
    ok(wait_for(1, sub { $redis->cli('EXISTS', $rkey) eq '0' }),
       'async: the Redis key is gone');
    # (SPEC 8: within a second, the longest node 1 trusts the "full" it
    # read, plus two intervals)
    my $took = admits_within(1, '/as', 'd1', 2);
    ok(defined $took && $took <= 1 + 2 * $INTERVAL + 0.3,
       sprintf('async: node 1 admits again (after %s s)',
               defined $took ? sprintf('%.3f', $took) : 'never'));
    is(hit(0, '/as', 'd1')->{status}, 200, 'async: node 0 admits again');
}

{
    my $rkey = TRLRedis::key_name('st', 's1');
    my @st = map { hit($_ % 2, '/st', 's1')->{status} } 0 .. 2;
    is("@st", '200 200 200', 'strict DELETE: 3 admitted over both nodes');
    is(join(' ', map { hit($_, '/st', 's1')->{status} } 0, 1, 0, 1),
       '429 429 429 429', 'strict: both nodes reject');
    is($redis->cli('EXISTS', $rkey), '1', 'strict: the key is in Redis');

    my $r = api(1, 'DELETE', '/zones/st/keys?key=s1');
    is($r->{status}, 200, 'strict: DELETE on node 1');
    ok($r->{json} && $r->{json}{cluster}, 'strict: "cluster":true');
    ok(wait_for(1, sub { $redis->cli('EXISTS', $rkey) eq '0' }),
       'strict: the Redis key is gone');
    # (other nodes may cache a rejection Redis gave them: the reset must
    # reach that cache too, within about a second)
    my $took = admits_within(0, '/st', 's1', 3);
    ok(defined $took && $took <= 2,
       sprintf('strict: node 0 admits again (after %s s)',
               defined $took ? sprintf('%.3f', $took) : 'never'))
        or diag('node 0 strict_cached: '
                . all(0)->{zones}{st}{cluster}{strict_cached});
    $took = admits_within(1, '/st', 's1', 2);
    ok(defined $took && $took <= 0.5,
       'strict: node 1 (where the DELETE ran) admits again at once');
}

# A key serving a penalty (5 minutes: longer than the window, so the
# Retry-After tells the penalty from the count) is unblocked on every node:
# the reset travels through Redis to the other node, which forgets the key
# and its penalty (async: adopted from Redis; strict: mirrored from Redis).
for my $z (['ap', 'async', 0, 1], ['sp', 'strict', 1, 0]) {
    my ($zone, $mode, $here, $there) = @$z;
    my $key = "pen-$zone";
    is(codes($here, "/$zone", $key, 3), '200 200 429',
       "$mode penalty: the third request on node $here violates");
    my $blocked = wait_for(2, sub {
        my $r = hit($there, "/$zone", $key);
        return $r->{status} == 429 && ($r->{headers}{'retry-after'} // 0) > 90;
    });
    ok($blocked, "$mode penalty: node $there serves the 5 minute block too");

    my $r = api($here, 'DELETE', "/zones/$zone/keys?key=$key");
    ok($r->{json} && $r->{json}{cluster}, "$mode penalty: DELETE on node "
       . "$here, \"cluster\":true") or diag($r->{body});
    my $took = admits_within($there, "/$zone", $key, 3);
    ok(defined $took && $took <= 2,
       sprintf("$mode penalty: node $there admits the key again (after %s s)",
               defined $took ? sprintf('%.3f', $took) : 'never'));
    is(hit($here, "/$zone", $key)->{status}, 200,
       "$mode penalty: node $here admits it again");
    like($t[$there]->error_log,
         qr/zone "$zone": a key was reset through the API of another node/,
         "$mode penalty: node $there logged the reset (info)");
}

# A reset while the node has lost Redis (which keeps its data): "cluster":
# true must mean it happens in Redis once Redis answers again
# ("cluster":false would say it stayed local).
{
    my $rkey = TRLRedis::key_name('as', 'pz');
    is(codes(1, '/as', 'pz', 3), '200 200 200', 'hung reset: 3 admitted');
    ok(wait_for(2, sub { $redis->hsum($rkey) == 3 }), 'hung reset: in Redis');
    $redis->pause;
    # traffic on both workers of node 0: each one's publish times out
    hit(0, '/as', "pz-load$_") for 1 .. 10;
    sleep 0.5;
    ok(wait_for(3, sub { !all(0)->{redis}{up} }),
       'hung reset: node 0 sees Redis down');
    my $r = api(0, 'DELETE', '/zones/as/keys?key=pz');
    is($r->{status}, 200, 'hung reset: DELETE while Redis hangs');
    $redis->resume;
    if ($r->{json} && $r->{json}{cluster}) {
        ok(wait_for(3, sub { $redis->cli('EXISTS', $rkey) eq '0' }),
           'hung reset: "cluster":true, and the Redis key goes once Redis '
           . 'answers');
    } else {
        pass('hung reset: "cluster":false (the reset stayed local)');
    }
    ok(wait_for(3, sub { all(0)->{redis}{up} && all(1)->{redis}{up} }),
       'hung reset: both nodes back on Redis');
}

# --- cluster-wide lists ------------------------------------------------------

my ($idA, $idT);
{
    my $r = api(0, 'POST', '/lists/deny?key=ck');
    is($r->{status}, 201, 'lists: POST on node 0');
    ok($r->{json} && $r->{json}{cluster}, 'lists: "cluster":true')
        or diag($r->{body});
    $idA = $r->{json} ? "$r->{json}{id}" : '';
    ok($idA =~ /^\d+$/ && $idA < 2**53, "lists: id $idA below 2^53");
    is(hit(0, '/hi', 'ck')->{status}, 403, 'lists: applied on node 0 at once');

    my $t0 = time;
    ok(wait_for($SYNC, sub { in_hash($idA) }),
       'lists: in the Redis hash trl:lists (field = id)')
        or diag(join ' ', hash_ids());
    ok(wait_for($SYNC, sub { listed(1, $idA) }), 'lists: listed on node 1');
    ok(wait_for(0.5, sub { hit(1, '/hi', 'ck')->{status} == 403 }),
       'lists: applied on node 1');
    my $took = time - $t0;
    cmp_ok($took, '<=', 2, sprintf('lists: on node 1 within ~1.5 s '
                                   . '(%.2f s)', $took));
    my ($e) = grep { "$_->{id}" eq $idA } @{api(1, 'GET', '/lists')->{json}
                                            || []};
    ok($e && $e->{action} eq 'deny' && $e->{key} eq 'ck',
       'lists: node 1 lists the same entry');

    # an address entry with a ttl, from node 1
    $r = api(1, 'POST', '/lists/deny?address=192.0.2.7&ttl=3s');
    $idT = $r->{json} ? "$r->{json}{id}" : '';
    ok($r->{status} == 201 && $r->{json}{cluster}, 'lists: POST ttl=3s on 1');
    ok(wait_for($SYNC, sub { listed(0, $idT) }), 'lists: ttl entry on 0');
    is(hit(0, '/hi', 'x1', '192.0.2.7')->{status}, 403,
       'lists: ttl entry applied on node 0');
}

# DELETE on node 1 removes it on node 0 and from the hash
{
    my $r = api(1, 'DELETE', "/lists/$idA");
    is($r->{status}, 200, 'lists: DELETE on node 1');
    is(hit(1, '/hi', 'ck')->{status}, 200, 'lists: node 1 admits at once');
    ok(wait_for($SYNC, sub { !listed(0, $idA) }),
       'lists: gone from node 0');
    is(hit(0, '/hi', 'ck')->{status}, 200, 'lists: node 0 admits');
    ok(wait_for($SYNC, sub { !in_hash($idA) }),
       'lists: gone from the Redis hash');
    sleep $SYNC;
    ok(!listed(0, $idA) && !listed(1, $idA), 'lists: and it stays gone');
}

# expiry
{
    ok(wait_for(5, sub { !listed(0, $idT) && !listed(1, $idT) }),
       'lists: the ttl entry expires on both nodes');
    is(hit(0, '/hi', 'x2', '192.0.2.7')->{status}, 200,
       'lists: expired on node 0');
    is(hit(1, '/hi', 'x3', '192.0.2.7')->{status}, 200,
       'lists: expired on node 1');
}

# an entry added while Redis is down, and one that Redis lost
my ($idK, $idD);
{
    my $r = api(0, 'POST', '/lists/deny?key=kept');
    $idK = $r->{json} ? "$r->{json}{id}" : '';
    ok(wait_for($SYNC, sub { in_hash($idK) && listed(1, $idK) }),
       'lists: "kept" on both nodes and in Redis');

    my $out0 = all(0)->{redis}{outages};
    $redis->stop;
    $r = api(0, 'POST', '/lists/deny?key=offline');
    is($r->{status}, 201, 'lists: POST while Redis is down: 201');
    ok($r->{json} && $r->{json}{cluster}, 'lists: "cluster":true (queued)');
    $idD = $r->{json} ? "$r->{json}{id}" : '';
    is(hit(0, '/hi', 'offline')->{status}, 403,
       'lists: applied locally while Redis is down');
    is(hit(1, '/hi', 'offline')->{status}, 200, 'lists: not on node 1 yet');

    # Redis statistics while it is down
    is(hit(0, '/as', 'down1')->{status}, 200, 'fail=open: admitted');
    my $j;
    ok(wait_for(2, sub { $j = all(0); $j->{redis} && !$j->{redis}{up} }),
       'redis.up false while it is down');
    ok(defined $j->{redis}{down_since}
       && abs($j->{redis}{down_since} - time) <= 3,
       'redis.down_since is set');
    is($j->{redis}{outages}, $out0 + 1, 'redis.outages: one more');
    my $c0 = $j->{zones}{as}{cluster};
    my $rd0 = $j->{redis};
    hit(0, '/as', "down$_") for 2 .. 5;
    hit(0, '/st', "down$_") for 1 .. 3;
    my $c1 = all(0)->{zones}{as}{cluster};
    cmp_ok($c1->{fallback}, '>', $c0->{fallback},
           "as: fallback grows while down ($c0->{fallback} -> "
           . "$c1->{fallback})");
    cmp_ok($rd0->{failures}, '>=', 1, 'redis.failures counted');
    cmp_ok(all(0)->{zones}{st}{cluster}{fallback}, '>=', 3,
           'st: fallback counts the strict decisions made locally');

    $redis->start;           # a fresh one: every key gone
    ok(wait_for(3, sub { my $x = all(0)->{redis}; $x && $x->{up} }),
       'redis.up true again');
    $j = all(0);
    ok(!defined $j->{redis}{down_since}, 'redis.down_since null again');
    is($j->{redis}{outages}, $out0 + 1, 'redis.outages: counted once');
    # the zone's next exchange with the new Redis sets it (within an
    # interval of "up": not necessarily by the time "up" is read)
    ok(wait_for(2 * $SYNC + 1, sub {
           abs((all(0)->{zones}{as}{cluster}{last_success} // 0) - time) <= 3
       }), 'as: last_success recent again');

    ok(wait_for(2 * $SYNC + 1, sub { in_hash($idD) }),
       'lists: the entry added while down reaches Redis')
        or diag(join ' ', hash_ids());
    ok(wait_for($SYNC, sub { listed(1, $idD) }),
       'lists: and node 1 lists it');
    ok(wait_for(0.5, sub { hit(1, '/hi', 'offline')->{status} == 403 }),
       'lists: and applies it');
    ok(wait_for($SYNC, sub { in_hash($idK) }),
       'lists: an entry Redis lost is published again')
        or diag(join ' ', hash_ids());
    ok(listed(0, $idK) && listed(1, $idK), 'lists: and kept on both nodes');
}

# tombstones: a removal made while Redis cannot answer is not undone by it
{
    ok(wait_for($SYNC, sub { in_hash($idD) && listed(1, $idD) }),
       'tombstone: the entry is everywhere');
    $redis->pause;                          # keeps its data, answers nothing
    my $c0 = all(1)->{zones};
    my $r = api(1, 'DELETE', "/lists/$idD");
    is($r->{status}, 200, 'tombstone: DELETE on node 1 while Redis hangs');
    ok(!listed(1, $idD), 'tombstone: gone from node 1 at once');
    is(hit(1, '/hi', 'offline')->{status}, 200, 'tombstone: node 1 admits');
    # a call that times out is an error; a worker that knows Redis is down
    # decides locally at once (fallback)
    is(hit(1, '/st', 'hang1')->{status}, 200,
       'Redis hangs: a strict request is decided locally (fail=open)');
    hit(1, '/as', "hang$_") for 1 .. 3;
    my $grew = sub {
        my ($z) = @_;
        my $c = all(1)->{zones}{$z}{cluster};
        return $c->{errors} + $c->{fallback}
               > $c0->{$z}{cluster}{errors} + $c0->{$z}{cluster}{fallback};
    };
    ok(wait_for($SYNC, sub { $grew->('as') }),
       'Redis hangs: as: errors or fallback grow');
    ok($grew->('st'), 'Redis hangs: st: errors or fallback grow');
    sleep $SYNC;
    $redis->resume;
    ok(wait_for(2 * $SYNC + 1, sub { !in_hash($idD) }),
       'tombstone: removed from Redis once it answers again');
    ok(wait_for($SYNC, sub { !listed(0, $idD) }),
       'tombstone: removed from node 0');
    sleep $SYNC;
    ok(!listed(0, $idD) && !listed(1, $idD) && !in_hash($idD),
       'tombstone: it does not come back');
    is(hit(1, '/hi', 'offline')->{status}, 200, 'tombstone: node 1 admits');
    is(hit(0, '/hi', 'offline')->{status}, 200, 'tombstone: node 0 admits');
}

# a deleted entry does not come back from a Redis that was down and kept it
{
    my $r = api(0, 'POST', '/lists/deny?key=ghost');
    my $id = $r->{json} ? "$r->{json}{id}" : '';
    ok(wait_for($SYNC, sub { in_hash($id) && listed(1, $id) }),
       'ghost: everywhere');
    $redis->pause;
    is(api(0, 'DELETE', "/lists/$id")->{status}, 200, 'ghost: DELETE on 0');
    is(api(1, 'DELETE', "/lists/$id")->{status}, 200, 'ghost: DELETE on 1');
    sleep 0.5;
    $redis->resume;
    sleep 2 * $SYNC;
    ok(!listed(0, $id) && !listed(1, $id), 'ghost: it does not come back');
    ok(!in_hash($id), 'ghost: and Redis lost it');
}

my %h = $redis->hgetall('trl:lists');
diag('fields of trl:lists that are not entries: '
     . join(' ', grep { !/^\d+$/ } sort keys %h));
my @ids = (list_ids(0), list_ids(1), hash_ids());
my @big = grep { !/^\d+$/ || $_ >= 2**53 } @ids;
ok(!@big, 'every id is a decimal number below 2^53') or diag("@big");

$_->stop for @t;
$_->no_alerts for @t;
done_testing;
