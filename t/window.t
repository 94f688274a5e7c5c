#!/usr/bin/perl
# The sliding window through real nginx, with short windows:
#  - rate=3r/2s (N <= 8: an exact log): 3 admitted, then rejected until 2 s
#    after the first admission, then one admitted per expired admission;
#  - rate=20r/3s (N > 8: shared buckets, a place may come back up to
#    ceil(W/7) late, never early) under a steady ~40 req/s;
#  - never more than N in any window of length W; rejected requests do not
#    count; Retry-After is truthful.
#
# Every request is sent on one keep-alive connection, one after another,
# and its send time a and receive time b are taken from the monotonic clock
# (the module's clock too).  The server decided at some time in [a, b], so
# "at most N in any window W" is checked as b[j] - a[j-N] >= W - JITTER,
# and a rejection is justified only if at least N admissions were received
# after a - W - late (late: how late a shared bucket may give its places
# back).  Both also hold without the jitter, and are checked that way too.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(ceil);
use Time::HiRes qw(sleep clock_gettime CLOCK_MONOTONIC);
use TRL;

my $JITTER = 0.150;

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $http_x_key zone=exact:1m rate=3r/2s;
    token_ratelimit_zone $http_x_key zone=shared:1m rate=20r/3s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /exact {
            token_ratelimit zone=exact;
            empty_gif;
        }
        location /shared {
            token_ratelimit zone=shared;
            empty_gif;
        }
    }
EOF
$t->run;

sub now { clock_gettime(CLOCK_MONOTONIC) }

my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port('PORT'),
                                 Proto => 'tcp', Timeout => 5)
    or die "connect: $!";
binmode $sock;
my $rbuf = '';

# One request on the keep-alive connection: { status, headers, a, b }.
sub send_one {
    my ($path, $key) = @_;
    my $a = now();
    my $raw = "GET $path HTTP/1.1\r\nHost: localhost\r\nX-Key: $key\r\n\r\n";
    syswrite($sock, $raw) == length $raw or die "write: $!";
    my $sel = IO::Select->new($sock);
    while (1) {
        if ($rbuf =~ /\r\n\r\n/) {
            my $hlen = $+[0];
            my ($cl) = substr($rbuf, 0, $hlen) =~ /\r\ncontent-length:\s*(\d+)/i;
            $cl //= 0;
            if (length($rbuf) >= $hlen + $cl) {
                my $r = TRL::parse_response(substr($rbuf, 0, $hlen + $cl, ''));
                @$r{qw(a b key path)} = ($a, now(), $key, $path);
                return $r;
            }
        }
        $sel->can_read(5) or die "no response in 5 s";
        sysread($sock, my $chunk, 65536) or die "connection closed";
        $rbuf .= $chunk;
    }
}

# --- the schedule ---------------------------------------------------------

# [time from start, path, key]
my @plan;
# 20r/3s: one request every 25 ms for 7.5 s.
for (my $x = 0; $x < 7.5; $x += 0.025) {
    push @plan, [$x, '/shared', 'l'];
}
# 3r/2s: admissions spaced at 0, 0.5, 1.0 s, then hammered every 50 ms
# until 5.8 s: expected admissions at 0, 0.5, 1, 2, 2.5, 3, 4, 4.5, 5.
push @plan, [$_, '/exact', 'w'] for 0, 0.5, 1.0;
for (my $x = 1.05; $x < 5.8; $x += 0.05) {
    push @plan, [$x, '/exact', 'w'];
}
# Retry-After: key r is rejected right after its 3 admissions (wait ~2 s),
# key r2 1.5 s after them (wait ~0.5 s); each is asked again exactly
# Retry-After seconds later, with no other traffic in between.
push @plan, [0.001, '/exact', 'r'] for 1 .. 4;
push @plan, [0.001, '/exact', 'r2'] for 1 .. 3;
push @plan, [1.5, '/exact', 'r2'];
# order by time, stable
my $seq = 0;
@plan = map { $_->[2] } sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] }
        map { [$_->[0], $seq++, $_] } @plan;

