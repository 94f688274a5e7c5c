#!/usr/bin/perl
# Active zones (token_ratelimit_zone ... active): at most N tokens per key
# alive at once.  An admitted issuance takes a place, held for the token's
# lifetime as the token service names it (lifetime=, read when the request
# ends); token_ratelimit_release gives one back when a revocation succeeds.
# A scripted token service (a second server block) answers issuances with
# X-Expires-In and X-Token-Id from its query arguments.
#
# - 6th issuance at N=5: 429, Retry-After = when the soonest token expires,
#   X-RateLimit-Remaining / -Reset consistent; the API lists the places.
# - Releases: a revocation frees a place at once; by token id exactly that
#   token; without an id the one expiring first; nothing held: nothing
#   (never below zero); a failed revocation frees nothing; never the place
#   of an issuance in flight; inherited from the server level.
# - Lifetimes: expires_in=2 frees after ~2 s while W is 15m; none: W; bogus:
#   W and a warn line; over MAX: MAX.
# - Failed issuances (count=succeeded) take no place; an issuance in flight
#   holds a provisional place; 20 parallel issuances at N=5: exactly 5.
# - Two token types, two zones, separate limits.
# - A penalty outlives a release; dry_run admits all, places only for N.
# - Variables in access_log; API counters and Prometheus series.
# - Reload keeps the places; changing active=MAX is refused.
# - nginx -t errors.
# - conf.d/active-tokens.conf, as pasted, in front of a scripted service.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new(workers => 2);
my $json = JSON::PP->new;

sub conf {
    my (%o) = @_;
    my $max = $o{max} // '1h';
    # pw_plain => 1: zone pw a request zone (a reload must refuse it)
    my $pw = $o{pw_plain} ? ''
        : "active\n                         lifetime=\$upstream_http_x_expires_in";
    return <<"EOF";
    token_ratelimit_zone \$arg_sub zone=tok:1m rate=5r/15m active=$max
                         lifetime=\$upstream_http_x_expires_in
                         token=\$upstream_http_x_token_id;

    map \$arg_grant_type \$pw_sub { password \$arg_sub; default ""; }
    map \$arg_grant_type \$cc_sub { client_credentials \$arg_sub; default ""; }
    token_ratelimit_zone \$pw_sub zone=pw:1m rate=2r/15m $pw;
    token_ratelimit_zone \$cc_sub zone=cc:1m rate=3r/15m active
                         lifetime=\$upstream_http_x_expires_in;

    log_format act '\$arg_sub \$uri \$status a=[\$token_ratelimit_active] '
                   'l=[\$token_ratelimit_lifetime] '
                   'r=[\$token_ratelimit_released]';
    proxy_read_timeout 10s;

    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%DIR%%/logs/act.log act;

        location /token {
            token_ratelimit zone=tok count=succeeded;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/token\$is_args\$args;
        }
        location /ptoken {
            token_ratelimit zone=tok count=succeeded penalty=1m;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/token\$is_args\$args;
        }
        location /dtoken {
            token_ratelimit zone=tok count=succeeded dry_run;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/token\$is_args\$args;
        }
        # the harness backend: ?delay=ms, no lifetime header
        location /slow/ {
            token_ratelimit zone=tok count=succeeded;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%/;
        }
        location /oauth/token {
            token_ratelimit zone=pw count=succeeded;
            token_ratelimit zone=cc count=succeeded;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/token\$is_args\$args;
        }
        # the token id: the zone's token= on this request (the revocation
        # service names the token it revoked)
        location /revoke {
            token_ratelimit_release zone=tok;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/revoke\$is_args\$args;
        }
        # key and token id given here
        location /logout {
            token_ratelimit_release zone=tok key=\$http_x_user
                                    token=\$http_x_token;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/revoke;
        }
        location /api/ {
            token_ratelimit_api;
        }
    }

    # a release at server level: inherited by a location with none
    server {
        listen 127.0.0.1:%%PORT_INH%%;
        access_log %%DIR%%/logs/act.log act;
        token_ratelimit_release zone=tok;
        location /revoke {
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/revoke\$is_args\$args;
        }
        location /revoke-cc {
            token_ratelimit_release zone=cc;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/revoke\$is_args\$args;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_SVC%%;
        access_log off;
        location /svc/token {
            if (\$arg_fail) {
                return 400 '{"error":"invalid_grant"}';
            }
            add_header X-Expires-In \$arg_expires_in always;
            add_header X-Token-Id \$arg_id always;
            return 200 '{"access_token":"at-\$arg_id","expires_in":"\$arg_expires_in"}';
        }
        location /svc/revoke {
            if (\$arg_fail) {
                return 400 '{"error":"invalid_request"}';
            }
            add_header X-Token-Id \$arg_id always;
            return 200 '{}';
        }
    }
EOF
}

