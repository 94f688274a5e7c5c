#!/usr/bin/perl
# Attack mode (issue 14): token_ratelimit_attack zone=NAME [rejected=P%]
# [offenders=N/s] [min=N/s] [hold=T] [scale=F] [status=CODE] [log=...].
#
# - The API: GET {loc}/attack lists the zones, POST {loc}/attack/ZONE?ttl=
#   puts one on (reason "api", until), DELETE takes it off; the zone's JSON
#   has "attack", Prometheus token_ratelimit_attack_mode{zone} 0/1 and
#   ..._entered_total.  404 for a zone without the directive.
# - While on: N is scaled (X-RateLimit-Limit 10 -> 5), a rejection answers
#   status=444 (the connection is closed, no response), log=summary
#   replaces the zone's per-request error log and event log lines with one
#   summary line a second; "attack_mode" events on and off in the event
#   log; off again after the ttl.
# - Automatic: a flood whose rejected share is above rejected= (of at
#   least min= requests a second) enters it (reason "rejected"), many new
#   offenders a second too (reason "offenders"); it is left once the
#   signal stayed low for hold=.
# - Two nodes sharing Redis: entered through the API on node A, node B is
#   in attack mode within about a second (reason "cluster") and scales N;
#   DELETE on A takes B out too.
# - nginx -t: unknown zone, bad values, neither signal.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

sub conf {
    my ($extra) = @_;
    $extra //= '';
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=att:1m rate=10r/m;
    token_ratelimit_zone \$http_x_key zone=flood:1m rate=2r/m;
    token_ratelimit_zone \$http_x_key zone=many:1m rate=1r/m;
    token_ratelimit_zone \$http_x_key zone=plain:1m rate=10r/m;
    token_ratelimit_attack zone=att rejected=50% min=20/s hold=1s scale=0.5
                           status=444 log=summary;
    token_ratelimit_attack zone=flood rejected=50% min=10/s hold=2s;
    token_ratelimit_attack zone=many rejected=off offenders=8/s hold=2s;
    $extra

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        add_header X-S \$token_ratelimit_status always;
        token_ratelimit_event_log %%DIR%%/logs/events.log;

        location /att   { token_ratelimit zone=att; empty_gif; }
        location /flood { token_ratelimit zone=flood; empty_gif; }
        location /many  { token_ratelimit zone=many; empty_gif; }
        location /plain { token_ratelimit zone=plain; empty_gif; }
        location /api   { token_ratelimit_api; }
    }
EOF
}

sub api {
    my ($t, $method, $path) = @_;
    return $t->json_request($method, "/api$path");
}
sub state { (api($_[0], 'GET', '/attack')->{json} || {})->{$_[1]} || {} }
sub hit {
    my ($t, $path, $key) = @_;
    return $t->get($path, headers => { 'X-Key' => $key });
}
# polls until the zone's "on" is $on (at most $max seconds): the time taken
sub wait_on {
    my ($t, $zone, $on, $max) = @_;
    my $t0 = time;
    while (time - $t0 < $max) {
        my $s = state($t, $zone);
        return time - $t0 if ($s->{on} ? 1 : 0) == $on;
        sleep 0.1;
    }
    return undef;
}

my $t = TRL->new(workers => 2);
$t->write_config(conf());
$t->run;

# --- the API and the effects ----------------------------------------------

