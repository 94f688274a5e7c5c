#!/usr/bin/perl
# Debug traces (README "Debug traces"): with error_log at debug level, for
# one location or, through debug_connection, for one client, each zone's
# decision is traced with its key hash (never the key), its result, the
# reset and Retry-After, then the request's status; the access decisions
# (deny, bypass) are traced too.  Needs an nginx built --with-debug, as
# Debian's is.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;
use TRLRedis;

like(`$TRL::NGINX -V 2>&1`, qr/--with-debug/, 'nginx is built --with-debug');

my $t = TRL->new;
$t->write_config(<<'EOF', events => 'debug_connection 127.0.0.1;');
    token_ratelimit_zone $http_x_key zone=dbg:1m rate=2r/m;
    token_ratelimit_zone $http_x_key zone=quiet:1m rate=2r/m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /loc {
            token_ratelimit zone=dbg;
            token_ratelimit_deny $http_x_deny;
            error_log %%DIR%%/logs/loc-debug.log debug;
            empty_gif;
        }

        location /conn {
            token_ratelimit zone=quiet;
            empty_gif;
        }
    }
EOF
$t->run;

sub key { return (headers => { 'X-Key' => $_[0], %{ $_[1] || {} } }) }
sub lines { return grep { /$_[1]/ } split /\n/, $t->read_file($_[0]) }

# --- error_log ... debug in the location ----------------------------------

is($t->get('/loc', key('secret-key-1'))->{status}, 200, 'admitted') for 1 .. 2;
my $r = $t->get('/loc', key('secret-key-1'));
is($r->{status}, 429, 'the third is rejected');
my $retry = $r->{headers}{'retry-after'} // 'none';

my $zone_re = qr/token_ratelimit: zone "dbg" key [0-9a-f]{32}: /;
my @zone = lines('logs/loc-debug.log', $zone_re);
is(scalar @zone, 3, 'one zone trace per request') or diag(join "\n", @zone);
like($zone[0] // '', qr/: passed, remaining 1, reset in \d+ s, Retry-After 0/,
     'the first: passed, 1 left');
like($zone[2] // '',
     qr/: rejected, remaining 0, reset in \d+ s, Retry-After \Q$retry\E\b/,
     "the third: rejected, Retry-After $retry as answered");
my ($hash) = ($zone[0] // '') =~ /key ([0-9a-f]{32})/;
is(scalar(grep { defined $hash && /key \Q$hash\E/ } @zone), 3,
   'the same key, the same hash');

my @req = lines('logs/loc-debug.log', qr/token_ratelimit: request /);
like($req[-1] // '', qr/token_ratelimit: request rejected, Retry-After \Q$retry\E\b/,
     "the request's status is traced");
unlike(join("\n", @zone, @req), qr/secret-key-1/, 'the traces show no key');

is($t->get('/loc', key('other', { 'X-Deny' => '1' }))->{status}, 403,
   'denied');
ok(scalar(lines('logs/loc-debug.log',
                qr/token_ratelimit: denied by token_ratelimit_deny/)),
   'the deny is traced');
ok(scalar(lines('logs/loc-debug.log',
                qr/token_ratelimit: request rejected \(denied\)/)),
   "as the request's status");

# --- debug_connection: the main error_log (info) gets this client's traces -

is($t->get('/conn', key('k2'))->{status}, 200, 'admitted in /conn');
my @conn = lines('logs/error.log',
                 qr/token_ratelimit: zone "quiet" key [0-9a-f]{32}: passed, remaining 1/);
is(scalar @conn, 1, 'debug_connection: the trace is in the main error log');

$t->stop;
# --- the Redis link: NGX_LOG_DEBUG_EVENT in the main error log ---------------

{
    my $redis = TRLRedis->new;
    my $u = TRL->new;
    $u->write_config(<<"EOF", main => 'error_log %%DIR%%/logs/main-debug.log debug;');
    token_ratelimit_zone \$http_x_key zone=st:1m rate=5r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=as:1m rate=100r/m sync;
    token_ratelimit_redis ${\ $redis->address} interval=50ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /st { token_ratelimit zone=st; empty_gif; }
        location /as { token_ratelimit zone=as; empty_gif; }
    }
EOF
    $u->run;
    ok(TRLRedis::wait_for(5, sub {
           $u->get('/st', headers => { 'X-Key' => 'r' })->{status} == 200
           && $u->read_file('logs/main-debug.log') =~ /script \d+ answered/
       }), 'a strict request through Redis');
    # the first asks Redis, the others take the places it reserved for the
    # node (a lease): those are published by the next flush
    $u->get('/as', headers => { 'X-Key' => 'a' }) for 1 .. 5;
    TRLRedis::wait_for(3, sub {
        $u->read_file('logs/main-debug.log') =~ /publish of zone "as"/
    });
    my $log = $u->read_file('logs/main-debug.log');
    my $addr = quotemeta $redis->address;
    like($log, qr/token_ratelimit: redis $addr: connecting/,
         'the link: connecting');
    like($log, qr/token_ratelimit: redis $addr: ready/, 'the link: ready');
    like($log, qr/token_ratelimit: redis $addr: script \d+, 1 keys, \d+ bytes, deadline in \d+ ms/,
         'a script sent, with its deadline');
    like($log, qr/token_ratelimit: redis $addr: script \d+ answered\n/,
         'and answered');
    like($log, qr/token_ratelimit: flush: \d+ keys to publish/,
         'a flush of the async zone');
    like($log, qr/token_ratelimit: publish of zone "as", \d+ keys: answered/,
         'its publish answered');
    $redis->stop;
    ok(TRLRedis::wait_for(5, sub {
           $u->read_file('logs/main-debug.log')
               =~ /token_ratelimit: redis $addr: down: /
       }), 'the link going down is traced');
    $u->stop;
}

done_testing;
