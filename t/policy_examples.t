#!/usr/bin/perl
# The shipped policy files conf.d/policies/auth.yaml and tiered.yaml: they
# load together, in both environments (environment= on the directive,
# TRL_ENVIRONMENT from "env TRL_ENVIRONMENT=...;" or nginx's environment,
# production by default), their documented tables hold through nginx, and
# ENABLE_RATE_LIMITING=false turns every policy of both off.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $ROOT = $TRL::ROOT;
my $AUTH = "$ROOT/conf.d/policies/auth.yaml";
my $TIERED = "$ROOT/conf.d/policies/tiered.yaml";

delete @ENV{qw(TRL_ENVIRONMENT ENABLE_RATE_LIMITING)};

# policy => [N, window in seconds, count mode], per environment, as the
# files' comments and the README document them.
my %TABLE = (
    production => {
        'login'        => [20, 900],
        'register'     => [50, 3600],
        'verify-mfa'   => [20, 900],
        'totp-setup'   => [10, 900],
        'sensitive'    => [3, 300],
        'general-auth' => [20, 900, 'failed'],
        'refresh'      => [50, 900, 'failed'],
    },
    development => {
        'login'        => [100, 900],
        'register'     => [100, 3600],
        'verify-mfa'   => [50, 900],
        'totp-setup'   => [20, 900],
        'sensitive'    => [30, 300],
        'general-auth' => [200, 900, 'failed'],
        'refresh'      => [500, 900, 'failed'],
    },
);
my @AUTH_POLICIES = qw(login register verify-mfa totp-setup);
my @TIERED_POLICIES = qw(sensitive general-auth refresh);
my @POLICIES = (@AUTH_POLICIES, @TIERED_POLICIES);

# nginx.conf: the two files (paths and directive parameters given), one
# location per policy; count=failed policies in front of the backend.
sub http {
    my (%o) = @_;
    my $auth = $o{auth} // $AUTH;
    my $tiered = $o{tiered} // $TIERED;
    my $locs = '';
    for my $p (@POLICIES) {
        my $content = $p =~ /^(general-auth|refresh)$/
            ? 'proxy_pass http://127.0.0.1:%%PORT_BACKEND%%;' : 'empty_gif;';
        $locs .= "        location = /$p { token_ratelimit policy=$p; $content }\n";
    }
    return <<"EOF";
    token_ratelimit_policy_file $auth;
    token_ratelimit_policy_file $tiered;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[\$token_ratelimit_status]" always;
$locs    }
EOF
}

sub start {
    my (%o) = @_;
    my $t = TRL->new;
    if ($o{copy}) {
        mkdir $t->dir . '/policies';
        for my $f ($AUTH, $TIERED) {
            my ($base) = $f =~ m{([^/]+)$};
            $t->write_file("policies/$base", $t->read_file($f));
        }
    }
    $t->write_config(http(%o), main => $o{main} || '');
    $t->start_backend('BACKEND');
    local %ENV = %ENV;
    $ENV{$_} = $o{env}{$_} for keys %{$o{env} || {}};
    $t->run;
    return $t;
}