my (%got, @followups);
my $t0 = now();
while (@plan || @followups) {
    @followups = sort { $a->[0] <=> $b->[0] } @followups;
    my $next;
    if (@followups && (!@plan || $followups[0][0] <= $plan[0][0])) {
        $next = shift @followups;
    } else {
        $next = shift @plan;
    }
    my ($at, $path, $key) = @$next;
    my $wait = $t0 + $at - now();
    sleep $wait if $wait > 0;
    my $r = send_one($path, $key);
    push @{$got{$key}}, $r;

    # The first rejection of r and r2: ask again Retry-After s later.
    if (($key eq 'r' || $key eq 'r2') && $r->{status} == 429
        && !grep { $_->{status} == 429 } @{$got{$key}}[0 .. $#{$got{$key}} - 1])
    {
        my $s = $r->{headers}{'retry-after'} // 1;
        push @followups, [$r->{a} - $t0 + $s + 0.02, $path, $key];
    }
}
close $sock;

sub rel { sprintf '%.3f', $_[0] - $t0 }
sub dump_req {
    join "\n", map {
        sprintf '%s..%s %s rem=%s retry=%s', rel($_->{a}), rel($_->{b}),
            $_->{status}, $_->{headers}{'x-ratelimit-remaining'} // '-',
            $_->{headers}{'retry-after'} // '-'
    } @_;
}

# Checks common to both zones; returns the admissions.
sub check_window {
    my ($name, $reqs, $n, $w, $late) = @_;
    my @adm = grep { $_->{status} == 200 } @$reqs;
    my @rej = grep { $_->{status} == 429 } @$reqs;
    my @other = grep { $_->{status} != 200 && $_->{status} != 429 } @$reqs;
    ok(!@other, "$name: every answer is 200 or 429") or diag(dump_req(@other));

    # Hard bound: never more than N in any window of length W.
    my @over;
    for my $j ($n .. $#adm) {
        push @over, $j if $adm[$j]{b} - $adm[$j - $n]{a} < $w - $JITTER;
    }
    ok(!@over, "$name: never more than $n admitted in any "
               . ($w - $JITTER) . ' s') or diag(
        join "\n", map { "admission $_ at " . rel($adm[$_]{a})
                         . ', admission ' . ($_ - $n) . ' at '
                         . rel($adm[$_ - $n]{a}) } @over);

    # The same bound without the jitter: the module reads the same
    # monotonic clock (whole ms) when it decides, between a and b, so
    # b[j] - a[j-N] >= W - 2 ms must hold exactly, however late the
    # requests were sent.
    my @over_strict;
    for my $j ($n .. $#adm) {
        push @over_strict, $j if $adm[$j]{b} - $adm[$j - $n]{a} < $w - 0.002;
    }
    ok(!@over_strict, "$name: never more than $n admitted in any $w s "
                      . '(same clock, no jitter)') or diag(
        join "\n", map { "admission $_ at " . rel($adm[$_]{a})
                         . ', admission ' . ($_ - $n) . ' at '
                         . rel($adm[$_ - $n]{a}) } @over_strict);

    # Rejections are justified: N admissions within the last W (+ late).
    # This too holds exactly, whatever the scheduling delays: the server
    # decided on q after a(q), and admitted i before b(i).
    my @unjust;
    for my $q (@rej) {
        my $since = $q->{a} - $w - $late - 0.002;
        my $live = grep { $_->{b} > $since && $_->{a} < $q->{a} } @adm;
        push @unjust, $q if $live < $n;
    }
    ok(!@unjust, "$name: no rejection without $n admissions in the window")
        or diag(dump_req(@unjust));

    # Retry-After is truthful: a request sent Retry-After s after a
    # rejection is admitted, unless a request between took the place.
    my @untrue;
    for my $i (0 .. $#$reqs) {
        my $q = $reqs->[$i];
        next unless $q->{status} == 429;
        my $s = $q->{headers}{'retry-after'} // '';
        if ($s !~ /^\d+$/ || $s < 1 || $s > $w + 1) {
            push @untrue, $q;
            next;
        }
        my ($k) = grep { $reqs->[$_]{a} >= $q->{a} + $s + 0.02 }
                  $i + 1 .. $#$reqs;
        next unless defined $k;
        push @untrue, $q
            unless grep { $reqs->[$_]{status} == 200 } $i + 1 .. $k;
    }
    ok(!@untrue, "$name: Retry-After truthful on every rejection")
        or diag(dump_req(@untrue));

    # Remaining counts down and is 0 from the Nth admission on (while the
    # window is full): never more than N - 1 left after the first.
    my @rem = map { $_->{headers}{'x-ratelimit-remaining'} // -1 } @adm;
    is("@rem[0 .. $n - 1]", join(' ', reverse 0 .. $n - 1),
       "$name: the first $n admitted with remaining counting down");
    return @adm;
}

# --- 3r/2s ---------------------------------------------------------------

{
    my $reqs = $got{w};
    my @adm = check_window('3r/2s', $reqs, 3, 2, 0);

    my $first = $adm[0]{a};
    my @blocked = grep { $_->{a} > $first + 1.04 && $_->{b} < $first + 2 - $JITTER }
                  @$reqs;
    cmp_ok(scalar @blocked, '>=', 10, '3r/2s: hammered while blocked');
    is(join(' ', map { $_->{status} } @blocked), join(' ', (429) x @blocked),
       '3r/2s: rejected until 2 s after the first admission');

    # One admitted per expired admission: the k+3-th follows the k-th by
    # 2 s (within the 50 ms of hammering plus jitter), never earlier.
    my @bad;
    for my $k (3 .. $#adm) {
        my $d = $adm[$k]{a} - $adm[$k - 3]{a};
        push @bad, sprintf('admission %d %.3f s after admission %d', $k, $d,
                           $k - 3)
            if $d > 2 + 0.05 + $JITTER;
    }
    ok(!@bad, '3r/2s: each expired admission frees one place at once')
        or diag(join "\n", @bad);
    is(scalar @adm, 9, '3r/2s: 9 admitted in 5.8 s (0, .5, 1, 2, 2.5, 3, 4, '
                       . '4.5, 5)') or diag(dump_req(@$reqs));
    my @rem = map { $_->{headers}{'x-ratelimit-remaining'} } @adm[3 .. $#adm];
    is("@rem", join(' ', (0) x @rem),
       '3r/2s: every later admission takes the only free place');
}

{
    my @r = @{$got{r}};
    is(join(' ', map { $_->{status} } @r), '200 200 200 429 200',
       'r: 3 admitted, rejected, admitted Retry-After s later')
        or diag(dump_req(@r));
    is($r[3]{headers}{'retry-after'}, 2, 'r: Retry-After 2 (1.99... s left)');
    cmp_ok($r[4]{a} - $r[3]{a}, '<', 2.1, 'r: asked again on time');

    my @r2 = @{$got{r2}};
    is(join(' ', map { $_->{status} } @r2), '200 200 200 429 200',
       'r2: 3 admitted, rejected at 1.5 s, admitted Retry-After s later')
        or diag(dump_req(@r2));
    is($r2[3]{headers}{'retry-after'}, 1, 'r2: Retry-After 1 (0.5 s left)');
    cmp_ok($r2[4]{a} - $r2[3]{a}, '<', 1.1, 'r2: asked again on time');
}

# --- 20r/3s ----------------------------------------------------------------

{
    my $reqs = $got{l};
    my $late = ceil(3000 / 7) / 1000;
    my @adm = check_window('20r/3s', $reqs, 20, 3, $late);
    my @rej = grep { $_->{status} == 429 } @$reqs;
    is(join(' ', map { $_->{status} } @$reqs[0 .. 19]), join(' ', (200) x 20),
       '20r/3s: the first 20 admitted');
    is($reqs->[20]{status}, 429, '20r/3s: the 21st rejected');
    diag(sprintf '20r/3s: %d requests, %d admitted in %.1f s', scalar @$reqs,
         scalar @adm, $reqs->[-1]{b} - $reqs->[0]{a});
    cmp_ok(scalar @adm, '>=', 40, '20r/3s: places come back (>= 40 admitted '
                                  . 'in 7.5 s)');
    cmp_ok(scalar @adm, '<=', 60, '20r/3s: at most 20 per 3 s in 7.5 s');
    cmp_ok(scalar @rej, '>=', 200, '20r/3s: most of the load rejected');
}

$t->stop;
$t->no_alerts;
done_testing;
