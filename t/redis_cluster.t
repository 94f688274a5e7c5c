#!/usr/bin/perl
# token_ratelimit_redis cluster=... (SPEC 8, Redis Cluster).
#
# Real processes: a Redis Cluster of 3 masters, each with a replica
# (redis-cli --cluster create, cluster-node-timeout 1000 ms), and two nginx
# nodes with 2 workers each whose cluster= list names one seed only and an
# address where nothing listens.
# - nginx -t refuses a bad cluster= list, cluster= with an address, with
#   sentinel=, with db=.
# - The API shows mode "cluster", the seeds, the 3 masters with their
#   slots (16384 in all), all up.
# - For keys on every master: a strict zone is exact across the nodes and
#   counted in that key's master; an async zone admits N and at most
#   N + max(1, ceil(N/10)) of parallel bursts at both nodes.
# - A slot migrated by hand (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE,
#   SETSLOT NODE): while migrating, a key still on the source is counted
#   there and a new key of the slot on the target (ASK); afterwards the
#   migrated key keeps its count on the target (MOVED), exact.
# - redis-cli --cluster reshard moves 500 slots under load: clients get
#   200 and 429 only, and the keys of the moved slots stay exact.
# - A master is killed under load: clients get 200 and 429 only; the API
#   says down with the node in the reason until the replica takes over;
#   within the failover + 2 s a fresh key of those slots is exact through
#   the new master, and the API shows it and the failover.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;
use TRLRedisCluster;

my $T = TRL->new;                        # nginx -t only

sub redis_conf {
    my ($redis) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=st:1m rate=5r/m sync=strict;
    token_ratelimit_redis $redis;
    server { listen 127.0.0.1:%%PORT%%; location / { empty_gif; } }
EOF
}

$T->config_fails(redis_conf('cluster=127.0.0.1:7000,,127.0.0.1:7001'),
                 [qr/invalid value "cluster=127\.0\.0\.1:7000,,/,
                  qr/host:port separated by commas/],
                 'cluster= with an empty entry');
$T->config_fails(redis_conf('cluster=127.0.0.1:nope'),
                 [qr/invalid address "127\.0\.0\.1:nope"/],
                 'cluster= with a bad port');
$T->config_fails(redis_conf('127.0.0.1:6379 cluster=127.0.0.1:7000'),
                 [qr/both "cluster=" and an address/],
                 'an address and cluster=');
$T->config_fails(redis_conf('cluster=127.0.0.1:7000 sentinel=127.0.0.1:1 '
                            . 'master=m'),
                 [qr/both "cluster=" and "sentinel="/],
                 'sentinel= and cluster=');
$T->config_fails(redis_conf('cluster=127.0.0.1:7000 db=1'),
                 [qr/"db=" in "token_ratelimit_redis" directive cannot be used with "cluster="/],
                 'db= with cluster=');

my $C = TRLRedisCluster->new(masters => 3, replicas => 1,
                             node_timeout => 1000);
my @masters = grep { $_->role eq 'master' } $C->nodes;
is(scalar @masters, 3, 'the cluster has 3 masters');

my $nobody = TRLRedis::free_port();
my $seeds = "127.0.0.1:$nobody," . $masters[0]->address;
my ($A, $B) = map { TRL->new(workers => 2) } 1 .. 2;

