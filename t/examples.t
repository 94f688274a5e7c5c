#!/usr/bin/perl
# The documented examples: every conf.d snippet passes "nginx -t" when
# included in an http block (alone and all together), each one's documented
# limits hold against a real backend, and scripts/run.sh (make run) starts,
# limits its sample endpoints and stops on SIGINT.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use TRL;

my $ROOT = $TRL::ROOT;
my @SNIPPETS = qw(auth-service token-issuance login-failed-only
                  login-distinct reputation auto-ban crowdsec
                  active-tokens);

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

# A prefix where conf.d/ is the checkout's, as next to an nginx.conf:
# reputation.conf names its list files relative to it.
sub prefix {
    my $t = TRL->new;
    symlink "$ROOT/conf.d", $t->dir . '/conf.d' or die "symlink: $!";
    return $t;
}

# A copy of a snippet that runs in the harness: the upstream address
# 127.0.0.1:9000 becomes the harness backend, the listen port a free one.
sub runnable {
    my ($t, $name) = @_;
    my ($up, $ls) = $t->run_snippet("$ROOT/conf.d/$name.conf");
    ok($up >= 1 && $ls == 1, "$name.conf: upstream and listen rewritten");
    return $t;
}

# Sends requests until one is rejected; returns (admitted, the rejection).
sub until_rejected {
    my ($t, $max, $send) = @_;
    my $admitted = 0;
    for (1 .. $max) {
        my $r = $send->();
        return ($admitted, $r) if $r->{status} == 429;
        $admitted++;
    }
    return ($admitted, undef);
}

