#!/usr/bin/perl
# Redis faults.
#
# Nodes A, B (two workers) and D: fail=open (the default); node C:
# fail=closed.  All use one Redis, interval=50ms, timeout=100ms.
#
# - Redis stopped: A and B limit with their own counts (async and strict
#   zones), fast; each node logs the outage once ([error], "redis", the
#   address; once per node, not per worker) and its end once ("reachable
#   again"); C answers 503 with Retry-After for its sync zones and 200 for
#   its plain zone.
# - Redis started again with all data lost: A and B publish what they
#   admitted during the outage, async and strict (the Redis keys show it,
#   the other node counts it), A never admits more than N per window
#   itself, strict counting is exact again (scripts loaded anew), C admits
#   again.
# - Redis killed and restarted while in use: counting resumes.
# - A node started while Redis is down runs and publishes after recovery.
# - Redis frozen (SIGSTOP: connections accepted, nothing answered): a
#   request that waits on Redis does not block the worker; no
#   request waits longer than timeout (+ slack); A answers only 200/429,
#   C only 200/429/503; after SIGCONT everything goes through Redis again.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $TIMEOUT = 0.1;
my $SLACK = 0.3;          # scheduling slack on a small, busy machine

# B has two workers: the outage is logged once per node, not per worker
my ($A, $C, $D) = map { TRL->new } 1 .. 3;
my $B = TRL->new(workers => 2);
my $redis = TRLRedis->new(port => $A->port('REDIS'));
my $raddr = $redis->address;
(my $raddr_re = $raddr) =~ s/\./\\./g;

sub conf {
    my ($fail) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=fa:1m rate=5r/m sync;
    token_ratelimit_zone \$http_x_key zone=fs:1m rate=3r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=pl:1m rate=5r/m;
    token_ratelimit_redis $raddr interval=50ms timeout=100ms$fail;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /fa { token_ratelimit zone=fa; empty_gif; }
        location /fs { token_ratelimit zone=fs; empty_gif; }
        location /pl { token_ratelimit zone=pl; empty_gif; }
        # never counts: makes the node read a key's cluster total
        location /peek-fa { token_ratelimit zone=fa count=failed; empty_gif; }
    }
EOF
}

$A->write_config(conf(''));
$B->write_config(conf(' fail=open'));
$C->write_config(conf(' fail=closed'));
$_->run for $A, $B, $C;

# A request; adds {took} (seconds).
sub hit {
    my ($t, $path, $key) = @_;
    my $t0 = time;
    my $r = $t->get($path, headers => { 'X-Key' => $key }, timeout => 5);
    $r->{took} = time - $t0;
    return $r;
}

sub statuses {
    my ($t, $path, $key, $n) = @_;
    return join ' ', map { hit($t, $path, $key)->{status} } 1 .. $n;
}

sub log_since {
    my ($t, $from) = @_;
    return substr($t->error_log, $from);
}

# Outage lines: [error] (or worse) naming redis and the address, not the
# recovery line.
sub outage_lines {
    my ($text) = @_;
    return grep { /\[(error|crit|alert|emerg)\]/ && /redis/i && /$raddr_re/
                  && !/reachable again/ } split /\n/, $text;
}

sub recovery_lines {
    my ($text) = @_;
    return grep { /reachable again/ } split /\n/, $text;
}

# --- all up ------------------------------------------------------------------

is(statuses($A, '/fa', 'pre', 2), '200 200', 'up: A admits');
is(statuses($C, '/fs', 'pre', 2), '200 200', 'up: C (fail=closed) admits');
ok(TRLRedis::wait_for(2, sub {
       $redis->hsum(TRLRedis::key_name('fa', 'pre')) == 2
   }), 'up: A publishes');
my %log0 = map { $_ => length $_->error_log } $A, $B, $C;

# --- Redis stopped ---------------------------------------------------------------

$redis->stop;
my $down_at = time;
sleep 0.3;

