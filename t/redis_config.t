#!/usr/bin/perl
# token_ratelimit_redis configuration: every documented form passes
# "nginx -t" and runs; bad values (address, db, interval, timeout, fail, an
# unknown parameter, a second directive, a wrong context) and a "sync" zone
# without token_ratelimit_redis fail "nginx -t" with an [emerg] message that
# names the directive and the offending value.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;
use TRLRedis;

# Bad configurations get a prefix of their own: their [emerg] lines land in
# its error.log, which no_alerts() must not see.
my $bad = TRL->new;
my $t = TRL->new;
my $redis = TRLRedis->new(port => $t->port('REDIS'), unix => 1);
my $rport = $redis->port;
my $sock = $redis->socket_path;

my $d_redis = qr/"?token_ratelimit_redis"?/;

sub srv {
    my ($loc) = @_;
    $loc //= 'token_ratelimit zone=z;';
    return <<"EOF";
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            $loc
            empty_gif;
        }
    }
EOF
}

sub zone {
    my ($sync) = @_;
    $sync = defined $sync ? " $sync" : '';
    return "token_ratelimit_zone \$http_x_key zone=z:1m rate=5r/m$sync;\n";
}

sub fails {
    my ($http, $res, $name) = @_;
    my ($out) = $bad->config_fails($http, $res, $name);
    unlike($out, qr/unknown directive/, "$name: the directive is known");
    return $out;
}

sub passes {
    my ($http, $name) = @_;
    $bad->write_config($http);
    my ($rc, $out) = $bad->test_config;
    is($rc, 0, "$name: nginx -t passes") or diag($out);
    unlike($out, qr/\[(emerg|alert|crit)\]/, "$name: no [emerg]");
    return $out;
}

# --- a sync zone needs token_ratelimit_redis ----------------------------

for my $sync ('sync', 'sync=async', 'sync=strict') {
    fails(zone($sync) . srv(),
          [qr/token_ratelimit_redis/, qr/"z"|zone "?z"?/,
           qr/nginx\.conf:\d+/],
          "\"$sync\" without token_ratelimit_redis");
}

fails(zone('sync=maybe') . "token_ratelimit_redis 127.0.0.1:$rport;\n"
      . srv(),
      [qr/token_ratelimit_zone/, qr/maybe/], 'sync=maybe');

# --- bad addresses ------------------------------------------------------

for my $case (
    ['127.0.0.1:', qr/127\.0\.0\.1:/],
    ['127.0.0.1:0', qr/127\.0\.0\.1:0/],
    ['127.0.0.1:65536', qr/65536/],
    ['127.0.0.1:abc', qr/abc/],
    ['nosuch-host.invalid:6379', qr/nosuch-host\.invalid/],
    ['unix:', qr/unix:/],
    ['""', qr/token_ratelimit_redis/],
) {
    my ($addr, $re) = @$case;
    fails(zone('sync') . "token_ratelimit_redis $addr;\n" . srv(),
          [$d_redis, $re], "address $addr");
}

# --- bad parameters -----------------------------------------------------

for my $param ('db=-1', 'db=abc', 'db=', 'interval=0', 'interval=0ms',
               'interval=abc', 'timeout=xyz', 'fail=maybe', 'fail=',
               'colour=blue', 'bogus') {
    fails(zone('sync') . "token_ratelimit_redis 127.0.0.1:$rport $param;\n"
          . srv(),
          [$d_redis, qr/\Q$param\E/], "parameter $param");
}

# --- duplicate directive, wrong context, no address ----------------------

fails(zone('sync') . "token_ratelimit_redis 127.0.0.1:$rport;\n"
      . "token_ratelimit_redis 127.0.0.1:$rport db=1;\n" . srv(),
      [$d_redis, qr/duplicate/], 'duplicate token_ratelimit_redis');

fails(zone() . <<"EOF", [$d_redis, qr/not allowed here/], 'in server{}');
    server {
        listen 127.0.0.1:%%PORT%%;
        token_ratelimit_redis 127.0.0.1:$rport;
        location / { empty_gif; }
    }
EOF

fails(zone() . "token_ratelimit_redis;\n" . srv(),
      [$d_redis, qr/invalid number of arguments/], 'no address');

# --- valid forms ----------------------------------------------------------

passes(zone('sync') . "token_ratelimit_redis 127.0.0.1:$rport;\n" . srv(),
       'ip:port, defaults');
passes(zone('sync=async') . "token_ratelimit_redis localhost:$rport;\n"
       . srv(), 'host:port (resolved at config time)');
passes(zone('sync=strict') . "token_ratelimit_redis unix:$sock;\n" . srv(),
       'unix:/path');
passes(zone('sync') . "token_ratelimit_redis 127.0.0.1:$rport password=pw "
       . "db=15 prefix=app1: interval=50ms timeout=250ms fail=closed;\n"
       . srv(), 'every parameter');
passes(zone('sync') . "token_ratelimit_redis 127.0.0.1:$rport interval=1s "
       . "timeout=1s fail=open db=0;\n" . srv(), 'seconds, fail=open, db=0');
# order: the sync zone may come before the directive
passes(zone('sync=strict') . srv()
       . "token_ratelimit_redis 127.0.0.1:$rport;\n",
       'token_ratelimit_redis after the zone and the server');
# a redis server and no sync zone: allowed
passes(zone() . "token_ratelimit_redis 127.0.0.1:$rport;\n" . srv(),
       'token_ratelimit_redis with no sync zone');
passes("token_ratelimit_redis 127.0.0.1:$rport;\n", 'no zone at all');

# --- a valid configuration runs --------------------------------------------

$t->write_config(
    "token_ratelimit_zone \$http_x_key zone=a:1m rate=3r/m sync;\n"
    . "token_ratelimit_zone \$http_x_key zone=s:1m rate=3r/m sync=strict;\n"
    . "token_ratelimit_zone \$http_x_key zone=l:1m rate=3r/m;\n"
    . "token_ratelimit_redis 127.0.0.1:$rport interval=50ms timeout=500ms;\n"
    . <<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location /a { token_ratelimit zone=a; empty_gif; }
        location /s { token_ratelimit zone=s; empty_gif; }
        location /l { token_ratelimit zone=l; empty_gif; }
    }
EOF
$t->run;

for my $loc ('a', 's', 'l') {
    my @st = map { $t->get("/$loc", headers => { 'X-Key' => 'k' })->{status} }
             1 .. 4;
    is("@st", '200 200 200 429', "running: zone $loc limits at 3");
}
ok(TRLRedis::wait_for(2, sub {
       $redis->cli('EXISTS', TRLRedis::key_name('a', 'k')) eq '1'
   }), 'running: the async zone wrote its key to Redis');
is($redis->cli('EXISTS', TRLRedis::key_name('s', 'k')), '1',
   'running: the strict zone wrote its key to Redis');
is($redis->cli('EXISTS', TRLRedis::key_name('l', 'k')), '0',
   'running: the local zone wrote nothing to Redis');

$t->stop;
$t->no_alerts;
done_testing;
