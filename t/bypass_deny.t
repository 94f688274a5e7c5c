#!/usr/bin/perl
# token_ratelimit_bypass and token_ratelimit_deny: values with variables
# (geo/map CIDR lists, a secret admin header), a value matches when it is
# neither empty nor "0".  Deny wins over bypass.  Deny: 403 with a JSON
# body (or the location's error_page 403), $token_ratelimit_status
# REJECTED, no zone asked, a rate-limited log line.  Bypass: no zone
# applies, no X-RateLimit-* headers, BYPASSED.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=z:1m rate=2r/m;

    # (a regex: plain map strings match case-insensitively)
    map $http_x_admin_token $is_admin {
        default 0;
        "~^s3cret-t0ken$" 1;
    }

    # an allowlist of the client's own address
    geo $trusted_local {
        default 0;
        127.0.0.0/8 1;
    }

    # lists of the address a trusted proxy names
    geo $http_x_ip $allow_ip {
        default 0;
        10.1.0.0/16 1;
        192.0.2.7 1;
        2001:db8::/32 1;
    }
    geo $http_x_ip $block_ip {
        default 0;
        203.0.113.0/24 1;
        10.1.2.0/24 1;              # inside the allowlist: deny wins
        2001:db8:bad::/48 1;
    }

    # http level: inherited where a level says nothing
    token_ratelimit_deny $http_x_banned;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[$token_ratelimit_status]" always;

        # server level: inherited by the locations without their own
        token_ratelimit_bypass $is_admin;

        location /api {
            token_ratelimit zone=z;
            token_ratelimit_bypass $is_admin $allow_ip;
            token_ratelimit_deny $block_ip;
            empty_gif;
        }
        location /admin {
            token_ratelimit zone=z;
            empty_gif;
        }
        location /local {
            token_ratelimit zone=z;
            token_ratelimit_bypass $trusted_local;
            empty_gif;
        }
        location /args {
            token_ratelimit zone=z;
            token_ratelimit_bypass $arg_b $arg_b2;
            token_ratelimit_deny $arg_d "${arg_d2}";
            empty_gif;
        }
        location /warnlvl {
            token_ratelimit zone=z;
            token_ratelimit_deny $arg_d;
            token_ratelimit_log_level warn;
            empty_gif;
        }
        location /ep {
            token_ratelimit zone=z;
            token_ratelimit_deny $arg_d;
            error_page 403 /forbidden.html;
            empty_gif;
        }
        location = /forbidden.html {
            root %%DIR%%/html;
        }
        location /plain {
            token_ratelimit zone=z;
            token_ratelimit_bypass "";
            empty_gif;
        }
    }
EOF
$t->write_file('html/forbidden.html', "custom forbidden page\n");
$t->run;

