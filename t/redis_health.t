#!/usr/bin/perl
# Honest health (SPEC 8): a Redis that answers but cannot serve the module
# counts as unreachable.
#
# - A read-only replica (READONLY): node A (fail=open) and node B
#   (fail=closed).  Both report "up":false with the reason in the API,
#   token_ratelimit_redis_up 0; A limits alone, B answers 503 for its sync
#   zones.  One line per node says the outage began, none per call.  After
#   REPLICAOF NO ONE both come back: "up":true, metric 1, one line each
#   that it ended, and the admissions A made meanwhile are in Redis; B's
#   strict zone decides in Redis again.
# - A Redis started with --cluster-enabled yes and no slot assigned
#   (CLUSTERDOWN): node C reports it, limits alone.
# - A Redis with a password, node D with a wrong one (WRONGPASS).
# - Two Redis Cluster nodes with half the slots each, node E given the one
#   that serves the probe's key but not a strict zone's key (MOVED): the
#   probe passes, the script keeps failing; still one outage, one line,
#   "up":false, never "reachable again" while the calls are refused.
# - NOSCRIPT stays no outage (t/redis_noscript.t).
#
# Before: the link stayed up, "up":true, redis_up 1, and strict zones of a
# fail=closed node answered from the node.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my ($A, $B, $C, $D) = map { TRL->new(workers => 2) } 1 .. 4;
my $master = TRLRedis->new(port => $A->port('MASTER'));
my $replica = TRLRedis->new(port => $A->port('REDIS'));
my $cluster = TRLRedis->new(cluster => 1);
my $secret = TRLRedis->new(port => $D->port('REDIS'), password => 's3cr3t');

like($replica->cli('REPLICAOF', '127.0.0.1', $master->port), qr/OK/,
     'a replica');
ok(TRLRedis::wait_for(10, sub {
       $replica->cli('INFO', 'replication') =~ /master_link_status:up/
   }), 'the replica is in sync');
like($cluster->cli('SET', 'x', 1), qr/CLUSTERDOWN/,
     'the cluster node without slots refuses writes');