{
    my $s = state($t, 'att');
    ok(exists $s->{on} && !$s->{on}, 'GET attack: att is off at first')
        or diag(explain $s);
    is($s->{scale}, 0.5, 'GET attack: scale');
    is($s->{status}, 444, 'GET attack: status');
    is($s->{log}, 'summary', 'GET attack: log');
    ok(!exists((api($t, 'GET', '/attack')->{json} || {})->{plain}),
       'GET attack: a zone without the directive is not listed');
    is(hit($t, '/att', 'k0')->{headers}{'x-ratelimit-limit'}, 10,
       'off: N 10');

    my $r = api($t, 'POST', '/attack/att?ttl=3s');
    is($r->{status}, 200, 'POST attack/att?ttl=3s: 200') or diag($r->{raw});
    my $t0 = time;
    ok($r->{json}{attack}{on}, 'POST: on');
    is($r->{json}{attack}{reason}, 'api', 'POST: reason api');
    ok(abs(($r->{json}{attack}{until} // 0) - $t0 - 3) <= 1.5,
       'POST: until in 3 s');
    is(api($t, 'POST', '/attack/plain')->{status}, 404,
       'POST for a zone without token_ratelimit_attack: 404');
    is(api($t, 'POST', '/attack/nope')->{status}, 404, 'unknown zone: 404');
    is(api($t, 'POST', '/attack/att?ttl=x')->{status}, 400, 'bad ttl: 400');
    is(api($t, 'GET', '/attack/att')->{status}, 405, 'GET attack/ZONE: 405');

    my $z = api($t, 'GET', '/zones/att')->{json} || {};
    ok($z->{attack} && $z->{attack}{on}, 'zone JSON: attack.on');
    like(api($t, 'GET', '/metrics')->{body},
         qr/^token_ratelimit_attack_mode\{zone="att"\} 1$/m,
         'Prometheus: token_ratelimit_attack_mode 1');

    # scale=0.5: N 5; the 6th request of a key is rejected with 444
    my @st;
    for (1 .. 6) {
        my $h = hit($t, '/att', 'k1');
        push @st, $h->{status};
        is($h->{headers}{'x-ratelimit-limit'}, 5, 'on: N 5 (scale=0.5)')
            if $_ == 1;
    }
    is("@st", '200 200 200 200 200 0',
       'on: the 6th request is rejected, status=444 closes the connection');
    sleep 1.5;
    my $log = $t->error_log;
    unlike($log, qr/limiting requests by zone "att"/,
           'log=summary: no per-request line of the zone');
    like($log, qr/zone "att" in attack mode: \d+ requests, 1 rejected/,
         'log=summary: one summary line a second');
    like($log, qr/zone "att": attack mode on \(api\)/, 'error log: on');
    my @ev = split /\n/, $t->read_file('logs/events.log');
    ok(!(grep { /"rejected"/ && /"att"/ } @ev),
       'log=summary: no rejected event of the zone');
    ok((grep { /attack_mode/ && /"on"/ } @ev), 'event log: attack_mode on')
        or diag(join "\n", @ev);

    # after the ttl (and hold=1s of no signal): off
    my $took = wait_on($t, 'att', 0, 6);
    ok(defined $took, 'off again after the ttl');
    hit($t, '/att', 'k2');          # the first request writes the event
    @ev = split /\n/, $t->read_file('logs/events.log');
    ok((grep { /attack_mode/ && /"off"/ } @ev), 'event log: attack_mode off')
        or diag(join "\n", @ev);
    is(hit($t, '/att', 'k2')->{headers}{'x-ratelimit-limit'}, 10,
       'off: N 10 again');
    like(api($t, 'GET', '/metrics')->{body},
         qr/^token_ratelimit_attack_mode_entered_total\{zone="att"\} 1$/m,
         'Prometheus: entered once');

    # DELETE takes it off at once
    api($t, 'POST', '/attack/att?ttl=1h');
    ok(state($t, 'att')->{on}, 'POST ttl=1h: on');
    $r = api($t, 'DELETE', '/attack/att');
    is($r->{status}, 200, 'DELETE attack/att: 200');
    ok(!$r->{json}{attack}{on}, 'DELETE: off at once');
    is(hit($t, '/att', 'k3')->{headers}{'x-ratelimit-limit'}, 10,
       'DELETE: N 10 again');
}

# --- entered by the signal, left after hold= ------------------------------

{
    ok(!state($t, 'flood')->{on}, 'flood: off at first');
    my @st = map { hit($t, '/flood', 'f')->{status} } 1 .. 40;
    my $took = wait_on($t, 'flood', 1, 3);
    ok(defined $took, 'a flood of rejections enters attack mode');
    is(state($t, 'flood')->{reason}, 'rejected', 'reason: rejected');
    $took = wait_on($t, 'flood', 0, 6);
    ok(defined $took && $took >= 0.5,
       sprintf('left once the signal stayed low for hold=2s (%.1f s)',
               $took // -1));

    ok(!state($t, 'many')->{on}, 'offenders: off at first');
    for my $k (1 .. 12) {
        hit($t, '/many', "m$k") for 1 .. 2;
    }
    $took = wait_on($t, 'many', 1, 3);
    ok(defined $took, '12 new offenders in a second enter attack mode');
    is(state($t, 'many')->{reason}, 'offenders', 'reason: offenders');

    ok(!state($t, 'plain')->{on}, 'a zone without the directive: never');
}

$t->stop;
ok($t->no_alerts, 'no alerts');

# --- nginx -t -------------------------------------------------------------

{
    my $c = TRL->new;
    my $z = 'token_ratelimit_zone $http_x_key zone=z:1m rate=1r/m;';
    $c->config_fails("$z\n    token_ratelimit_attack zone=nope;\n",
        [qr/"token_ratelimit_attack" names zone "nope", which no/],
        'unknown zone');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z rejected=150%;\n",
        [qr/invalid value "rejected=150%" in "token_ratelimit_attack"/,
         qr/a share of 1% to 100%/], 'rejected=150%');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z scale=2;\n",
        [qr/invalid value "scale=2".*at most 1/], 'scale=2');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z status=200;\n",
        [qr/invalid value "status=200".*400 to 599, or 444/], 'status=200');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z log=some;\n",
        [qr/invalid value "log=some".*expected log=full or log=summary/],
        'log=some');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z rejected=off;\n",
        [qr/has neither "rejected=" nor "offenders="/], 'no signal');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z;\n"
                     . "    token_ratelimit_attack zone=z;\n",
        [qr/zone "z" has a "token_ratelimit_attack" directive already/],
        'twice');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z speed=1;\n",
        [qr/invalid parameter "speed=1" in "token_ratelimit_attack"/,
         qr/"rejected=P%\|off"/], 'unknown parameter');
    $c->config_fails("$z\n    token_ratelimit_attack zone=z hold=0s;\n",
        [qr/invalid value "hold=0s".*a duration above 0/], 'hold=0s');
}