sub lim { $_[0]{headers}{'x-ratelimit-limit'} // 'none' }
sub rem { $_[0]{headers}{'x-ratelimit-remaining'} // 'none' }
sub st { $_[0]{headers}{'x-status'} // '(none)' }

# The limit header of one request to each policy matches the table.
sub limits_are {
    my ($t, $env, $what) = @_;
    my @got = map { "$_=" . lim($t->get("/$_?status=200")) } @POLICIES;
    my @want = map { "$_=$TABLE{$env}{$_}[0]" } @POLICIES;
    is("@got", "@want", "$what: the $env limits");
}

# Retry-After of a rejection: the window W (admission times are stored
# rounded up to a few ms and Retry-After rounds up: W + 1 at most).
sub window_ok {
    my ($r, $w, $what) = @_;
    my $ra = $r->{headers}{'retry-after'} // 0;
    ok($ra > $w - 30 && $ra <= $w + 1, "$what: Retry-After $ra, the ${w} s window")
        or diag("Retry-After $ra");
}

# A count=all policy: exactly N admitted (limit N, remaining N - i), then
# 429 with Retry-After about the window.
sub exhaust {
    my ($t, $env, $p) = @_;
    my ($n, $w) = @{$TABLE{$env}{$p}};
    my (@bad, $r);
    for my $i (1 .. $n) {
        $r = $t->get("/$p");
        push @bad, "$i: $r->{status} " . lim($r) . '/' . rem($r)
            unless $r->{status} == 200 && lim($r) eq $n && rem($r) eq $n - $i;
    }
    ok(!@bad, "$env $p: $n admitted, remaining counting down") or diag("@bad[0 .. 4]");
    $r = $t->get("/$p");
    is($r->{status}, 429, "$env $p: request " . ($n + 1) . ' rejected');
    is(lim($r) . '/' . rem($r), "$n/0", "$env $p: limit $n, remaining 0");
    window_ok($r, $w, "$env $p");
    return $r;
}

# A count=failed policy: successes do not count, N failures do, then every
# request is rejected.
sub exhaust_failed {
    my ($t, $env, $p, $successes) = @_;
    my ($n, $w, $mode) = @{$TABLE{$env}{$p}};
    is($mode, 'failed', "$env $p: count=failed in the table");
    my @st = map { $t->get("/$p?status=200") } 1 .. $successes;
    is(join(' ', map { $_->{status} } @st), join(' ', (200) x $successes),
       "$env $p: $successes successes admitted");
    my $r = $t->get("/$p?status=200");
    is(lim($r) . '/' . rem($r), "$n/" . ($n - 1),
       "$env $p: after $successes successes, N-1 left (only this one in flight)");
    my (@bad);
    for my $i (1 .. $n) {
        $r = $t->get("/$p?status=401");
        push @bad, "$i: $r->{status} " . rem($r)
            unless $r->{status} == 401 && rem($r) eq $n - $i;
    }
    ok(!@bad, "$env $p: $n failures admitted and counted") or diag("@bad[0 .. 4]");
    $r = $t->get("/$p?status=200");
    is($r->{status}, 429, "$env $p: then a success is rejected too");
    window_ok($r, $w, "$env $p");
    return $r;
}

# --- production (nothing set: ${TRL_ENVIRONMENT:-production}) -------------------

{
    my $t = start();
    limits_are($t, 'production', 'absolute paths, nothing set');
    # (each limits_are request took one place of the count=all policies)
    my $t2 = start();

    # login: warn 80% (16 of 20), a penalty; then rejected
    my @r = map { $t2->get('/login') } 1 .. 16;
    is(st($r[14]), '[PASSED]', 'production login: the 15th PASSED');
    is(st($r[15]), '[WARNED]', 'production login: the 16th WARNED (warn 80%)');
    is($r[15]{headers}{'x-ratelimit-warning'}, '"login";used=16;limit=20',
       'production login: X-RateLimit-Warning');
    $t2->get('/login') for 17 .. 20;
    my $r = $t2->get('/login');
    is($r->{status}, 429, 'production login: the 21st rejected');
    window_ok($r, 900, 'production login');

    exhaust($t2, 'production', 'register');
    $r = exhaust($t2, 'production', 'verify-mfa');
    exhaust($t2, 'production', 'totp-setup');
    $r = exhaust($t2, 'production', 'sensitive');
    is(st($r), '[REJECTED]', 'production sensitive: REJECTED');

    # general-auth: warn 75% (15 of 20 failures)
    my $p = 'general-auth';
    is(statuses($t2, "/$p?status=200", 30), join(' ', (200) x 30),
       'production general-auth: 30 successes admitted');
    @r = map { $t2->get("/$p?status=401") } 1 .. 15;
    is(st($r[13]), '[PASSED]', 'production general-auth: the 14th failure PASSED');
    is(st($r[14]), '[WARNED]', 'production general-auth: the 15th WARNED (warn 75%)');
    is($r[14]{headers}{'x-ratelimit-warning'}, '"general-auth";used=15;limit=20',
       'production general-auth: X-RateLimit-Warning');
    is(statuses($t2, "/$p?status=401", 6), '401 401 401 401 401 429',
       'production general-auth: the 21st failure rejected');
    is($t2->get("/$p?status=200")->{status}, 429,
       'production general-auth: then a success is rejected too');

    exhaust_failed($t2, 'production', 'refresh', 60);

    $t2->stop;
    $t2->no_alerts;
}

sub statuses {
    my ($t, $path, $n) = @_;
    return join ' ', map { $t->get($path)->{status} } 1 .. $n;
}

# --- development: env TRL_ENVIRONMENT=development; (copies, relative paths) -----

{
    my $t = start(copy => 1, auth => 'policies/auth.yaml',
                  tiered => 'policies/tiered.yaml',
                  main => 'env TRL_ENVIRONMENT=development;');
    for my $p (@AUTH_POLICIES, 'sensitive') {
        my $r = exhaust($t, 'development', $p);
        if ($p eq 'login') {
            # development has neither warn nor penalty
            is(st($r), '[REJECTED]', 'development login: REJECTED');
        }
    }
    # general-auth 200 and refresh 500 count failures only
    for my $p (qw(general-auth refresh)) {
        my $n = $TABLE{development}{$p}[0];
        my @r = map { $t->get("/$p?status=200") } 1 .. 10;
        is(join(' ', map { lim($_) . '/' . rem($_) } @r[0, 9]),
           "$n/" . ($n - 1) . " $n/" . ($n - 1),
           "development $p: $n, successes do not count");
        @r = map { $t->get("/$p?status=401") } 1 .. 3;
        is(rem($r[2]), $n - 3, "development $p: failures do");
    }
    like($t->get('/login')->{body} // '', qr/rate_limit_exceeded/, 'the JSON body');
    $t->stop;
    $t->no_alerts;
}

# --- the other ways to choose ---------------------------------------------------------

limits_are(start(auth => "$AUTH environment=development",
                 tiered => "$TIERED environment=development"),
           'development', 'environment=development on the directives');
limits_are(start(env => { TRL_ENVIRONMENT => 'development' }),
           'development', "TRL_ENVIRONMENT=development in nginx's environment");
limits_are(start(env => { TRL_ENVIRONMENT => 'development' },
                 main => 'env TRL_ENVIRONMENT=production;'),
           'production', "env TRL_ENVIRONMENT=production; over nginx's environment");
limits_are(start(auth => "$AUTH environment=production",
                 tiered => "$TIERED environment=production",
                 main => 'env TRL_ENVIRONMENT=development;'),
           'production', 'environment=production on the directives over TRL_ENVIRONMENT');
{
    my $t = start(auth => "$AUTH environment=development",
                  main => 'env TRL_ENVIRONMENT=production;');
    is(lim($t->get('/login')) . ' ' . lim($t->get('/sensitive')), '100 3',
       'auth.yaml environment=development beside tiered.yaml in production');
}

# --- ENABLE_RATE_LIMITING=false ---------------------------------------------------------

sub all_off {
    my ($t, $what) = @_;
    my @bad;
    for my $p (@POLICIES) {
        for my $i (1 .. 4) {
            my $r = $t->get("/$p?status=401");
            my @h = grep { /^(x-ratelimit|ratelimit|retry-after)/ } keys %{$r->{headers}};
            push @bad, "$p#$i: $r->{status} @h " . st($r)
                if $r->{status} == 429 || @h || st($r) ne '[]';
        }
    }
    ok(!@bad, "$what: no policy limits, no header fields, status empty")
        or diag(join "\n", @bad);
}

all_off(start(env => { ENABLE_RATE_LIMITING => 'false' }),
        "ENABLE_RATE_LIMITING=false in nginx's environment");
all_off(start(main => "env ENABLE_RATE_LIMITING=false;\nenv TRL_ENVIRONMENT=development;"),
        'env ENABLE_RATE_LIMITING=false; (development)');
all_off(start(auth => "$AUTH environment=production",
              tiered => "$TIERED environment=production",
              env => { ENABLE_RATE_LIMITING => 'false' }),
        'ENABLE_RATE_LIMITING=false, environment=production on the directives');
{
    my $t = start(env => { ENABLE_RATE_LIMITING => 'true' });
    is(statuses($t, '/sensitive', 4), '200 200 200 429',
       'ENABLE_RATE_LIMITING=true: on (sensitive: the 4th rejected)');
}

done_testing;