sub conf {
    my ($redis) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=as:1m rate=3r/m sync;
    token_ratelimit_zone \$http_x_key zone=st:1m rate=3r/m sync=strict;
    token_ratelimit_redis $redis interval=50ms timeout=300ms;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /as { token_ratelimit zone=as; empty_gif; }
        location /st { token_ratelimit zone=st; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
}

$A->write_config(conf($replica->address . ' fail=open'));
$B->write_config(conf($replica->address . ' fail=closed'));
$C->write_config(conf($cluster->address));
$D->write_config(conf($secret->address . ' password=wrong'));
$_->run for $A, $B, $C, $D;

sub hit {
    my ($t, $path, $key) = @_;
    return $t->get($path, headers => { 'X-Key' => $key })->{status};
}

sub redis_state {
    my ($t) = @_;
    my $r = $t->get('/api');
    return eval { decode_json($r->{body})->{redis} } || {};
}

sub metric_up {
    my ($t) = @_;
    my ($v) = $t->get('/api/metrics')->{body}
              =~ /^token_ratelimit_redis_up (\d+)$/m;
    return $v // -1;
}

sub down_lines {
    grep { /token_ratelimit: redis .* is unreachable/ }
    split /\n/, $_[0]->error_log;
}

sub up_lines {
    grep { /token_ratelimit: redis .* is reachable again/ }
    split /\n/, $_[0]->error_log;
}

my @nodes = (['A', $A, qr/READONLY/], ['B', $B, qr/READONLY/],
             ['C', $C, qr/CLUSTERDOWN/], ['D', $D, qr/WRONGPASS/]);

# --- refused ---------------------------------------------------------------

my $t0 = time;
for my $node (@nodes) {
    my ($name, $t, $re) = @$node;
    ok(TRLRedis::wait_for(5, sub { !(redis_state($t)->{up} // 1) }),
       "$name: the API says \"up\":false");
    my $st = redis_state($t);
    like($st->{reason} // '', $re, "$name: the reason ($re)")
        or diag(explain $st);
    unlike($st->{reason} // '', qr/[\r\n]/, "$name: one line");
    cmp_ok(length($st->{reason} // ''), '<=', 160, "$name: bounded");
    is(metric_up($t), 0, "$name: token_ratelimit_redis_up 0");
}
diag('reason at A: ' . (redis_state($A)->{reason} // 'none'));

# fail=open: the node limits alone; fail=closed: 503
my @a = map { hit($A, '/as', 'k') } 1 .. 4;
push @a, map { hit($A, '/st', 'k') } 1 .. 4;
is("@a", '200 200 200 429 200 200 200 429', 'A (fail=open): limits alone');
my @b = (hit($B, '/as', 'k'), hit($B, '/st', 'k'));
is("@b", '503 503', 'B (fail=closed): sync zones get 503');
my @c = map { hit($C, '/st', 'c') } 1 .. 4;
is("@c", '200 200 200 429', 'C (CLUSTERDOWN, fail=open): limits alone');
my @d = map { hit($D, '/st', 'd') } 1 .. 4;
is("@d", '200 200 200 429', 'D (WRONGPASS, fail=open): limits alone');

# retried calls and probes over 3 s: still one line per node
for my $i (1 .. 10) {
    hit($A, '/as', "m$i");
    hit($A, '/st', "m$i");
    sleep 0.1;
}
sleep 3 - (time - $t0) if time - $t0 < 3;
for my $node (@nodes) {
    my ($name, $t, $re) = @$node;
    my @l = down_lines($t);
    is(scalar @l, 1, "$name: one line for the outage")
        or diag(join "\n", @l[0 .. ($#l < 5 ? $#l : 5)]);
    like($l[0] // '', qr/\[error\].*$re/, "$name: [error] with the reason");
    is(scalar up_lines($t), 0, "$name: no end yet");
}
like((down_lines($B))[0] // '', qr/503 \(fail=closed\)/,
     'B: the line names the fail policy');
is(redis_state($A)->{up} ? 1 : 0, 0, 'A: still down after 3 s');

# the dashboard shows the state and the reason
SKIP: {
    skip 'no chromium', 3 unless TRL::chromium();
    my ($dom) = $A->browse('http://127.0.0.1:' . $A->port
                           . '/api/dashboard?interval=1', name => 'health');
    my ($table) = $dom =~ m{(<table id="redis">.*?</table>)}s;
    like($table // '', qr/>down</, 'dashboard: Redis down');
    like($table // '', qr/READONLY You can't write/,
         'dashboard: with the reason');
}
is($replica->hsum(TRLRedis::key_name('as', 'k')), 0,
   'nothing was written meanwhile');

# --- served again ------------------------------------------------------------

like($replica->cli('REPLICAOF', 'NO', 'ONE'), qr/OK/, 'REPLICAOF NO ONE');
my $up_at = time;
my $n = 0;
for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    ok(TRLRedis::wait_for(10, sub {
           $n++;
           hit($t, '/as', "u$n");
           redis_state($t)->{up};
       }), "$name: up again");
    diag(sprintf '%s up %.2f s after REPLICAOF NO ONE', $name, time - $up_at);
    my $st = redis_state($t);
    ok(!defined $st->{reason}, "$name: no reason while up");
    is(metric_up($t), 1, "$name: token_ratelimit_redis_up 1");
}
sleep 0.3;
for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    my @u = up_lines($t);
    is(scalar @u, 1, "$name: one line for the end") or diag(join "\n", @u);
    like($u[0] // '', qr/again after \d+ s \(\d+ calls refused\)/,
         "$name: how long, how many calls were refused");
    is(scalar down_lines($t), 1, "$name: still one line for the outage");
}
ok(TRLRedis::wait_for(3, sub {
       $replica->hsum(TRLRedis::key_name('as', 'k')) == 3
       && $replica->hsum(TRLRedis::key_name('as', 'm1')) == 1
   }), 'A: the admissions made meanwhile are published');
my @s = map { hit($B, '/st', 'fresh') } 1 .. 4;
is("@s " . $replica->hsum(TRLRedis::key_name('st', 'fresh')),
   '200 200 200 429 3', 'B: strict decides in Redis again');

# C and D stay down, and say so once
for my $node (['C', $C], ['D', $D]) {
    my ($name, $t) = @$node;
    is(scalar down_lines($t), 1, "$name: still one line");
    is(redis_state($t)->{up} ? 1 : 0, 0, "$name: still down");
}

# --- MOVED: the probe passes, the calls keep failing --------------------------

my $E = TRL->new(workers => 2);
my ($c1, $c2) = map { TRLRedis->new(cluster => 1) } 1 .. 2;
$c1->cli('CLUSTER', 'ADDSLOTSRANGE', 0, 8191);
$c2->cli('CLUSTER', 'ADDSLOTSRANGE', 8192, 16383);
$c1->cli('CLUSTER', 'MEET', '127.0.0.1', $c2->port);
ok(TRLRedis::wait_for(15, sub {
       !grep { $_->cli('CLUSTER', 'INFO') !~ /cluster_state:ok/ } $c1, $c2
   }), 'a Redis Cluster of two nodes');
cmp_ok($c1->cli('CLUSTER', 'KEYSLOT', 'trl:probe'), '<', 8192,
       'the probe\'s key is served by the first node');
my ($moved) = grep {
    $c1->cli('CLUSTER', 'KEYSLOT', TRLRedis::key_name('st', $_)) >= 8192
} map { "k$_" } 1 .. 50;
like($c1->cli('SET', TRLRedis::key_name('st', $moved), 1), qr/^MOVED/,
     "the key $moved of zone st is on the other node");

$E->write_config(conf($c1->address));
$E->run;
my @e = map { hit($E, '/st', $moved) } 1 .. 4;
is("@e", '200 200 200 429', 'E (MOVED, fail=open): limits alone');
ok(TRLRedis::wait_for(5, sub { !(redis_state($E)->{up} // 1) }),
   'E: "up":false');
like(redis_state($E)->{reason} // '', qr/^[a-z ]+ refused: MOVED \d+ /,
     'E: the reason (MOVED)');
my $e0 = time;
while (time - $e0 < 4) {
    hit($E, '/st', $moved);
    sleep 0.2;
}
is(scalar down_lines($E), 1, 'E: one line for the outage over 4 s')
    or diag(join "\n", down_lines($E), up_lines($E));
is(scalar up_lines($E), 0, 'E: never "reachable again"');
is(redis_state($E)->{up} ? 1 : 0, 0, 'E: still down');
is(metric_up($E), 0, 'E: token_ratelimit_redis_up 0');

$_->no_alerts for $A, $B, $C, $D, $E;
done_testing;