# --- two nodes through Redis -----------------------------------------------

{
    my @n = map { TRL->new(workers => 2) } 0 .. 1;
    my $redis = TRLRedis->new(port => $n[0]->port('REDIS'));
    my $raddr = $redis->address;
    for my $n (@n) {
        $n->write_config(conf("token_ratelimit_redis $raddr interval=1s "
                              . "timeout=200ms;"));
        $n->run;
    }
    sleep 1;                        # the links are up
    ok(!state($n[1], 'att')->{on}, 'B: off at first');
    api($n[0], 'POST', '/attack/att?ttl=1h');
    my $took = wait_on($n[1], 'att', 1, 3);
    ok(defined $took && $took <= 2.2,
       sprintf('B is in attack mode within one interval and a tick '
               . '(%.1f s)', $took // -1));
    is(state($n[1], 'att')->{reason}, 'cluster', 'B: reason cluster');
    ok(state($n[1], 'att')->{cluster}, 'B: cluster true');
    is(hit($n[1], '/att', 'b1')->{headers}{'x-ratelimit-limit'}, 5,
       'B: N scaled');
    like($redis->cli('GET', 'trl:attack:att') // '', qr/ api$/,
         'Redis: the flag, "<node> api"');

    api($n[0], 'DELETE', '/attack/att');
    $took = wait_on($n[1], 'att', 0, 4);
    ok(defined $took, sprintf('DELETE on A: B off too (%.1f s)',
                              $took // -1));
    $_->stop for @n;
}

done_testing;
