#!/usr/bin/perl
# Auto-ban (issue 14): token_ratelimit ... penalty=... ban=COUNT:DURATION.
#
# - The COUNT-th penalty in a row of a key of a $binary_remote_addr zone
#   adds a deny entry for the address (/32) with the ban's TTL and origin
#   "auto_ban:ZONE": the next request gets the 403 of a deny entry.  It is
#   listed in GET {loc}/lists, counted ("auto_bans" of the zone, Prometheus
#   token_ratelimit_auto_bans_total{zone}), logged (error log, and an
#   "auto_banned" event in the event log); DELETE {loc}/lists/ID removes it
#   and the address passes again.
# - Fewer penalties ban nothing; a dry run bans nothing.
# - An address of the reputation's trusted ranges is never banned; nor is
#   a range an allow entry overlaps (a $token_ratelimit_client zone bans
#   the IPv6 /64 of token_ratelimit_ipv6_prefix).
# - A short ban (2s) expires: gone from the lists, the address passes.
# - Full lists: the ban is lost, counted (auto_bans_lost, Prometheus), said
#   once in the error log; the requests are answered as usual.
# - Two nodes sharing Redis: a ban on node A denies on node B within ~2 s.
# - nginx -t: ban= on a zone not keyed on the address, ban= without
#   penalty=, a bad ban= value; the policy-file twin ban:; conf.d/auto-ban.conf
#   runs as written.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $PEN = 'penalty=200ms:1:200ms:1h';      # 200 ms blocks, never forgiven

sub conf {
    my ($extra) = @_;
    $extra //= '';
    return <<"EOF";
    token_ratelimit_zone \$binary_remote_addr zone=login:1m rate=1r/m;
    token_ratelimit_zone \$binary_remote_addr zone=short:1m rate=1r/m;
    token_ratelimit_zone \$binary_remote_addr zone=dry:1m rate=1r/m;
    token_ratelimit_zone \$token_ratelimit_client zone=net:1m rate=1r/m;
    token_ratelimit_zone \$binary_remote_addr zone=open:1m rate=60000r/m;
    token_ratelimit_reputation size=1m trusted=198.51.100.0/24;
    token_ratelimit_ipv6_prefix 64;
    $extra

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        add_header X-S \$token_ratelimit_status always;
        token_ratelimit_event_log %%DIR%%/logs/events.log;

        location /login { token_ratelimit zone=login $PEN ban=3:24h;
                          empty_gif; }
        location /short { token_ratelimit zone=short $PEN ban=3:2s;
                          empty_gif; }
        location /dry   { token_ratelimit zone=dry $PEN ban=2:1h dry_run;
                          empty_gif; }
        location /net   { token_ratelimit zone=net $PEN ban=2:1h;
                          empty_gif; }
        location /open  { token_ratelimit zone=open; empty_gif; }
        location /api   { token_ratelimit_api; }
    }
EOF
}

