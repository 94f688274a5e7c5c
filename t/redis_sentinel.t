#!/usr/bin/perl
# token_ratelimit_redis sentinel=... master=NAME (SPEC 8, Redis Sentinel).
#
# Real processes: a master, a replica (--replicaof), three sentinels
# (down-after-milliseconds 500, failover-timeout 2000), and two nginx nodes
# whose sentinel= list starts with an address where nothing listens.  The
# master and replica want a password (password=), the sentinels another
# (sentinel_password=).
# - nginx -t refuses a bad sentinel= list, sentinel= without master=,
#   master= without sentinel=, an address and sentinel= together.
# - The nodes find the master through the sentinels: the API shows mode
#   "sentinel", the master's name and address, the sentinels; a strict
#   zone is exact across the nodes, counted in the master.
# - The master is killed (SIGKILL) under light load on both nodes (a
#   strict and an async zone): clients get only 200 and 429 (fail=open);
#   within the failover (as the sentinels report it) plus 2 s every node
#   limits through the new master: a fresh key admits exactly N across the
#   nodes, counted in the new master; the API shows it and one failover.
# - The old master restarted becomes a replica (the sentinels) and changes
#   nothing: the nodes stay on the new master, exact.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my ($A, $B) = map { TRL->new(workers => 2) } 1 .. 2;
my $T = TRL->new;                        # nginx -t only
my $master = TRLRedis->new(password => 'mpw',
                           args => ['--masterauth', 'mpw']);
my $replica = TRLRedis->new(password => 'mpw',
                            args => ['--masterauth', 'mpw', '--replicaof',
                                     '127.0.0.1', $master->port]);
my @sentinels = map {
    TRLRedis->sentinel(master => $master->port, name => 'trlm', quorum => 2,
                       down_after => 500, failover_timeout => 2000,
                       auth_pass => 'mpw', password => 'spw')
} 1 .. 3;
my $nobody = TRLRedis::free_port();      # nothing listens there

my $list = join ',', "127.0.0.1:$nobody",
                     map { '127.0.0.1:' . $_->port } @sentinels;

# --- nginx -t ------------------------------------------------------------------

sub redis_conf {
    my ($redis) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=st:1m rate=5r/m sync=strict;
    token_ratelimit_redis $redis;
    server { listen 127.0.0.1:%%PORT%%; location / { empty_gif; } }
EOF
}

$T->config_fails(redis_conf("sentinel=127.0.0.1:26379,,127.0.0.1:26380 "
                            . "master=trlm"),
                 [qr/invalid value "sentinel=127\.0\.0\.1:26379,,/,
                  qr/host:port separated by commas/],
                 'sentinel= with an empty entry');
$T->config_fails(redis_conf("sentinel=127.0.0.1:notaport master=trlm"),
                 [qr/invalid address "127\.0\.0\.1:notaport"/],
                 'sentinel= with a bad port');
$T->config_fails(redis_conf("sentinel=$list"),
                 [qr/"token_ratelimit_redis" directive with "sentinel=" needs "master="/],
                 'sentinel= without master=');
$T->config_fails(redis_conf('127.0.0.1:6379 master=trlm'),
                 [qr/"master=" in "token_ratelimit_redis" directive needs "sentinel="/],
                 'master= without sentinel=');
$T->config_fails(redis_conf("127.0.0.1:6379 sentinel=$list master=trlm"),
                 [qr/both an address \("127\.0\.0\.1:6379"\) and "sentinel="/],
                 'an address and sentinel=');

# --- the master, through the sentinels --------------------------------------------

ok(TRLRedis::sentinels_ready(20, 1, @sentinels),
   'the sentinels know each other and the replica');
is($sentinels[0]->master_addr, $master->address, 'the sentinels\' master');

for my $t ($A, $B) {
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=st:1m rate=5r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=as:1m rate=30r/m sync;
    token_ratelimit_redis sentinel=$list master=trlm
                          sentinel_password=spw password=mpw
                          interval=50ms timeout=300ms;
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

# 7 requests of a fresh key, A and B in turn
sub exact {
    my ($key) = @_;
    my @s = map { hit($_ % 2 ? $B : $A, '/st', $key) } 0 .. 6;
    return "@s";
}

for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    ok(TRLRedis::wait_for(5, sub { redis_state($t)->{up}
                                   && redis_state($t)->{address} }),
       "$name: up through the sentinels");
    my $st = redis_state($t);
    is($st->{mode}, 'sentinel', "$name: mode sentinel");
    is($st->{master_name}, 'trlm', "$name: the master's name");
    is($st->{address}, $master->address, "$name: the master's address");
    is(join(',', @{$st->{sentinels} || []}), $list, "$name: the sentinels");
    is($st->{failovers}, 0, "$name: no failover yet");
}
is(exact('k1'), '200 200 200 200 200 429 429', 'strict: exact across nodes');
is($master->hsum(TRLRedis::key_name('st', 'k1')), 5,
   'strict: counted in the master');

