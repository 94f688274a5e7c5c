#!/usr/bin/perl
# Distinct-value limits (token_ratelimit_zone ... distinct=STRING) and the
# normalised subject (token_ratelimit_subject), through the real nginx:
# - credential stuffing: one address, 50 usernames, one attempt each, is
#   rejected from the 11th username at 10 distinct per 10 minutes; the same
#   address retrying one username 50 times is not a distinct violation;
# - password spraying: 20 addresses at one username, rejected from the 9th
#   address at 8 per hour;
# - count=failed: 200 successful logins of 200 users from one address pass,
#   failures are counted; a request another zone rejects gives its value
#   back;
# - normalisation: alice, %61lice, " Alice " are one account;
# - warn, dry run, penalty, headers, Retry-After, the variables, the API,
#   Prometheus, the event log line, reload keeps the values, a flood of fresh
#   keys does not free a key at its limit; nginx -t errors and notice.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $t = TRL->new;

my $conf = <<'EOF';
    token_ratelimit_subject $trl_user from=arg:user case=lower;
    token_ratelimit_subject $trl_raw from=header:X-User;

    token_ratelimit_zone $http_x_client zone=acc_per_ip:1m
                         rate=10r/10m distinct=$trl_user;
    token_ratelimit_zone $trl_user zone=ips_per_acc:1m
                         rate=8r/1h distinct=$http_x_client;
    token_ratelimit_zone $http_x_client zone=nat:1m
                         rate=10r/10m distinct=$trl_user;
    token_ratelimit_zone $http_x_client zone=per_ip:1m rate=3r/m;
    token_ratelimit_zone $http_x_client zone=with_ip:1m
                         rate=10r/10m distinct=$trl_user;
    token_ratelimit_zone $http_x_client zone=warned:1m
                         rate=4r/10m distinct=$trl_raw;
    token_ratelimit_zone $http_x_client zone=pen:1m
                         rate=2r/10m distinct=$trl_user;
    token_ratelimit_zone $http_x_client zone=flood:32k
                         rate=10r/10m distinct=$trl_user;
    token_ratelimit_zone $trl_user zone=per_user:1m rate=100r/m;

    token_ratelimit_event_log logs/events.log;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Distinct $token_ratelimit_distinct always;
        add_header X-Distinct-Status $token_ratelimit_distinct_status always;
        add_header X-User $trl_user always;

        location /stuff { token_ratelimit zone=acc_per_ip; empty_gif; }
        location /spray { token_ratelimit zone=ips_per_acc; empty_gif; }
        location /nat {
            token_ratelimit zone=nat count=failed;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%;
        }
        location /both {
            token_ratelimit zone=per_ip;
            token_ratelimit zone=with_ip;
            empty_gif;
        }
        location /warn  { token_ratelimit zone=warned warn=3; empty_gif; }
        location /dry   {
            token_ratelimit zone=warned;
            token_ratelimit_dry_run on;
            empty_gif;
        }
        location /pen   { token_ratelimit zone=pen penalty=30s; empty_gif; }
        location /flood { token_ratelimit zone=flood; empty_gif; }
        location /user  { token_ratelimit zone=per_user; empty_gif; }
        location /trl-api { token_ratelimit_api; }
    }
EOF
$t->write_config($conf);
$t->start_backend('BACKEND');

my ($rc) = $t->test_config;
is($rc, 0, 'nginx -t passes');

$t->run;

# each distinct zone's memory per key, in a notice (nginx -t writes it too)
like($t->error_log, qr/\[notice\].*token_ratelimit_zone "acc_per_ip" counts (?#
              )at most 10 distinct values of "\$trl_user" per key (?#
              )\(rate=10r\/10m\): 160 bytes a key, about \d+ keys/,
     'notice: N and the bytes a key take');

sub login {
    my ($path, $client, $user, %h) = @_;
    my $q = defined $user ? "?user=$user" : '';
    return $t->get("$path$q", headers => { 'X-Client' => $client, %h });
}

# --- credential stuffing: one address, 50 usernames ----------------------

my (@st, $first_429);
for my $i (1 .. 50) {
    my $r = login('/stuff', 'stuffer', "user$i");
    push @st, $r->{status};
    $first_429 //= $r if $r->{status} == 429;
}
is(join('', map { $_ == 200 ? 'p' : $_ == 429 ? 'r' : "?$_" } @st),
   ('p' x 10) . ('r' x 40), 'stuffing: rejected from the 11th username');
is($first_429->{headers}{'x-ratelimit-limit'}, 10, 'stuffing: limit 10');
is($first_429->{headers}{'x-ratelimit-remaining'}, 0, 'stuffing: remaining 0');
my $ra = $first_429->{headers}{'retry-after'} // 0;
ok($ra >= 590 && $ra <= 601, "stuffing: Retry-After $ra is about 10 min");
is($first_429->{headers}{'x-distinct'}, 10, 'stuffing: 10 distinct values');
is($first_429->{headers}{'x-distinct-status'}, 'REJECTED',
   'stuffing: $token_ratelimit_distinct_status REJECTED');

