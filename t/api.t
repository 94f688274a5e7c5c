#!/usr/bin/perl
# token_ratelimit_api, JSON reads and per-key actions, with 2 workers:
#
# - GET {loc}/, {loc}/zones, {loc}/zones/NAME: shape, configuration (key,
#   rate, limit, window_ms, sync, memory) and counters after known traffic
#   (passed, warned, rejected, rejected_dry_run, bypassed, denied,
#   penalized, offenses, penalties_started, penalties_active, evictions of
#   a tiny zone flooded with keys); counters sum over both workers and
#   survive a reload.
# - Top offenders: ordered by recent rejections; binary keys as key_hex
#   ($binary_remote_addr zones: as addresses);
#   quotes, backslashes and control characters make valid JSON.
# - Penalties list.
# - GET {loc}/zones/NAME/keys?key=K (and key_hex=): count, remaining,
#   reset, blocked, retry_after, violations, penalty; known:false for an
#   unknown key.  DELETE resets the key (next request admitted, penalty
#   and offender entry gone).
# - Errors: 404 unknown zone or path, 405 with Allow per path, 400 for a
#   missing or malformed key, all JSON, all leaving the counts as they
#   were; a refused POST's body is not taken for a request of its own.
# - Access: nginx's allow/deny guard the location (403 from nginx), a
#   location without the API is unaffected, the API works under a location
#   with and without a trailing slash; HEAD sends the headers only.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new(workers => 2);
my $CONF = <<'EOF';
    token_ratelimit_zone $http_x_key zone=login:1m rate=3r/m;
    token_ratelimit_zone $binary_remote_addr zone=ip:1m rate=2r/m;
    token_ratelimit_zone $http_x_key zone=tiny:32k rate=1r/m;
    token_ratelimit_zone $http_x_key zone=dr:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=bd:1m rate=5r/m;
    token_ratelimit_zone $http_x_key zone=top:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=sum:1m rate=1000r/m;
    token_ratelimit_zone $http_x_key zone=esc:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=del:1m rate=2r/m;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        add_header X-S $token_ratelimit_status always;
        add_header X-Pid $pid always;

        location /login { token_ratelimit zone=login warn=2 penalty=60s;
                          empty_gif; }
        location /ip    { token_ratelimit zone=ip; empty_gif; }
        location /tiny  { token_ratelimit zone=tiny; empty_gif; }
        location /dr    { token_ratelimit zone=dr dry_run; empty_gif; }
        location /bd {
            token_ratelimit zone=bd;
            token_ratelimit_bypass $http_x_bypass;
            token_ratelimit_deny $http_x_deny;
            empty_gif;
        }
        location /top   { token_ratelimit zone=top; empty_gif; }
        location /sum   { token_ratelimit zone=sum; empty_gif; }
        location /esc   { token_ratelimit zone=esc; empty_gif; }
        location /del   { token_ratelimit zone=del penalty=60s; empty_gif; }

        location /trl-api {
            token_ratelimit_api;
            set_real_ip_from 127.0.0.1;
            real_ip_header X-Forwarded-For;
            allow 127.0.0.1;
            deny all;
        }
        location /slash-api/ { token_ratelimit_api; }
        location /closed-api { token_ratelimit_api; deny all; }
        location /plain { empty_gif; }
    }
EOF
$t->write_config($CONF);
$t->run;

my $json = JSON::PP->new;

# A request; the answer with {json} decoded (undef if the body is not JSON).
sub api {
    my ($method, $path, %opt) = @_;
    my $r = $t->request(TRL::build_request($method, $path, %opt));
    $r->{json} = eval { $json->decode($r->{body}) };
    $r->{json_error} = $@;
    return $r;
}

sub key_get { $t->get($_[0], headers => { 'X-Key' => $_[1] }) }
sub statuses { join ' ', map { key_get($_[0], $_[1])->{status} } 1 .. $_[2] }
sub zone { api('GET', "/trl-api/zones/$_[0]")->{json} }
sub requests { zone($_[0])->{requests} }

