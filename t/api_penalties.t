#!/usr/bin/perl
# token_ratelimit_api: the penalties list names the keys it can.
#
# The zone keeps only hashes of keys; their text is known for the keys in
# the offender table (16 or 64 of them).  With many keys serving a
# penalty, the list shows the ones known by name first, then the longest
# of the others by hash.
#
# - a penalty whose key has left the offender table (pushed out by keys
#   rejected elsewhere without a penalty) is listed by hash, and that hash
#   names the key for GET and DELETE {loc}/zones/NAME/keys?hash=H (a
#   malformed hash: 400, nothing changed);
# - 30 keys penalized that the offender table keeps (rejected again and
#   again), and 100 newer penalties (longer left) whose keys it has lost:
#   20 listed, every one by name, longest first, each really blocked (GET
#   .../keys says so), penalties_active 130;
# - a key reset through the API leaves the list, and a key whose penalty
#   has ended is not listed.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use TRL;

my $t = TRL->new(workers => 2);
$t->write_config(<<'EOF');
    token_ratelimit_zone $http_x_key zone=p:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=q:1m rate=1r/m;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /p { token_ratelimit zone=p penalty=10m; empty_gif; }
        location /p2 { token_ratelimit zone=p; empty_gif; }
        location /q { token_ratelimit zone=q penalty=1s:1:1s; empty_gif; }
        location /api/ { token_ratelimit_api; }
    }
EOF
$t->run;

sub zone {
    my ($name) = @_;
    my $r = $t->get("/api/zones/$name");
    is($r->{status}, 200, "GET zone $name") or return {};
    return decode_json($r->{body});
}

sub hit {
    my ($path, $key) = @_;
    return $t->get($path, headers => { 'X-Key' => $key })->{status};
}

# a penalty, then its key pushed out of the offender table by keys
# rejected where the zone gives no penalty (300: space-saving keeps a key
# that scored more until the newcomers have climbed past it)
is(hit('/p', 'old') . hit('/p', 'old'), '200429', 'old: penalized');
for my $i (1 .. 300) {
    hit('/p2', "n$i") for 1 .. 2;
}
my $z = zone('p');
is($z->{penalties_active}, 1, 'one penalty');
my @p = @{$z->{penalties} || []};
is(scalar @p, 1, 'listed');
ok(!defined $p[0]{key}, 'by hash (its key left the offender table)')
    or diag(encode_json(\@p));;
like($p[0]{hash} // '', qr/^[0-9a-f]{32}$/, 'the hash: 32 hex digits');
ok(!grep({ ($_->{key} // '') eq 'old' } @{$z->{top_offenders}}),
   'old is not among the top offenders');

# the hash, as listed, names the key for GET and DELETE
my $h = $p[0]{hash} // '';
my $k = $t->get("/api/zones/p/keys?hash=$h");
is($k->{status}, 200, 'GET keys?hash=: 200');
my $kj = eval { decode_json($k->{body}) } || {};
ok($kj->{known} && $kj->{blocked} && $kj->{penalty},
   'GET keys?hash=: known, blocked, serving the penalty')
    or diag($k->{body});
is($kj->{hash}, $h, 'GET keys?hash=: the hash echoed');
ok(exists $kj->{key} && !defined $kj->{key}, 'GET keys?hash=: "key":null');
for my $bad ('abc', 'g' x 32, substr($h, 1), '') {
    my $r = $t->get("/api/zones/p/keys?hash=$bad");
    is($r->{status}, 400, "GET keys?hash=$bad: 400");
}
is(hit('/p', 'old'), 429, 'old: still blocked (a bad hash changed nothing)');
my $d = $t->request(TRL::build_request('DELETE', "/api/zones/p/keys?hash=$h"));
is($d->{status}, 200, 'DELETE keys?hash=: 200');
like($d->{body}, qr/"reset":true,"known":true/, 'DELETE keys?hash=: known');
is(hit('/p', 'old'), 200, 'old: admitted again after the reset by hash');
is(zone('p')->{penalties_active}, 0, 'no penalty left');

# 30 keys penalized and rejected again and again while blocked (they
# stay in the offender table), then 100 newer penalties (longer left)
# whose keys are pushed out of it by keys rejected without a penalty
my $ok = 0;
for my $i (1 .. 30) {
    $ok++ if hit('/p', "a$i") == 200
             && join('', map { hit('/p', "a$i") } 1 .. 6) eq '429' x 6;
}
is($ok, 30, 'a1..a30: penalized, then rejected 5 times more while blocked');
sleep 1.1;
$ok = 0;
for my $i (1 .. 100) {
    $ok++ if hit('/p', "b$i") == 200 && hit('/p', "b$i") == 429;
}
is($ok, 100, 'b1..b100: penalized (a second later: longer left)');
for my $i (301 .. 400) {
    hit('/p2', "n$i") for 1 .. 2;
}

$z = zone('p');
is($z->{penalties_active}, 130, 'penalties_active counts them all');
@p = @{$z->{penalties} || []};
is(scalar @p, 20, '20 penalties listed');
my @named = grep { defined $_->{key} } @p;
is(scalar @named, 20, 'every one by name (the keys known by name first)')
    or diag(encode_json(\@p));
is(scalar(grep { $_->{key} =~ /^a\d+$/ } @named), 20,
   'the named ones: a1..a30');
my @left = map { $_->{left} } @named;
is("@left", join(' ', sort { $b <=> $a } @left), 'longest first');

for my $e (@named[0 .. 4]) {
    my $k = decode_json($t->get("/api/zones/p/keys?key=$e->{key}")->{body});
    ok($k->{blocked} && $k->{penalty}, "$e->{key}: blocked, as listed");
}

# a reset key leaves the list
my $gone = $named[0]{key};
is($t->request(TRL::build_request('DELETE', "/api/zones/p/keys?key=$gone"))
       ->{status}, 200,
   "DELETE $gone");
ok(!grep({ ($_->{key} // '') eq $gone } @{zone('p')->{penalties}}),
   "$gone is no longer listed");
is(hit('/p', $gone), 200, "$gone admitted again");

# a penalty that has ended is not listed
is(hit('/q', 'short') . hit('/q', 'short'), '200429', 'q: short penalty');
is(scalar @{zone('q')->{penalties}}, 1, 'q: listed while it lasts');
sleep 1.3;
is(scalar @{zone('q')->{penalties}}, 0, 'q: not listed once it has ended');

$t->stop;
ok($t->no_alerts, 'no alerts');

done_testing;
