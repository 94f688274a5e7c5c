#!/usr/bin/perl
# token_ratelimit_enabled on|off (http, server, location; default on): off
# makes the module do nothing there: no limit, no X-RateLimit-* headers,
# no counting, no bypass/deny, $token_ratelimit_status empty.  The
# inner level wins; a reload that switches it keeps the counts.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $t = TRL->new;

sub conf {
    my ($http_enabled) = @_;
    return <<"EOF";
    token_ratelimit_zone \$arg_k zone=z:1m rate=2r/m;
    token_ratelimit_enabled $http_enabled;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[\$token_ratelimit_status]" always;
        add_header X-Vars "[\$token_ratelimit_limit|\$token_ratelimit_remaining|\$token_ratelimit_reset]" always;
        token_ratelimit zone=z;

        # no token_ratelimit_enabled here: the http level's
        location /a    { empty_gif; }
        location /a_on { token_ratelimit_enabled on; empty_gif; }
    }

    server {
        listen 127.0.0.1:%%PORT_B%%;
        add_header X-Status "[\$token_ratelimit_status]" always;
        token_ratelimit zone=z;
        token_ratelimit_enabled on;

        location /b     { empty_gif; }
        location /b_off { token_ratelimit_enabled off; empty_gif; }
        location /b_off_deny {
            token_ratelimit_enabled off;
            token_ratelimit_deny 1;
            empty_gif;
        }
        location /b_deny {
            token_ratelimit_deny \$arg_d;
            token_ratelimit_bypass \$arg_b;
            empty_gif;
        }
        location /b_off_bypass {
            token_ratelimit_enabled off;
            token_ratelimit_bypass 1;
            empty_gif;
        }
        location /b_off_own {
            token_ratelimit_enabled off;
            token_ratelimit zone=z;
            token_ratelimit_status 503;
            empty_gif;
        }
        location /b_off_ep {
            token_ratelimit_enabled off;
            error_page 429 /e429;
            empty_gif;
        }
        location = /e429 { return 429 "custom\\n"; }
    }
EOF
}

$t->write_config(conf('off'));
$t->run;

my $PB = $t->port('B');

sub st { $_[0]{headers}{'x-status'} // '(none)' }
sub rem { $_[0]{headers}{'x-ratelimit-remaining'} }
sub none_of_it {
    my ($r) = @_;
    return !grep { /^(x-ratelimit-|ratelimit|retry-after)/ } keys %{$r->{headers}};
}
sub b { $t->get($_[0], port => $PB) }

# --- off at http level, inherited by server A ------------------------------------

{
    my @r = map { $t->get('/a?k=x') } 1 .. 5;
    is(join(' ', map { $_->{status} } @r), '200 200 200 200 200',
       'http off, inherited: never limited');
    ok(!grep({ !none_of_it($_) } @r), 'http off: no rate-limit headers');
    is(join(' ', map { st($_) } @r), join(' ', ('[]') x 5),
       'http off: $token_ratelimit_status empty');
    is($r[0]{headers}{'x-vars'}, '[||]', 'http off: the other variables empty too');

    my $r = $t->get('/a_on?k=x');
    is($r->{status}, 200, 'location on inside http off: limited ...');
    is(rem($r), 1, '... and the five requests above were not counted');
    is(st($r), '[PASSED]', 'location on: PASSED');
    $t->get('/a_on?k=x');
    is($t->get('/a_on?k=x')->{status}, 429, 'location on: rejected at the limit');
    is($t->get('/a?k=x')->{status}, 200, 'http off: the same key passes where off');
}

# --- on at server level, off in locations -----------------------------------------

{
    my @r = map { b('/b?k=y') } 1 .. 3;
    is(join(' ', map { $_->{status} } @r), '200 200 429', 'server on: limited');

    @r = map { b('/b_off?k=y') } 1 .. 4;
    is(join(' ', map { $_->{status} } @r), '200 200 200 200',
       'location off: the key over its limit passes');
    ok(!grep({ !none_of_it($_) } @r), 'location off: no headers, no Retry-After');
    is(st($r[0]), '[]', 'location off: status empty');
    is($r[0]{headers}{'content-type'}, 'image/gif', 'location off: the content');

    # nothing counted where off
    is(rem(b('/b?k=fresh_off')), 1, 'key fresh_off: one request at /b');
    b('/b_off?k=fresh_off') for 1 .. 5;
    is(rem(b('/b?k=fresh_off')), 0, 'location off: counted nothing');

    # a location's own token_ratelimit does not turn it back on
    @r = map { b('/b_off_own?k=y') } 1 .. 2;
    is(join(' ', map { $_->{status} } @r), '200 200',
       'location off with its own token_ratelimit: not limited');

    # nor are bypass and deny applied where off
    my $r = b('/b_off_deny?k=y');
    is($r->{status}, 200, 'location off: token_ratelimit_deny does nothing');
    is(st($r), '[]', 'location off, deny: status empty');
    $r = b('/b_off_bypass?k=y');
    is(st($r), '[]', 'location off, bypass: status empty (not BYPASSED)');
    is(b('/b_off_ep?k=y')->{status}, 200, 'location off with error_page 429: passes');

    # where on, they are
    is(b('/b_deny?k=y&d=1')->{status}, 403, 'server on: deny applies');
    is(st(b('/b_deny?k=y&b=1')), '[BYPASSED]', 'server on: bypass applies');
}

# --- a reload switches it; the counts are kept ------------------------------------

{
    # key r: 2 of 2 taken in server A's /a_on
    $t->get('/a_on?k=r') for 1 .. 2;
    is($t->get('/a_on?k=r')->{status}, 429, 'key r at its limit');

    my ($rc, $out) = $t->reload(conf('on'));
    is($rc, 0, 'reload: http level on') or diag($out);
    my $r = $t->get('/a?k=r');
    is($r->{status}, 429, 'after the reload, /a is limited and key r is still at its limit');
    is(st($r), '[REJECTED]', 'after the reload: REJECTED');
    $r = $t->get('/a?k=r2');
    is(rem($r), 1, 'after the reload: headers at /a');

    ($rc, $out) = $t->reload(conf('off'));
    is($rc, 0, 'reload: http level off again') or diag($out);
    is($t->get('/a?k=r')->{status}, 200, 'off again: passes');
    is($t->get('/a_on?k=r')->{status}, 429, 'off again: the count of key r is kept');
    is(rem($t->get('/a_on?k=r2')), 0, 'off again: key r2 kept its one request');
}

$t->stop;
$t->no_alerts;
done_testing;