# --- the shape of GET {loc}/ on a fresh start ------------------------------

{
    my $r = api('GET', '/trl-api/');
    is($r->{status}, 200, 'GET {loc}/: 200');
    is($r->{headers}{'content-type'}, 'application/json',
       'GET {loc}/: application/json');
    ok($r->{json}, 'GET {loc}/: the body is JSON') or diag($r->{json_error});
    my $j = $r->{json} || {};
    is($j->{module}, 'token_ratelimit', 'module');
    is($j->{nginx}, '1.22.1', 'nginx version');
    ok((grep { $_ == $j->{pid} } $t->worker_pids), 'pid is a worker')
        or diag("pid $j->{pid}");
    ok(abs($j->{time} - time) <= 2, 'time is now');
    ok(exists $j->{redis} && !defined $j->{redis},
       'redis is null without token_ratelimit_redis');
    is(ref $j->{lists}, 'ARRAY', 'lists is an array');
    is_deeply([sort keys %{$j->{zones}}],
              [sort qw(login ip tiny dr bd top sum esc del)],
              'zones: every zone by name');

    my $z = $j->{zones}{login};
    is($z->{key}, '$http_x_key', 'login: key expression');
    is($z->{rate}, '3r/m', 'login: rate as written');
    is($z->{limit}, 3, 'login: limit');
    is($z->{window_ms}, 60000, 'login: window_ms');
    is($z->{sync}, 'off', 'login: sync off');
    is($z->{memory}{size}, 1048576, 'login: memory.size');
    cmp_ok($z->{memory}{capacity}, '>', 10000, 'login: memory.capacity');
    is($z->{memory}{keys}, 0, 'login: no keys yet');
    is($z->{evictions}, 0, 'login: no evictions');
    is_deeply($z->{requests},
              { passed => 0, warned => 0, rejected => 0,
                rejected_dry_run => 0, bypassed => 0, denied => 0,
                penalized => 0 }, 'login: every outcome 0');
    is($z->{offenses}, 0, 'login: offenses 0');
    is($z->{penalties_started}, 0, 'login: penalties_started 0');
    is($z->{penalties_active}, 0, 'login: penalties_active 0');
    is_deeply($z->{top_offenders}, [], 'login: no top offenders');
    is_deeply($z->{penalties}, [], 'login: no penalties');
    is($j->{zones}{ip}{key}, '$binary_remote_addr', 'ip: key expression');
    is($j->{zones}{ip}{rate}, '2r/m', 'ip: rate');
    is($j->{zones}{tiny}{memory}{size}, 32768, 'tiny: memory.size');

    my $zs = api('GET', '/trl-api/zones');
    is($zs->{status}, 200, 'GET {loc}/zones: 200');
    is_deeply($zs->{json}, $j->{zones},
              'GET {loc}/zones: the same zones as {loc}/');
    is_deeply(zone('login'), $j->{zones}{login},
              'GET {loc}/zones/login: the zone alone');
}

# --- known traffic -----------------------------------------------------------

