#!/usr/bin/perl
# Several zones: all must admit; a request rejected by one zone is counted
# by none; the headers show the most restrictive zone; inheritance
# http -> server -> location as with limit_req; shared counters.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=a:1m rate=5r/m;
    token_ratelimit_zone $arg_k zone=b:1m rate=2r/m;
    token_ratelimit_zone $arg_k zone=c:1m rate=4r/m;
    token_ratelimit_zone $arg_k zone=t60:1m rate=3r/m;
    token_ratelimit_zone $arg_k zone=t120:1m rate=3r/2m;
    token_ratelimit_zone $arg_k zone=s:1m rate=2r/m;
    token_ratelimit_zone $arg_k zone=h:1m rate=3r/m;

    # http level: applies to servers and locations with none of their own
    token_ratelimit zone=h;

    server {
        listen 127.0.0.1:%%PORT%%;

        # server level: overrides http, inherited by locations with none
        token_ratelimit zone=s;

        location /ab   { token_ratelimit zone=a; token_ratelimit zone=b; empty_gif; }
        location /ba   { token_ratelimit zone=b; token_ratelimit zone=a; empty_gif; }
        location /abc  { token_ratelimit zone=a; token_ratelimit zone=b;
                         token_ratelimit zone=c; empty_gif; }
        location /a    { token_ratelimit zone=a; empty_gif; }
        location /b    { token_ratelimit zone=b; empty_gif; }
        location /c    { token_ratelimit zone=c; empty_gif; }
        location /ab_ietf { token_ratelimit zone=a; token_ratelimit zone=b;
                            token_ratelimit_headers both; empty_gif; }
        location /ab_ietf_r { token_ratelimit zone=a; token_ratelimit zone=b;
                              token_ratelimit_headers ietf; empty_gif; }
        location /try  { token_ratelimit zone=a; try_files /nonexistent /a; }
        location /tie1 { token_ratelimit zone=t60; token_ratelimit zone=t120; empty_gif; }
        location /tie2 { token_ratelimit zone=t120; token_ratelimit zone=t60; empty_gif; }

        location /share1 { token_ratelimit zone=b; empty_gif; }
        location /share2 { token_ratelimit zone=b; empty_gif; }

        location /inherit { empty_gif; }
        location /inherit_other_settings { token_ratelimit_headers on;
                                           token_ratelimit_status 503; empty_gif; }
        location /override { token_ratelimit zone=a; empty_gif; }
        location /outer {
            token_ratelimit zone=c;
            location /outer/inner { empty_gif; }
            location /outer/own { token_ratelimit zone=b; empty_gif; }
            empty_gif;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_H%%;

        location /any   { empty_gif; }
        location /own   { token_ratelimit zone=b; empty_gif; }
    }
EOF
$t->run;

sub rem { $_[0]{headers}{'x-ratelimit-remaining'} }
sub lim { $_[0]{headers}{'x-ratelimit-limit'} }

# --- a request passes only if all zones admit ---------------------------------

{
    my @r = map { $t->get('/ab?k=1') } 1 .. 5;
    is_deeply([map { $_->{status} } @r], [200, 200, 429, 429, 429],
              'a(5)+b(2): two admitted, then b rejects');
    is(lim($r[0]), 2, 'headers show the most restrictive zone (b)');
    is(rem($r[0]), 1, 'b: remaining 1 after the first');
    is(rem($r[1]), 0, 'b: remaining 0 after the second');
    is(lim($r[2]), 2, 'rejection: headers of the rejecting zone');
    is(rem($r[2]), 0, 'rejection: remaining 0');
    like($r[2]{body}, qr/"limit":2,/, 'rejection: JSON names the rejecting zone\'s limit');

    # a admitted the first two only: rejections by b took no place in a
    my $a = $t->get('/a?k=1');
    is($a->{status}, 200, 'a alone: admitted');
    is(lim($a), 5, 'a alone: limit 5');
    is(rem($a), 2, 'a alone: 5 - 2 (admitted by both) - 1 = 2: rejected requests not counted by a');

    my $b = $t->get('/b?k=1');
    is($b->{status}, 429, 'b alone: exhausted');
}

{
    # the same with the rejecting zone first
    my @r = map { $t->get('/ba?k=2') } 1 .. 4;
    is_deeply([map { $_->{status} } @r], [200, 200, 429, 429], 'b+a: two admitted');
    is(rem($t->get('/a?k=2')), 2, 'b+a: a counted only the admitted two');
}

{
    # three zones, the middle one rejects: neither a nor c counts
    my @r = map { $t->get('/abc?k=3') } 1 .. 6;
    is_deeply([map { $_->{status} } @r], [200, 200, 429, 429, 429, 429],
              'a+b+c: b rejects after two');
    is(rem($t->get('/a?k=3')), 2, 'a+b+c: a counted two');
    is(rem($t->get('/c?k=3')), 1, 'a+b+c: c counted two (4 - 2 - 1)');
}

{
    # the first zone rejects: the later ones are not charged either
    $t->get('/a?k=4') for 1 .. 5;                       # exhaust a
    my $r = $t->get('/ab?k=4');
    is($r->{status}, 429, 'a exhausted: a+b rejects');
    is(lim($r), 5, 'a exhausted: headers of a');
    is(rem($t->get('/b?k=4')), 1, 'a exhausted: b was not charged');
}

{
    # a zone that admits while another exhausts later: both counted
    my $r1 = $t->get('/ab?k=5');
    my $a = $t->get('/a?k=5');
    is(rem($a), 3, 'admitted by both: a counted it');
}

# --- IETF lists every applied zone, in directive order ----------------------

{
    my $r = $t->get('/ab_ietf?k=6');
    is($r->{headers}{'ratelimit-policy'}, '"a";q=5;w=60, "b";q=2;w=60',
       'RateLimit-Policy: one member per zone, in order');
    like($r->{headers}{'ratelimit'} // '',
         qr/^"a";r=4;t=(59|60|61), "b";r=1;t=(59|60|61)$/,
         'RateLimit: one member per zone, in order');
    is(lim($r), 2, 'both: X-RateLimit-* of the most restrictive');
    is(rem($r), 1, 'both: X-RateLimit-Remaining of b');
}

{
    # on rejection by b, a's admission is rolled back: the IETF member for
    # a must show a's true remaining (5 - 2 = 3), not the value it had
    # before the rollback
    my @r = map { $t->get('/ab_ietf_r?k=6r') } 1 .. 3;
    is($r[2]{status}, 429, 'IETF, rejected by b');
    like($r[2]{headers}{'ratelimit'} // '', qr/"b";r=0;t=\d+/,
         'IETF on rejection: b r=0');
    like($r[2]{headers}{'ratelimit'} // '', qr/^"a";r=3;t=\d+, "b";r=0;t=\d+$/,
         'IETF on rejection: a shows its true remaining after the rollback (3)');
    is($t->get('/a?k=6r')->{headers}{'x-ratelimit-remaining'}, 2,
       'a really had 3 left');
}

# --- an internal redirect does not limit twice ----------------------------

{
    my @r = map { $t->get('/try?k=try') } 1 .. 2;
    is_deeply([map { $_->{status} } @r], [200, 200], 'try_files to a limited location');
    is_deeply([map { rem($_) } @r], [4, 3],
              'try_files to a location with the same zone: counted once per request');
}

# --- tie on remaining: the later full reset wins ----------------------------

for my $loc ('/tie1', '/tie2') {
    my $k = "tie$loc";
    my $now = time;
    my $r = $t->get("$loc?k=$k");
    is(rem($r), 2, "$loc: both zones have 2 left");
    my $reset = $r->{headers}{'x-ratelimit-reset'} // 0;
    ok($reset >= int($now) + 119 && $reset <= int($now) + 122,
       "$loc: tie -> the zone with the later reset (3r/2m): reset $reset, now $now");
}

# --- shared counters ---------------------------------------------------------

{
    my $r1 = $t->get('/share1?k=7');
    my $r2 = $t->get('/share2?k=7');
    my $r3 = $t->get('/share1?k=7');
    my $r4 = $t->get('/b?k=7');
    is(rem($r1), 1, 'shared zone: first location');
    is(rem($r2), 0, 'shared zone: second location counts on the same key');
    is($r3->{status}, 429, 'shared zone: first location now rejects');
    is($r4->{status}, 429, 'shared zone: a third location too');
    is($t->get('/share2?k=8')->{status}, 200, 'shared zone: other keys unaffected');
}

# --- inheritance ---------------------------------------------------------------

{
    my @r = map { $t->get('/inherit?k=9') } 1 .. 3;
    is_deeply([map { $_->{status} } @r], [200, 200, 429],
              'location without token_ratelimit inherits the server\'s zone');
    is(lim($r[0]), 2, 'inherited: limit of zone s (2), not http\'s h (3)');

    my $x = $t->get('/inherit_other_settings?k=9');
    is($x->{status}, 503,
       'location with other token_ratelimit_* directives only still inherits the zone');

    # override: zone a only, s not applied
    my @o = map { $t->get('/override?k=9') } 1 .. 3;
    is_deeply([map { $_->{status} } @o], [200, 200, 200],
              'location with its own token_ratelimit does not inherit s');
    is(lim($o[0]), 5, 'override: limit of a');
    is(rem($o[2]), 2, 'override: only a counts');

    # nested locations
    my $in = $t->get('/outer/inner?k=10');
    is(lim($in), 4, 'nested location inherits from the outer location (c)');
    is(rem($in), 3, 'nested: c remaining');
    my $out = $t->get('/outer?k=10');
    is(rem($out), 2, 'outer location shares c with the nested one');
    my $own = $t->get('/outer/own?k=10');
    is(lim($own), 2, 'nested location with its own zone (b)');
    is(rem($own), 1, 'nested own: c not applied');
}

{
    my $port = $t->port('H');
    my @r = map { $t->get('/any?k=11', port => $port) } 1 .. 4;
    is_deeply([map { $_->{status} } @r], [200, 200, 200, 429],
              'http-level token_ratelimit applies in a server without any');
    is(lim($r[0]), 3, 'http level: limit of h');
    is(rem($r[0]), 2, 'http level: remaining');
    my $own = $t->get('/own?k=11', port => $port);
    is($own->{status}, 200, 'location override in that server: h not applied');
    is(lim($own), 2, 'location override: limit of b');

    # the first server overrides http: h is not applied there
    my @s = map { $t->get('/inherit?k=12') } 1 .. 2;
    is(lim($s[0]), 2, 'server-level override: zone s, not h');
    is(rem($t->get('/any?k=12', port => $port)), 2,
       'server-level override: h not charged by the first server');
}

$t->stop;
$t->no_alerts;
done_testing;