sub st { $_[0]{headers}{'x-status'} // '' }
sub rem { $_[0]{headers}{'x-ratelimit-remaining'} }
sub denied_lines { grep { /access denied by token_ratelimit_deny/ } split /\n/, $t->error_log }

my $DENY_BODY = '{"error":"access_denied","message":"Access denied."}';

# --- the deny log line: at most one a second (per worker) -----------------------

{
    # start just after a second boundary, so that the burst stays in one second
    my $frac = time - int(time);
    sleep(1.05 - $frac) if $frac > 0.3;
    my $t0 = time;
    my @r = map { $t->get("/args?k=log&d=1") } 1 .. 10;
    my $took = time - $t0;
    is(join(' ', map { $_->{status} } @r), join(' ', (403) x 10), 'burst: ten denied');
    SKIP: {
        skip "the burst took ${took}s", 5 if int($t0) != int($t0 + $took);
        my @lines = denied_lines();
        is(scalar @lines, 1, 'burst: one log line for ten denials') or diag(join "\n", @lines);
        like($lines[0] // '', qr/\[error\] .*access denied by token_ratelimit_deny, client: 127\.0\.0\.1/,
             'burst: at the default level [error], with the client');
        unlike($lines[0] // '', qr/more since the last line/, 'burst: the first line has no count');
        sleep(int($t0) + 1.1 - time);
        my $r = $t->get('/warnlvl?k=log&d=1');
        is($r->{status}, 403, 'a second later: denied');
        @lines = denied_lines();
        like($lines[1] // '',
             qr/\[warn\] .*access denied by token_ratelimit_deny \(and 9 more since the last line\)/,
             'a second later: one line, at the level of its location, counting the unlogged nine');
    }
}

# --- deny: 403, the JSON body, REJECTED, no zone asked -----------------------------

{
    my $r = $t->get('/api?k=d1', headers => { 'X-IP' => '203.0.113.9' });
    is($r->{status}, 403, 'geo denylist: 403');
    is($r->{headers}{'content-type'}, 'application/json', 'deny: application/json');
    is($r->{body}, $DENY_BODY, 'deny: the body, exactly');
    is($r->{headers}{'content-length'}, length $DENY_BODY, 'deny: Content-Length');
    is(st($r), '[REJECTED]', 'deny: $token_ratelimit_status REJECTED');
    ok(!defined $r->{headers}{'x-ratelimit-limit'}
       && !defined $r->{headers}{'x-ratelimit-remaining'}
       && !defined $r->{headers}{'retry-after'},
       'deny: no X-RateLimit-* and no Retry-After (no zone was asked)');

    $r = $t->get('/api?k=d1', headers => { 'X-IP' => '2001:db8:bad:1::5' });
    is($r->{status}, 403, 'geo denylist: an IPv6 range');

    # denied requests are not counted
    $t->get('/api?k=d1', headers => { 'X-IP' => '203.0.113.10' }) for 1 .. 3;
    $r = $t->get('/plain?k=d1');
    is($r->{status}, 200, 'deny: not counted (the key is untouched)');
    is(rem($r), 1, 'deny: the zone counted none of the five denied requests');

    # a key over its limit is denied, not rejected
    $t->get('/plain?k=d1');
    is($t->get('/plain?k=d1')->{status}, 429, 'key d1 now over the limit');
    $r = $t->get('/api?k=d1', headers => { 'X-IP' => '203.0.113.1' });
    is($r->{status}, 403, 'deny comes before the zones: 403, not 429');
    is($r->{body}, $DENY_BODY, 'deny over the limit: the deny body');
}

# --- bypass: geo CIDR allowlist -----------------------------------------------------

{
    my @r = map { $t->get('/api?k=b1', headers => { 'X-IP' => '10.1.200.3' }) } 1 .. 4;
    is(join(' ', map { $_->{status} } @r), '200 200 200 200', 'geo allowlist (CIDR): never limited');
    is(join(' ', map { st($_) } @r), join(' ', ('[BYPASSED]') x 4), 'geo allowlist: BYPASSED');
    ok(!grep({ defined $_->{headers}{'x-ratelimit-limit'}
               || defined $_->{headers}{'x-ratelimit-remaining'}
               || defined $_->{headers}{'x-ratelimit-reset'} } @r),
       'bypass: no X-RateLimit-* headers');
    is(st($t->get('/api?k=b1', headers => { 'X-IP' => '192.0.2.7' })), '[BYPASSED]',
       'geo allowlist: a single address');
    is(st($t->get('/api?k=b1', headers => { 'X-IP' => '2001:db8:1::1' })), '[BYPASSED]',
       'geo allowlist: an IPv6 range');

    my $r = $t->get('/plain?k=b1');
    is(rem($r), 1, 'bypass: not counted');

    # an address outside the list is limited
    @r = map { $t->get('/api?k=b2', headers => { 'X-IP' => '10.2.0.1' }) } 1 .. 3;
    is(join(' ', map { $_->{status} } @r), '200 200 429', 'outside the allowlist: limited');
    is(st($r[0]), '[PASSED]', 'outside the allowlist: PASSED');
    is(rem($r[0]), 1, 'outside the allowlist: headers');
    # ... and a listed one passes the same exhausted key
    $r = $t->get('/api?k=b2', headers => { 'X-IP' => '10.1.0.1' });
    is($r->{status}, 200, 'allowlisted: passes a key over its limit');
    is(st($r), '[BYPASSED]', 'allowlisted over the limit: BYPASSED');
    is($r->{headers}{'retry-after'}, undef, 'allowlisted over the limit: no Retry-After');
}

# --- deny wins over bypass ------------------------------------------------------------

{
    # 10.1.2.0/24 is in the allowlist and in the denylist
    my $r = $t->get('/api?k=p1', headers => { 'X-IP' => '10.1.2.3' });
    is($r->{status}, 403, 'in both lists: denied');
    is(st($r), '[REJECTED]', 'in both lists: REJECTED');
    # the admin token and a denied address
    $r = $t->get('/api?k=p1', headers => { 'X-IP' => '203.0.113.5',
                                           'X-Admin-Token' => 's3cret-t0ken' });
    is($r->{status}, 403, 'admin token from a denied address: denied');
    $r = $t->get('/args?k=p1&b=1&d=1');
    is($r->{status}, 403, 'bypass and deny values both set: denied');
    is($r->{body}, $DENY_BODY, 'bypass and deny: the deny body');
}

# --- a secret admin header through map, inherited from the server level ----------------

{
    $t->get('/admin?k=a1') for 1 .. 2;
    my $r = $t->get('/admin?k=a1');
    is($r->{status}, 429, 'admin: the key is over its limit');
    $r = $t->get('/admin?k=a1', headers => { 'X-Admin-Token' => 's3cret-t0ken' });
    is($r->{status}, 200, 'admin token (server-level bypass, inherited): passes');
    is(st($r), '[BYPASSED]', 'admin token: BYPASSED');
    $r = $t->get('/admin?k=a1', headers => { 'X-Admin-Token' => 'wrong' });
    is($r->{status}, 429, 'a wrong token: limited');
    is(st($r), '[REJECTED]', 'a wrong token: REJECTED');
    $r = $t->get('/admin?k=a1', headers => { 'X-Admin-Token' => 'S3CRET-T0KEN' });
    is($r->{status}, 429, 'the token is case-sensitive');
    # /api has its own bypass list, which names $is_admin too
    $r = $t->get('/api?k=a1', headers => { 'X-Admin-Token' => 's3cret-t0ken' });
    is(st($r), '[BYPASSED]', 'admin token at /api');
    # /local replaces the server-level list by its own (nginx convention)
    $t->get('/plain?k=a2') for 1 .. 2;
    $r = $t->get('/local?k=a2');
    is($r->{status}, 200, 'geo on the client address (127.0.0.0/8): bypassed');
    is(st($r), '[BYPASSED]', 'geo on the client address: BYPASSED');
}

# --- which values match: neither empty nor "0" ------------------------------------------

{
    $t->get('/plain?k=v') for 1 .. 2;
    my %want = ('' => 429, '0' => 429, '1' => 200, 'yes' => 200, '00' => 200,
                'false' => 200, 'off' => 200);
    for my $v (sort keys %want) {
        my $r = $t->get("/args?k=v&b=$v");
        is($r->{status}, $want{$v}, "bypass value \"$v\": " . ($want{$v} == 200 ? 'matches' : 'does not match'));
    }
    is($t->get('/args?k=v&b=0&b2=1')->{status}, 200, 'bypass: any of several values');
    is($t->get('/args?k=v&b=0&b2=0')->{status}, 429, 'bypass: none of several values');

    my %dwant = ('' => 200, '0' => 200, '1' => 403, 'no' => 403, '00' => 403);
    for my $v (sort keys %dwant) {
        my $r = $t->get("/args?k=vd&d=$v");
        is($r->{status}, $dwant{$v}, "deny value \"$v\": " . ($dwant{$v} == 403 ? 'matches' : 'does not match'));
    }
    is($t->get('/args?k=vd&d=0&d2=x')->{status}, 403, 'deny: any of several values ("${arg_d2}")');
}

# --- http-level deny, inherited ---------------------------------------------------------

{
    my $r = $t->get('/admin?k=h', headers => { 'X-Banned' => 'yes' });
    is($r->{status}, 403, 'http-level deny: inherited by a location without its own');
    $r = $t->get('/admin?k=h', headers => { 'X-Banned' => 'yes',
                                            'X-Admin-Token' => 's3cret-t0ken' });
    is($r->{status}, 403, 'http-level deny beats server-level bypass');
    $r = $t->get('/api?k=h', headers => { 'X-Banned' => 'yes' });
    is($r->{status}, 200, 'a location with its own deny list replaces the inherited one');
}

# --- error_page 403 takes precedence ---------------------------------------------------

{
    my $r = $t->get('/ep?k=e&d=1');
    is($r->{status}, 403, 'error_page 403: still 403');
    is($r->{body}, "custom forbidden page\n", 'error_page 403: its page, not the JSON');
    like($r->{headers}{'content-type'} // '', qr{^text/html}, 'error_page 403: its type');
    is(st($r), '[REJECTED]', 'error_page 403: REJECTED');
    $r = $t->get('/ep?k=e');
    is($r->{status}, 200, 'error_page location: not denied without the value');
    is(st($r), '[PASSED]', 'error_page location: PASSED');
}

$t->stop;
$t->no_alerts;
done_testing;
