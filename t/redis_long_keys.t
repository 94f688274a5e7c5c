#!/usr/bin/perl
# Long keys in Redis: a key longer than 64 bytes is named by its first bytes
# and a hash of the whole key, so that Redis memory per key stays bounded
# whatever the key's length (an attacker sending unique 8 KB header values
# must not multiply Redis memory by the key length).
#
# One node (two workers), one real Redis; zones keyed by $http_x_api_key,
# sync and sync=strict, rate 3r/m.
#
# - 8 KB keys: the Redis name is trl:{zone:<first 32 bytes>~<first 32 hex
#   digits of SHA-256 of the key>} (computed here with Digest::SHA, as the
#   README's sha256sum one-liner does), it has a TTL, and MEMORY USAGE of
#   the key's Redis entries is below 250 bytes.
# - Limiting stays exact for such a key: 3 admitted, then 429 (and Redis
#   holds 3 under the hashed name).
# - Two 8 KB keys that share their first 8000 bytes are counted apart.
# - A key not plain in its first 32 bytes (UTF-8): "x:" and the hex of its
#   first bytes, no character cut.
# - A 64-byte key keeps its plain name; a 65-byte key is hashed.
# - redis-cli DEL of the hashed name resets the key (strict: at once, for
#   a key below its limit; async: within two intervals and some slack); the
#   API's DELETE by key deletes the hashed name too.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $INTERVAL = 0.05;
my $MEMORY_MAX = 250;

my $t = TRL->new(workers => 2);
my $redis = TRLRedis->new(port => $t->port('REDIS'));
my $raddr = $redis->address;

