#!/usr/bin/perl
# token_ratelimit_event_log with cluster-wide zones: exactly one
# "rejected" line per rejected request whichever path decided it:
#
# - sync=strict, rejected by Redis's answer, then from the local cache of
#   the key's block (strict_cached);
# - sync=async, on the cluster estimate;
# - Redis down, fail=open: decided locally (fallback), async and strict;
# - Redis down, fail=closed: 503, one "unavailable" line per request.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my ($A, $C) = (TRL->new, TRL->new);
my $redis = TRLRedis->new(port => $A->port('REDIS'));
my $raddr = $redis->address;

sub conf {
    my ($fail) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=st:1m rate=2r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=as:1m rate=2r/m sync;
    token_ratelimit_redis $raddr interval=50ms timeout=200ms fail=$fail;
    token_ratelimit_event_log logs/events.log;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /st  { token_ratelimit zone=st; empty_gif; }
        location /as  { token_ratelimit zone=as; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
}

$A->write_config(conf('open'));
$C->write_config(conf('closed'));
$_->run for $A, $C;

my $json = JSON::PP->new->utf8;
my %seen;

sub new_lines {
    my ($t) = @_;
    my $text = $t->read_file('logs/events.log');
    my $from = $seen{$t} // 0;
    $seen{$t} = length $text;
    my @l = map { $json->decode($_) } split /\n/, substr($text, $from);
    return @l;
}

sub hits {
    my ($t, $path, $key, $n) = @_;
    return map { $t->get($path, headers => { 'X-Key' => $key })->{status} }
               1 .. $n;
}

sub zone_stat {
    my ($t, $zone, $stat) = @_;
    my $r = $t->get("/api/zones/$zone");
    my $z = eval { $json->decode($r->{body}) } || {};
    return $z->{cluster}{$stat} // -1;
}

# Lines of one event, checked against the rejections seen.
sub check {
    my ($t, $name, $event, $zone, $key, $want) = @_;
    sleep 0.05;
    my @l = new_lines($t);
    my @ev = grep { $_->{event} eq $event } @l;
    is(scalar @l, $want, "$name: $want lines") or diag(explain \@l);
    is(scalar @ev, $want, "$name: all \"$event\"");
    ok(!grep({ $_->{zone} ne $zone || ($_->{key} // '') ne $key } @ev),
       "$name: zone $zone, key $key");
    return @ev;
}

new_lines($_) for $A, $C;

# --- strict: Redis's answer, then the cache ----------------------------------

is(join(' ', hits($A, '/st', 'k1', 3)), '200 200 429',
   'strict: the third rejected by Redis');
check($A, 'strict (Redis)', 'rejected', 'st', 'k1', 1);

my $cached = zone_stat($A, 'st', 'strict_cached');
is(join(' ', hits($A, '/st', 'k1', 3)), '429 429 429',
   'strict: then from the cache');
cmp_ok(zone_stat($A, 'st', 'strict_cached'), '>=', $cached + 3,
       'strict: answered from the block cache');
my @e = check($A, 'strict (cache)', 'rejected', 'st', 'k1', 3);
is($e[0]{status}, 429, 'strict (cache): status');

# --- async -------------------------------------------------------------------

is(join(' ', hits($A, '/as', 'k2', 4)), '200 200 429 429', 'async: limited');
check($A, 'async', 'rejected', 'as', 'k2', 2);

# --- Redis down --------------------------------------------------------------

$redis->stop;
sleep 0.3;

is(join(' ', hits($A, '/st', 'k3', 4)), '200 200 429 429',
   'down, fail=open: strict decided locally');
check($A, 'fallback (strict)', 'rejected', 'st', 'k3', 2);
is(join(' ', hits($A, '/as', 'k4', 3)), '200 200 429',
   'down, fail=open: async decided locally');
check($A, 'fallback (async)', 'rejected', 'as', 'k4', 1);

is(join(' ', hits($C, '/st', 'k5', 2)), '503 503', 'down, fail=closed: 503');
@e = check($C, 'fail=closed', 'unavailable', 'st', 'k5', 2);
is($e[0]{status}, 503, 'unavailable: status 503');
is($e[0]{retry_after}, 1, 'unavailable: retry_after');

$_->no_alerts for $A, $C;

done_testing;
