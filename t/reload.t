#!/usr/bin/perl
# Reload keeps state: counters survive "nginx -s reload" (HUP) when the
# zone's name and size are unchanged, a changed rate applies at once to the
# kept counts, a changed key expression fails the reload (the running
# configuration stays), and several workers share one state.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use TRL;

my $WORKERS = 4;

my $t = TRL->new(workers => $WORKERS);

# The http block: zone "z" (the one reloaded), zone "tick" (a count that is
# read after every one of many reloads), zone "w" (whose window length
# changes), zone "cf" (count=failed, requests in flight across a reload).
# reuseport spreads the connections over all workers; X-Pid tells which
# worker answered.
sub conf {
    my (%o) = @_;
    my $rate = $o{rate} || '5r/m';
    my $key = $o{key} || '$http_x_key';
    my $size = $o{size} || '1m';
    my $wrate = $o{wrate} || '3r/2s';
    my $cfrate = $o{cfrate} || '5r/m';
    my $comment = $o{comment} || '';
    return <<"EOF";
    # $comment
    token_ratelimit_zone $key zone=z:$size rate=$rate;
    token_ratelimit_zone \$http_x_key zone=tick:1m rate=30r/m;
    token_ratelimit_zone \$http_x_key zone=w:64k rate=$wrate;
    token_ratelimit_zone \$http_x_key zone=cf:64k rate=$cfrate;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        add_header X-Pid \$pid always;
        location / {
            token_ratelimit zone=z;
            empty_gif;
        }
        location /w {
            token_ratelimit zone=w;
            empty_gif;
        }
        location /cf/ {
            token_ratelimit zone=cf count=failed;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%/;
        }
        location /tick {
            token_ratelimit zone=tick;
            empty_gif;
        }
    }
EOF
}

sub hit {
    my ($key, $path) = @_;
    return $t->get($path || '/', headers => { 'X-Key' => $key });
}

# n requests for a key, their statuses joined with spaces.
sub statuses {
    my ($key, $n, $path) = @_;
    return join ' ', map { hit($key, $path)->{status} } 1 .. $n;
}

sub reload_ok {
    my ($http, $what) = @_;
    my @old = $t->worker_pids;
    my ($rc, $out) = $t->reload($http);
    is($rc, 0, "reload: $what") or diag($out);
    my %old = map { $_ => 1 } @old;
    my @new = $t->worker_pids;
    ok(@new == $WORKERS && !grep({ $old{$_} } @new),
       "reload: $what: $WORKERS new workers") or diag("old @old, now @new");
}

$t->write_config(conf(wrate => '3r/m'));
$t->start_backend('BACKEND');
$t->run;

# Key g in zone w: 3 of 3 at 3r/m, kept through 3r/h, then released by
# 3r/2s (a different window length, stored in other time units).
my $g_time = time;
is(statuses('g', 4, '/w'), '200 200 200 429', 'key g: 3 admitted at 3r/m');

# --- unchanged config ------------------------------------------------------

is(statuses('a', 3), '200 200 200', 'key a: 3 of 5 admitted');
{
    # The operator's way: nginx -s reload.
    my @old = $t->worker_pids;
    my %old = map { $_ => 1 } @old;
    my @cmd = ($TRL::NGINX, $t->nginx_args, '-s', 'reload');
    my $out = qx{@cmd 2>&1};
    is($? >> 8, 0, 'nginx -s reload, unchanged config') or diag($out);
    my @new;
    for (1 .. 200) {
        @new = $t->worker_pids;
        last if @new == $WORKERS && !grep({ $old{$_} } @new)
                && !grep({ kill 0, $_ } @old);
        sleep 0.05;
    }
    ok(@new == $WORKERS && !grep({ $old{$_} } @new),
       "nginx -s reload: $WORKERS new workers") or diag("old @old, now @new");
}
my $r = hit('a');
is($r->{status}, 200, 'key a: 4th admitted after reload');
is($r->{headers}{'x-ratelimit-remaining'}, 1, 'key a: count kept (1 left)');
is(statuses('a', 2), '200 429', 'key a: 5th admitted, 6th rejected');

# --- the rate changes: applies at once to the kept counts ------------------