my $again = login('/stuff', 'stuffer', 'user3');
is($again->{status}, 200, 'stuffing: a username already counted passes');
is($again->{headers}{'x-distinct'}, 10, 'stuffing: still 10 values');

# --- one address retrying one username: not a distinct violation ---------

my @retry = map { login('/stuff', 'retrier', 'bob')->{status} } 1 .. 50;
is(scalar(grep { $_ == 200 } @retry), 50,
   'retries of one username: all 50 pass the distinct zone');
my $r = login('/stuff', 'retrier', 'bob');
is($r->{headers}{'x-distinct'}, 1, 'retries: one distinct value');
is($r->{headers}{'x-distinct-status'}, 'PASSED', 'retries: PASSED');
is($r->{headers}{'x-ratelimit-remaining'}, 9, 'retries: 9 values left');

# --- password spraying: 20 addresses, one username ------------------------

my @sp = map { login('/spray', "10.0.0.$_", 'victim')->{status} } 1 .. 20;
is(join('', map { $_ == 200 ? 'p' : $_ == 429 ? 'r' : "?$_" } @sp),
   ('p' x 8) . ('r' x 12), 'spraying: rejected from the 9th address');
is(login('/spray', '10.0.0.3', 'victim')->{status}, 200,
   'spraying: an address already counted passes');
is(login('/spray', '10.0.0.99', 'other')->{status}, 200,
   'spraying: another username is its own key');

# --- count=failed: the office NAT ----------------------------------------

my $ok = 0;
for my $i (1 .. 200) {
    $ok++ if login('/nat', 'office', "staff$i&status=200")->{status} == 200;
}
is($ok, 200, 'count=failed: 200 successful logins of 200 users pass');

my @nf = map { login('/nat', 'office', "bad$_&status=401")->{status} } 1 .. 12;
is(join(' ', @nf), join(' ', (401) x 10, 429, 429),
   'count=failed: failures are counted, the 11th new username is rejected');
is(login('/nat', 'office', 'staff7&status=200')->{status}, 429,
   'count=failed: a new username after 10 failures is rejected');
is(login('/nat', 'office', 'bad4&status=200')->{status}, 200,
   'count=failed: a username already counted passes');

# --- another zone's rejection gives the value back -----------------------

my @both = map { login('/both', 'twozones', "x$_")->{status} } 1 .. 5;
is(join(' ', @both), '200 200 200 429 429', 'per_ip rejects the 4th and 5th');
my $k = $t->get('/trl-api/zones/with_ip/keys?key=twozones');
like($k->{body}, qr/"count":3,/,
     'values of requests another zone rejected are not counted');

# --- normalisation --------------------------------------------------------

for my $u ('alice', '%61lice', '%20Alice%20', '+ALICE+') {
    $r = login('/stuff', 'normal', $u);
    is($r->{headers}{'x-user'}, 'alice', "normalised: $u is alice");
    is($r->{headers}{'x-distinct'}, 1, "normalised: $u counts once");
}
is(login('/stuff', 'normal', 'bob')->{headers}{'x-distinct'}, 2,
   'normalised: bob is a second value');
is(login('/stuff', 'normal', '%20%20')->{headers}{'x-distinct'} // '', '',
   'a blank username: no subject, the zone does not apply');
is(login('/stuff', 'normal', undef)->{status}, 200, 'no username: passes');

# the subject as the key of a request zone (per-account request limits)
$r = login('/user', 'x', '%41lice');
is($r->{headers}{'x-ratelimit-remaining'}, 99, 'per_user: alice');
$r = login('/user', 'x', 'alice');
is($r->{headers}{'x-ratelimit-remaining'}, 98, 'per_user: %41lice is alice');

# header source, case kept (case=off is the default)
$r = login('/warn', 'case', undef, 'X-User' => 'Eve');
$r = login('/warn', 'case', undef, 'X-User' => 'eve');
is($r->{headers}{'x-distinct'}, 2, 'case=off: Eve and eve are two values');

# --- warn, dry run --------------------------------------------------------

my @w = map { login('/warn', 'warnme', undef, 'X-User' => "w$_") } 1 .. 5;
is(join(' ', map { $_->{headers}{'x-distinct-status'} } @w),
   'PASSED PASSED WARNED WARNED REJECTED', 'warn=3: WARNED from the 3rd value');
ok($w[2]{headers}{'x-ratelimit-warning'}, 'warn: X-RateLimit-Warning');

my @d = map { login('/dry', 'dryrun', undef, 'X-User' => "d$_") } 1 .. 6;
is(join(' ', map { $_->{status} } @d), '200 200 200 200 200 200',
   'dry run: every request passes');
is($d[4]{headers}{'x-distinct-status'}, 'REJECTED_DRY_RUN',
   'dry run: the 5th value is REJECTED_DRY_RUN');
is($d[5]{headers}{'x-distinct'}, 4, 'dry run: the values over are not kept');

# --- penalty: a key over its distinct limit is blocked -------------------