$t->write_config(<<"EOF");
    large_client_header_buffers 4 32k;
    token_ratelimit_zone \$http_x_api_key zone=la:1m rate=3r/m sync;
    token_ratelimit_zone \$http_x_api_key zone=ls:1m rate=3r/m sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=2s;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /la { token_ratelimit zone=la; empty_gif; }
        location /ls { token_ratelimit zone=ls; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
$t->run;

sub hit {
    my ($zone, $key) = @_;
    return $t->get("/$zone", headers => { 'X-Api-Key' => $key })->{status};
}

sub statuses {
    my ($zone, $key, $n) = @_;
    return join ' ', map { hit($zone, $key) } 1 .. $n;
}

# An 8 KB key: a readable beginning, then filler, then a tail.
sub long_key {
    my ($head, $tail) = @_;
    my $k = $head . ('0123456789abcdef' x 512);
    return substr($k, 0, 8192 - length $tail) . $tail;
}

# The documented name, computed here from the formula (not the harness's).
sub hashed_name {
    my ($zone, $key) = @_;
    return "trl:{$zone:" . substr($key, 0, 32) . '~'
           . substr(sha256_hex($key), 0, 32) . '}';
}

# MEMORY USAGE of a Redis key, with every sample (0: whole value).
sub memory {
    my ($name) = @_;
    my $m = $redis->cli('MEMORY', 'USAGE', $name, 'SAMPLES', 0);
    return $m =~ /^\d+$/ ? $m : undef;
}

# The zone's Redis keys, once the async node has published.
sub names_of {
    my ($zone) = @_;
    return $redis->scan("trl:{$zone:*");
}

my $A = long_key('api-key-A-', '-endA');
my $B = long_key('api-key-A-', '-endB');       # the same first 8187 bytes
is(length $A, 8192, 'an 8 KB key');
is(substr($A, 0, 8000), substr($B, 0, 8000), 'two keys, one beginning');

# a short key, for comparison
is(statuses('ls', 'short', 1), '200', 'a short key');
my $short = memory(TRLRedis::key_name('ls', 'short'));
diag("Redis MEMORY USAGE of a short key: " . ($short // 'none') . ' B');

for my $zone ('ls', 'la') {
    my $kind = $zone eq 'ls' ? 'strict' : 'async';

    is(statuses($zone, $A, 4), '200 200 200 429',
       "$kind: an 8 KB key: 3 admitted, then 429");
    is(statuses($zone, $B, 4), '200 200 200 429',
       "$kind: another 8 KB key with the same beginning: counted apart");

    my @want = sort map { hashed_name($zone, $_) } $A, $B;
    my @got;
    TRLRedis::wait_for(2, sub {
        @got = grep { !/short/ } names_of($zone);
        "@got" eq "@want";
    });
    is_deeply(\@got, \@want,
              "$kind: Redis names: the first 32 bytes, ~, and 32 hex digits"
              . ' of SHA-256 of the key')
        or diag('names: ' . join(' ', map { substr($_, 0, 80) . '... ('
                                            . length($_) . ' B)' } @got));
    is(TRLRedis::key_name($zone, $A), hashed_name($zone, $A),
       "$kind: (the harness names it the same way)");

    for my $k ([A => $A], [B => $B]) {
        my ($n, $key) = @$k;
        my $name = hashed_name($zone, $key);
        ok(TRLRedis::wait_for(2, sub { $redis->hsum($name) == 3 }),
           "$kind: key $n: Redis holds its 3 admissions under the hashed"
           . ' name')
            or diag("hsum " . $redis->hsum($name));
        my $pttl = $redis->cli('PTTL', $name);
        ok($pttl =~ /^\d+$/ && $pttl > 0 && $pttl <= 63_000,
           "$kind: key $n: with a TTL (PTTL $pttl)");
        my $m = memory($name);
        ok(defined $m && $m < $MEMORY_MAX,
           "$kind: key $n: MEMORY USAGE below $MEMORY_MAX B ("
           . ($m // 'none') . ' B)');
    }

    # all the Redis memory of the 8 KB keys: their entries
    my @names = grep { !/short/ } names_of($zone);
    my $sum = 0;
    $sum += memory($_) // 0 for @names;
    diag(sprintf "$kind: Redis MEMORY USAGE per 8 KB key: %.0f B",
                 $sum / (@names || 1));
}

# --- DEL of the hashed name resets the key ---------------------------------

# strict: a key with 2 of its 3 (a key at its limit is cached as blocked
# by the node until its window frees a place: Redis is not asked)
{
    my $C = long_key('api-key-C-', '-endC');
    my $name = hashed_name('ls', $C);
    is(statuses('ls', $C, 2), '200 200', 'strict: C: 2 admitted');
    is($redis->hsum($name), 2, 'strict: C: 2 in Redis under its name');
    is($redis->cli('DEL', $name), '1', 'strict: redis-cli DEL of its name');
    is(statuses('ls', $C, 4), '200 200 200 429',
       'strict: C has its whole quota back');
    is(hit('ls', $B), 429, 'strict: B is still at its limit');
}

{
    my $name = hashed_name('la', $A);
    is(hit('la', $A), 429, 'async: A is at its limit');
    is($redis->cli('DEL', $name), '1', 'async: redis-cli DEL of its name');
    my $t0 = time;
    my $took;
    while (time < $t0 + 2) {
        if (hit('la', $A) == 200) {
            $took = time - $t0;
            last;
        }
        sleep 0.01;
    }
    ok(defined $took && $took <= 2 * $INTERVAL + 0.3,
       'async: A is admitted again within two intervals ('
       . (defined $took ? sprintf('%.3f s', $took) : 'never') . ')');
    is(hit('la', $B), 429, 'async: B is still at its limit');
}

# --- the API's DELETE by key deletes the hashed name --------------------------

{
    my $name = hashed_name('ls', $B);
    is($redis->cli('EXISTS', $name), '1', 'API: B is in Redis');
    my $r = $t->request(TRL::build_request('DELETE',
                                           "/api/zones/ls/keys?key=$B"));
    is($r->{status}, 200, 'API: DELETE of the 8 KB key B');
    ok(TRLRedis::wait_for(2, sub { $redis->cli('EXISTS', $name) eq '0' }),
       "API: B's hashed name is gone from Redis");
    is(hit('ls', $B), 200, 'API: B is admitted again');
}

# --- the 64-byte line and keys that are not plain ----------------------------

{
    my $k64 = 'k' x 63 . 'Z';
    my $k65 = 'k' x 64 . 'Z';
    my $utf = 'n' . ("\xc3\xa9" x 4000);          # "né..." in UTF-8
    is(statuses('ls', $_, 1), '200', 'strict: admitted (' . length($_)
       . ' bytes)') for $k64, $k65, $utf;

    is($redis->cli('EXISTS', "trl:{ls:$k64}"), '1',
       'a 64-byte key keeps its plain name');
    my $h65 = 'trl:{ls:' . ('k' x 32) . '~'
              . substr(sha256_hex($k65), 0, 32) . '}';
    is($redis->cli('EXISTS', $h65), '1', 'a 65-byte key is hashed');

    # not plain in its first 32 bytes: "x:", hex of 15 bytes (the 17th is
    # the second byte of an e acute), the hash
    my $hu = 'trl:{ls:x:6e' . ('c3a9' x 7) . '~'
             . substr(sha256_hex($utf), 0, 32) . '}';
    is($redis->cli('EXISTS', $hu), '1',
       'a long UTF-8 key: x:, the hex of its first whole characters, the'
       . ' hash');
    is(TRLRedis::key_name('ls', $utf), $hu,
       '(the harness names it the same way)');
    my $m = memory($hu);
    ok(defined $m && $m < $MEMORY_MAX,
       "the UTF-8 key's MEMORY USAGE is below $MEMORY_MAX B ("
       . ($m // 'none') . ' B)');
}

# every Redis name the node wrote is short
{
    my @long = grep { length > 8 + 2 + 2 * 64 + 1 } $redis->scan('trl:*');
    is(scalar @long, 0, 'no Redis name is longer than a 64-byte key in hex')
        or diag(scalar(@long) . ' long names');
}

$t->no_alerts;
done_testing;