# login: warn=2, penalty=60s, 3r/m: PASSED WARNED WARNED, then a rejection
# that starts a penalty, then rejections while penalized.
{
    my @st = map {
        my $r = key_get('/login', 'mallory');
        "$r->{status}/$r->{headers}{'x-s'}";
    } 1 .. 6;
    is("@st", '200/PASSED 200/WARNED 200/WARNED 429/REJECTED 429/REJECTED '
              . '429/REJECTED', 'login: mallory passes 1, is warned 2, '
                               . 'rejected 3');
    is(key_get('/login', 'alice')->{status}, 200, 'login: alice passes');

    my $z = zone('login');
    is_deeply($z->{requests},
              { passed => 2, warned => 2, rejected => 3,
                rejected_dry_run => 0, bypassed => 0, denied => 0,
                penalized => 2 }, 'login: requests by outcome');
    is($z->{offenses}, 1, 'login: one offense (one episode)');
    is($z->{penalties_started}, 1, 'login: one penalty started');
    is($z->{penalties_active}, 1, 'login: one penalty active');
    is($z->{memory}{keys}, 2, 'login: 2 keys in use');
    is(scalar @{$z->{penalties}}, 1, 'login: one penalty listed');
    my $p = $z->{penalties}[0] || {};
    is($p->{key}, 'mallory', 'penalty: key');
    # (a penalty ends on its stored time unit: up to a second late)
    ok($p->{left} > 55 && $p->{left} <= 61, "penalty: left ($p->{left})");
    ok(abs($p->{until} - (time + $p->{left})) <= 2,
       'penalty: until = now + left');
    is($p->{violations}, 1, 'penalty: violations');
    is(scalar @{$z->{top_offenders}}, 1, 'login: one top offender');
    my $o = $z->{top_offenders}[0] || {};
    is($o->{key}, 'mallory', 'top offender: mallory');
    is($o->{recent}, 3, 'top offender: recent 3');
    is($o->{rejections}, 3, 'top offender: rejections 3');
    ok(abs($o->{first} - time) <= 2 && abs($o->{last} - time) <= 2
       && $o->{first} <= $o->{last}, 'top offender: first, last');
}

# ip ($binary_remote_addr): its keys shown as addresses (other binary
# keys as key_hex: see esc below)
{
    my @st = map { $t->get('/ip')->{status} } 1 .. 3;
    is("@st", '200 200 429', 'ip: 2 of 3 admitted');
    my $z = zone('ip');
    my $o = $z->{top_offenders}[0] || {};
    is($o->{key}, '127.0.0.1', 'ip: an address key shows as an address');
    ok(!exists $o->{key_hex}, 'ip: and no key_hex');
}

# dry_run: rejections counted as rejected_dry_run, passed
{
    my @st = map {
        my $r = key_get('/dr', 'd');
        "$r->{status}/$r->{headers}{'x-s'}";
    } 1 .. 3;
    is("@st", '200/PASSED 200/REJECTED_DRY_RUN 200/REJECTED_DRY_RUN',
       'dr: dry run');
    is_deeply(requests('dr'),
              { passed => 1, warned => 0, rejected => 0,
                rejected_dry_run => 2, bypassed => 0, denied => 0,
                penalized => 0 }, 'dr: rejected_dry_run 2');
}

# bypass and deny predicates
{
    my $r = $t->get('/bd', headers => { 'X-Key' => 'b', 'X-Bypass' => 1 });
    is("$r->{status}/$r->{headers}{'x-s'}", '200/BYPASSED', 'bd: bypassed');
    $r = $t->get('/bd', headers => { 'X-Key' => 'b', 'X-Bypass' => 1 });
    $r = $t->get('/bd', headers => { 'X-Key' => 'b', 'X-Deny' => 1 });
    is($r->{status}, 403, 'bd: denied');
    $r = $t->get('/bd', headers => { 'X-Key' => 'b' });
    is($r->{status}, 200, 'bd: limited normally');
    is_deeply(requests('bd'),
              { passed => 1, warned => 0, rejected => 0,
                rejected_dry_run => 0, bypassed => 2, denied => 1,
                penalized => 0 }, 'bd: bypassed 2, denied 1, passed 1');
}

# top offenders: ordered by recent rejections
{
    my %n = (alpha => 5, beta => 3, gamma => 1);
    for my $k (sort keys %n) {
        my $st = statuses('/top', $k, $n{$k} + 1);
        is($st, join(' ', 200, (429) x $n{$k}), "top: $k rejected $n{$k}");
    }
    my $top = zone('top')->{top_offenders};
    is(join(' ', map { "$_->{key}:$_->{recent}:$_->{rejections}" } @$top),
       'alpha:5:5 beta:3:3 gamma:1:1',
       'top offenders: most rejected first, recent and rejections');
    is(zone('top')->{offenses}, 3, 'top: 3 offenses (3 keys)');
}

