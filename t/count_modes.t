#!/usr/bin/perl
# count=all|failed|succeeded: every admitted request holds its place from
# admission, so concurrency cannot beat the limit; in the log phase the
# place is given back when the final status says the request does not count
# (count=failed: status < 400; count=succeeded: status >= 400).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use TRL;

my $t = TRL->new;

# A port that refuses connections: bound, never listening.  Kept out of the
# harness's port list so that run() does not wait for it to open.
my $dead = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Proto => 'tcp')
    or die "bind: $!";
my $dead_port = $dead->sockport;

$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=all:1m rate=5r/m;
    token_ratelimit_zone \$http_x_key zone=failed:1m rate=5r/m;
    token_ratelimit_zone \$http_x_key zone=succeeded:1m rate=5r/m;
    proxy_read_timeout 10s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /all/ {
            token_ratelimit zone=all count=all;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%/;
        }
        location /failed/ {
            token_ratelimit zone=failed count=failed;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%/;
        }
        location /succeeded/ {
            token_ratelimit zone=succeeded count=succeeded;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%/;
        }
        location /down-failed/ {
            token_ratelimit zone=failed count=failed;
            proxy_pass http://127.0.0.1:$dead_port/;
        }
        location /down-succeeded/ {
            token_ratelimit zone=succeeded count=succeeded;
            proxy_pass http://127.0.0.1:$dead_port/;
        }
    }
EOF
$t->start_backend('BACKEND');
$t->run;

sub req {
    my ($mode, $key, $status, $delay) = @_;
    return TRL::build_request('GET', "/$mode/?status=$status&delay=$delay",
                              headers => { 'X-Key' => $key });
}

sub tally {
    my %n;
    $n{$_->{status}}++ for @_;
    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

# --- 30 concurrent requests per case against a slow backend ---------------

# [mode, backend status, places kept after the requests finish]
my @cases = (
    ['all',       200, 1],
    ['all',       401, 1],
    ['failed',    200, 0],
    ['failed',    401, 1],
    ['succeeded', 200, 1],
    ['succeeded', 401, 0],
);

# All cases at once (each its own key): 180 connections, 30 per key; the
# backend holds admitted requests for a second.
my @raws;
for my $c (@cases) {
    my ($mode, $status) = @$c;
    push @raws, req($mode, "$mode-$status", $status, 1000) for 1 .. 30;
}
my $start = time;
my @resp = $t->parallel_raw(\@raws);
my $took = time - $start;
cmp_ok($took, '>=', 0.9, 'admitted requests were held by the slow backend');

for my $i (0 .. $#cases) {
    my ($mode, $status) = @{$cases[$i]};
    my @mine = @resp[30 * $i .. 30 * $i + 29];
    my $passed = grep { $_->{status} == $status
                        && $_->{body} =~ /^backend $status/ } @mine;
    my $rejected = grep { $_->{status} == 429 } @mine;
    is($passed, 5, "count=$mode, backend $status: exactly 5 of 30 in flight "
                   . "were proxied") or diag(tally(@mine));
    is($rejected, 25, "count=$mode, backend $status: 25 rejected");
}

# After they finished: places kept or given back.
for my $c (@cases) {
    my ($mode, $status, $kept) = @$c;
    my $key = "$mode-$status";
    if ($kept) {
        my $r = $t->get("/$mode/?status=$status",
                        headers => { 'X-Key' => $key });
        is($r->{status}, 429, "count=$mode, backend $status: all 5 places "
                              . "kept, the next request is rejected");
    } else {
        # The 5 places came back: the full quota is available (which also
        # shows that the 25 rejections, themselves 429s, were not counted
        # as failures).  Use the status that counts, so the places are kept
        # this time.
        my $counted = $mode eq 'failed' ? 401 : 200;
        my @st = map {
            $t->get("/$mode/?status=$counted",
                    headers => { 'X-Key' => $key })->{status}
        } 1 .. 6;
        is("@st", "$counted $counted $counted $counted $counted 429",
           "count=$mode, backend $status: places given back, 5 more "
           . "admitted, then rejected");
    }
}

# --- sequential: what is given back, request by request --------------------

{
    # count=failed with successes: never limited.
    my @st = map {
        $t->get('/failed/?status=204', headers => { 'X-Key' => 'seq-f' })
            ->{status}
    } 1 .. 8;
    is("@st", join(' ', (204) x 8), 'count=failed: successes never limited');

    # Then failures fill it.
    my $r;
    for my $n (1 .. 5) {
        $r = $t->get('/failed/?status=403', headers => { 'X-Key' => 'seq-f' });
        is($r->{status}, 403, "count=failed: failure $n admitted");
    }
    is($r->{headers}{'x-ratelimit-remaining'}, 0, 'remaining 0 after 5');
    is($t->get('/failed/?status=200', headers => { 'X-Key' => 'seq-f' })
           ->{status}, 429, 'count=failed: then even a would-be success is '
                            . 'rejected');

    # count=succeeded with failures: never limited; 3xx counts as success.
    @st = map {
        $t->get('/succeeded/?status=404', headers => { 'X-Key' => 'seq-s' })
            ->{status}
    } 1 .. 8;
    is("@st", join(' ', (404) x 8), 'count=succeeded: failures never limited');
    @st = map {
        $t->get('/succeeded/?status=302', headers => { 'X-Key' => 'seq-s' })
            ->{status}
    } 1 .. 6;
    is("@st", '302 302 302 302 302 429',
       'count=succeeded: redirects count as successes');
}

# --- a backend that is down: 502 is a failure ------------------------------

{
    my @st = map {
        $t->get('/down-failed/', headers => { 'X-Key' => 'down' })->{status}
    } 1 .. 6;
    is("@st", '502 502 502 502 502 429',
       'count=failed: 502 from a dead backend counts');

    @st = map {
        $t->get('/down-succeeded/', headers => { 'X-Key' => 'down' })->{status}
    } 1 .. 8;
    is("@st", join(' ', (502) x 8),
       'count=succeeded: 502 from a dead backend is given back');
}

$t->stop;
$t->no_alerts;
done_testing;
