#!/usr/bin/perl
# Active zones (issue 15) in a cluster: 2 nginx nodes (2 workers each) and a
# real redis-server, each node with its own scripted token service.
#
# - sync=strict (token_ratelimit_distinct_secret set), N=5: 20 parallel
#   issuances split over the 2 nodes admit exactly 5; Redis holds the
#   places in a sorted set (ZCARD 5, with a TTL); a revocation on node B of
#   a token issued on node A admits one more on node A at once; a token of
#   expires_in=2 frees its place in Redis too.
# - sync=async: the same bound while Redis answers.
# - Redis stopped: fail=open counts on the node, fail=closed answers 503.
# - nginx -t: sync=strict with token= needs the shared secret.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;
use JSON::PP;

my $SECRET = 'Vb3nQ8zLk2Wr7TgY5hPx9cMd';
my @t = map { TRL->new(workers => 2) } 1 .. 2;
my $closed = TRL->new;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;
my $backend = $t[0]->start_backend('BACKEND');

sub conf {
    my ($fail) = @_;
    my $loc = '';
    for my $z ('st', 'as') {
        $loc .= <<"EOF";
        location /$z/token {
            token_ratelimit zone=$z count=succeeded;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/token\$is_args\$args;
        }
        location /$z/slow/ {
            token_ratelimit zone=$z count=succeeded;
            proxy_pass http://127.0.0.1:$backend/;
        }
        location /$z/revoke {
            token_ratelimit_release zone=$z;
            proxy_pass http://127.0.0.1:%%PORT_SVC%%/svc/revoke\$is_args\$args;
        }
EOF
    }
    return <<"EOF";
    token_ratelimit_distinct_secret $SECRET;
    token_ratelimit_zone \$arg_sub zone=st:1m rate=5r/15m active
                         lifetime=\$upstream_http_x_expires_in
                         token=\$upstream_http_x_token_id sync=strict;
    token_ratelimit_zone \$arg_sub zone=as:1m rate=5r/15m active
                         lifetime=\$upstream_http_x_expires_in
                         token=\$upstream_http_x_token_id sync=async;
    token_ratelimit_redis $raddr interval=50ms timeout=2s fail=$fail;
    proxy_read_timeout 10s;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
$loc
        location /api/ {
            token_ratelimit_api;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_SVC%%;
        access_log off;
        location /svc/token {
            add_header X-Expires-In \$arg_expires_in always;
            add_header X-Token-Id \$arg_id always;
            return 200 '{"access_token":"at-\$arg_id"}';
        }
        location /svc/revoke {
            add_header X-Token-Id \$arg_id always;
            return 200 '{}';
        }
    }
EOF
}

$_->write_config(conf('open')), $_->run for @t;
$closed->write_config(conf('closed'));
$closed->run;

my ($A, $B) = @t;

sub issue {
    my ($node, $zone, $sub, %q) = @_;
    my $qs = join '&', "sub=$sub", map { "$_=$q{$_}" } sort keys %q;
    return $node->get("/$zone/token?$qs");
}

sub revoke {
    my ($node, $zone, $sub, $id) = @_;
    return $node->get("/$zone/revoke?sub=$sub&id=$id");
}

# the "active" object of a zone in the node's API
sub active_stats {
    my ($node, $zone) = @_;
    my $r = $node->get("/api/zones/$zone");
    return undef unless $r->{status} == 200;
    my $z = JSON::PP->new->decode($r->{body});
    $z = $z->{zones}{$zone} // $z->{zone} // $z if ref $z eq 'HASH';
    return $z->{active};
}

