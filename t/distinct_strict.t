#!/usr/bin/perl
# Distinct zones with sync=strict: exact cluster-wide through Redis (one
# script on a sorted set per key), with token_ratelimit_distinct_secret so
# that every node fingerprints alike.
#
# - 20 parallel attempts with 20 usernames from one address, spread over 3
#   nodes (2 workers each), at N=5: exactly 5 admitted, Redis holds 5;
#   repeats of a counted name pass on every node, a new name is rejected on
#   every node (one node reads its secret from a file, the others inline).
# - count=failed: successes give their members back in Redis; failures
#   keep them; attempts in flight hold theirs (parallel attempts cannot
#   beat N).
# - Redis stopped: fail=open counts on each node's own slots, fail=closed
#   answers 503; Redis back (all data lost): counting goes through Redis
#   again.
# - nginx -t refuses sync=strict without a shared secret, and a short
#   secret (without showing it).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $NODES = 3;
my $SECRET = 'q7Wc2Lr9xP4tVb8nJm3sK6dZ';
my @t = map { TRL->new(workers => 2) } 1 .. $NODES;
my $closed = TRL->new;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;
my $backend = $t[0]->start_backend('BACKEND');

# node 0 reads the secret from a file (trailing newline ignored)
$t[0]->write_file('secret.txt', "$SECRET\n");

sub conf {
    my ($secret, $fail) = @_;
    return <<"EOF";
    token_ratelimit_subject \$trl_user from=arg:user case=lower;
    token_ratelimit_distinct_secret $secret;
    token_ratelimit_zone \$http_x_client zone=acc:1m rate=5r/10m
                         distinct=\$trl_user sync=strict;
    token_ratelimit_zone \$http_x_client zone=accf:1m rate=3r/10m
                         distinct=\$trl_user sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=2s fail=$fail;
    proxy_read_timeout 10s;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        add_header X-Distinct \$token_ratelimit_distinct always;
        location /login { token_ratelimit zone=acc; empty_gif; }
        location /failed/ {
            token_ratelimit zone=accf count=failed;
            proxy_pass http://127.0.0.1:$backend/;
        }
    }
EOF
}

for my $i (0 .. $NODES - 1) {
    $t[$i]->write_config(conf($i == 0 ? 'file=secret.txt' : $SECRET, 'open'));
    $t[$i]->run;
}
$closed->write_config(conf($SECRET, 'closed'));
$closed->run;

sub login {
    my ($t, $client, $user, $path) = @_;
    $path //= '/login';
    $path .= ($path =~ /\?/ ? '' : '?') . "user=$user";
    return $t->get($path,
                   headers => { 'X-Client' => $client });
}