sub api {
    my ($t, $method, $path) = @_;
    return $t->json_request($method, "/api$path");
}
sub from {
    my ($t, $path, $addr) = @_;
    my $r = $t->get($path, headers => { 'X-Forwarded-For' => $addr });
    return "$r->{status}/" . ($r->{headers}{'x-s'} // '');
}
# n penalties in a row for addr at path (the first request passes)
sub penalties {
    my ($t, $path, $addr, $n) = @_;
    my @seen = (from($t, $path, $addr));
    for (1 .. $n) {
        push @seen, from($t, $path, $addr);
        sleep 0.3 if $_ < $n;           # the 200 ms block is over
    }
    return "@seen";
}
sub entries {
    my ($t, $cidr) = @_;
    my $l = api($t, 'GET', '/lists')->{json} || [];
    return grep { ($_->{cidr} // '') eq $cidr } @$l;
}

my $t = TRL->new(workers => 2);
$t->write_config(conf());
$t->run;

# --- two penalties: nothing; the third bans ------------------------------

{
    my $seen = penalties($t, '/login', '192.0.2.7', 2);
    like($seen, qr{^200/PASSED 429/REJECTED 429/REJECTED$},
         "two penalties: rejected ($seen)");
    ok(!entries($t, '192.0.2.7/32'), 'two penalties: no ban yet');
    sleep 0.3;
    my $t0 = time;
    is(from($t, '/login', '192.0.2.7'), '429/REJECTED',
       'the third penalty starts');
    is(from($t, '/login', '192.0.2.7'), '403/REJECTED',
       'then the address is denied (403 of a deny entry)');
    is(from($t, '/open', '192.0.2.7'), '403/REJECTED',
       'denied in every location with a token_ratelimit');
    is(from($t, '/open', '192.0.2.8'), '200/PASSED', 'other addresses pass');

    my @e = entries($t, '192.0.2.7/32');
    is(scalar @e, 1, 'one deny entry for the address') or diag(explain \@e);
    my $e = $e[0] || {};
    is($e->{action}, 'deny', 'entry: deny');
    is($e->{origin}, 'auto_ban:login', 'entry: origin auto_ban:login');
    ok(defined $e->{expires} && abs($e->{expires} - $t0 - 86400) <= 3,
       'entry: expires in 24h (ban=3:24h)') or diag(explain $e);

    my $z = api($t, 'GET', '/zones/login')->{json} || {};
    is($z->{auto_bans}, 1, 'zone: auto_bans 1');
    my $m = api($t, 'GET', '/metrics')->{body};
    like($m, qr/^token_ratelimit_auto_bans_total\{zone="login"\} 1$/m,
         'Prometheus: token_ratelimit_auto_bans_total');
    like($m, qr/^token_ratelimit_auto_bans_lost_total\{zone="login"\} 0$/m,
         'Prometheus: none lost');
    like($t->error_log,
         qr/zone "login": banned 192\.0\.2\.7\/32 for 86400s after 3 penalties in a row/,
         'error log: the ban');
    my ($ev) = grep { /auto_banned/ }
               split /\n/, $t->read_file('logs/events.log');
    ok($ev, 'event log: an auto_banned event')
        or diag($t->read_file('logs/events.log'));
    like($ev // '', qr/192\.0\.2\.7\/32/, 'event: the banned range');

    # DELETE: the address passes again
    my $d = api($t, 'DELETE', "/lists/$e->{id}");
    is($d->{status}, 200, 'DELETE the ban: 200');
    ok(!entries($t, '192.0.2.7/32'), 'DELETE: gone from the lists');
    is(from($t, '/open', '192.0.2.7'), '200/PASSED',
       'DELETE: the address passes again');
}

# --- dry run: never -------------------------------------------------------

{
    my $seen = penalties($t, '/dry', '192.0.2.20', 3);
    unlike($seen, qr/403/, "dry run: never denied ($seen)");
    ok(!entries($t, '192.0.2.20/32'), 'dry run: no ban');
}

# --- trusted ranges and allow entries: never -----------------------------

{
    my $seen = penalties($t, '/login', '198.51.100.9', 4);
    unlike($seen, qr/403/, "trusted address: never denied ($seen)");
    ok(!entries($t, '198.51.100.9/32'), 'trusted address: no ban');
    like($t->error_log, qr/198\.51\.100\.9\/32 not banned, it is in a trusted range/,
         'trusted: said at info');

    # an IPv6 /64 ban that would override an allow entry within it
    my $a = api($t, 'POST', '/lists/allow?address=2001:db8:1:2::99');
    is($a->{status}, 201, 'allow entry for one address of a /64');
    $seen = penalties($t, '/net', '2001:db8:1:2::5', 3);
    unlike($seen, qr/403/, "allow overlaps the /64: never denied ($seen)");
    ok(!entries($t, '2001:db8:1:2::/64'), 'allow overlaps: no ban');

    # another /64: banned whole
    penalties($t, '/net', '2001:db8:9:9::5', 2);
    is(from($t, '/open', '2001:db8:9:9::77'), '403/REJECTED',
       '$token_ratelimit_client zone: the /64 is banned');
    my ($e) = entries($t, '2001:db8:9:9::/64');
    is($e && $e->{origin}, 'auto_ban:net', 'IPv6 ban: /64, origin');
}

# --- a short ban expires --------------------------------------------------

{
    penalties($t, '/short', '192.0.2.30', 3);
    my $t0 = time;
    is(from($t, '/open', '192.0.2.30'), '403/REJECTED', 'ban=3:2s: denied');
    my ($e) = entries($t, '192.0.2.30/32');
    ok($e && $e->{expires} - $t0 <= 3, 'ban=3:2s: expires in 2 s');
    my $wait = $t0 + 2.5 - time;
    sleep $wait if $wait > 0;
    is(from($t, '/open', '192.0.2.30'), '200/PASSED',
       'ban=3:2s: passes after 2 s');
    ok(!entries($t, '192.0.2.30/32'), 'ban=3:2s: gone from the lists');
}

# --- full lists: the ban is lost, counted, said once; the request as usual -

{
    my $status = 0;
    for my $i (1 .. 5000) {
        $status = api($t, 'POST', "/lists/deny?key=fill$i&zone=open")
                  ->{status};
        last if $status != 201;
    }
    is($status, 507, 'the lists are full');
    my $seen = penalties($t, '/login', '192.0.2.90', 3);
    like($seen, qr{^200/PASSED( 429/REJECTED){3}$},
         "full: the requests answered as usual ($seen)");
    isnt(from($t, '/open', '192.0.2.90'), '403/REJECTED', 'full: no ban');
    penalties($t, '/login', '192.0.2.91', 3);
    my $z = api($t, 'GET', '/zones/login')->{json} || {};
    is($z->{auto_bans_lost}, 2, 'full: auto_bans_lost 2');
    like(api($t, 'GET', '/metrics')->{body},
         qr/^token_ratelimit_auto_bans_lost_total\{zone="login"\} 2$/m,
         'full: Prometheus token_ratelimit_auto_bans_lost_total 2');
    my $lost = 'an auto-ban was lost, the runtime lists are full';
    my @lines = $t->error_log =~ /(\Q$lost\E)/g;
    is(scalar @lines, 1, 'full: said once (a minute)');
}

$t->stop;
ok($t->no_alerts, 'no alerts');

# --- nginx -t -------------------------------------------------------------

{
    my $c = TRL->new;
    $c->config_fails(<<'EOF',
    token_ratelimit_zone $http_x_user zone=u:1m rate=1r/m;
    server { listen 127.0.0.1:%%PORT%%;
             location / { token_ratelimit zone=u penalty=1m ban=3:1h; } }
EOF
        [qr/"ban=" needs a zone keyed on the client's address/,
         qr/zone "u" is keyed on "\$http_x_user"/], 'ban on a key zone');
    $c->config_fails(<<'EOF',
    token_ratelimit_zone $binary_remote_addr zone=a:1m rate=1r/m;
    server { listen 127.0.0.1:%%PORT%%;
             location / { token_ratelimit zone=a ban=3:1h; } }
EOF
        [qr/"ban=" of zone "a" needs "penalty="/], 'ban without penalty');
    $c->config_fails(<<'EOF',
    token_ratelimit_zone $binary_remote_addr zone=a:1m rate=1r/m;
    server { listen 127.0.0.1:%%PORT%%;
             location / { token_ratelimit zone=a penalty=1m ban=0:1h; } }
EOF
        [qr/invalid value "ban=0:1h" in "token_ratelimit" directive: COUNT "0" is not a number of 1 to 1000/,
         qr/such as 3:24h/], 'ban=0:1h');
}

# --- the policy file's ban: ------------------------------------------------

{
    my $p = TRL->new;
    $p->write_file('policies.yaml', <<'EOF');
environments:
  prod:
    login:
      rate: 1r/m
      key: $binary_remote_addr
      penalty: { base: 200ms, factor: 1, max: 200ms, forgive: 1h }
      ban: "2:1h"
EOF
    $p->write_config(<<'EOF');
    token_ratelimit_policy_file %%DIR%%/policies.yaml;
    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        add_header X-S $token_ratelimit_status always;
        location /login { token_ratelimit policy=login; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
    $p->run;
    penalties($p, '/login', '192.0.2.50', 2);
    is(from($p, '/login', '192.0.2.50'), '403/REJECTED',
       'policy ban: denied');
    my ($e) = entries($p, '192.0.2.50/32');
    is($e && $e->{origin}, 'auto_ban:login', 'policy ban: the entry');
    $p->stop;
}

# --- conf.d/auto-ban.conf works as written ---------------------------------

{
    my $c = TRL->new;
    my ($up, $ls) = $c->run_snippet("$TRL::ROOT/conf.d/auto-ban.conf");
    ok($up >= 1 && $ls == 1, 'auto-ban.conf: upstream and listen rewritten');
    my @st = map { $c->get('/auth/login')->{status} } 1 .. 6;
    is("@st", '200 200 200 200 200 429', 'auto-ban.conf: 5 logins a minute');
    my $a = $c->get('/trl-api/attack');
    like($a->{body}, qr/"ban_login":\{"on":false/,
         'auto-ban.conf: attack mode configured, off');
    $c->stop;
}

# --- two nodes through Redis ------------------------------------------------

{
    my @n = map { TRL->new(workers => 2) } 0 .. 1;
    my $redis = TRLRedis->new(port => $n[0]->port('REDIS'));
    my $raddr = $redis->address;
    for my $n (@n) {
        $n->write_config(conf("token_ratelimit_redis $raddr interval=50ms "
                              . "timeout=200ms;"));
        $n->run;
    }
    is(from($n[1], '/open', '192.0.2.60'), '200/PASSED', 'B: passes first');
    penalties($n[0], '/login', '192.0.2.60', 3);
    is(from($n[0], '/open', '192.0.2.60'), '403/REJECTED', 'A: banned');
    my $t0 = time;
    my $got = '';
    while (time - $t0 < 3) {
        $got = from($n[1], '/open', '192.0.2.60');
        last if $got eq '403/REJECTED';
        sleep 0.1;
    }
    my $took = time - $t0;
    is($got, '403/REJECTED', sprintf('B denies it too (after %.1f s)', $took));
    ok($took <= 2, 'within ~2 s');
    my ($e) = entries($n[1], '192.0.2.60/32');
    is($e && $e->{origin}, 'auto_ban:login', 'B lists it with its origin');
    $_->stop for @n;
}

done_testing;
