#!/usr/bin/perl
# token_ratelimit_api runtime allow/deny entries ({loc}/lists), 2 workers,
# client addresses simulated with realip (X-Forwarded-For from 127.0.0.1):
#
# - POST {loc}/lists/deny?address= | cidr= (IPv4, IPv6) | key= [zone=]
#   (also key_hex=): applied on the very next request with the 403 JSON of
#   token_ratelimit_deny, counted as denied; only where the location has a
#   token_ratelimit; a key entry with zone= acts in that zone only, without
#   zone= in every zone.
# - POST {loc}/lists/allow: the address or key bypasses the zones
#   (BYPASSED, counted as bypassed).  Deny wins over allow.
# - GET {loc}/lists (and the "lists" of GET {loc}/): id, action, the
#   address, cidr or key, zone, created, expires.  IDs are decimal numbers
#   below 2^53 (JavaScript-safe).
# - ttl= expires an entry: gone from the list and no longer applied.
# - DELETE {loc}/lists/ID removes it (404 the second time).
# - Entries survive a reload.
# - origin: "api" unless origin= says who added it (1 to 63 printable
#   characters, no space).
# - Bad input: 400 (address, cidr, ttl, no selector, key too long, origin), 404
#   (unknown zone, unknown entry), 405 with Allow, all JSON, nothing
#   changed.  A zone name of 64 bytes or more works (no overflow).
# - Full lists: 507, and every entry is still listed.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new(workers => 2);
my $CONF = <<"EOF";
    token_ratelimit_zone \$remote_addr zone=ip:1m rate=2r/m;
    token_ratelimit_zone \$http_x_key zone=k:1m rate=2r/m;
    token_ratelimit_zone \$http_x_key zone=k2:1m rate=1000r/m;
    token_ratelimit_zone \$binary_remote_addr zone=bin:1m rate=1000r/m;
    keepalive_requests 100000;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        add_header X-S \$token_ratelimit_status always;

        location /a    { token_ratelimit zone=k2; empty_gif; }
        location /ip   { token_ratelimit zone=ip; empty_gif; }
        location /k    { token_ratelimit zone=k; empty_gif; }
        location /k2   { token_ratelimit zone=k2; empty_gif; }
        location /bin  { token_ratelimit zone=bin; empty_gif; }
        location /none { empty_gif; }
        location /api  { token_ratelimit_api; }
    }
EOF
$t->write_config($CONF);
$t->run;

my $json = JSON::PP->new->allow_bignum;
my $n = 0;

sub api {
    my ($method, $path, %opt) = @_;
    return $t->json_request($method, $path, %opt);
}