sub tally {
    my %n;
    $n{$_->{status}}++ for @_;
    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

sub zcard { $redis->cli('ZCARD', TRLRedis::key_name(@_)) }

# every node has its link up (a probe key per node went through Redis)
for my $i (0 .. $NODES - 1) {
    ok(TRLRedis::wait_for(10, sub {
           login($t[$i], "probe$i", 'p');
           zcard('acc', "probe$i") == 1
       }), "node $i decides through Redis");
}

# --- 20 parallel attempts over 3 nodes, N=5 ------------------------------------

my @admitted;
{
    my @raw = map {
        TRL::build_request('GET', "/login?user=user$_",
                           headers => { 'X-Client' => 'k1' })
    } 0 .. 19;
    my @resp = TRL::collect_responses(20, TRL::send_all(
        map { [$t[$_ % $NODES], $raw[$_]] } 0 .. 19));
    @admitted = grep { $resp[$_]{status} == 200 } 0 .. 19;
    is(scalar @admitted, 5,
       '20 parallel distinct names over 3 nodes, N=5: exactly 5 admitted')
        or diag(tally(@resp));
    is(scalar(grep { $_->{status} == 429 } @resp), 15, '15 rejected')
        or diag(tally(@resp));
    is(zcard('acc', 'k1'), 5, 'Redis holds exactly 5 members');
    my $pttl = $redis->cli('PTTL', TRLRedis::key_name('acc', 'k1'));
    ok($pttl =~ /^\d+$/ && $pttl > 0 && $pttl <= 601_000,
       "the set has a TTL of at most W + 1 s (PTTL $pttl)");
}

{
    my @st;
    for my $j (@admitted) {
        push @st, login($t[$_], 'k1', "user$j")->{status} for 0 .. $NODES - 1;
    }
    is("@st", join(' ', ('200') x (5 * $NODES)),
       'every counted name passes again on every node');
    is(zcard('acc', 'k1'), 5, 'repeats add no member');
    my @new = map { login($t[$_], 'k1', "fresh$_")->{status} }
              0 .. $NODES - 1;
    is("@new", '429 429 429', 'a new name is rejected on every node');
    is(login($t[1], 'k1', uc("user$admitted[0]"))->{status}, 200,
       'the subject is normalised before it is fingerprinted');
    my $r = login($t[2], 'k1', "user$admitted[1]");
    is($r->{headers}{'x-distinct'}, 5,
       '$token_ratelimit_distinct shows the cluster count');
}

# --- count=failed --------------------------------------------------------------

{
    my @st = map { login($t[$_ % $NODES], 'f1', "ok$_",
                         '/failed/?status=200&')->{status} } 0 .. 8;
    is("@st", join(' ', ('200') x 9),
       'count=failed: 9 successful logins of 9 names at N=3 pass');
    ok(TRLRedis::wait_for(2, sub { zcard('accf', 'f1') == 0 }),
       'count=failed: successes gave their members back in Redis')
        or diag('members: ' . zcard('accf', 'f1'));

    @st = map { login($t[$_ % $NODES], 'f1', "bad$_",
                      '/failed/?status=401&')->{status} } 0 .. 4;
    is("@st", '401 401 401 429 429',
       'count=failed: 3 failed names counted, the 4th is rejected');
    is(zcard('accf', 'f1'), 3, 'Redis holds the 3 failed names');
    is(login($t[2], 'f1', 'bad0', '/failed/?status=200&')->{status}, 200,
       'a counted name passes on another node');
    is(zcard('accf', 'f1'), 3,
       'a success of a counted name does not free it');
}

{
    # 6 names in flight at once (the backend answers after 1 s): only 3
    # hold a member; the others are rejected, success or not
    my @resp = TRL::collect_responses(20, TRL::send_all(map {
        [$t[$_ % $NODES],
         TRL::build_request('GET', "/failed/?status=200&delay=1000&user=fly$_",
                            headers => { 'X-Client' => 'f2' })]
    } 0 .. 5));
    is(scalar(grep { $_->{status} == 200 } @resp), 3,
       'count=failed: 6 parallel names in flight at N=3, 3 admitted')
        or diag(tally(@resp));
    ok(TRLRedis::wait_for(2, sub { zcard('accf', 'f2') == 0 }),
       'their members were given back once they succeeded');
    is(login($t[0], 'f2', 'after', '/failed/?status=200&')->{status}, 200,
       'a new name is admitted again');
}

# --- Redis stopped: the fail policy --------------------------------------------

$redis->stop;
{
    my @st = map { login($t[0], 'down', "d$_")->{status} } 0 .. 5;
    is("@st", '200 200 200 200 200 429',
       'Redis down, fail=open: node 0 counts 5 names on its own slots');
    @st = map { login($t[1], 'down', "e$_")->{status} } 0 .. 5;
    is("@st", '200 200 200 200 200 429',
       'Redis down, fail=open: node 1 counts on its own slots too');
    is(login($closed, 'down2', 'x')->{status}, 503,
       'Redis down, fail=closed: 503');
}

# --- Redis back, all data lost ---------------------------------------------------

$redis->start;
for my $i (0 .. $NODES - 1) {
    ok(TRLRedis::wait_for(10, sub {
           login($t[$i], "back$i", 'p');
           zcard('acc', "back$i") == 1
       }), "node $i decides through Redis again");
}
# every worker, not only the one a probe reached (2 a node, 1 of $closed):
# one still in its reconnect backoff would count on its own slots
ok(TRLRedis::wait_for(10, sub {
       $redis->client_count >= 2 * $NODES + 1
   }), 'every worker is connected to Redis again');
{
    my @st = map { login($t[$_ % $NODES], 'k3', "n$_")->{status} } 0 .. 7;
    is("@st", '200 200 200 200 200 429 429 429',
       'after the restart: exact again over the 3 nodes');
    is(zcard('acc', 'k3'), 5, 'after the restart: Redis holds the 5');
    ok(TRLRedis::wait_for(10, sub {
           login($closed, "back-c", 'p')->{status} == 200
       }), 'fail=closed admits again');
}

$_->stop for @t, $closed;
$_->no_alerts for @t, $closed;
unlike(join('', map { $_->error_log } @t, $closed), qr/\Q$SECRET\E/,
       'the secret is never logged');

# --- nginx -t -------------------------------------------------------------------

my $t2 = TRL->new;
my $srv = 'server { listen 127.0.0.1:%%PORT%%; }';
$t2->config_fails(<<"EOF", [qr/"token_ratelimit_zone" "s" in \S+:\d+ has "distinct=" and "sync=strict" but no "token_ratelimit_distinct_secret" is configured/], 'no secret');
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_zone \$http_x_client zone=s:1m rate=5r/m sync=strict
                         distinct=\$http_x_user;
    $srv
EOF
my ($out) = $t2->config_fails(<<"EOF", [qr/invalid secret in "token_ratelimit_distinct_secret" directive: it has 7 bytes, expected 16 to 4096/], 'short');
    token_ratelimit_distinct_secret tooshrt;
    $srv
EOF
unlike($out, qr/tooshrt/, 'short: the message does not show the secret');
$t2->config_fails(<<"EOF", [qr/cannot open the secret file "\S*nosuch" of "token_ratelimit_distinct_secret" directive/], 'file');
    token_ratelimit_distinct_secret file=nosuch;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/"token_ratelimit_distinct_secret" directive is duplicate/], 'duplicate');
    token_ratelimit_distinct_secret $SECRET;
    token_ratelimit_distinct_secret $SECRET;
    $srv
EOF
$t2->write_config(<<"EOF");
    token_ratelimit_distinct_secret $SECRET;
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_zone \$http_x_client zone=s:1m rate=5r/m sync=strict
                         distinct=\$http_x_user;
    $srv
EOF
my ($rc, $o) = $t2->test_config;
is($rc, 0, 'sync=strict with a shared secret passes nginx -t') or diag($o);

done_testing;