my @p = map { login('/pen', 'pen', "p$_")->{status} } 1 .. 3;
is(join(' ', @p), '200 200 429', 'penalty: the 3rd value is rejected');
is(login('/pen', 'pen', 'p1')->{status}, 429,
   'penalty: a counted value is blocked too while the penalty runs');

# --- the event log: one distinct_exceeded line per episode ----------------

my @ev = grep { /"distinct_exceeded"/ } split /\n/,
         $t->read_file('logs/events.log');
my @stuff_ev = grep { /"zone":"acc_per_ip"/ && /"key":"stuffer"/ } @ev;
is(scalar @stuff_ev, 1, 'event log: one distinct_exceeded line for stuffer');
like($stuff_ev[0] // '', qr/"of":"\$trl_user","limit":10,"window_ms":600000,
                           "fingerprint":"[0-9a-f]{8}"/x,
     'event log: the zone, N, W and the fingerprint');
ok(!grep({ /user\d/ } @ev), 'event log: no username in clear');

# --- the API and Prometheus -----------------------------------------------

my $api = $t->get('/trl-api/zones/acc_per_ip');
like($api->{body}, qr/"distinct":\{"of":"\$trl_user","limit":10,
                     "key_bytes":160\}/x, 'API: the zone is a distinct zone');
$api = $t->get('/trl-api/zones/per_ip');
like($api->{body}, qr/"distinct":null/, 'API: a request zone is not');
$k = $t->get('/trl-api/zones/acc_per_ip/keys?key=stuffer');
like($k->{body}, qr/"count":10,"remaining":0,.*"blocked":true/,
     'API: keys?key= shows the distinct count');

my $m = $t->get('/trl-api/metrics')->{body};
like($m, qr/^token_ratelimit_zone_distinct_limit\{zone="acc_per_ip"\} 10$/m,
     'Prometheus: distinct limit');
like($m, qr/^token_ratelimit_zone_distinct_key_bytes\{zone="nat"\} 160$/m,
     'Prometheus: bytes a key');
unlike($m, qr/distinct_limit\{zone="per_ip"\}/,
       'Prometheus: no distinct series for a request zone');

# --- a flood of fresh keys does not free a key at its limit --------------

login('/flood', 'held', "f$_") for 1 .. 10;
is(login('/flood', 'held', 'f11')->{status}, 429, 'flood: held at its limit');
login('/flood', "fresh$_", 'someone') for 1 .. 600;
like($t->get('/trl-api/zones/flood')->{body}, qr/"evictions":[1-9]/,
     'flood: the zone evicted keys');
is(login('/flood', 'held', 'f12')->{status}, 429,
   'flood: the key at its limit was not evicted');

# --- reload keeps the values ----------------------------------------------

$t->reload;
is(login('/stuff', 'stuffer', 'user99')->{status}, 429,
   'reload: the key is still at its limit');
is(login('/stuff', 'stuffer', 'user5')->{status}, 200,
   'reload: a value counted before passes');

# raising N above the slots the zone was made with is refused
(my $raised = $conf) =~ s{(zone=acc_per_ip:1m\s+)rate=10r/10m}
                        {${1}rate=20r/10m};
isnt($raised, $conf, 'raised config differs');
$t->write_config($raised);
kill 'HUP', $t->master_pid;
sleep 2;
like($t->error_log, qr/"acc_per_ip" was made for 10 distinct values per (?#
                      )key and cannot count 20/,
     'reload: raising N is refused');
is(login('/stuff', 'stuffer', 'user98')->{status}, 429,
   'reload refused: the old configuration still counts');

$t->stop;
$t->no_alerts(qr/was made for 10 distinct values|reconfiguring/);

# --- nginx -t errors -------------------------------------------------------

my $t2 = TRL->new;
my $srv = 'server { listen 127.0.0.1:%%PORT%%; }';
$t2->config_fails(<<"EOF", [qr/"token_ratelimit_zone" "a" in \S+:\d+ has "distinct=" and "sync=async" but no "token_ratelimit_distinct_secret"/], 'async without a secret');
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_zone \$http_x_client zone=a:1m rate=5r/m sync
                         distinct=\$http_x_user;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid rate "rate=1001r\/m" in "token_ratelimit_zone" directive: a zone with "distinct=" counts at most 1000/], 'N');
    token_ratelimit_zone \$http_x_client zone=a:1m rate=1001r/m
                         distinct=\$http_x_user;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid value "distinct=user" in "token_ratelimit_zone" directive, "distinct=" expects a string with variables/], 'constant');
    token_ratelimit_zone \$http_x_client zone=a:1m rate=5r/m distinct=user;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid source "from=body:user" in "token_ratelimit_subject" directive, expected from=arg:NAME/], 'source');
    token_ratelimit_subject \$u from=body:user;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/"token_ratelimit_subject" directive must have a "from=" parameter/], 'from');
    token_ratelimit_subject \$u case=lower;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid parameter "case=upper" in "token_ratelimit_subject" directive/], 'case');
    token_ratelimit_subject \$u from=arg:u case=upper;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid variable name "u" in "token_ratelimit_subject"/], 'name');
    token_ratelimit_subject u from=arg:u;
    $srv
EOF

done_testing;
