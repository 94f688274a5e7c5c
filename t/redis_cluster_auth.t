#!/usr/bin/perl
# token_ratelimit_redis cluster=... password=... (SPEC 8, Redis Cluster,
# with AUTH): a Redis Cluster of 3 masters whose nodes want a password.
# - With the password, the slot map is read (CLUSTER SLOTS after AUTH) and
#   a strict zone is exact across two nginx nodes for keys on every
#   master, counted on that master.
# - With a wrong password the node is down, honestly: the API says
#   "up":false with the refusal as the reason, token_ratelimit_redis_up is
#   0, requests get the fail policy (fail=open: the node's own count),
#   and the outage is logged once, not once per call.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;
use TRLRedisCluster;

my $C = TRLRedisCluster->new(masters => 3, replicas => 0,
                             password => 'cpw-1');
my @masters = $C->nodes;
my $seeds = join ',', map { $_->address } @masters[0, 1];

sub conf {
    my ($pw) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=st:1m rate=5r/m sync=strict;
    token_ratelimit_redis cluster=$seeds password=$pw interval=50ms
                          timeout=300ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /st { token_ratelimit zone=st; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
}

my ($A, $B, $W) = map { TRL->new(workers => 2) } 1 .. 3;
$_->write_config(conf('cpw-1')) for $A, $B;
$W->write_config(conf('wrong'));
$_->run for $A, $B, $W;

sub redis_state {
    my ($t) = @_;
    return eval { decode_json($t->get('/api')->{body})->{redis} } || {};
}

sub hit {
    my ($t, $key) = @_;
    return $t->get('/st', headers => { 'X-Key' => $key })->{status};
}

# --- the right password ---------------------------------------------------

for my $node (['A', $A], ['B', $B]) {
    my ($name, $t) = @$node;
    ok(TRLRedis::wait_for(10, sub {
           my $st = redis_state($t);
           $st->{up} && @{$st->{masters} || []} == 3
       }), "$name: up, the slot map read after AUTH");
}

for my $m (0 .. 2) {
    my $node = $masters[$m];
    my $key;
    for my $i (1 .. 100000) {
        my $owner = $C->node_of(TRLRedis::key_name('st', "a$m-$i"));
        next unless $owner && $owner->port == $node->port;
        $key = "a$m-$i";
        last;
    }
    my @s = map { hit($_ % 2 ? $B : $A, $key) } 0 .. 6;
    is("@s", '200 200 200 200 200 429 429',
       "strict: exact across the nodes, a key on master $m");
    is($node->hsum(TRLRedis::key_name('st', $key)), 5,
       "strict: counted on master $m");
}

# --- a wrong password: down, honestly ----------------------------------------

ok(TRLRedis::wait_for(5, sub {
       my $st = redis_state($W);
       !$st->{up} && ($st->{reason} // '') =~ /WRONGPASS|NOAUTH|invalid/i
   }), 'wrong password: the API says down, with the refusal');
diag('reason: ' . (redis_state($W)->{reason} // 'none'));
like($W->get('/api/metrics')->{body} // '',
     qr/^token_ratelimit_redis_up 0$/m, 'wrong password: redis_up 0');
my @s = map { hit($W, 'w') } 1 .. 7;
is("@s", '200 200 200 200 200 429 429',
   'wrong password: fail=open, the node\'s own count');
sleep 1.5;
my @down = $W->error_log =~ /redis cluster is unreachable/g;
cmp_ok(scalar @down, '>=', 1, 'wrong password: the outage is logged');
cmp_ok(scalar @down, '<=', 2,
       'wrong password: once (not once per try or call: ' . @down . ')');

$_->no_alerts for $A, $B, $W;
done_testing;