is(statuses('b', 3), '200 200 200', 'key b: 3 admitted at 5r/m');
reload_ok(conf(rate => '2r/m', wrate => '3r/h'), '5r/m -> 2r/m, 3r/m -> 3r/h');
$r = hit('b');
is($r->{status}, 429, 'key b: 3 kept > 2 allowed: rejected at once');
is($r->{headers}{'x-ratelimit-limit'}, 2, 'key b: new limit shown');
is($r->{headers}{'x-ratelimit-remaining'}, 0, 'key b: remaining 0');
is(hit('a')->{status}, 429, 'key a: still rejected at 2r/m');
$r = hit('g', '/w');
is($r->{status}, 429, 'key g: still rejected at 3r/h');
cmp_ok($r->{headers}{'retry-after'} // 0, '>=', 3500,
       'key g: its places now come back an hour after admission');
$r = hit('c');
is($r->{status}, 200, 'fresh key c admitted at 2r/m');
is($r->{headers}{'x-ratelimit-remaining'}, 1, 'fresh key c: 1 left of 2');

reload_ok(conf(rate => '10r/m'), '2r/m -> 10r/m, 3r/h -> 3r/2s');
$r = hit('b');
is($r->{status}, 200, 'key b: admitted at once at 10r/m');
is($r->{headers}{'x-ratelimit-limit'}, 10, 'key b: limit 10');
is($r->{headers}{'x-ratelimit-remaining'}, 6,
   'key b: 3 kept (the rejection was not counted) + 1 = 4 used, 6 left');
is(statuses('b', 7), '200 200 200 200 200 200 429',
   'key b: exactly 10 in the window, then rejected');
$r = hit('a');
is($r->{status}, 200, 'key a: 5 kept, admitted at 10r/m');
is($r->{headers}{'x-ratelimit-remaining'}, 4, 'key a: 6 used, 4 left');

# --- twenty reloads ----------------------------------------------------------

# Key d holds 9 of 10 in zone z; key e gets one request in zone "tick"
# (30r/m) after every reload, so its remaining count is read 20 times.
is(statuses('d', 9), join(' ', (200) x 9), 'key d: 9 of 10 admitted');
my @tick;
for my $n (1 .. 20) {
    my @old = $t->worker_pids;
    # Every other reload rewrites the file (with a comment changed), the
    # others are a plain HUP.
    $t->reload($n % 2 ? conf(rate => '10r/m', comment => "reload $n")
                      : undef);
    my %old = map { $_ => 1 } @old;
    my @new = grep { !$old{$_} } $t->worker_pids;
    my $r = hit('e', '/tick');
    push @tick, [$r->{status}, $r->{headers}{'x-ratelimit-remaining'},
                 scalar @new];
}
is(join(' ', map { $_->[0] } @tick), join(' ', (200) x 20),
   'key e: admitted after each of 20 reloads');