# A request from address $addr (with a fresh key unless one is given).
sub from {
    my ($path, $addr, $key) = @_;
    $key //= 'u' . ++$n;
    return $t->get($path, headers => { 'X-Forwarded-For' => $addr,
                                       'X-Key' => $key });
}
sub st {
    my $r = from(@_);
    return "$r->{status}/" . ($r->{headers}{'x-s'} // '');
}
sub key_st {
    my ($path, $key) = @_;
    my $r = $t->get($path, headers => { 'X-Key' => $key });
    return "$r->{status}/" . ($r->{headers}{'x-s'} // '');
}

my %ids;        # what => id
sub add {
    my ($what, $action, $query) = @_;
    my $r = api('POST', "/api/lists/$action?$query");
    is($r->{status}, 201, "POST $action?$query: 201") or diag($r->{raw});
    is($r->{headers}{'content-type'}, 'application/json',
       "POST $action?$query: JSON");
    ok($r->{json} && defined $r->{json}{id} && $r->{json}{id} =~ /^\d+$/
       && $r->{json}{action} eq $action,
       "POST $action?$query: {id, action}") or diag($r->{body});
    return 0 unless $r->{status} == 201 && $r->{json};
    return $ids{$what} = "$r->{json}{id}";
}
sub lists { api('GET', '/api/lists')->{json} || [] }
sub entry {
    my ($id) = @_;
    my ($e) = grep { "$_->{id}" eq $id } @{lists()};
    return $e;
}
sub zone { api('GET', "/api/zones/$_[0]")->{json} }

is_deeply(lists(), [], 'GET {loc}/lists: empty at first');

# --- deny by address and CIDR, IPv4 and IPv6 ---------------------------------

{
    is(st('/a', '192.0.2.1'), '200/PASSED', 'before: 192.0.2.1 passes');
    my $denied0 = zone('k2')->{requests}{denied};

    add('v4', 'deny', 'address=192.0.2.1');
    my $r = from('/a', '192.0.2.1');
    is($r->{status}, 403, 'deny address: the next request gets 403');
    is($r->{headers}{'content-type'}, 'application/json', 'deny: JSON');
    is($r->{body}, qq({"error":"access_denied","message":"Access denied."}),
       'deny: the body of token_ratelimit_deny');
    is($r->{headers}{'x-s'}, 'REJECTED', 'deny: status REJECTED');
    is(st('/a', '192.0.2.1'), '403/REJECTED', 'deny: and on every request');
    is(st('/a', '192.0.2.2'), '200/PASSED', 'deny: other addresses pass');
    is(from('/none', '192.0.2.1')->{status}, 200,
       'deny: a location without token_ratelimit is not affected');
    is(zone('k2')->{requests}{denied}, $denied0 + 2,
       'deny: counted as denied in the zone');

    add('v4net', 'deny', 'cidr=198.51.100.0/24');
    is(st('/a', '198.51.100.7'), '403/REJECTED', 'deny cidr /24: inside');
    is(st('/a', '198.51.101.7'), '200/PASSED', 'deny cidr /24: outside');

    add('v4odd', 'deny', 'cidr=203.0.113.128/25');
    is(st('/a', '203.0.113.200'), '403/REJECTED', 'deny cidr /25: inside');
    is(st('/a', '203.0.113.100'), '200/PASSED', 'deny cidr /25: outside');

    add('v6', 'deny', 'address=2001:db8::1');
    is(st('/a', '2001:db8::1'), '403/REJECTED', 'deny IPv6 address');
    is(st('/a', '2001:db8::2'), '200/PASSED', 'deny IPv6: others pass');

    add('v6net', 'deny', 'cidr=2001:db8:1::/48');
    is(st('/a', '2001:db8:1:ffff::9'), '403/REJECTED', 'deny IPv6 /48');
    is(st('/a', '2001:db8:2::9'), '200/PASSED', 'deny IPv6 /48: outside');

    add('v6odd', 'deny', 'cidr=2001:db8:ab00::/40');
    is(st('/a', '2001:db8:abff::1'), '403/REJECTED', 'deny IPv6 /40: inside');
    is(st('/a', '2001:db8:ac00::1'), '200/PASSED', 'deny IPv6 /40: outside');
    is(st('/a', '::ffff:192.0.2.1'), '403/REJECTED',
       'an IPv4-mapped IPv6 client matches the IPv4 entry');
}

# --- deny by key -------------------------------------------------------------

{
    add('key-k', 'deny', 'key=evil&zone=k');
    is(key_st('/k', 'evil'), '403/REJECTED', 'deny key in zone k');
    is(key_st('/k2', 'evil'), '200/PASSED', 'deny key in zone k: not in k2');
    is(key_st('/k', 'good'), '200/PASSED', 'deny key: other keys pass');
    is(zone('k')->{requests}{denied}, 1, 'deny key: counted denied in k');

    add('key-all', 'deny', 'key=wicked');
    is(key_st('/k', 'wicked'), '403/REJECTED', 'deny key, no zone: in k');
    is(key_st('/k2', 'wicked'), '403/REJECTED', 'deny key, no zone: in k2');

    add('key-enc', 'deny', 'key=a%20b%26c&zone=k2');
    is(key_st('/k2', 'a b&c'), '403/REJECTED', 'deny key=: URL-decoded');

    add('key-hex', 'deny', 'key_hex=c0000263&zone=bin');
    is(st('/bin', '192.0.2.99'), '403/REJECTED',
       'deny key_hex (a $binary_remote_addr key)');
    is(st('/bin', '192.0.2.98'), '200/PASSED', 'deny key_hex: others pass');
}

# --- allow -------------------------------------------------------------------

{
    is(join(' ', map { st('/ip', '192.0.2.11') } 1 .. 3),
       '200/PASSED 200/PASSED 429/REJECTED', 'control: ip zone is 2r/m');

    my $bypassed0 = zone('ip')->{requests}{bypassed};
    add('allow-v4', 'allow', 'address=192.0.2.10');
    is(join(' ', map { st('/ip', '192.0.2.10') } 1 .. 4),
       join(' ', ('200/BYPASSED') x 4), 'allow address: bypasses the zone');
    is(zone('ip')->{requests}{bypassed}, $bypassed0 + 4,
       'allow address: counted as bypassed');

    add('allow-net', 'allow', 'cidr=192.0.2.16/28');
    is(join(' ', map { st('/ip', '192.0.2.20') } 1 .. 3),
       join(' ', ('200/BYPASSED') x 3), 'allow cidr: bypasses');
    is(join(' ', map { st('/ip', '192.0.2.11') } 1 .. 1), '429/REJECTED',
       'allow cidr: others still limited');

    add('allow-key', 'allow', 'key=vip&zone=k');
    my $b0 = zone('k')->{requests}{bypassed};
    is(join(' ', map { key_st('/k', 'vip') } 1 .. 4),
       join(' ', ('200/BYPASSED') x 4), 'allow key: bypasses the zone');
    is(zone('k')->{requests}{bypassed}, $b0 + 4,
       'allow key: counted as bypassed');
    my $k = api('GET', '/api/zones/k/keys?key=vip')->{json};
    is($k->{count}, 0, 'allow key: nothing counted for the key');

    # deny wins over allow
    add('both-allow', 'allow', 'address=192.0.2.30');
    add('both-deny', 'deny', 'address=192.0.2.30');
    is(st('/ip', '192.0.2.30'), '403/REJECTED',
       'allow and deny of one address: deny wins');
    add('net-allow', 'allow', 'cidr=192.0.2.32/27');
    add('net-deny', 'deny', 'address=192.0.2.40');
    is(st('/a', '192.0.2.40'), '403/REJECTED',
       'allow cidr, deny address within: deny wins');
    is(st('/a', '192.0.2.41'), '200/BYPASSED',
       'allow cidr: the rest of it bypasses');
    add('kboth-allow', 'allow', 'key=both&zone=k');
    add('kboth-deny', 'deny', 'key=both');
    is(key_st('/k', 'both'), '403/REJECTED', 'allow and deny a key: deny');
    add('mixed-deny', 'deny', 'key=bad-from-good&zone=k2');
    is(st('/a', '192.0.2.10', 'bad-from-good'), '403/REJECTED',
       'an allowed address with a denied key: deny wins');
}

# --- origin: who added an entry ----------------------------------------------

add('origin', 'deny',
    'cidr=198.18.0.0/15&origin=crowdsec%3Acrowdsecurity%2Fssh-bf');

# --- listing -----------------------------------------------------------------

{
    my $l = api('GET', '/api/lists');
    is($l->{status}, 200, 'GET lists: 200');
    is($l->{headers}{'content-type'}, 'application/json', 'GET lists: JSON');
    my $list = $l->{json} || [];
    is(scalar @$list, scalar keys %ids, 'GET lists: every entry')
        or diag($l->{body});
    my %by_id = map { ("$_->{id}" => $_) } @$list;
    is_deeply([sort keys %by_id], [sort values %ids],
              'GET lists: the ids the POSTs answered');
    my @big = grep { $_ >= 2**53 } values %ids;
    ok(!@big, 'ids are below 2^53 (safe in JavaScript)') or diag("@big");
    my @bad = grep { !/^[1-9]\d*$/ } values %ids;
    ok(!@bad, 'ids are positive decimal numbers') or diag("@bad");

    my $e = $by_id{$ids{v4}} || {};
    is($e->{action}, 'deny', 'address entry: action');
    ok(($e->{address} // '') eq '192.0.2.1'
       || ($e->{cidr} // '') eq '192.0.2.1/32',
       'address entry: the address (or cidr /32)') or diag(explain $e);
    ok(abs($e->{created} - time) <= 5, 'address entry: created');
    ok(exists $e->{expires} && !defined $e->{expires},
       'address entry: expires null (no ttl)');

    $e = $by_id{$ids{v6net}} || {};
    is($e->{cidr}, '2001:db8:1::/48', 'IPv6 cidr entry: cidr');
    $e = $by_id{$ids{v4odd}} || {};
    is($e->{cidr}, '203.0.113.128/25', 'IPv4 cidr entry: cidr');
    ok(($by_id{$ids{v6}}{address} // '') eq '2001:db8::1'
       || ($by_id{$ids{v6}}{cidr} // '') eq '2001:db8::1/128',
       'IPv6 address entry');

    $e = $by_id{$ids{'key-k'}} || {};
    is($e->{key}, 'evil', 'key entry: key');
    is($e->{zone}, 'k', 'key entry: zone');
    $e = $by_id{$ids{'key-all'}} || {};
    ok(exists $e->{zone} && !defined $e->{zone}, 'key entry: zone null');
    $e = $by_id{$ids{'key-hex'}} || {};
    ok(($e->{key} // '') eq '192.0.2.99' && !exists $e->{key_hex},
       'binary key entry of a $binary_remote_addr zone: as an address');
    $e = $by_id{$ids{'allow-key'}} || {};
    is($e->{action}, 'allow', 'allow entry: action');
    is($by_id{$ids{v4}}{origin}, 'api', 'origin: "api" when not given');
    is($by_id{$ids{'key-k'}}{origin}, 'api', 'origin: "api" of a key entry');
    is($by_id{$ids{origin}}{origin}, 'crowdsec:crowdsecurity/ssh-bf',
       'origin: as given (URL-decoded)');

    my $all = api('GET', '/api/')->{json} || {};
    is_deeply([sort map { "$_->{id}" } @{$all->{lists} || []}],
              [sort keys %by_id], 'GET {loc}/: the same entries in "lists"');

    my $h = api('HEAD', '/api/lists');
    ok($h->{status} == 200 && $h->{body} eq '', 'HEAD lists');
}

# --- ttl ---------------------------------------------------------------------

{
    my $t0 = time;
    my $id = add('ttl', 'deny', 'address=192.0.2.100&ttl=2s');
    add('ttl-key', 'deny', 'key=shortlived&ttl=2');
    add('ttl-long', 'deny', 'address=192.0.2.101&ttl=1d');
    my $e = entry($id) || {};
    ok(defined $e->{expires} && $e->{expires} >= int($t0) + 2
       && $e->{expires} <= int($t0) + 4, "ttl=2s: expires ($e->{expires})")
        or diag(explain $e);
    $e = entry($ids{'ttl-long'}) || {};
    ok(defined $e->{expires} && abs($e->{expires} - time - 86400) <= 3,
       'ttl=1d: expires in a day');
    is(st('/a', '192.0.2.100'), '403/REJECTED', 'ttl=2s: denied at first');
    is(key_st('/k', 'shortlived'), '403/REJECTED', 'ttl=2 (seconds): denied');
    sleep 1;
    is(st('/a', '192.0.2.100'), '403/REJECTED', 'ttl=2s: still after 1 s');
    my $wait = $t0 + 2.3 - time;
    sleep $wait if $wait > 0;
    is(st('/a', '192.0.2.100'), '200/PASSED', 'ttl=2s: expired after 2 s');
    is(key_st('/k', 'shortlived'), '200/PASSED', 'ttl=2: expired');
    ok(!entry($id), 'ttl=2s: gone from the list');
    ok(!entry($ids{'ttl-key'}), 'ttl=2: gone from the list');
    delete @ids{qw(ttl ttl-key)};
}

# --- DELETE ------------------------------------------------------------------

{
    is(st('/a', '198.51.100.7'), '403/REJECTED', 'before DELETE: denied');
    my $id = $ids{v4net};
    my $r = api('DELETE', "/api/lists/$id");
    is($r->{status}, 200, 'DELETE lists/ID: 200') or diag($r->{body});
    is($r->{headers}{'content-type'}, 'application/json', 'DELETE: JSON');
    ok($r->{json} && "$r->{json}{id}" eq $id && $r->{json}{removed},
       'DELETE: {id, removed: true}') or diag($r->{body});
    is(st('/a', '198.51.100.7'), '200/PASSED',
       'DELETE: the next request passes');
    ok(!entry($id), 'DELETE: gone from the list');
    $r = api('DELETE', "/api/lists/$id");
    is($r->{status}, 404, 'DELETE again: 404');
    ok($r->{json} && $r->{json}{error}, 'DELETE again: a JSON error');
    delete $ids{v4net};

    # every id can be deleted, whatever its digits
    my @gone;
    for my $i (1 .. 5) {
        my $nid = add("tmp$i", 'deny', "key=tmp$i&zone=k");
        push @gone, api('DELETE', "/api/lists/$nid")->{status};
        delete $ids{"tmp$i"};
    }
    is("@gone", '200 200 200 200 200', 'DELETE: five fresh ids');
}

# --- reload ------------------------------------------------------------------

{
    my $before = join ' ', sort map { "$_->{id}" } @{lists()};
    my ($rc, $out) = $t->reload;
    is($rc, 0, 'reload') or diag($out);
    is(join(' ', sort map { "$_->{id}" } @{lists()}), $before,
       'reload: the same entries');
    is(st('/a', '192.0.2.1'), '403/REJECTED', 'reload: deny still applied');
    is(key_st('/k', 'evil'), '403/REJECTED', 'reload: key deny applied');
    is(st('/ip', '192.0.2.10'), '200/BYPASSED', 'reload: allow applied');
}

# --- bad input ---------------------------------------------------------------

my $snapshot = join ' ', sort map { "$_->{id}" } @{lists()};
{
    my @bad = (
        [400, 'POST', 'deny?address=192.0.2.300'],
        [400, 'POST', 'deny?address=garbage'],
        [400, 'POST', 'deny?address='],
        [400, 'POST', 'deny?address=192.0.2.0/24'],
        [400, 'POST', 'deny?address=2001:db8::zz'],
        [400, 'POST', 'deny?cidr=192.0.2.0/33'],
        [400, 'POST', 'deny?cidr=2001:db8::/129'],
        [400, 'POST', 'deny?cidr=192.0.2.0'],
        [400, 'POST', 'deny?cidr=192.0.2.0/'],
        [400, 'POST', 'deny?cidr=192.0.2.0/-1'],
        [400, 'POST', 'deny?cidr=192.0.2.0/2x'],
        [400, 'POST', 'deny?cidr=garbage/8'],
        [400, 'POST', 'allow?cidr=/8'],
        [400, 'POST', 'deny?address=192.0.2.5&ttl=0'],
        [400, 'POST', 'deny?address=192.0.2.5&ttl=-1'],
        [400, 'POST', 'deny?address=192.0.2.5&ttl=abc'],
        [400, 'POST', 'deny?address=192.0.2.5&ttl='],
        [400, 'POST', 'deny?key=k1&ttl=5x'],
        [400, 'POST', 'deny'],
        [400, 'POST', 'deny?zone=k'],
        [400, 'POST', 'allow?key='],
        [400, 'POST', 'deny?key_hex=abc'],
        [400, 'POST', 'deny?key=' . ('x' x 129)],
        [400, 'POST', 'deny?address=192.0.2.5&origin='],
        [400, 'POST', 'deny?address=192.0.2.5&origin=a%20b'],
        [400, 'POST', 'deny?address=192.0.2.5&origin=a%0Ab'],
        [400, 'POST', 'deny?address=192.0.2.5&origin=' . ('o' x 64)],
        [404, 'POST', 'deny?key=x&zone=nope'],
        [404, 'POST', 'allow?key=x&zone=K'],
        [405, 'GET', 'deny', 'POST, DELETE'],
        [405, 'PUT', 'allow', 'POST, DELETE'],
        [405, 'PUT', 'deny?address=192.0.2.5', 'POST, DELETE'],
        [400, 'DELETE', 'allow'],
        [404, 'DELETE', 'deny?address=192.0.2.77'],
        [405, 'POST', '', 'GET, HEAD'],
        [405, 'DELETE', '', 'GET, HEAD'],
        [405, 'GET', $ids{v4}, 'DELETE'],
        [405, 'POST', $ids{v4}, 'DELETE'],
        [404, 'DELETE', '12345'],
        [404, 'DELETE', 'abc'],
        [404, 'DELETE', 'deny/1'],
        [404, 'DELETE', '0'],
        [404, 'DELETE', '99999999999999999999999'],
    );
    for my $b (@bad) {
        my ($want, $m, $q, $allow) = @$b;
        my $p = "/api/lists" . (length $q ? "/$q" : '');
        my $r = api($m, $p);
        is($r->{status}, $want, "$m $p: $want");
        ok($r->{json} && $r->{json}{error} && $r->{json}{message}
           && $r->{headers}{'content-type'} eq 'application/json',
           "$m $p: a JSON error") or diag($r->{raw});
        is($r->{headers}{allow}, $allow, "$m $p: Allow: $allow") if $allow;
    }
    is(join(' ', sort map { "$_->{id}" } @{lists()}), $snapshot,
       'bad input: the entries as they were');
    is(st('/a', '192.0.2.5'), '200/PASSED', 'bad input: nothing applied');
}

# --- full lists: 507 ---------------------------------------------------------

{
    my ($added, $status, $body) = (0, 0, '');
    my @new;
    for my $i (1 .. 5000) {
        my $r = api('POST', "/api/lists/deny?key=fill$i&zone=k");
        $status = $r->{status};
        $body = $r->{json};
        last if $status != 201;
        push @new, "$r->{json}{id}";
    }
    is($status, 507, 'full lists: 507 Insufficient Storage');
    ok($body && $body->{error} && $body->{message}, 'full: a JSON error');
    my $total = @new + keys %ids;
    cmp_ok($total, '>=', 1000, "full: $total entries fit");
    is(scalar @{lists()}, $total, 'full: GET lists shows every entry');
    is(key_st('/k', 'fill1'), '403/REJECTED', 'full: the entries apply');
    is(key_st('/k', "fill" . scalar @new), '403/REJECTED',
       'full: the last one too');
    is(api('DELETE', "/api/lists/$new[0]")->{status}, 200,
       'full: DELETE one');
    is(api('POST', '/api/lists/deny?key=again&zone=k')->{status}, 201,
       'full: then there is room for one more');
}

$t->stop;
$t->no_alerts;

# --- long zone names ---------------------------------------------------------
#
# A zone name of 64 bytes or more: nginx -t may refuse it; if it takes it,
# a key entry for that zone is either added and applied, or refused with
# 400, never garbled (the entry's zone field is 64 bytes) nor a crash.

for my $len (64, 200) {
    my $name = 'l' x $len;
    my $u = TRL->new;
    $u->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=$name:1m rate=100r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /long { token_ratelimit zone=$name; empty_gif; }
        location /api  { token_ratelimit_api; }
    }
EOF
    my ($rc, $out) = $u->test_config;
    if ($rc != 0) {
        like($out, qr/zone/, "a $len-byte zone name: refused by nginx -t");
        next;
    }
    $u->run;
    my $r = $u->request(TRL::build_request('POST',
                            "/api/lists/deny?key=lk&zone=$name", body => ''));
    my $g = $u->get('/long', headers => { 'X-Key' => 'lk' });
    my $l = eval { $json->decode($u->get('/api/lists')->{body}) } || [];
    if ($r->{status} == 201) {
        is($g->{status}, 403, "a $len-byte zone name: the entry applies");
        is(scalar @$l, 1, "a $len-byte zone name: one entry");
        is($l->[0]{zone}, $name, "a $len-byte zone name: listed as named");
    } else {
        is($r->{status}, 400, "a $len-byte zone name: 201 or 400");
        is($g->{status}, 200, "a $len-byte zone name: nothing applies");
        is_deeply($l, [], "a $len-byte zone name: nothing listed");
    }
    $u->stop;
    $u->no_alerts;
}

done_testing;