{
    my @r = map { hit($A, '/fa', 'out') } 1 .. 6;
    is(join(' ', map { $_->{status} } @r), '200 200 200 200 200 429',
       'down, fail=open: A limits the async zone with its own counts');
    my @s = map { hit($A, '/fs', 'outs') } 1 .. 4;
    is(join(' ', map { $_->{status} } @s), '200 200 200 429',
       'down, fail=open: A limits the strict zone with its own counts');
    my $max = 0;
    $max < $_->{took} and $max = $_->{took} for @r, @s;
    cmp_ok($max, '<=', $TIMEOUT + $SLACK,
           sprintf 'down: no request waited longer than timeout (max %.3f s)',
                   $max);
    is(statuses($B, '/fa', 'outB', 2), '200 200', 'down: B admits 2 of outB');
    # both of B's workers get requests (and find Redis down)
    hit($B, '/fs', "outB-$_") for 1 .. 8;

    # a node started while Redis is down
    $D->write_config(conf(''));
    ok(eval { $D->run; 1 }, 'down: node D starts') or diag($@);
    is(statuses($D, '/fa', 'outD', 2), '200 200', 'down: D admits 2 of outD');

    for my $z ('fa', 'fs') {
        my $r = hit($C, "/$z", 'c');
        is($r->{status}, 503, "down, fail=closed: C's $z zone answers 503");
        like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
             "down, fail=closed: 503 with Retry-After "
             . "($z: " . ($r->{headers}{'retry-after'} // 'none') . ')');
        is($r->{headers}{'x-ratelimit-remaining'}, 0,
           "down, fail=closed: $z: X-RateLimit-Remaining: 0");
        cmp_ok($r->{headers}{'x-ratelimit-reset'} // 0, '>=', time - 1,
               "down, fail=closed: $z: X-RateLimit-Reset is a time to come"
               . ' (' . ($r->{headers}{'x-ratelimit-reset'} // 'none') . ')');
        cmp_ok($r->{took}, '<=', $TIMEOUT + $SLACK, "down: C's 503 is fast");
    }
    is(statuses($C, '/pl', 'c', 2), '200 200',
       'down, fail=closed: a zone without sync is unaffected');
}

# an outage of about 1.5 s: several reconnection attempts
sleep 1.5 - (time - $down_at) if time - $down_at < 1.5;
hit($A, '/fa', 'out');
hit($B, '/fa', 'outB-2');

{
    my @out = outage_lines(log_since($A, $log0{$A}));
    is(scalar @out, 1, 'A logged the outage once ([error], redis, address)')
        or diag(join "\n", @out);
    my @warn = grep { /redis/i } split /\n/, log_since($A, $log0{$A});
    diag("A's log during the outage:\n" . join "\n", @warn) if @warn > 1;
    is(scalar recovery_lines(log_since($A, $log0{$A})), 0,
       'A: no "reachable again" while down');
    my @b = outage_lines(log_since($B, $log0{$B}));
    is(scalar @b, 1, 'B (two workers) logged the outage once')
        or diag(join "\n", @b);
    my @c = outage_lines(log_since($C, $log0{$C}));
    cmp_ok(scalar @c, '>=', 1, 'C logged the outage');
    diag(scalar(@c) . " outage lines at C") if @c != 1;
}

# --- Redis back, all data lost -------------------------------------------------

$redis->start;
my $up_at = time;
my %log1 = map { $_ => length $_->error_log } $A, $B, $C;

for my $n ([A => $A], [B => $B]) {
    my ($name, $t) = @$n;
    ok(TRLRedis::wait_for(10, sub {
           recovery_lines(log_since($t, $log1{$t}))
       }), "$name logged \"reachable again\"");
    diag(sprintf "$name reconnected %.2f s after Redis came back",
                 time - $up_at);
}
sleep 0.2;
is(scalar recovery_lines(log_since($A, $log1{$A})), 1,
   'A logged the recovery once');
is(scalar recovery_lines(log_since($B, $log1{$B})), 1,
   'B (two workers) logged the recovery once');

ok(TRLRedis::wait_for(2, sub {
       $redis->hsum(TRLRedis::key_name('fa', 'out')) == 5
   }), 'A published its 5 outage admissions after recovery')
    or diag('trl:{fa:out} holds '
            . $redis->hsum(TRLRedis::key_name('fa', 'out')));
ok(TRLRedis::wait_for(2, sub {
       $redis->hsum(TRLRedis::key_name('fa', 'outB')) == 2
   }), 'B published its 2 outage admissions after recovery');
ok(TRLRedis::wait_for(10, sub {
       $redis->hsum(TRLRedis::key_name('fa', 'outD')) == 2
   }), 'D, started during the outage, published its 2 after recovery');
# the strict zone: A admitted 3 of outs with its own counts during the
# outage; on one node a zone never admits more than N per window
is(hit($A, '/fs', 'outs')->{status}, 429,
   'after recovery: A still rejects strict outs (3 of 3 admitted during '
   . 'the outage: never over on one node)');
ok(TRLRedis::wait_for(2, sub {
       $redis->hsum(TRLRedis::key_name('fs', 'outs')) == 3
   }), 'A published its 3 strict outage admissions after recovery')
    or diag('trl:{fs:outs} holds '
            . $redis->hsum(TRLRedis::key_name('fs', 'outs')));
is(hit($B, '/fs', 'outs')->{status}, 429,
   "B rejects strict outs: it counts A's outage admissions");
# a node decides at once on the total it last read: B and A read it first
hit($B, '/peek-fa', 'out');
hit($A, '/peek-fa', 'outB');
sleep 0.15;
is(hit($B, '/fa', 'out')->{status}, 429,
   "B rejects key out: it counts A's outage admissions");
is(statuses($A, '/fa', 'outB', 4), '200 200 200 429',
   "A admits 3 of outB: it counts B's 2 outage admissions");

{
    my $t0 = time;
    my $st;
    TRLRedis::wait_for(10, sub {
        $st = hit($C, '/fs', 'c2-' . int((time - $t0) * 1000))->{status};
        $st == 200;
    });
    is($st, 200, 'C (fail=closed) admits again');
    diag(sprintf 'C admitted %.2f s after Redis came back', time - $up_at);
}

# strict counting is exact again: the script cache was lost with the data
is(join(' ', map { hit($_->[0], '/fs', 'after')->{status} }
             [$A], [$B], [$C], [$A], [$B], [$C]),
   '200 200 200 429 429 429', 'after the restart: strict is exact again');
is($redis->hsum(TRLRedis::key_name('fs', 'after')), 3,
   'after the restart: Redis holds the 3 strict admissions');

# --- killed and restarted while in use ------------------------------------------

{
    $redis->stop(kill => 1);
    $redis->start;
    my $t0 = time;
    # fresh keys until both A and B count through Redis again
    my $n = 0;
    my $back = TRLRedis::wait_for(10, sub {
        $n++;
        hit($A, '/fs', "probe-a-$n");
        hit($B, '/fs', "probe-b-$n");
        $redis->cli('EXISTS', TRLRedis::key_name('fs', "probe-a-$n")) eq '1'
            && $redis->cli('EXISTS', TRLRedis::key_name('fs', "probe-b-$n"))
               eq '1';
    });
    ok($back, 'killed and restarted: A and B count in Redis again');
    diag(sprintf 'strict counting through Redis again after %.2f s',
                 time - $t0);
    is(join(' ', map { hit($_, '/fs', 'after2')->{status} } $A, $B, $A, $B),
       '200 200 200 429', 'killed and restarted: strict is exact');
    is(statuses($A, '/fa', 'after2', 2), '200 200', 'async admits');
    ok(TRLRedis::wait_for(2, sub {
           $redis->hsum(TRLRedis::key_name('fa', 'after2')) == 2
       }), 'killed and restarted: async publishes again');
}

# --- Redis frozen -------------------------------------------------------------------

{
    $redis->pause;
    my $t0 = time;
    my (@a, @c, @plain);

    # The first strict request after the freeze waits on Redis (at most
    # timeout); meanwhile the same worker (A has one) serves others.
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $A->port('PORT'),
                                  Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    print $s TRL::build_request('GET', '/fs', headers => { 'X-Key' => 'frz' });
    sleep 0.01;
    my $other = hit($A, '/pl', 'frz-other');
    my $first = do { local $/; <$s> } // '';
    my $first_took = time - $t0;
    close $s;
    $first = TRL::parse_response($first);
    diag(sprintf 'frozen: the first strict request took %.3f s, a plain '
                 . 'request meanwhile %.3f s', $first_took, $other->{took});
    is($other->{status}, 200, 'frozen: the worker serves other requests');
    cmp_ok($other->{took}, '<', 0.05,
           'frozen: ... at once, while a request waits on Redis '
           . '(the worker does not block)');
    cmp_ok($first_took, '<=', $TIMEOUT + $SLACK,
           'frozen: the waiting request is answered within timeout');
    $first->{took} = $first_took;

    my @af = ($first, map { hit($A, '/fs', 'frz') } 1 .. 3);
    # 1.5 s of requests: across the link's timeouts and reconnection
    # attempts (connect succeeds, nothing answers)
    my $n = 0;
    while (time < $t0 + 1.5) {
        $n++;
        push @a, hit($A, '/fs', "frz-a-$n"), hit($A, '/fa', "frz-a-$n");
        push @c, hit($C, '/fs', "frz-c-$n"), hit($C, '/fa', "frz-c-$n");
        push @plain, hit($C, '/pl', "frz-c-$n");
        sleep 0.03;
    }

    # 20 strict requests at once, fresh keys
    my $p0 = time;
    my @socks;
    for my $i (1 .. 20) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:'
                                                  . $A->port('PORT'),
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        print $s TRL::build_request('GET', '/fs',
                                    headers => { 'X-Key' => "frz-p-$i" });
        push @socks, $s;
    }
    my (%buf, %done);
    my $sel = IO::Select->new(@socks);
    while ($sel->count && time < $p0 + 5) {
        for my $s ($sel->can_read($p0 + 5 - time)) {
            my $got = sysread($s, my $chunk, 65536);
            if ($got) {
                $buf{fileno $s} .= $chunk;
            } else {
                $done{fileno $s} = time - $p0;
                $sel->remove($s);
            }
        }
    }
    my @par = map { TRL::parse_response($buf{fileno $_} // '') } @socks;
    my $par_max = 0;
    for (@socks) {
        my $d = $done{fileno $_} // 99;
        $par_max = $d if $d > $par_max;
    }
    close $_ for @socks;
    my $frozen_for = time - $t0;
    $redis->resume;

    my $max = 0;
    $max < $_->{took} and $max = $_->{took} for @af, @a, @c, @plain;
    diag(sprintf 'frozen for %.2f s, %d requests: sequential max %.3f s, '
                 . '20 parallel strict requests done in %.3f s', $frozen_for,
                 scalar(@af) + @a + @c + @plain, $max, $par_max);
    cmp_ok($max, '<=', $TIMEOUT + $SLACK,
           'frozen: no request waited longer than timeout (+ slack)');
    cmp_ok($par_max, '<=', $TIMEOUT + $SLACK + 0.2,
           'frozen: 20 parallel strict requests answered within timeout');
    is(join(' ', map { $_->{status} } @af), '200 200 200 429',
       'frozen, fail=open: A limits strict frz with its own counts');
    my @bad_a = grep { $_->{status} != 200 } @a, @par;
    ok(!@bad_a, 'frozen, fail=open: A admits every fresh key (no 5xx)')
        or diag(join ' ', map { $_->{status} } @bad_a);
    my @bad_c = grep { $_->{status} !~ /^(200|503)$/ } @c;
    ok(!@bad_c, 'frozen, fail=closed: C answers only 200 or 503')
        or diag(join ' ', map { $_->{status} } @bad_c);
    is($c[0]{status}, 503, 'frozen, fail=closed: C strict answers 503');
    my %cs;
    $cs{$_->{status}}++ for @c;
    diag('C during the freeze: ' . join ' ', map { "$_=$cs{$_}" } sort keys %cs);
    is(join(' ', grep { $_ != 200 } map { $_->{status} } @plain), '',
       'frozen: C\'s zone without sync admits');
}

{
    # thawed: the strict zone counts in Redis again
    my $n = 0;
    my $t0 = time;
    ok(TRLRedis::wait_for(10, sub {
           $n++;
           hit($A, '/fs', "thaw-$n");
           $redis->cli('EXISTS', TRLRedis::key_name('fs', "thaw-$n")) eq '1';
       }), 'thawed: A counts in Redis again');
    diag(sprintf 'thawed: through Redis after %.2f s', time - $t0);
    my $st;
    TRLRedis::wait_for(10, sub {
        $st = hit($C, '/fs', 'thaw-c-' . int((time - $t0) * 1000))->{status};
        $st == 200;
    });
    is($st, 200, 'thawed: C admits again');
    ok(TRLRedis::wait_for(2, sub {
           $redis->cli('PING') eq 'PONG'
       }), 'Redis answers');
}

$_->stop for $A, $B, $C, $D;
$_->no_alerts for $A, $B, $C, $D;
done_testing;