is(join(' ', map { $_->[1] // 'none' } @tick), join(' ', reverse 10 .. 29),
   'key e: remaining went down by exactly one per reload');
is(join(' ', map { $_->[2] } @tick), join(' ', ($WORKERS) x 20),
   'each reload replaced all workers');
is(statuses('d', 2), '200 429', 'key d: its count survived 20 reloads');
is(statuses('b', 1), '429', 'key b: still rejected');

# Key g's admissions are now more than 2 s old: at 3r/2s all are back.
my $wait = $g_time + 2.3 - time;
sleep $wait if $wait > 0;
$r = hit('g', '/w');
is($r->{status}, 200, 'key g: admitted at 3r/2s once its admissions are 2 s old');
is($r->{headers}{'x-ratelimit-remaining'}, 2, 'key g: the full quota is back');

# --- a changed key expression fails the reload ------------------------------

{
    my @old = $t->worker_pids;
    my $log_before = length $t->error_log;
    $t->write_config(conf(rate => '10r/m', key => '$http_x_other'));
    my ($rc, $out) = $t->test_config;
    # nginx -t starts from nothing, so it cannot see the clash.
    diag("nginx -t with the changed key: rc $rc") if $rc != 0;
    kill 'HUP', $t->master_pid;
    my $msg;
    for (1 .. 100) {
        ($msg) = substr($t->error_log, $log_before)
            =~ /^(.*\[emerg\].*uses the "\$http_x_other" key while previously it used.*)$/m;
        last if $msg;
        sleep 0.05;
    }
    ok($msg, 'changed key: the reload fails with a message naming both keys')
        or diag(substr($t->error_log, $log_before));
    like($msg // '', qr/token_ratelimit_zone "z"/, 'the message names the zone');
    sleep 0.3;
    is(join(' ', $t->worker_pids), join(' ', @old),
       'changed key: the old workers keep running');
    is(statuses('d', 1), '429', 'old config still limits by X-Key');
    my $r = $t->get('/', headers => { 'X-Other' => 'o' });
    is($r->{status}, 200, 'old config: no X-Key, not limited');
    is($r->{headers}{'x-ratelimit-limit'}, undef,
       'old config: the new key expression is not in use');
}

# A later good reload still finds the zone as it was.
reload_ok(conf(rate => '10r/m'), 'back to the good config');
is(statuses('d', 1), '429', 'key d: count kept across the failed reload');
$r = hit('b');
is($r->{status}, 429, 'key b: still rejected');

# --- several workers share one state ----------------------------------------

{
    my @resp = $t->parallel(40, '/', headers => { 'X-Key' => 'shared' });
    my %pids = map { $_->{headers}{'x-pid'} // 'none' => 1 } @resp;
    my $ok = grep { $_->{status} == 200 } @resp;
    my $rej = grep { $_->{status} == 429 } @resp;
    is($ok, 10, '40 connections at once: exactly 10 admitted');
    is($rej, 30, '40 connections at once: 30 rejected');
    cmp_ok(scalar(grep { $_ ne 'none' } keys %pids), '>=', 2,
           'they were answered by several workers')
        or diag(join ' ', keys %pids);

    my (%seq_pids, @st);
    for (1 .. 12) {
        my $r = hit('shared2');
        push @st, $r->{status};
        $seq_pids{$r->{headers}{'x-pid'} // 'none'} = 1;
    }
    is("@st", join(' ', (200) x 10, 429, 429),
       '12 connections one after another: 10 admitted');
    diag('sequential requests hit workers: ' . join ' ', sort keys %seq_pids);
}

# --- merged buckets (N > 8) kept by an exact log (N <= 8) -----------------

is(statuses('h', 6), join(' ', (200) x 6), 'key h: 6 admitted at 10r/m');
reload_ok(conf(rate => '8r/m'), '10r/m -> 8r/m');
is(statuses('h', 3), '200 200 429', 'key h: 6 kept, 2 more at 8r/m');
is(statuses('d', 1), '429', 'key d: 10 kept, rejected at 8r/m');

# --- count=failed requests in flight across a reload -------------------------

# The old workers finish them and give back (200) or keep (401) their
# places in the zone the new workers use.
{
    my $port = $t->port('PORT');
    my @socks;
    for my $spec ((['cf-ok', 200]) x 5, (['cf-fail', 401]) x 5) {
        my ($key, $st) = @$spec;
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        print $s TRL::build_request('GET', "/cf/?status=$st&delay=1000",
                                    headers => { 'X-Key' => $key });
        push @socks, $s;
    }
    sleep 0.3;
    is(statuses('cf-ok', 1, '/cf/?status=200'), '429',
       'count=failed: 5 in flight hold all places');
    reload_ok(conf(rate => '8r/m', cfrate => '6r/m'),
              'while count=failed requests are in flight, 5r/m -> 6r/m');
    my @st;
    for my $s (@socks) {
        local $/;
        my $raw = <$s>;
        push @st, TRL::parse_response($raw // '')->{status};
        close $s;
    }
    is("@st", '200 200 200 200 200 401 401 401 401 401',
       'the requests in flight were finished by the old workers');
    is(statuses('cf-ok', 7, '/cf/?status=401'),
       '401 401 401 401 401 401 429',
       'count=failed: the 5 successes gave their places back (6 of 6 free)');
    is(statuses('cf-fail', 2, '/cf/?status=401'), '401 429',
       'count=failed: the 5 failures kept theirs (1 of 6 free)');
}

# --- a changed zone size makes a fresh zone ----------------------------------

# This is nginx's own behaviour for shared memory zones: a zone is reused
# across a reload only when its name and size are unchanged; a new size
# allocates new memory, and the module starts it empty.
reload_ok(conf(rate => '10r/m', size => '2m'), 'zone size 1m -> 2m (10r/m)');
$r = hit('d');
is($r->{status}, 200, 'key d: admitted again in the resized (fresh) zone');
is($r->{headers}{'x-ratelimit-remaining'}, 9, 'key d: full quota again');
is(statuses('b', 1), '200', 'key b: fresh as well');

# And the fresh zone keeps its counts across the next reload.
reload_ok(undef, 'resized zone, unchanged');
$r = hit('d');
is($r->{headers}{'x-ratelimit-remaining'}, 8, 'key d: count kept again');

$t->stop;
$t->no_alerts(qr/uses the "\$http_x_other" key while previously it used/);
done_testing;