$t->write_config(conf());
$t->start_backend('BACKEND');
$t->run;

sub issue {
    my ($sub, %q) = @_;
    my $path = delete $q{path} // '/token';
    my $qs = join '&', "sub=$sub", map { "$_=$q{$_}" } sort keys %q;
    return $t->get("$path?$qs");
}

sub revoke {
    my ($sub, %q) = @_;
    my $qs = join '&', "sub=$sub", map { "$_=$q{$_}" } sort keys %q;
    return $t->get("/revoke?$qs");
}

sub api {
    my ($path) = @_;
    my $r = $t->get("/api/$path");
    my $j = eval { $json->decode($r->{body}) };
    diag("GET /api/$path: $r->{status} $r->{body}") unless $j;
    return $j // {};
}

# The key's active view: { held, places => [...] } ({} when missing).
sub places {
    my ($zone, $key) = @_;
    my $j = api("zones/$zone/keys?key=$key");
    return ref $j->{active} eq 'HASH' ? $j->{active} : {};
}

sub held { places(@_)->{held} // -1 }

# The places' expires_in, soonest first.
sub expiries {
    my $view = places(@_);
    return sort { $a <=> $b } map { $_->{expires_in} }
           @{$view->{places} || []};
}

# Whether the expiries after (soonest first) are those before without the
# i-th (each within 1 s: time went on between the two looks).
sub freed {
    my ($before, $after, $i) = @_;
    my @want = @$before;
    splice @want, $i, 1;
    return 0 unless @$after == @want;
    return !grep { abs($after->[$_] - $want[$_]) > 1 } 0 .. $#want;
}

sub zone_active { api('zones/' . $_[0])->{active} // {} }

sub statuses { join ' ', map { $_->{status} } @_ }

sub tally {
    my %n;
    $n{$_->{status}}++ for @_;
    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

# The access log line of the request (the last line with that subject and
# URI), waiting for it a little: it is written when the request ends.
sub logged {
    my ($sub, $uri) = @_;
    my $line;
    for (1 .. 50) {
        ($line) = reverse grep { /^\Q$sub $uri \E/ }
                  split /\n/, $t->read_file('logs/act.log');
        last if $line;
        sleep 0.05;
    }
    return $line // '';
}

# Polls code every 100 ms until it returns true, at most secs.
sub wait_until {
    my ($secs, $code) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if $code->();
        sleep 0.1;
    }
    return $code->() ? 1 : 0;
}

# --- 1. five active per subject; the 6th is rejected ------------------------

{
    my @exp = (36, 30, 40, 33, 38);
    my @r = map { issue('alice', expires_in => $exp[$_], id => "a$_") } 0 .. 4;
    is(statuses(@r), '200 200 200 200 200', '5 issuances admitted');
    is($r[0]{headers}{'x-ratelimit-limit'}, 5, 'X-RateLimit-Limit 5');
    is(join(' ', map { $_->{headers}{'x-ratelimit-remaining'} } @r),
       '4 3 2 1 0', 'X-RateLimit-Remaining counts the places down');

    my $now = time;
    my $rej = issue('alice', expires_in => 30, id => 'a5');
    is($rej->{status}, 429, '6th issuance: 429');
    is($rej->{headers}{'x-ratelimit-remaining'}, 0, '6th: remaining 0');
    my $ra = $rej->{headers}{'retry-after'} // 0;
    ok($ra >= 29 && $ra <= 31,
       "6th: Retry-After $ra = when the soonest token (30 s) expires");
    my $reset = $rej->{headers}{'x-ratelimit-reset'} // 0;
    ok($reset >= $now + 39 && $reset <= $now + 42,
       'X-RateLimit-Reset: when the last place (40 s) ends')
        or diag("reset $reset, now $now");
    like($rej->{body}, qr/"retry_after":$ra\b/, 'the JSON body agrees');
    like(logged('alice', '/token'), qr/ 429 a=\[5\] l=\[-?\] r=\[-?\]/,
         'rejection: $token_ratelimit_active 5, no lifetime');

    my $view = places('tok', 'alice');
    is($view->{held}, 5, 'API: 5 places held');
    my @e = expiries('tok', 'alice');
    my @want = sort { $a <=> $b } @exp;
    # times are kept rounded up to the zone's unit (a few ms)
    ok(@e == 5 && !grep({ $e[$_] > $want[$_] + 0.1
                          || $e[$_] < $want[$_] - 3 } 0 .. 4),
       'API: each place expires after its own expires_in')
        or diag("expires_in: @e");
    my @p = @{$view->{places} || []};
    is(scalar(grep { ($_->{token} // '') =~ /^[0-9a-f]{8}\z/ } @p), 5,
       'API: each place shows its token as 8 hex digits');
    my %tok = map { ($_->{token} // '') => 1 } @p;
    is(scalar keys %tok, 5, 'API: five different tokens');
    is(scalar(grep { $_->{pending} } @p), 0, 'API: none pending');
    ok(!grep({ abs($_->{expires_at} - ($now + $_->{expires_in})) > 2 } @p),
       'API: expires_at = now + expires_in');
    is(api('zones/tok/keys?key=nobody')->{active}{held} // -1, 0,
       'API: a key without places holds 0');
}

# --- 2. releases ----------------------------------------------------------

{
    # revoking token a2 (40 s, the last to expire) by its id, named by the
    # revocation service
    my @start = expiries('tok', 'alice');
    my $r = revoke('alice', id => 'a2');
    is($r->{status}, 200, 'revocation of a2: 200');
    like(logged('alice', '/revoke'), qr/a=\[4\] l=\[-?\] r=\[1\]/,
         'revocation: $token_ratelimit_released 1, _active 4');
    is(held('tok', 'alice'), 4, 'revocation: 4 places left');
    my @e = expiries('tok', 'alice');
    ok(freed(\@start, \@e, 4), 'exactly token a2 (the 40 s one) was freed')
        or diag("before @start, after @e");

    $r = issue('alice', expires_in => 50, id => 'a6');
    is($r->{status}, 200, 'one more issuance admitted at once');
    is(issue('alice', expires_in => 50, id => 'a7')->{status}, 429,
       'and the next is rejected again');

    # an id no place has: nothing freed
    $r = revoke('alice', id => 'zz');
    is($r->{status}, 200, 'revocation of an unknown id: 200');
    like(logged('alice', '/revoke'), qr/r=\[0\]/, 'unknown id: released 0');
    is(held('tok', 'alice'), 5, 'unknown id: still 5 held');

    # a failed revocation frees nothing, and sets no $..._released
    $r = revoke('alice', id => 'a0', fail => 1);
    is($r->{status}, 400, 'failed revocation: 400');
    like(logged('alice', '/revoke'), qr/ 400 .*r=\[-?\]/,
         'failed revocation: released empty');
    is(held('tok', 'alice'), 5, 'failed revocation: still 5 held');

    # without a token id: the place expiring first (a1, 30 s)
    my @before = expiries('tok', 'alice');
    $r = revoke('alice');
    is($r->{status}, 200, 'revocation without an id: 200');
    like(logged('alice', '/revoke'), qr/r=\[1\]/, 'without an id: released 1');
    @e = expiries('tok', 'alice');
    ok(freed(\@before, \@e, 0), 'without an id: the soonest (a1, 30 s) freed')
        or diag("before @before, after @e");

    # key and token from this request's headers: a4 (38 s), the 3rd of
    # a3 (33), a0 (36), a4 (38), a6 (50)
    @before = @e;
    $r = $t->get('/logout', headers => { 'X-User' => 'alice',
                                         'X-Token' => 'a4' });
    is($r->{status}, 200, 'logout with key= and token=: 200');
    @e = expiries('tok', 'alice');
    ok(freed(\@before, \@e, 2), 'logout: exactly token a4 freed')
        or diag("before @before, after @e");

    # nothing held: nothing happens, never below zero
    my @rv = map { revoke('bob') } 1 .. 3;
    is(statuses(@rv), '200 200 200', 'revocations with nothing held: 200');
    like(logged('bob', '/revoke'), qr/a=\[0\] l=\[-?\] r=\[0\]/,
         'nothing held: released 0, active 0');
    is(held('tok', 'bob'), 0, 'nothing held: 0');
    my @st = map { issue('bob', expires_in => 60, id => "b$_")->{status} }
             0 .. 5;
    is("@st", '200 200 200 200 200 429',
       'after releases of nothing: still exactly 5 admitted');
}

# --- 2b. a release inherited from the server level ---------------------------

{
    issue('nora', expires_in => 600, id => "n$_") for 0 .. 1;
    my $port = $t->port('INH');
    my $r = $t->get('/revoke?sub=nora&id=n0', port => $port);
    is($r->{status}, 200, 'inherited release: 200');
    is(held('tok', 'nora'), 1, 'inherited release: a place freed');
    $r = $t->get('/revoke-cc?sub=nora&id=n1', port => $port);
    is($r->{status}, 200, 'own release of another zone: 200');
    is(held('tok', 'nora'), 1, "own release: the server's is not inherited");
}

# --- 3. lifetimes ---------------------------------------------------------

{
    # expires_in=2 while W is 15 minutes
    issue('carol', expires_in => 60, id => "c$_") for 0 .. 3;
    my $short = issue('carol', expires_in => 2, id => 'c4');
    my $start = time;
    is($short->{status}, 200, 'a token of 2 s issued');
    like(logged('carol', '/token'), qr/a=\[5\] l=\[2\]/,
         '$token_ratelimit_lifetime 2, _active 5');
    my $r = issue('carol', expires_in => 60, id => 'c5');
    is($r->{status}, 429, 'carol full: rejected');
    my $ra = $r->{headers}{'retry-after'} // 0;
    ok($ra >= 1 && $ra <= 3, "Retry-After $ra: when the 2 s token expires");
    my $got;
    ok(wait_until(6, sub {
           $got = issue('carol', expires_in => 60, id => 'c5');
           $got->{status} == 200 }),
       'the 2 s token frees its place');
    my $took = time - $start;
    ok($took >= 1.5, sprintf('... after about 2 s (%.1f s)', $took));
    is(issue('carol', expires_in => 60, id => 'c6')->{status}, 429,
       'the 60 s tokens still hold theirs');

    # no lifetime header: the window (15m)
    is(issue('dave', id => 'd0')->{status}, 200, 'no expires_in: issued');
    like(logged('dave', '/token'), qr/l=\[900\]/, 'no expires_in: lifetime 900');
    sleep 3;
    my @e = expiries('tok', 'dave');
    ok(@e == 1 && $e[0] > 890 && $e[0] <= 900.1,
       'no expires_in: held for W, still there after 3 s') or diag("@e");

    # a bogus value: W and a warn line naming the zone and the value
    is(issue('erin', expires_in => 'abc', id => 'e0')->{status}, 200,
       'expires_in=abc: issued');
    @e = expiries('tok', 'erin');
    ok(@e == 1 && $e[0] > 895 && $e[0] <= 900.1, 'expires_in=abc: held for W')
        or diag("@e");
    ok(wait_until(2, sub {
           grep { /\[warn\]/ && /\btok\b/ && /\babc\b/ }
               split /\n/, $t->error_log }),
       'expires_in=abc: a warn line naming the zone and the value');

    # over MAX (1h): MAX
    is(issue('fred', expires_in => 86400, id => 'f0')->{status}, 200,
       'expires_in=86400: issued');
    like(logged('fred', '/token'), qr/l=\[3600\]/, 'over MAX: lifetime 3600');
    @e = expiries('tok', 'fred');
    ok(@e == 1 && $e[0] > 3595 && $e[0] <= 3600.1, 'over MAX: held for MAX')
        or diag("@e");

    # an nginx time; 0: no place kept
    issue('gina', expires_in => '1m30s', id => 'g0');
    @e = expiries('tok', 'gina');
    ok(@e == 1 && $e[0] > 85 && $e[0] <= 90.1, 'expires_in=1m30s: 90 s')
        or diag("@e");
    is(issue('gina', expires_in => 0, id => 'g1')->{status}, 200,
       'expires_in=0: issued');
    is(held('tok', 'gina'), 1, 'expires_in=0: no place kept');
}

# --- 4. failed issuances take no place -------------------------------------

{
    my @st = map { issue('hank', fail => 1, expires_in => 60)->{status} }
             1 .. 8;
    is("@st", join(' ', (400) x 8), '8 failed issuances: all answered 400');
    like(logged('hank', '/token'), qr/ 400 a=\[0\] l=\[-?\]/,
         'failed issuance: active 0, no lifetime');
    is(held('tok', 'hank'), 0, 'failed issuances hold no place');
    @st = map { issue('hank', expires_in => 60, id => "h$_")->{status} }
          0 .. 5;
    is("@st", '200 200 200 200 200 429', 'then 5 issuances, as ever');
}

# --- 5. two token types, two zones ----------------------------------------

{
    my $tok = sub {
        my ($type, $sub) = @_;
        return $t->get("/oauth/token?grant_type=$type&sub=$sub"
                       . "&expires_in=300")->{status};
    };
    my @pw = map { $tok->('password', 'ivan') } 1 .. 3;
    my @cc = map { $tok->('client_credentials', 'ivan') } 1 .. 4;
    is("@pw", '200 200 429', 'password: 2 active');
    is("@cc", '200 200 200 429', 'client_credentials: 3 active, apart');
    is(held('pw', 'ivan') . ' ' . held('cc', 'ivan'), '2 3',
       'each zone holds its own places');
    is($tok->('authorization_code', 'ivan'), 200,
       'another grant type: no active zone applies');
}

# --- 6. concurrency: places in flight count --------------------------------

{
    # one slow issuance: its place shows as pending while it runs
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port,
                                  Proto => 'tcp') or die "connect: $!";
    print $s TRL::build_request('GET', '/slow/?sub=jack&delay=1500');
    my $view;
    wait_until(1, sub { $view = places('tok', 'jack');
                        ($view->{held} // 0) == 1 });
    is($view->{held}, 1, 'an issuance in flight holds a place');
    ok($view->{places}[0]{pending}, 'API: the place is pending')
        or diag($json->encode($view));
    revoke('jack');
    like(logged('jack', '/revoke'), qr/r=\[0\]/,
         'a release never frees the place of an issuance in flight');
    my ($resp) = TRL::collect_responses(10, $s);
    is($resp->{status}, 200, 'the slow issuance succeeded');
    $view = places('tok', 'jack');
    ok(($view->{held} // 0) == 1 && !$view->{places}[0]{pending},
       'after it: the place is kept, no longer pending');

    my $start = time;
    my @resp = $t->parallel(20, '/slow/?sub=kate&delay=800');
    cmp_ok(time - $start, '>=', 0.7, 'the admitted issuances overlapped');
    is(scalar(grep { $_->{status} == 200 } @resp), 5,
       '20 parallel issuances at N=5: exactly 5 admitted')
        or diag(tally(@resp));
    is(scalar(grep { $_->{status} == 429 } @resp), 15, '15 rejected')
        or diag(tally(@resp));
    is(held('tok', 'kate'), 5, 'and 5 places kept');
    is(issue('kate', expires_in => 60)->{status}, 429, 'the 21st: 429');
}

# --- 7. penalty: a release does not lift it ---------------------------------

{
    issue('liam', path => '/ptoken', expires_in => 600, id => "l$_")
        for 0 .. 4;
    my $r = issue('liam', path => '/ptoken', expires_in => 600, id => 'l5');
    is($r->{status}, 429, 'penalty: 6th rejected, a penalty of 1m starts');
    $r = revoke('liam', id => 'l0');
    like(logged('liam', '/revoke'), qr/a=\[4\] .*r=\[1\]/,
         'penalty: the revocation freed a place');
    $r = issue('liam', path => '/ptoken', expires_in => 600, id => 'l6');
    is($r->{status}, 429, 'penalty: the key stays blocked after the release');
    ok(($r->{headers}{'retry-after'} // 0) > 50,
       'penalty: Retry-After is the penalty left');
    is(held('tok', 'liam'), 4, 'penalty: the release was not undone');
}

# --- 7b. dry_run: everything admitted, only what fits takes a place -----------

{
    my $rej = api('zones/tok')->{requests}{rejected_dry_run} // 0;
    my @st = map { issue('olga', path => '/dtoken', expires_in => 600,
                         id => "o$_")->{status} } 0 .. 6;
    is("@st", join(' ', (200) x 7), 'dry_run: 7 issuances all admitted');
    is(held('tok', 'olga'), 5, 'dry_run: 5 places, the 2 over took none');
    is((api('zones/tok')->{requests}{rejected_dry_run} // 0) - $rej, 2,
       'dry_run: 2 counted as rejected in a dry run');
}

# --- 8. API counters and Prometheus ----------------------------------------

{
    my $before = zone_active('tok');
    ok(ref $before->{lifetime} eq 'HASH', 'API: the zone shows "active"')
        or diag($json->encode(api('zones/tok')));
    is($before->{max_lifetime}, 3600, 'API: max_lifetime 3600');
    is($before->{default_lifetime}, 900, 'API: default_lifetime 900 (W)');
    is(api('zones/pw')->{active}{max_lifetime}, 900,
       'API: MAX defaults to W');

    issue('mia', expires_in => 60, id => 'm0');        # upstream
    issue('mia', id => 'm1');                          # default
    issue('mia', expires_in => 99999, id => 'm2');     # capped
    issue('mia', expires_in => 'x1', id => 'm3');      # invalid
    issue('mia', expires_in => 60, fail => 1);         # no place
    revoke('mia', id => 'm0');                          # released
    revoke('mia', id => 'nope');                        # missed
    logged('mia', '/revoke');
    my $after = zone_active('tok');
    my %d = map { $_ => ($after->{$_} // 0) - ($before->{$_} // 0) }
            qw(issued released release_missed);
    $d{$_} = ($after->{lifetime}{$_} // 0) - ($before->{lifetime}{$_} // 0)
        for qw(upstream default capped invalid);
    is_deeply(\%d, { issued => 4, released => 1, release_missed => 1,
                     upstream => 1, default => 1, capped => 1,
                     invalid => 1 },
              'API: issued, released, missed and lifetime sources counted');
    is(api('zones/cc')->{active}{issued}, 3, 'API: per zone');
    ok(!defined api('zones/tok/keys?key=x')->{active}{places}[0],
       'API: no places for an unknown key');

    my $m = $t->get('/api/metrics')->{body};
    for my $o (qw(issued released release_missed)) {
        like($m, qr/^token_ratelimit_active_places_total\{zone="tok",
                    outcome="$o"\}\ $after->{$o}$/mx,
             "Prometheus: places $o = the JSON's");
    }
    for my $s (qw(upstream default capped invalid)) {
        like($m, qr/^token_ratelimit_active_lifetime_total\{zone="tok",
                    source="$s"\}\ $after->{lifetime}{$s}$/mx,
             "Prometheus: lifetime $s = the JSON's");
    }
}

# --- 9. reload keeps the places; changing active=MAX is refused ------------

{
    my $before = held('tok', 'alice');
    my @e0 = expiries('tok', 'alice');
    my ($rc, $out) = $t->reload(conf());
    is($rc, 0, 'reload with the same configuration') or diag($out);
    is(held('tok', 'alice'), $before, "reload: alice still holds $before");
    is(held('tok', 'kate'), 5, 'reload: kate still holds 5');
    is(issue('kate', expires_in => 60)->{status}, 429, 'reload: kate full');

    my @old = $t->worker_pids;
    ($rc, $out) = $t->reload(conf(max => '2h'));
    is($rc, 1, 'a reload changing active=MAX is refused');
    like($out, qr/\[emerg\].*"tok"/, 'the error log names the zone')
        or diag($out);
    is(join(' ', $t->worker_pids), join(' ', @old), 'old workers go on');
    is(held('tok', 'kate'), 5, 'refused reload: the places are still there');
    is(zone_active('tok')->{max_lifetime}, 3600, 'refused reload: MAX 1h');

    ($rc, $out) = $t->reload(conf(pw_plain => 1));
    is($rc, 1, 'a reload turning an active zone into a request zone is '
               . 'refused');
    like($out, qr/\[emerg\].*"pw"/, 'the error log names the zone')
        or diag($out);
    is(join(' ', $t->worker_pids), join(' ', @old), 'old workers go on');
    is(held('pw', 'ivan'), 2, 'refused reload: the places are still there');
}

$t->stop;
$t->no_alerts(qr/\[emerg\].*"(tok|pw)"/);

# --- 10. nginx -t -----------------------------------------------------------

{
    my $c = TRL->new;
    my $case = sub {
        my ($http, $res, $name) = @_;
        my ($out) = $c->config_fails($http . TRL::server_block(''),
                                     $res, $name);
        # the module's own message, not the one for an unknown parameter
        unlike($out, qr/invalid parameter "active/,
               "$name: active is understood");
    };
    my $zone = 'token_ratelimit_zone $arg_k zone=z:1m';
    $case->("$zone rate=5r/15m active distinct=\$arg_u;\n",
            [qr/distinct/, qr/active/], 'active with distinct=');
    $case->("$zone rate=5r/15m active signal=\$arg_s;\n",
            [qr/signal/, qr/active/], 'active with signal=');
    $case->("$zone rate=5r/15m active=10m;\n",
            [qr/token_ratelimit_zone/, qr/"?active=10m"?|"10m"/],
            'active=MAX below W');
    $case->("$zone rate=5r/15m active=abc;\n",
            [qr/token_ratelimit_zone/, qr/abc/], 'active=abc');
    $case->("$zone rate=5r/15m active=400d;\n",
            [qr/token_ratelimit_zone/, qr/400d/], 'active=400d');
    $case->("$zone rate=1001r/15m active;\n",
            [qr/token_ratelimit_zone/, qr/1001/], 'active with N 1001');
    $case->("$zone rate=5r/15m lifetime=\$arg_l;\n",
            [qr/lifetime/, qr/active/], 'lifetime= without active');
    $case->("$zone rate=5r/15m token=\$arg_t;\n",
            [qr/token=/, qr/active/], 'token= without active');
    $case->("$zone rate=5r/15m;\ntoken_ratelimit_release zone=z;\n",
            [qr/token_ratelimit_release/, qr/"z"/, qr/active/],
            'release of a zone that is not active');
    $case->("$zone rate=5r/15m active;\n"
            . "token_ratelimit_release zone=nosuch;\n",
            [qr/token_ratelimit_release/, qr/nosuch/],
            'release of an unknown zone');

    # and the good forms pass
    $c->write_config("$zone rate=5r/15m active=365d lifetime=\$arg_l "
                     . "token=\$arg_t;\n"
                     . "token_ratelimit_release zone=z;\n"
                     . TRL::server_block('token_ratelimit_release zone=z '
                                         . 'key=$arg_k token=$arg_t;'));
    my ($rc, $out) = $c->test_config;
    is($rc, 0, 'active=365d, release at http and location level: nginx -t ok')
        or diag($out);
}

# --- 11. conf.d/active-tokens.conf, as pasted --------------------------------

# The example in front of a scripted token service: run_snippet's backend
# cannot send the token headers, so the snippet's upstream 127.0.0.1:9000
# becomes a server of this nginx that sends them from its query arguments.
sub run_example {
    my ($e) = @_;
    my $text = $e->read_file("$TRL::ROOT/conf.d/active-tokens.conf");
    my $up = ($text =~ s/127\.0\.0\.1:9000\b/127.0.0.1:%%PORT_SVC%%/g);
    my $ls = ($text =~ s/^(\s*)listen\s+[^;]+;/${1}listen 127.0.0.1:%%PORT%%;/mg);
    ok($up >= 1 && $ls == 1, 'example: upstream and listen rewritten');
    $e->write_config($text . <<'EOF');
    server {
        listen 127.0.0.1:%%PORT_SVC%%;
        access_log off;
        location /oauth/token {
            if ($arg_fail) {
                return 400 '{"error":"invalid_grant"}';
            }
            add_header X-Expires-In $arg_expires_in always;
            add_header X-Token-Id $arg_id always;
            return 200 '{"access_token":"at-$arg_id"}';
        }
        location / {
            add_header X-Token-Subject $arg_subject always;
            add_header X-Token-Grant-Type $arg_grant always;
            add_header X-Token-Id $arg_id always;
            return 200 '{}';
        }
    }
EOF
    $e->run;
}

{
    my $e = TRL->new;
    run_example($e);
    my $form = { 'Content-Type' => 'application/x-www-form-urlencoded' };
    my $grant = sub {
        my ($body, $q) = @_;
        return $e->post("/oauth/token?$q", $body, headers => $form);
    };
    # issues until one is not 200: (how many were, that answer)
    my $count = sub {
        my ($body, $max) = @_;
        for my $i (0 .. $max - 1) {
            my $r = $grant->($body, "expires_in=600&id=n$i");
            return ($i, $r) if $r->{status} != 200;
        }
        return ($max, undef);
    };

    my ($got, $r) = $count->('grant_type=password&username=Alice', 20);
    is($got, 5, 'example: 5 password tokens for alice');
    is($r && $r->{status}, 429, 'example: the 6th is rejected');
    my $ra = $r ? $r->{headers}{'retry-after'} // 0 : 0;
    ok($ra >= 590 && $ra <= 601, "example: Retry-After $ra, the first expiry");
    $r = $grant->('grant_type=password&username=bob', 'expires_in=60&id=b');
    is($r->{status}, 200, 'example: bob apart');
    ok(!defined $r->{headers}{'x-token-id'}
       && !defined $r->{headers}{'x-expires-in'},
       'example: the token headers are hidden from the client');
    is($grant->('grant_type=password&username=%20ALICE', 'expires_in=60')
           ->{status}, 429, 'example: the user name is normalised');
    is($grant->('grant_type=password&username=carol', 'fail=1')->{status},
       400, 'example: a failed grant');
    ($got) = $count->('grant_type=password&username=carol', 20);
    is($got, 5, 'example: the failed grant took no place');

    ($got) = $count->('grant_type=refresh_token&client_id=app1', 30);
    is($got, 10, 'example: 10 refresh tokens for client app1');
    ($got) = $count->('grant_type=client_credentials&client_id=app1', 120);
    is($got, 100, 'example: 100 client_credentials tokens for app1, apart');

    my $v = $e->get('/trl-api/zones/at_password/keys?key=alice');
    like($v->{body}, qr/"active":\{"held":5,/, 'example: API shows 5 held');

    $r = $e->post('/oauth/revoke?subject=Alice&grant=password&id=n2',
                  'token=at-n2', headers => $form);
    is($r->{status}, 200, 'example: alice revokes a token');
    is($grant->('grant_type=password&username=alice', 'expires_in=60')
           ->{status}, 200, 'example: alice gets one more at once');
    is($grant->('grant_type=password&username=alice', 'expires_in=60')
           ->{status}, 429, 'example: and no more');

    $r = $e->post('/logout?subject=app1&grant=refresh_token&id=n0', '');
    is($r->{status}, 200, 'example: logout of a refresh token');
    is($grant->('grant_type=refresh_token&client_id=app1', 'expires_in=60')
           ->{status}, 200, 'example: one more refresh token for app1');
    is($grant->('grant_type=client_credentials&client_id=app1',
                'expires_in=60')->{status}, 429,
       'example: the refresh logout freed no client_credentials place');

    $e->stop;
    $e->no_alerts;
}

done_testing;