for my $t ($A, $B) {
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=st:1m rate=5r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=as:1m rate=10r/m sync;
    token_ratelimit_redis cluster=$seeds interval=50ms timeout=300ms;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /st { token_ratelimit zone=st; empty_gif; }
        location /as { token_ratelimit zone=as; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
    $t->run;
}

sub hit {
    my ($t, $path, $key) = @_;
    return $t->get($path, headers => { 'X-Key' => $key })->{status};
}

sub redis_state {
    my ($t) = @_;
    return eval { decode_json($t->get('/api')->{body})->{redis} } || {};
}

# 7 requests of a key to the strict zone, A and B in turn
sub exact {
    my ($key, $n) = @_;
    my @s = map { hit($_ % 2 ? $B : $A, '/st', $key) } 0 .. ($n // 7) - 1;
    return "@s";
}

# per requests of a key at each node at once, to the async zone
sub burst {
    my ($key, $per) = @_;
    my $raw = TRL::build_request('GET', '/as', headers => { 'X-Key' => $key });
    return map { $_->{status} }
           TRL::collect_responses(20, TRL::send_all(
               map { [$_, $raw] } ($A) x $per, ($B) x $per));
}

# a key of the zone whose Redis key is in one of the node's slots
my %slots_of;
sub key_on {
    my ($node, $zone, $prefix, $not_slot) = @_;
    for my $i (1 .. 100000) {
        my $key = "$prefix$i";
        my $slot = TRLRedisCluster::keyslot(TRLRedis::key_name($zone, $key));
        next if defined $not_slot && $slot == $not_slot;
        my $owner = $C->node_of(TRLRedis::key_name($zone, $key));
        return $key if $owner && $owner->port == $node->port;
    }
    die "no key on " . $node->address;
}

for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    ok(TRLRedis::wait_for(10, sub { redis_state($t)->{up}
                                    && @{redis_state($t)->{masters} || []}
                                       == 3 }),
       "$name: up, the slot map read");
    my $st = redis_state($t);
    is($st->{mode}, 'cluster', "$name: mode cluster");
    is(join(',', @{$st->{seeds} || []}), $seeds, "$name: the seeds");
    is(join(',', sort map { $_->{address} } @{$st->{masters}}),
       join(',', sort map { $_->address } @masters), "$name: the masters");
    my $slots = 0;
    $slots += $_->{slots} for @{$st->{masters}};
    is($slots, 16384, "$name: every slot served");
    is(scalar(grep { $_->{up} } @{$st->{masters}}), 3, "$name: all up");
    is($st->{slots_unserved}, 0, "$name: no slot unserved");
}

# --- every master --------------------------------------------------------------

for my $m (0 .. 2) {
    my $node = $masters[$m];
    my $key = key_on($node, 'st', "m$m-");
    is(exact($key), '200 200 200 200 200 429 429',
       "strict: exact across nodes, a key on master $m");
    is($node->hsum(TRLRedis::key_name('st', $key)), 5,
       "strict: counted in master $m");

    # parallel bursts of 8 at both nodes at once, async N=10
    my $akey = key_on($node, 'as', "a$m-");
    hit($A, '/as', "warm$m");                   # links are up everywhere
    my $admitted = grep { ($_ // '') eq '200' } burst($akey, 8);
    # (places reserved for a node that it did not use are lost for a
    # while: t/redis_burst.t)
    cmp_ok($admitted, '>=', 7, "async: master $m admits ($admitted)");
    cmp_ok($admitted, '<=', 11, "async: master $m within N + 1");
}

# --- DEL is a reset, on any master; scripts flushed are loaded again ------------

{
    my $akey = key_on($masters[1], 'as', 'del-');
    hit($_ % 2 ? $B : $A, '/as', $akey) for 1 .. 12;
    is(hit($A, '/as', $akey), 429, 'async: a key used up');
    $C->cli('DEL', TRLRedis::key_name('as', $akey));
    my $t0 = time;
    my $back = TRLRedis::wait_for(2, sub {
        hit($A, '/as', $akey) == 200 && hit($B, '/as', $akey) == 200
    });
    ok($back, 'async: DEL gives the key back on both nodes');
    cmp_ok(time - $t0, '<=', 1.2, 'within 1 s + 2 intervals');

    $_->cli('SCRIPT', 'FLUSH') for @masters;
    my $key = key_on($masters[2], 'st', 'flush-');
    is(exact($key), '200 200 200 200 200 429 429',
       'strict: exact after SCRIPT FLUSH on every master (NOSCRIPT, EVAL)');
}

# --- a slot migrated by hand: ASK, then MOVED -----------------------------------

my ($src, $dst) = @masters[0, 1];
my $old = key_on($src, 'st', 'mig-');
my $slot = TRLRedisCluster::keyslot(TRLRedis::key_name('st', $old));
is(exact($old, 3), '200 200 200', 'before the migration: 3 of 5');

my $new;                                 # another key of the same slot
for my $i (1 .. 1000000) {
    next unless TRLRedisCluster::keyslot(TRLRedis::key_name('st', "n$i"))
                == $slot;
    $new = "n$i";
    last;
}
ok(defined $new, "a second key in slot $slot");

my ($src_id, $dst_id) = map { $C->id_of($_) } $src, $dst;
$dst->cli('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $src_id);
$src->cli('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $dst_id);

is(exact($new), '200 200 200 200 200 429 429',
   'migrating: a new key of the slot is exact (ASK to the target)');
is(exact($old, 1), '200', 'migrating: the key on the source counts there');
is($src->hsum(TRLRedis::key_name('st', $old)), 4,
   'migrating: 4 on the source');

$src->cli('MIGRATE', '127.0.0.1', $dst->port, '', 0, 5000, 'KEYS',
          TRLRedis::key_name('st', $old));
for my $node (@masters) {
    $node->cli('CLUSTER', 'SETSLOT', $slot, 'NODE', $dst_id);
}
is(exact($old, 3), '200 429 429',
   'migrated: the key keeps its count on the target (MOVED followed)');
is($dst->hsum(TRLRedis::key_name('st', $old)), 5,
   'migrated: counted on the target');
is($dst->hsum(TRLRedis::key_name('st', $new)), 5,
   'the new key was counted on the target (ASK followed)');
ok(TRLRedis::wait_for(8, sub {
       my $st = redis_state($A);
       my ($d) = grep { $_->{address} eq $dst->address }
                 @{$st->{masters} || []};
       $d && $st->{slots_moved} >= 1;
   }), 'the API shows the slot moved');

# --- load, for the reshard and the failover --------------------------------------

my $statuses = $A->dir . '/load.txt';
my $stop = $A->dir . '/load.stop';

sub start_load {
    unlink $statuses, $stop;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $fh, '>', $statuses or POSIX::_exit(1);
    $fh->autoflush(1);
    my $i = 0;
    until (-e $stop) {
        $i++;
        for my $t ($A, $B) {
            for my $path ('/st', '/as') {
                my $r = $t->get($path, headers => { 'X-Key' => 'l' . $i % 23 });
                print $fh ($r->{status} // 'none'), "\n";
            }
        }
        sleep 0.01;
    }
    close $fh;
    POSIX::_exit(0);
}

sub stop_load {
    my ($pid, $what) = @_;
    open my $fh, '>', $stop or die;
    close $fh;
    waitpid $pid, 0;
    my %seen;
    open $fh, '<', $statuses or die;
    while (<$fh>) { chomp; $seen{$_}++ }
    close $fh;
    my $total = 0;
    $total += $_ for values %seen;
    diag("$what: " . join(' ', map { "$_=$seen{$_}" } sort keys %seen));
    cmp_ok($total, '>=', 40, "$what: the load ran ($total requests)");
    is(join(',', grep { $_ ne '200' && $_ ne '429' } sort keys %seen), '',
       "$what: clients got only 200 and 429");
}

# --- redis-cli --cluster reshard under load -----------------------------------------

my $load = start_load();
sleep 0.3;
my $out = `timeout -s KILL 60 $TRLRedis::CLI --cluster reshard ${\ $dst->address } --cluster-from $dst_id --cluster-to ${\ $C->id_of($masters[2]) } --cluster-slots 500 --cluster-yes 2>&1`;
is($? >> 8, 0, 'redis-cli --cluster reshard moved 500 slots')
    or diag($out);
ok($C->wait_ok(20), 'the cluster is ok after the reshard');
sleep 0.3;
stop_load($load, 'reshard');

my $moved = key_on($masters[2], 'st', 'rs-');
is(exact($moved), '200 200 200 200 200 429 429',
   'after the reshard: exact for a key of the receiving master');

# --- a master killed under load --------------------------------------------------------

my $victim = $masters[2];
my $victim_addr = $victim->address;
my $fkey = key_on($victim, 'st', 'f-');
my $fslot = TRLRedisCluster::keyslot(TRLRedis::key_name('st', $fkey));

$load = start_load();
sleep 0.3;
$victim->stop(kill => 1);
my $killed = time;

ok(TRLRedis::wait_for(3, sub { !redis_state($A)->{up} }),
   'the API says down while a master is gone');
like(redis_state($A)->{reason} // '', qr/\Q$victim_addr\E/,
     'the reason names the node');

# the switch: a replica serves the victim's slots (the running nodes said
# cluster_state:ok all along until they noticed the failure)
ok(TRLRedis::wait_for(20, sub {
       my $n = $C->node_of(TRLRedis::key_name('st', $fkey));
       $n && $n->port != $victim->port;
   }) && $C->wait_ok(20), 'the cluster fails over');
my $switched = time;
diag(sprintf 'the cluster was ok again %.2f s after the kill',
             $switched - $killed);
my $both = TRLRedis::wait_for(10, sub {
    for my $t ($A, $B) {
        my $st = redis_state($t);
        return 0 unless $st->{up};
        return 0 if grep { $_->{address} eq $victim_addr }
                    @{$st->{masters} || []};
    }
    return 1;
});
ok($both, 'every node follows the failover')
    or diag(explain([redis_state($A), redis_state($B)]));
cmp_ok(time - $switched, '<=', 2, 'within the failover plus 2 s');
my $left = $switched + 2 - time;
sleep $left if $left > 0;

my $fresh;
for my $i (1 .. 1000000) {
    next unless TRLRedisCluster::keyslot(TRLRedis::key_name('st', "g$i"))
                == $fslot;
    $fresh = "g$i";
    last;
}
is(exact($fresh), '200 200 200 200 200 429 429',
   'strict: exact through the new master, 2 s after the failover');
my $promoted = $C->node_of(TRLRedis::key_name('st', $fresh));
ok($promoted && $promoted->port != $victim->port, 'a new master serves it');
is($promoted ? $promoted->hsum(TRLRedis::key_name('st', $fresh)) : -1, 5,
   'strict: counted in the new master');
stop_load($load, 'failover');

for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    my $st = redis_state($t);
    cmp_ok($st->{failovers} // 0, '>=', 1, "$name: the failover is seen");
    is(scalar @{$st->{masters} || []}, 3, "$name: 3 masters again");
    is(scalar(grep { $_->{up} } @{$st->{masters} || []}), 3,
       "$name: all up");
    my @down = $t->error_log =~ /redis cluster is unreachable/g;
    my @again = $t->error_log =~ /redis cluster is reachable again/g;
    cmp_ok(scalar @down, '<=', 3, "$name: the outage logged once or so ("
                                  . scalar(@down) . ')');
    cmp_ok(scalar @again, '>=', 1, "$name: and its end");
}

my $prom = $A->get('/api/metrics')->{body} // '';
for my $m (@{redis_state($A)->{masters} || []}) {
    like($prom, qr/^token_ratelimit_redis_master_up\{address="\Q$m->{address}\E"\} 1$/m,
         "metrics: master $m->{address} up");
    like($prom, qr/^token_ratelimit_redis_master_slots\{address="\Q$m->{address}\E"\} $m->{slots}$/m,
         "metrics: its slots");
}
like($prom, qr/^token_ratelimit_redis_failovers_total [1-9]/m,
     'metrics: the failover counted');
like($prom, qr/^token_ratelimit_redis_up 1$/m, 'metrics: up');

SKIP: {
    skip 'no chromium', 2 unless TRL::chromium();
    my ($dom) = $A->browse('http://127.0.0.1:' . $A->port
                           . '/api/dashboard?interval=1', name => 'cluster');
    my ($table) = $dom =~ m{(<table id="redis">.*?</table>)}s;
    like($table // '', qr/>cluster</, 'dashboard: the mode');
    like($table // '', qr/\Q${\ $promoted->address}\E \(\d+ slots, up\)/,
         'dashboard: the new master, its slots, up');
}

$_->no_alerts for $A, $B;
done_testing;