# keys that need escaping: quotes, backslashes, control characters
{
    my %cases = (
        'say "hi" \\ bye' => 'quotes and backslash',
        "tab\there"       => 'a control character',
        "caf\xc3\xa9"     => 'UTF-8',
        "del\x7f"         => 'DEL',
    );
    for my $k (sort keys %cases) {
        my $st = statuses('/esc', $k, 2);
        is($st, '200 429', "esc: $cases{$k}: rejected once");
    }
    my $r = api('GET', '/trl-api/zones/esc');
    ok($r->{json}, 'esc: the zone is valid JSON') or diag($r->{body});
    my %seen;
    for my $o (@{$r->{json}{top_offenders} || []}) {
        my $k = defined $o->{key} ? $o->{key} : pack('H*', $o->{key_hex});
        $seen{$k} = defined $o->{key} ? 'key' : 'key_hex';
    }
    is($seen{'say "hi" \\ bye'}, 'key',
       'esc: quotes and backslash: printable, shown as key, round trip');
    is($seen{"tab\there"}, 'key_hex', 'esc: a control character: key_hex');
    is($seen{"caf\xc3\xa9"}, 'key_hex', 'esc: UTF-8 bytes: key_hex');
    is($seen{"del\x7f"}, 'key_hex', 'esc: DEL: key_hex');
    like($r->{body}, qr/"key":"say \\"hi\\" \\\\ bye"/,
         'esc: escaped as \\" and \\\\');
    unlike($r->{body} =~ s/\n\z//r, qr/[\x00-\x1f\x7f-\xff]/,
           'esc: no raw control or 8-bit byte in the JSON');

    # one key by key= (URL-encoded) and by key_hex=
    my $q = api('GET',
                '/trl-api/zones/esc/keys?key=say%20%22hi%22%20%5C%20bye');
    is($q->{json}{key}, 'say "hi" \\ bye', 'esc: key= is URL-decoded');
    is($q->{json}{known}, JSON::PP::true, 'esc: and known');
    $q = api('GET', '/trl-api/zones/esc/keys?key_hex='
                    . unpack('H*', "tab\there"));
    is($q->{json}{key_hex}, unpack('H*', "tab\there"), 'esc: key_hex= form');
    is($q->{json}{count}, 1, 'esc: key_hex= finds the key (count 1)');
    $q = api('GET', '/trl-api/zones/esc/keys?key_hex='
                    . uc unpack('H*', "caf\xc3\xa9"));
    is($q->{json}{count}, 1, 'esc: key_hex= in upper case');
}

