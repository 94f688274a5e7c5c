#!/usr/bin/perl
# Retry-After is truthful in every state (SPEC §3): with no other traffic,
# a request of the key sent Retry-After seconds later is admitted, whether
# the wait is the window's (a place frees), a penalty's block, or both (the
# later); it is never a whole second longer than needed.  X-RateLimit-Reset,
# the JSON retry_after and the API's retry_after agree.
#
# - rate=3r/5s penalty=3s:2:30s:1m: 3 x 200, then 429 with Retry-After 5
#   (the window), and 5 again, not the 3 s block: a client that waited the
#   block alone would be rejected by the still-full window and blocked
#   twice as long (violation 2).
# - rate=2r/1h penalty=2s: every 429 says about an hour, never 2/1.
# - A block alone (1r/s penalty=3s): told 3, not 4.
# - The obedient client: sleeps exactly Retry-After after every 429 and is
#   admitted at its first retry; no second violation is ever logged.  Node-
#   local and sync=strict (Redis decides and keeps the penalty).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $t = TRL->new;
my $redis = TRLRedis->new(port => $t->port('REDIS'));
my $raddr = $redis->address;

$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=w:1m rate=3r/5s;
    token_ratelimit_zone \$http_x_key zone=h:1m rate=2r/1h;
    token_ratelimit_zone \$http_x_key zone=b:1m rate=1r/s;
    token_ratelimit_zone \$http_x_key zone=one:1m rate=1r/s;
    token_ratelimit_zone \$http_x_key zone=o:1m rate=2r/3s;
    token_ratelimit_zone \$http_x_key zone=s:1m rate=2r/3s sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=500ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /w { token_ratelimit zone=w penalty=3s:2:30s:1m; empty_gif; }
        location /h { token_ratelimit zone=h penalty=2s; empty_gif; }
        location /b { token_ratelimit zone=b penalty=3s; empty_gif; }
        location /one { token_ratelimit zone=one; empty_gif; }
        location /o { token_ratelimit zone=o penalty=1s:2:10s:1m; empty_gif; }
        location /s { token_ratelimit zone=s penalty=1s:2:10s:1m; empty_gif; }
        location /api/ { token_ratelimit_api; }
    }
EOF
$t->run;

sub req {
    my ($path, $key) = @_;
    return $t->request("GET $path HTTP/1.0\r\nX-Key: $key\r\n\r\n");
}
sub ra { $_[0]{headers}{'retry-after'} // 'none' }
sub violations {
    my ($key) = @_;
    return map { /\(violation (\d+)\)/ ? $1 : () }
        grep { /key "\Q$key\E"/ } split /\n/, $t->error_log;
}

# --- the window outlasts the block -----------------------------------------

{
    my @ok = map { req('/w', 'w1')->{status} } 1 .. 3;
    is("@ok", '200 200 200', '3r/5s: three admitted');
    my $t0 = time;
    my $r = req('/w', 'w1');
    is($r->{status}, 429, 'the fourth is rejected');
    is(ra($r), 5, 'Retry-After 5: the window');
    like($r->{body}, qr/"retry_after":5\}/, 'the JSON body says 5 as well');
    like($r->{body}, qr/Try again in 5 seconds\./, 'and its message');
    my $reset = $r->{headers}{'x-ratelimit-reset'};
    cmp_ok($reset, '>=', int($t0) + 5,
           'X-RateLimit-Reset is not before the retry');

    $r = req('/w', 'w1');
    is($r->{status}, 429, 'blocked');
    is(ra($r), 5, 'the 3 s block still says 5 (the window is full)');

    my $api = $t->get('/api/zones/w/keys?key=w1');
    like($api->{body}, qr/"retry_after":5\b/, 'the API says 5 as well');

    sleep(ra($r) - (time - $t0) + 0.05);
    $r = req('/w', 'w1');
    is($r->{status}, 200, 'admitted after waiting as told');
    is_deeply([violations('w1')], [1], 'no second violation');
}

# --- a long window and a short block ---------------------------------------

{
    req('/h', 'h1') for 1 .. 2;
    my @ra = map { ra(req('/h', 'h1')) } 1 .. 4;
    # a 1h window stores times in 64 ms units, rounded up: its place comes
    # back up to 64 ms after the hour, which the rounded-up header shows
    ok(!(grep { $_ !~ /^\d+$/ || $_ < 3590 || $_ > 3601 } @ra),
       "2r/1h penalty=2s: every 429 says the window's hour (@ra)");
    sleep(1.2);
    my $r = req('/h', 'h1');
    cmp_ok(ra($r), '>=', 3590, 'also a second later, inside the block');
}

# --- a block alone: not a second more --------------------------------------

{
    is(req('/b', 'b1')->{status}, 200, '1r/s: admitted');
    my $r = req('/b', 'b1');
    is(ra($r), 3, 'penalty=3s starts: Retry-After 3');
    $r = req('/b', 'b1');
    is(ra($r), 3, 'blocked: 3, not 4');
}

# --- one second, singular -------------------------------------------------

{
    req('/one', 'n1');
    my $r = req('/one', 'n1');
    is(ra($r), 1, '1r/s: Retry-After 1');
    like($r->{body}, qr/"message":"Rate limit exceeded\. Try again in 1 second\.",/,
         '"1 second", not "1 seconds"');
}

# --- the obedient client ---------------------------------------------------

# One episode per spacing: two admissions d apart, the third request
# rejected (violation 1: a 1 s block, the window frees 3 s after the
# first), a sleep of exactly Retry-After, then the retry must be admitted
# and no second violation logged.  The spacings make the block, the
# window, or both the longer wait.
for my $case (['/o', 'o', 'node-local'], ['/s', 's', 'sync=strict']) {
    my ($path, $prefix, $what) = @$case;
    for my $d (0, 0.5, 1.2) {
        my $key = "$prefix-$d";
        is(req($path, $key)->{status}, 200, "$what d=$d: first admitted");
        sleep($d);
        is(req($path, $key)->{status}, 200, "$what d=$d: second admitted");
        sleep($d);
        my $r = req($path, $key);
        is($r->{status}, 429, "$what d=$d: the third is rejected");
        my $ra = ra($r);
        like($ra, qr/^[1-9]\d*$/, "$what d=$d: Retry-After $ra");
        sleep($ra + 0.02);
        $r = req($path, $key);
        is($r->{status}, 200, "$what d=$d: admitted after $ra s as told");
        my @v = violations($key);
        is("@v", '1', "$what d=$d: one violation, not two");
    }
}

$t->stop;
$t->no_alerts;
done_testing;