sub tally {
    my %n;
    $n{$_->{status}}++ for @_;
    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

# The Redis sorted set of (zone, key): the key of type zset whose name
# holds "{zone:key" (the documented naming, whatever suffix it has).
sub zset {
    my ($zone, $key) = @_;
    for my $k ($redis->scan("*{$zone:$key*")) {
        return $k if $redis->cli('TYPE', $k) eq 'zset';
    }
    return undef;
}

sub zcard {
    my $k = zset(@_) // return 0;
    return $redis->cli('ZCARD', $k);
}

# every node's link is up: an issuance of a probe key lands in Redis
for my $i (0 .. 1) {
    ok(TRLRedis::wait_for(10, sub {
           issue($t[$i], 'st', "probe$i", expires_in => 60);
           zcard('st', "probe$i") >= 1
       }), "node $i decides through Redis");
}

# --- sync=strict: 20 parallel issuances over 2 nodes, N=5 --------------------

{
    my $raw = TRL::build_request('GET', '/st/slow/?sub=par&delay=800');
    my @resp = TRL::collect_responses(20, TRL::send_all(
        map { [$t[$_ % 2], $raw] } 0 .. 19));
    is(scalar(grep { $_->{status} == 200 } @resp), 5,
       'strict: 20 parallel issuances over 2 nodes at N=5: exactly 5')
        or diag(tally(@resp));
    is(scalar(grep { $_->{status} == 429 } @resp), 15, 'strict: 15 rejected')
        or diag(tally(@resp));
    my $k = zset('st', 'par');
    ok($k, 'strict: Redis holds a sorted set for the key')
        or diag(join ' ', $redis->scan('*'));
    is(zcard('st', 'par'), 5, 'strict: with the 5 places');
    my $pttl = $k ? $redis->cli('PTTL', $k) : -1;
    ok($pttl =~ /^\d+$/ && $pttl > 0 && $pttl <= 961_000,
       "strict: the set has a TTL of at most MAX + 1 min (PTTL $pttl)");
    my @st = map { issue($_, 'st', 'par', expires_in => 60)->{status} } @t;
    is("@st", '429 429', 'strict: full on both nodes');
}

# --- sync=strict: a revocation on B frees a token issued on A ----------------

{
    my @st = map { issue($A, 'st', 'rv', expires_in => 600, id => "r$_")
                       ->{status} } 0 .. 5;
    is("@st", '200 200 200 200 200 429', 'strict: 5 tokens issued on A');
    is(issue($B, 'st', 'rv', expires_in => 600, id => 'rb')->{status}, 429,
       'strict: B rejects the 6th too');
    is(zcard('st', 'rv'), 5, 'strict: Redis holds 5 places');

    is(revoke($B, 'st', 'rv', 'r3')->{status}, 200,
       'strict: token r3 revoked on B');
    is(zcard('st', 'rv'), 4, 'strict: Redis holds 4 places at once');
    is(issue($A, 'st', 'rv', expires_in => 600, id => 'r6')->{status}, 200,
       'strict: A admits one more at once');
    is(issue($A, 'st', 'rv', expires_in => 600, id => 'r7')->{status}, 429,
       'strict: and no more');
    is(revoke($B, 'st', 'rv', 'r3')->{status}, 200,
       'strict: r3 revoked again');
    is(zcard('st', 'rv'), 5, 'strict: a token revoked twice frees one place');

    # B held none of A's places: its counters count what Redis released
    my $st;
    for (1 .. 40) {
        $st = active_stats($B, 'st');
        last if $st && $st->{released} + $st->{release_missed} >= 2;
        sleep 0.05;
    }
    is($st->{released}, 1, "strict: B's counters: Redis released r3 once");
    is($st->{release_missed}, 1, 'strict: ... and found it gone the second time');
}

# --- sync=strict: expires_in=2 frees its place in Redis too ------------------

{
    issue($A, 'st', 'ex', expires_in => 600, id => "e$_") for 0 .. 3;
    my $r = issue($B, 'st', 'ex', expires_in => 2, id => 'e4');
    my $start = time;
    is($r->{status}, 200, 'strict: a 2 s token issued on B');
    is(issue($A, 'st', 'ex', expires_in => 600, id => 'e5')->{status}, 429,
       'strict: ex full on A');
    ok(TRLRedis::wait_for(6, sub {
           issue($A, 'st', 'ex', expires_in => 600, id => 'e5')->{status}
               == 200 }),
       'strict: the 2 s token frees its place, A admits another');
    my $took = time - $start;
    ok($took >= 1.5, sprintf('strict: after about 2 s (%.1f s)', $took));
    is(zcard('st', 'ex'), 5, 'strict: Redis holds 5 places, not 6');
    is(issue($B, 'st', 'ex', expires_in => 600, id => 'e6')->{status}, 429,
       'strict: full again on B');
}

# --- sync=async: the same bound while Redis answers --------------------------

{
    my $raw = TRL::build_request('GET', '/as/slow/?sub=par&delay=800');
    my @resp = TRL::collect_responses(20, TRL::send_all(
        map { [$t[$_ % 2], $raw] } 0 .. 19));
    is(scalar(grep { $_->{status} == 200 } @resp), 5,
       'async: 20 parallel issuances over 2 nodes at N=5: exactly 5')
        or diag(tally(@resp));
    is(scalar(grep { $_->{status} == 429 } @resp), 15, 'async: 15 rejected')
        or diag(tally(@resp));

    my @st = map { issue($t[$_ % 2], 'as', 'seq', expires_in => 600,
                         id => "s$_")->{status} } 0 .. 7;
    is("@st", '200 200 200 200 200 429 429 429',
       'async: issuances alternating over the nodes: exactly 5');
    is(revoke($B, 'as', 'seq', 's0')->{status}, 200,
       'async: s0 (issued on A) revoked on B');
    ok(TRLRedis::wait_for(2, sub {
           issue($A, 'as', 'seq', expires_in => 600, id => 's8')->{status}
               == 200 }),
       'async: A admits one more');
    @st = map { issue($_, 'as', 'seq', expires_in => 600)->{status} } @t;
    is("@st", '429 429', 'async: and no more on either node');
}

# --- Redis stopped ------------------------------------------------------------

$redis->stop;
{
    my @st = map { issue($A, 'st', 'down', expires_in => 600, id => "d$_")
                       ->{status} } 0 .. 5;
    is("@st", '200 200 200 200 200 429',
       'Redis down, fail=open: A counts 5 places on its own');
    is(revoke($A, 'st', 'down', 'd0')->{status}, 200,
       'Redis down: a revocation on A');
    is(issue($A, 'st', 'down', expires_in => 600, id => 'd6')->{status}, 200,
       'Redis down: frees a place of A');
    my $r = issue($closed, 'st', 'down2', expires_in => 600);
    is($r->{status}, 503, 'Redis down, fail=closed: 503');
    ok(($r->{headers}{'retry-after'} // 0) >= 1, 'with Retry-After');
}

$_->stop for @t, $closed;
$_->no_alerts for @t, $closed;
unlike(join('', map { $_->error_log } @t, $closed), qr/\Q$SECRET\E/,
       'the secret is never logged');

# --- nginx -t -------------------------------------------------------------------

{
    my $c = TRL->new;
    $c->config_fails(<<'EOF', [qr/"st"/, qr/token_ratelimit_distinct_secret/],
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_zone $arg_sub zone=st:1m rate=5r/15m active
                         token=$upstream_http_x_token_id sync=strict;
    server { listen 127.0.0.1:%%PORT%%; }
EOF
                     'strict active zone with token= and no secret');
    $c->write_config(<<'EOF');
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_zone $arg_sub zone=st:1m rate=5r/15m active sync=strict;
    server { listen 127.0.0.1:%%PORT%%; }
EOF
    my ($rc, $out) = $c->test_config;
    is($rc, 0, 'a strict active zone without token= needs no secret')
        or diag($out);
}

done_testing;