sub check_rejection {
    my ($r, $limit, $window, $what) = @_;
    ok($r, "$what: rejected") or return;
    is($r->{status}, 429, "$what: status 429");
    is($r->{headers}{'x-ratelimit-limit'}, $limit, "$what: limit $limit");
    is($r->{headers}{'x-ratelimit-remaining'}, 0, "$what: remaining 0");
    # admission times are stored rounded up to a unit of a few ms, and
    # Retry-After rounds up to whole seconds: it can be one more than W
    my $ra = $r->{headers}{'retry-after'} // 0;
    my $max = $window + 1;
    ok($ra >= 1 && $ra <= $max, "$what: Retry-After $ra in 1..$max");
    like($r->{body}, qr/^\{"error":"rate_limit_exceeded",.*"limit":$limit,/,
         "$what: JSON body");
}


# --- nginx -t: each snippet, then all of them in one http block ------------

for my $name (@SNIPPETS) {
    my $t = prefix();
    $t->write_config("    include $ROOT/conf.d/$name.conf;\n");
    my ($rc, $out) = $t->test_config;
    is($rc, 0, "nginx -t with conf.d/$name.conf included") or diag($out);
}

{
    my $t = prefix();
    $t->write_config(join '', map { "    include $ROOT/conf.d/$_.conf;\n" }
                                  @SNIPPETS);
    my ($rc, $out) = $t->test_config;
    is($rc, 0, 'nginx -t with all conf.d snippets together') or diag($out);
}


# --- auth-service.conf ----------------------------------------------------

{
    my $t = runnable(TRL->new, 'auth-service');

    my $r = $t->get('/api/me');
    is($r->{status}, 200, 'auth: default location proxied');
    is($r->{headers}{'x-ratelimit-limit'}, 100, 'auth: default limit 100');
    is($r->{headers}{'x-ratelimit-remaining'}, 99, 'auth: default remaining');

    my ($n, $rej) = until_rejected($t, 10,
                                   sub { $t->post('/auth/password/reset', '') });
    is($n, 3, 'auth: 3 password reset requests per minute');
    check_rejection($rej, 3, 60, 'auth: 4th password reset request');

    ($n, $rej) = until_rejected($t, 10,
        sub { $t->post('/auth/password/reset/confirm', '') });
    is($n, 5, 'auth: 5 password reset confirmations, a zone of their own');
    check_rejection($rej, 5, 60, 'auth: 6th confirmation');

    # /auth/login and /auth/login/ share the login limit
    my $i = 0;
    ($n, $rej) = until_rejected($t, 20, sub {
        $t->post($i++ % 2 ? '/auth/login/' : '/auth/login', '') });
    is($n, 10, 'auth: 10 logins per minute, trailing slash included');
    check_rejection($rej, 10, 60, 'auth: 11th login');

    ($n, $rej) = until_rejected($t, 10,
                                sub { $t->post('/auth/register', '') });
    is($n, 5, 'auth: 5 registrations per minute');

    ($n, $rej) = until_rejected($t, 20,
                                sub { $t->post('/auth/token/refresh', '') });
    is($n, 10, 'auth: 10 refreshes per minute');

    $r = $t->get('/api/me');
    is($r->{headers}{'x-ratelimit-remaining'}, 98,
       'auth: limited locations do not count against the default');

    ($n, $rej) = until_rejected($t, 120, sub { $t->get('/api/me') });
    is($n, 98, 'auth: everything else 100 per minute');
    check_rejection($rej, 100, 60, 'auth: 101st other request');

    $t->stop;
    $t->no_alerts;
}


# --- token-issuance.conf --------------------------------------------------

{
    my $t = runnable(TRL->new, 'token-issuance');
    my $ip_admitted = 0;

    my $jwt = sub {
        my ($query, %h) = @_;
        my $r = $t->post("/jwt/token$query", '', headers => \%h);
        $ip_admitted++ if $r->{status} != 429;
        return $r;
    };

    my $r = $jwt->('', 'X-Client-Id' => 'c1', 'X-Token-Subject' => 'bob');
    is($r->{status}, 200, 'jwt: admitted');
    is($r->{headers}{'x-ratelimit-limit'}, 5,
       'jwt: headers show the most restrictive zone (subject)');
    is($r->{headers}{'x-ratelimit-remaining'}, 4, 'jwt: subject remaining');
    like($r->{headers}{'ratelimit-policy'} // '',
         qr/^"jwt_ip";q=100;w=3600, "jwt_client";q=1000;w=3600, "jwt_subject";q=5;w=900$/,
         'jwt: RateLimit-Policy lists every zone');
    like($r->{headers}{'ratelimit'} // '',
         qr/^"jwt_ip";r=99;t=\d+, "jwt_client";r=999;t=\d+, "jwt_subject";r=4;t=\d+$/,
         'jwt: RateLimit state of every zone');

    # client id from the query argument when there is no header
    $r = $jwt->('?client_id=c2');
    like($r->{headers}{'ratelimit'} // '', qr/"jwt_client";r=999;/,
         'jwt: client id taken from ?client_id=');
    $r = $jwt->('?client_id=c2');
    like($r->{headers}{'ratelimit'} // '', qr/"jwt_client";r=998;/,
         'jwt: client id counted');
    unlike($r->{headers}{'ratelimit'} // '', qr/jwt_subject/,
           'jwt: no subject, subject zone not applied');

    # tokens per subject: failures do not count, 5 issued ones do
    for (1 .. 3) {
        $r = $jwt->('?status=401', 'X-Token-Subject' => 'alice');
        is($r->{status}, 401, "jwt: failed issuance $_ for alice");
    }
    my ($n, $rej) = until_rejected($t, 10, sub {
        $jwt->('?status=200', 'X-Token-Subject' => 'alice') });
    is($n, 5, 'jwt: 5 tokens per subject per token lifetime');
    check_rejection($rej, 5, 900, 'jwt: 6th token for alice');
    ok($rej && $rej->{headers}{'retry-after'} > 800,
       'jwt: Retry-After counts in the 15-minute lifetime');
    is($jwt->('?status=401', 'X-Token-Subject' => 'alice')->{status}, 429,
       'jwt: alice is limited whatever the outcome would be');
    $r = $jwt->('?subject=carol');
    is($r->{headers}{'x-ratelimit-remaining'}, 4,
       'jwt: subject taken from ?subject=');

    # 100 per hour per IP, requests rejected by the subject zone not counted
    ($n, $rej) = until_rejected($t, 120, sub { $jwt->('') });
    is($ip_admitted, 100, 'jwt: 100 admitted per hour per IP in all');
    check_rejection($rej, 100, 3600, 'jwt: 101st request from the IP');

    # TARA: 5 per minute (and 20 per hour), shared by the flow's endpoints
    ($n, $rej) = until_rejected($t, 10, sub { $t->get('/tara/authorize') });
    is($n, 5, 'tara: 5 per minute per IP');
    check_rejection($rej, 5, 60, 'tara: 6th in a minute');
    $r = $t->get('/tara/callback?code=x&state=y');
    is($r->{status}, 429, 'tara: callback shares the limit');

    $r = $t->get('/health');
    is($r->{status}, 200, 'unlimited location proxied');
    is($r->{headers}{'x-ratelimit-limit'}, undef, 'unlimited: no headers');

    $t->stop;
    $t->no_alerts;
}


# --- login-failed-only.conf -----------------------------------------------

{
    my $t = runnable(TRL->new, 'login-failed-only');

    for (1 .. 5) {
        my $r = $t->post('/login?status=200', '');
        is($r->{status}, 200, "failed-only: successful login $_ passes");
    }

    my @got = map { $t->post("/login?status=$_", '')->{status} }
                  qw(401 200 401 200 401);
    is("@got", '401 200 401 200 401', 'failed-only: 3 failures, 200s between');

    check_rejection($t->post('/login?status=200', ''), 3, 300,
                    'failed-only: after 3 failures');
    is($t->post('/login?status=401', '')->{status}, 429,
       'failed-only: still rejected');
    like($t->error_log,
         qr/\[warn\].*limiting requests by zone "login_failed", key "127\.0\.0\.1", limit 3r\/5m/,
         'failed-only: rejection logged at warn');

    $t->stop;
    $t->no_alerts;
}

{
    # parallel failures cannot beat the limit: places are held in flight
    my $t = runnable(TRL->new, 'login-failed-only');
    my @r = $t->parallel(12, '/login?status=401&delay=400', method => 'POST');
    my $failed = grep { $_->{status} == 401 } @r;
    my $rejected = grep { $_->{status} == 429 } @r;
    is($failed, 3, 'failed-only: 12 parallel failing attempts admit 3');
    is($rejected, 9, 'failed-only: the other 9 rejected');
    $t->stop;
    $t->no_alerts;
}


# --- login-distinct.conf --------------------------------------------------

{
    my $t = runnable(TRL->new, 'login-distinct');

    # 15 successful logins of 15 accounts from one address: none counts
    for my $i (1 .. 15) {
        is($t->post("/login?user=staff$i&status=200", '')->{status}, 200,
           "distinct: successful login of staff$i passes");
    }

    # failures at 10 accounts pass (401); the 11th account is rejected
    my @got = map { $t->post("/login?user=victim$_&status=401", '')->{status} }
                  1 .. 10;
    is("@got", join(' ', (401) x 10), 'distinct: 10 accounts tried');
    check_rejection($t->post('/login?user=victim11&status=401', ''), 10, 600,
                    'distinct: the 11th account from one address');

    # an account already tried is not a new one: the per-account limit
    # (5 failures) handles retries; "%56ICTIM1 " is victim1
    @got = map { $t->post('/login?user=%56ICTIM1+&status=401', '')->{status} }
               1 .. 5;
    is("@got", '401 401 401 401 429',
       'distinct: retries of one account meet the per-account limit');

    $t->stop;
    $t->no_alerts;
}



# --- reputation.conf -------------------------------------------------------

{
    my $t = runnable(prefix(), 'reputation');
    my $from = sub {
        my ($addr) = @_;
        return $t->post('/login', '',
                        headers => { 'X-Forwarded-For' => $addr });
    };

    my ($n, $rej) = until_rejected($t, 20, sub { $from->('192.0.2.200') });
    is($n, 10, 'reputation: an unlisted client, 10 a minute');
    check_rejection($rej, 10, 60, 'reputation: unlisted, 11th');

    ($n, $rej) = until_rejected($t, 20, sub { $from->('198.51.100.7') });
    is($n, 5, 'reputation: a Tor exit, 5 a minute (tor:0.5)');
    check_rejection($rej, 5, 60, 'reputation: Tor exit, 6th');

    ($n, $rej) = until_rejected($t, 20, sub { $from->('192.0.2.9') });
    is($n, 2, 'reputation: on the abuse list, 2 a minute (abuse:0.2)');
    is($rej->{headers}{'retry-after'}, 240,
       'reputation: abuse, a first block of 4 minutes (penalty_level 3)');

    is($from->('203.0.113.50')->{status}, 403,
       'reputation: on the DROP list (score 90): denied');

    like($t->read_file('logs/reputation.log'),
         qr/^203\.0\.113\.50 "POST \/login HTTP\/1\.0" 403 lists=drop score=90 /m,
         'reputation: the access log names the list and the score');

    $t->stop;
    $t->no_alerts;
}

# --- scripts/run.sh (make run) --------------------------------------------

# run.sh execs nginx: $run_pid is the master.  Should a test die before it
# is stopped, stop it here (SIGQUIT lets the master take its workers along).
our $run_pid;
END {
    if ($run_pid && kill 0, $run_pid) {
        local $?;
        kill 'QUIT', $run_pid;
        for (1 .. 100) {
            last if waitpid($run_pid, WNOHANG) == $run_pid;
            sleep 0.05;
        }
    }
}

{
    my $t = TRL->new;
    my $port = $t->port('RUN');
    my $backend = $t->port('RUN_BACKEND');
    my $prefix = $t->dir . '/run';
    my $out = $t->dir . '/run.out';

    $run_pid = fork // die "fork: $!";
    my $pid = $run_pid;
    if ($pid == 0) {
        $ENV{TRL_RUN_PORT} = $port;
        $ENV{TRL_RUN_BACKEND_PORT} = $backend;
        $ENV{TRL_RUN_PREFIX} = $prefix;
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec "$ROOT/scripts/run.sh" or POSIX::_exit(127);
    }

    ok($t->wait_for_port($port) && $t->wait_for_port($backend),
       'run.sh: nginx listens') or diag(slurp($out));

    like(slurp($out), qr/^token_ratelimit demo on http:\/\/127\.0\.0\.1:$port .*curl/m,
         'run.sh: tells what to curl');

    my %o = (port => $port);
    my $r = $t->get('/', %o);
    is($r->{status}, 200, 'run.sh: index')
        or diag('run.sh\'s nginx (pid ' . $pid . ') '
                . (kill(0, $pid) ? 'is running' : 'is gone')
                . '; its output: ' . slurp($out) . '; listening: '
                . join(' ', grep { /:$port\b/ } `ss -ltnpH 2>&1`));

    my ($n, $rej) = until_rejected($t, 15,
                                   sub { $t->post('/oauth/token', '', %o) });
    is($n, 10, 'run.sh: /oauth/token 10 per minute');
    check_rejection($rej, 10, 60, 'run.sh: 11th token request');
    like($t->post('/login?user=demo&password=demo', '', %o)->{body},
         qr/"access_token"/, 'run.sh: the auth service issues a token');

    my @got = map {
        $t->post("/login?user=demo&password=$_", '', %o)->{status}
    } qw(demo wrong demo wrong wrong demo);
    is("@got", '200 401 200 401 401 429',
       'run.sh: /login counts failures only, 3 per 5 minutes');

    my $api = $t->get('/trl-api/', %o);
    is($api->{status}, 200, 'run.sh: the API answers 127.0.0.1');
    like($api->{body}, qr/"run_token":\{.*"rejected":1,/,
         'run.sh: the API counts the rejection');
    like($t->get('/trl-api/dashboard', %o)->{body}, qr/<html/i,
         'run.sh: the dashboard is served');

    kill 'INT', $pid;
    my $gone = 0;
    for (1 .. 100) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $gone = 1;
            last;
        }
        sleep 0.05;
    }
    ok($gone, 'run.sh: SIGINT (Ctrl-C) stops nginx');
    $run_pid = undef if $gone;
    ok(!IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Proto => 'tcp'),
       'run.sh: port closed');

    my $log = slurp($out);
    like($log, qr/limiting requests by zone "run_token"/,
         'run.sh: rejection on the terminal');
    my ($events) = $log =~ m{events: tail -f (\S+)};
    like(defined $events && -f $events ? slurp($events) : '',
         qr/^\{"time":"[^"]+","event":"rejected","zone":"run_token"/m,
         'run.sh: the rejection as a JSON line in the event log');
    like($log, qr{dashboard: http://127\.0\.0\.1:$port/trl-api/dashboard},
         'run.sh: tells where the dashboard is');
    unlike($log, qr/\[(alert|crit|emerg)\]/, 'run.sh: no alerts');
}

done_testing;