# long keys: top offenders keep 62 bytes and say so; one key is shown whole
{
    my $long = 'L' x 100;
    is(statuses('/esc', $long, 2), '200 429', 'esc: a 100-byte key rejected');
    my ($o) = grep { ($_->{key} // '') =~ /^L+$/ }
              @{zone('esc')->{top_offenders}};
    ok($o && length($o->{key}) == 62 && $o->{truncated},
       'top offender: a long key cut to 62 bytes, "truncated":true')
        or diag(explain $o);
    my $k = api('GET', "/trl-api/zones/esc/keys?key=$long")->{json} || {};
    ok($k->{known} && $k->{count} == 1, 'one key: a long key is found');
    is($k->{key}, $long, 'one key: the whole key is shown');

    my $bin = join '', map { chr(($_ * 37) & 0xff) } 1 .. 150;
    $bin =~ s/\n/-/g;
    $bin =~ s/\r/-/g;
    my $hex = unpack('H*', $bin);
    $k = api('GET', "/trl-api/zones/esc/keys?key_hex=$hex")->{json} || {};
    ok(exists $k->{known} && !$k->{known}, 'one key: a 150-byte binary key');
    ok(($k->{key_hex} // '') eq $hex || $k->{truncated},
       'one key: its hex whole, or marked truncated')
        or diag('got ' . length($k->{key_hex} // '') . ' hex digits');
}

# evictions: a tiny zone flooded with fresh keys
{
    my $cap = zone('tiny')->{memory}{capacity};
    cmp_ok($cap, '>', 10, "tiny: capacity $cap");
    my $n = $cap + 50;
    my %st;
    $st{key_get('/tiny', "flood$_")->{status}}++ for 1 .. $n;
    is(join(' ', keys %st), '200', "tiny: $n fresh keys admitted");
    my $z = zone('tiny');
    cmp_ok($z->{evictions}, '>=', 50, "tiny: evictions ($z->{evictions})");
    cmp_ok($z->{memory}{keys}, '<=', $cap, 'tiny: keys <= capacity');
    cmp_ok($z->{memory}{keys}, '>=', $cap - 50, 'tiny: about full');
    is($z->{requests}{passed}, $n, "tiny: passed $n");
}

# both workers count into one zone
{
    my %pids;
    my $n = 40;
    for (1 .. $n) {
        my $r = key_get('/sum', "s$_");
        $pids{$r->{headers}{'x-pid'}}++ if $r->{status} == 200;
    }
    is(scalar keys %pids, 2, 'sum: both workers served requests')
        or diag(join ' ', %pids);
    is(requests('sum')->{passed}, $n, "sum: passed $n, all workers");
    is(zone('sum')->{memory}{keys}, $n, "sum: $n keys");
}

# --- one key -----------------------------------------------------------------

{
    my $r = api('GET', '/trl-api/zones/login/keys?key=mallory');
    is($r->{status}, 200, 'key: 200');
    is($r->{headers}{'content-type'}, 'application/json', 'key: JSON');
    my $k = $r->{json} || {};
    is($k->{zone}, 'login', 'key: zone');
    is($k->{key}, 'mallory', 'key: key');
    ok($k->{known}, 'key: known');
    is($k->{limit}, 3, 'key: limit');
    is($k->{count}, 3, 'key: count 3');
    is($k->{remaining}, 0, 'key: remaining 0');
    ok($k->{reset} > time + 50 && $k->{reset} <= time + 61,
       "key: reset within the window ($k->{reset})");
    ok($k->{blocked}, 'key: blocked');
    ok($k->{retry_after} > 50 && $k->{retry_after} <= 61,
       "key: retry_after ($k->{retry_after})");
    is($k->{violations}, 1, 'key: violations 1');
    ok(ref $k->{penalty} eq 'HASH' && $k->{penalty}{left} > 50
       && $k->{penalty}{left} <= 61
       && abs($k->{penalty}{until} - time - $k->{penalty}{left}) <= 2,
       'key: penalty {left, until}');

    $k = api('GET', '/trl-api/zones/login/keys?key=alice')->{json} || {};
    ok($k->{known} && $k->{count} == 1 && $k->{remaining} == 2
       && !$k->{blocked} && $k->{retry_after} == 0
       && $k->{violations} == 0 && !defined $k->{penalty},
       'key alice: count 1, remaining 2, not blocked, no penalty')
        or diag(explain $k);

    $k = api('GET', '/trl-api/zones/login/keys?key=nobody')->{json} || {};
    ok(exists $k->{known} && !$k->{known}, 'unknown key: known false');
    ok($k->{count} == 0 && $k->{remaining} == 3 && !$k->{blocked}
       && $k->{violations} == 0 && !defined $k->{penalty},
       'unknown key: count 0, remaining 3, not blocked')
        or diag(explain $k);

    $k = api('GET', '/trl-api/zones/ip/keys?key_hex=7f000001')->{json} || {};
    ok($k->{known} && $k->{count} == 2 && $k->{blocked}
       && ($k->{key} // '') eq '127.0.0.1' && !exists $k->{key_hex},
       'key_hex=7f000001 in the ip zone: known, count 2, blocked, shown '
       . 'as 127.0.0.1')
        or diag(explain $k);

    my $h = api('HEAD', '/trl-api/zones/login/keys?key=alice');
    is($h->{status}, 200, 'HEAD key: 200');
    is($h->{body}, '', 'HEAD key: no body');
    cmp_ok($h->{headers}{'content-length'}, '>', 0, 'HEAD: Content-Length');
}

# DELETE: the key starts afresh
{
    is(statuses('/del', 'dk', 4), '200 200 429 429',
       'del: 2 admitted, penalized');
    my $before = api('GET', '/trl-api/zones/del/keys?key=dk')->{json};
    ok($before->{blocked} && $before->{penalty}, 'del: blocked by a penalty');
    ok((grep { ($_->{key} // '') eq 'dk' } @{zone('del')->{top_offenders}}),
       'del: a top offender');

    my $r = api('DELETE', '/trl-api/zones/del/keys?key=dk');
    is($r->{status}, 200, 'DELETE key: 200');
    is_deeply($r->{json}, { zone => 'del', key => 'dk',
                            reset => JSON::PP::true, known => JSON::PP::true,
                            cluster => JSON::PP::false },
              'DELETE key: zone, key, reset, known, cluster false');
    my $k = api('GET', '/trl-api/zones/del/keys?key=dk')->{json};
    ok(!$k->{known} && $k->{count} == 0 && !$k->{blocked}
       && !defined $k->{penalty}, 'DELETE: the key is unknown now')
        or diag(explain $k);
    my $z = zone('del');
    is($z->{penalties_active}, 0, 'DELETE: penalty gone');
    ok(!(grep { ($_->{key} // '') eq 'dk' } @{$z->{top_offenders}}),
       'DELETE: no longer a top offender');
    my $g = key_get('/del', 'dk');
    is($g->{status}, 200, 'DELETE: the next request is admitted');
    is($g->{headers}{'x-ratelimit-remaining'}, 1, 'DELETE: with a full quota');

    $r = api('DELETE', '/trl-api/zones/del/keys?key=never-seen');
    is($r->{status}, 200, 'DELETE unknown key: 200');
    ok($r->{json} && !$r->{json}{known}, 'DELETE unknown key: known false');

    # key_hex= form
    is($t->get('/ip')->{status}, 429, 'ip: still rejected');
    $r = api('DELETE', '/trl-api/zones/ip/keys?key_hex=7f000001');
    ok($r->{json}{known}, 'DELETE key_hex=7f000001: known');
    is($t->get('/ip')->{status}, 200, 'DELETE key_hex: admitted again');
}

# --- errors leave state alone ------------------------------------------------

my $snapshot = api('GET', '/trl-api/zones')->{body};

# [method, path, status, Allow]
my @errors = (
    ['GET', '/trl-api/zones/nope', 404],
    ['GET', '/trl-api/zones/nope/keys?key=a', 404],
    ['DELETE', '/trl-api/zones/nope/keys?key=a', 404],
    ['GET', '/trl-api/zones/Login', 404],
    ['GET', '/trl-api/bogus', 404],
    ['GET', '/trl-api/zonesx', 404],
    ['GET', '/trl-api/zones/login/other', 404],
    ['POST', '/trl-api/', 405, 'GET, HEAD'],
    ['DELETE', '/trl-api/', 405, 'GET, HEAD'],
    ['PUT', '/trl-api', 405, 'GET, HEAD'],
    ['POST', '/trl-api/zones', 405, 'GET, HEAD'],
    ['DELETE', '/trl-api/zones', 405, 'GET, HEAD'],
    ['DELETE', '/trl-api/zones/login', 405, 'GET, HEAD'],
    ['PATCH', '/trl-api/zones/login', 405, 'GET, HEAD'],
    ['POST', '/trl-api/zones/login/keys?key=mallory', 405,
     'GET, HEAD, DELETE'],
    ['PUT', '/trl-api/zones/login/keys?key=mallory', 405,
     'GET, HEAD, DELETE'],
    ['POST', '/trl-api/metrics', 405, 'GET, HEAD'],
    ['POST', '/trl-api/dashboard', 405, 'GET, HEAD'],
    ['DELETE', '/trl-api/lists', 405, 'GET, HEAD'],
    ['GET', '/trl-api/zones/login/keys', 400],
    ['DELETE', '/trl-api/zones/login/keys', 400],
    ['GET', '/trl-api/zones/login/keys?key=', 400],
    ['DELETE', '/trl-api/zones/login/keys?key=', 400],
    ['GET', '/trl-api/zones/login/keys?key_hex=abc', 400],
    ['DELETE', '/trl-api/zones/login/keys?key_hex=zz', 400],
    ['DELETE', '/trl-api/zones/login/keys?key_hex=', 400],
    ['DELETE', '/trl-api/zones/login/keys?k=mallory', 400],
);
for my $e (@errors) {
    my ($m, $p, $want, $allow) = @$e;
    my $r = api($m, $p);
    is($r->{status}, $want, "$m $p: $want");
    is($r->{headers}{'content-type'}, 'application/json', "$m $p: JSON");
    ok($r->{json} && $r->{json}{error} && defined $r->{json}{message},
       "$m $p: {error, message}") or diag($r->{body});
    if ($allow) {
        is($r->{headers}{allow}, $allow, "$m $p: Allow: $allow");
    }
}
# Unix times of past moments ("first", "last") are rendered by whichever
# worker answers, from its own reading of the two clocks: they may differ
# by a second between workers; everything else must be the same.
sub untimed {
    my ($body, $times) = @_;
    (my $u = $body) =~ s/"(first|last|until)":(\d+)/push @$times, $2; "\"$1\":T"/ge;
    return $u;
}
{
    my (@was, @now);
    my $body = api('GET', '/trl-api/zones')->{body};
    is(untimed($body, \@now), untimed($snapshot, \@was),
       'errors: every zone as it was');
    my @off = grep { abs($was[$_] - $now[$_]) > 1 } 0 .. $#was;
    ok(@was == @now && !@off, 'errors: the same times (within a second)')
        or diag("before: @was\nafter:  @now");
}
{
    my $k = api('GET', '/trl-api/zones/login/keys?key=mallory')->{json};
    ok($k->{known} && $k->{blocked}, 'errors: mallory is still blocked');
}

# A refused POST with a body on a kept-alive connection: the body is not
# read as a request of its own.
{
    is(statuses('/del', 'smug', 3), '200 200 429', 'smug: penalized');
    my $inner = "DELETE /trl-api/zones/del/keys?key=smug HTTP/1.1\r\n"
                . "Host: x\r\n\r\n";
    my $raw = "POST /trl-api/zones HTTP/1.1\r\nHost: x\r\n"
              . 'Content-Length: ' . length($inner) . "\r\n\r\n$inner"
              . "GET /trl-api/zones/nope HTTP/1.1\r\nHost: x\r\n"
              . "Connection: close\r\n\r\n";
    my $r = $t->request($raw);
    my @codes = $r->{raw} =~ m{^HTTP/1\.1 (\d{3})}mg;
    is("@codes", '405 404', 'POST 405 with a body, then a request: '
                            . '2 answers (the body is no request)');
    my $k = api('GET', '/trl-api/zones/del/keys?key=smug')->{json};
    ok($k->{known} && $k->{blocked},
       'the DELETE in the body was not run: smug still blocked');
}

# --- access and locations ----------------------------------------------------

{
    my $r = $t->get('/trl-api/zones/login',
                    headers => { 'X-Forwarded-For' => '192.0.2.1' });
    is($r->{status}, 403, 'allow 127.0.0.1; deny all: 192.0.2.1 gets 403');
    unlike($r->{body}, qr/"requests"/, 'and no statistics');
    is($t->get('/trl-api/zones/login',
               headers => { 'X-Forwarded-For' => '127.0.0.1' })->{status},
       200, 'allow 127.0.0.1: 200');
    $r = api('DELETE', '/trl-api/zones/login/keys?key=mallory',
             headers => { 'X-Forwarded-For' => '192.0.2.1' });
    is($r->{status}, 403, 'DELETE from a denied address: 403');
    ok(api('GET', '/trl-api/zones/login/keys?key=mallory')->{json}{blocked},
       'and nothing was reset');

    $r = $t->get('/closed-api/');
    is($r->{status}, 403, 'deny all: 403 from nginx');
    like($r->{headers}{'content-type'} // '', qr{text/html},
         'deny all: nginx\'s own page');

    $r = $t->get('/plain/zones');
    is($r->{status}, 200, 'a location without the API: unaffected');
    is($r->{headers}{'content-type'}, 'image/gif', 'and serves its content');

    for my $p ('/trl-api', '/trl-api/', '/trl-api//', '/slash-api/') {
        $r = api('GET', $p);
        ok($r->{status} == 200 && $r->{json} && $r->{json}{zones},
           "GET $p: everything");
    }
    for my $p ('/trl-api/zones/login', '/trl-api/zones/login/',
               '/slash-api/zones/login') {
        $r = api('GET', $p);
        ok($r->{status} == 200 && $r->{json} && $r->{json}{rate} eq '3r/m',
           "GET $p: the zone");
    }
    $r = api('GET', '/slash-api/zones/login/keys?key=mallory');
    ok($r->{json} && $r->{json}{count} == 3,
       'GET /slash-api/zones/login/keys: the key');

    $r = api('HEAD', '/trl-api/');
    is($r->{status}, 200, 'HEAD {loc}/: 200');
    is($r->{body}, '', 'HEAD {loc}/: no body');
}

# --- reload keeps every counter ----------------------------------------------

{
    my $before = api('GET', '/trl-api/zones')->{json};
    my @old = $t->worker_pids;
    my ($rc, $out) = $t->reload;
    is($rc, 0, 'reload') or diag($out);
    my %old = map { $_ => 1 } @old;
    ok(!(grep { $old{$_} } $t->worker_pids), 'reload: new workers');
    my $after = api('GET', '/trl-api/zones')->{json};
    for my $z (sort keys %$before) {
        is_deeply($after->{$z}{requests}, $before->{$z}{requests},
                  "reload: $z: requests kept");
        is($after->{$z}{evictions}, $before->{$z}{evictions},
           "reload: $z: evictions kept");
        is($after->{$z}{memory}{keys}, $before->{$z}{memory}{keys},
           "reload: $z: keys kept");
    }
    is($after->{login}{penalties_active}, 1, 'reload: penalty still active');
    is($after->{login}{offenses}, 1, 'reload: offenses kept');
    is(join(' ', map { $_->{key} } @{$after->{top}{top_offenders}}),
       'alpha beta gamma', 'reload: top offenders kept');

    for (1 .. 10) { key_get('/sum', "after$_") }
    is(requests('sum')->{passed}, 50, 'reload: counting goes on (40 + 10)');
}

$t->stop;
$t->no_alerts;

# --- a regex location --------------------------------------------------------
#
# The API finds its paths below the location's name; a regex location has
# no such prefix: either nginx -t refuses token_ratelimit_api there, or
# the API works under it.
{
    my $u = TRL->new;
    $u->write_config(<<'EOF');
    token_ratelimit_zone $http_x_key zone=login:1m rate=3r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location ~ ^/rx-api(/|$) { token_ratelimit_api; }
    }
EOF
    my ($rc, $out) = $u->test_config;
    if ($rc != 0) {
        like($out, qr/token_ratelimit_api/,
             'regex location: refused by nginx -t, naming the directive');
    } else {
        $u->run;
        my $r = $u->get('/rx-api/zones/login');
        is($r->{status}, 200, 'regex location: GET {loc}/zones/login');
        like($r->{body}, qr/"rate":"3r\/m"/, 'regex location: the zone');
        $r = $u->get('/rx-api/');
        like($r->{body}, qr/"zones":/, 'regex location: GET {loc}/');
        $u->stop;
        $u->no_alerts;
    }
}

done_testing;