# --- failover under light load ----------------------------------------------------

my $statuses = $A->dir . '/load.txt';
my $stop = $A->dir . '/load.stop';
my $load = fork // die "fork: $!";
if ($load == 0) {
    open my $fh, '>', $statuses or POSIX::_exit(1);
    $fh->autoflush(1);
    my $i = 0;
    until (-e $stop) {
        $i++;
        for my $t ($A, $B) {
            for my $path ('/st', '/as') {
                my $r = $t->get($path, headers => { 'X-Key' => 'l' . $i % 7 });
                print $fh ($r->{status} // 'none'), "\n";
            }
        }
        sleep 0.02;
    }
    close $fh;
    POSIX::_exit(0);
}

sleep 0.5;
$master->stop(kill => 1);
my $killed = time;
ok(TRLRedis::wait_for(20, sub {
       ($sentinels[0]->master_addr // '') eq $replica->address
   }), 'the sentinels promote the replica');
my $switched = time;
diag(sprintf 'the sentinels switched %.2f s after the kill',
             $switched - $killed);

# every node on the new master, limiting through it
my $both = TRLRedis::wait_for(10, sub {
    for my $t ($A, $B) {
        my $st = redis_state($t);
        return 0 unless $st->{up} && ($st->{address} // '') eq $replica->address;
    }
    return 1;
});
my $followed = time;
ok($both, 'every node follows the failover');
diag(sprintf 'the nodes were on the new master %.2f s after the switch '
             . '(%.2f s after the kill)', $followed - $switched,
             $followed - $killed);
cmp_ok($followed - $switched, '<=', 2,
       'within the failover plus 2 s');
# every worker of every node, by the failover plus 2 s
my $left = $switched + 2 - time;
sleep $left if $left > 0;
is(exact('k2'), '200 200 200 200 200 429 429',
   'strict: exact again through the new master, 2 s after the switch');
is($replica->hsum(TRLRedis::key_name('st', 'k2')), 5,
   'strict: counted in the new master');

sleep 0.3;
open my $fh, '>', $stop or die;
close $fh;
waitpid $load, 0;
my %seen;
open $fh, '<', $statuses or die;
while (<$fh>) { chomp; $seen{$_}++ }
close $fh;
my $total = 0;
$total += $_ for values %seen;
diag('during the failover: '
     . join(' ', map { "$_=$seen{$_}" } sort keys %seen));
cmp_ok($total, '>=', 40, "the load ran ($total requests)");
is(join(',', grep { $_ ne '200' && $_ ne '429' } sort keys %seen), '',
   'clients got only 200 and 429');

for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    is(redis_state($t)->{failovers}, 1, "$name: one failover seen");
    like($t->error_log,
         qr/\[warn\].*redis master trlm is now \Q${\ $replica->address}\E \(was \Q${\ $master->address}\E\)/,
         "$name: the failover is logged");
}

# --- the old master comes back as a replica ------------------------------------------

$master->start;
my $restarted = time;
ok(TRLRedis::wait_for(30, sub { $master->role eq 'slave' }),
   'the old master restarted becomes a replica');
diag(sprintf 'the old master was a replica %.2f s after its restart',
             time - $restarted);
sleep 0.5;
is(exact('k3'), '200 200 200 200 200 429 429',
   'strict: still exact');
is($replica->hsum(TRLRedis::key_name('st', 'k3')), 5,
   'strict: counted in the new master');
for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    my $st = redis_state($t);
    is($st->{address}, $replica->address, "$name: still on the new master");
    is($st->{failovers}, 1, "$name: still one failover");
}

SKIP: {
    skip 'no chromium', 3 unless TRL::chromium();
    my ($dom) = $A->browse('http://127.0.0.1:' . $A->port
                           . '/api/dashboard?interval=1', name => 'sentinel');
    my ($table) = $dom =~ m{(<table id="redis">.*?</table>)}s;
    like($table // '', qr/>trlm</, 'dashboard: the master\'s name');
    like($table // '', qr/sentinel: \Q${\ $replica->address}\E, failovers 1/,
         'dashboard: its address, the failovers');
}

$_->no_alerts for $A, $B;
done_testing;
