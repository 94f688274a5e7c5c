#!/usr/bin/perl
# Workers killed with SIGKILL under load: nginx respawns them, requests go
# on being answered (none hangs, none gets a 5xx), a lock left by a dead
# worker is taken over, and the limits still hold exactly afterwards.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);
use TRL;

$SIG{PIPE} = 'IGNORE';

my $WORKERS = 4;
my $CLIENTS = 4;
my $LOAD_S = 6;
my $KILLS = 10;
my $N = 10;

my $t = TRL->new(workers => $WORKERS);
$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=z:1m rate=${N}r/m;
    server {
        # reuseport: each connection goes to a worker by its address, so
        # every worker gets its share (with one shared socket, the kernel
        # may wake the same worker for every connection, and the one
        # trapped below might never get a request)
        listen 127.0.0.1:%%PORT%% reuseport;
        location / {
            token_ratelimit zone=z;
            empty_gif;
        }
    }
EOF
$t->run;
is(scalar(my @w = $t->worker_pids), $WORKERS, "$WORKERS workers");

# --- background load ---------------------------------------------------------

# Each client sends one request at a time on a fresh connection: mostly
# random keys, some of three hot keys (at their limit almost at once), and
# writes "status seconds key" per request to its own file.
my @clients;
for my $c (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        srand($$ ^ time);
        open my $fh, '>', $t->dir . "/client-$c.log" or POSIX::_exit(1);
        my $end = time + $LOAD_S;
        my $i = 0;
        while (time < $end) {
            my $key = rand() < 0.3 ? 'hot-' . int(rand 3)
                                   : "rnd-$c-" . $i++ . '-' . int(rand 1e9);
            my $t1 = time;
            my $r = $t->get('/', headers => { 'X-Key' => $key },
                            timeout => 8);
            printf $fh "%d %.3f %s\n", $r->{status}, time - $t1, $key;
            sleep 0.002;
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @clients, $pid;
}

# Meanwhile: SIGKILL a worker every 300-500 ms.
sleep 0.5;
my (@killed, %killed);
for (1 .. $KILLS) {
    my @pids = $t->worker_pids;
    if (@pids) {
        my $victim = $pids[int rand @pids];
        kill 'KILL', $victim;
        push @killed, $victim;
        $killed{$victim} = 1;
    }
    sleep 0.3 + rand 0.2;
}

waitpid $_, 0 for @clients;

is(scalar @killed, $KILLS, "$KILLS workers killed");

# --- what the clients saw -------------------------------------------------------

my (@lines, %status, %hot_ok);
for my $c (1 .. $CLIENTS) {
    for (split /\n/, $t->read_file("client-$c.log")) {
        my ($st, $dur, $key) = split / /;
        push @lines, [$st, $dur, $key];
        $status{$st}++;
        $hot_ok{$key}++ if $key =~ /^hot-/ && $st == 200;
    }
}
diag(sprintf('%d requests: %s', scalar @lines,
             join(' ', map { "$_:$status{$_}" } sort keys %status)));
cmp_ok(scalar @lines, '>=', 300, 'the load ran');

my @slow = grep { $_->[1] > 5 } @lines;
ok(!@slow, 'no request waited more than 5 s')
    or diag(join "\n", map { "@$_" } @slow[0 .. ($#slow < 9 ? $#slow : 9)]);

my @odd = grep { $_->[0] != 200 && $_->[0] != 429 && $_->[0] != 0 } @lines;
ok(!@odd, 'every answer was 200 or 429 (no 5xx)')
    or diag(join "\n", map { "@$_" } @odd[0 .. ($#odd < 9 ? $#odd : 9)]);

# A request in flight on a worker that is killed gets no answer; each
# client has at most one in flight.
cmp_ok($status{0} // 0, '<=', $KILLS * $CLIENTS,
       'only requests in flight on a killed worker went unanswered');

my @random_rejected = grep { $_->[2] =~ /^rnd-/ && $_->[0] == 429 } @lines;
ok(!@random_rejected, 'no fresh random key was rejected');

# The hot keys were limited all along: exactly N admitted in the minute
# (a request that went unanswered may have been one of them).
for my $h (0 .. 2) {
    my $n = $hot_ok{"hot-$h"} // 0;
    my $lost = grep { $_->[2] eq "hot-$h" && $_->[0] == 0 } @lines;
    cmp_ok($n, '<=', $N, "hot-$h: at most $N admitted during the load");
    cmp_ok($n + $lost, '>=', $N, "hot-$h: $N admitted (seen $n, "
                                 . "unanswered $lost)");
}

# --- after the load -----------------------------------------------------------

ok($t->wait_workers($WORKERS), 'nginx respawned its workers');
my @now = $t->worker_pids;
is(scalar @now, $WORKERS, "$WORKERS workers again");
ok(!grep({ $killed{$_} } @now), 'none of them a killed one');
ok(!grep({ kill 0, $_ } @killed), 'the killed workers are gone');

for my $h (0 .. 2) {
    is($t->get('/', headers => { 'X-Key' => "hot-$h" })->{status}, 429,
       "hot-$h: still rejected");
}

# --- a worker killed while it holds a stripe lock ------------------------

# Random kills almost never land while a worker holds a lock (it holds one
# for a microsecond or so), so a debugger stops a worker at chosen points
# inside the zone code, with the lock held, and kills it there.  The next
# worker that needs that stripe must take the lock over, rebuild the
# stripe and go on with the counts intact.  Skipped where gdb is missing
# or may not attach.
my $gdb_kills = 0;
my $have_gdb = grep { -x "$_/gdb" } split /:/, $ENV{PATH} // '';

# Attaches gdb to one worker with a breakpoint at $symbol, which kills the
# worker when it is reached.  Returns (gdb pid, worker pid), or () when gdb
# could not attach.
sub gdb_trap {
    my ($symbol) = @_;
    my ($victim) = $t->worker_pids;
    my $out = $t->dir . '/gdb.out';
    unlink $out;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        { exec 'gdb', '-q', '-nx', '-batch', '-p', $victim,
               '-ex', "break $symbol", '-ex', 'echo TRAP-SET\\n',
               '-ex', 'continue', '-ex', 'kill' };
        POSIX::_exit(127);
    }
    for (1 .. 200) {
        return ($pid, $victim) if $t->read_file($out) =~ /^TRAP-SET$/m;
        last if waitpid($pid, POSIX::WNOHANG()) > 0;
        select undef, undef, undef, 0.05;
    }
    diag("gdb did not attach:\n" . $t->read_file($out));
    untrap($pid, $victim);
    return ();
}

# Gives up on a trap: the worker is killed (a worker left with gdb's
# breakpoints but no gdb would die of SIGTRAP at the next one).
sub untrap {
    my ($gdb, $victim) = @_;
    kill 'KILL', $victim;
    $gdb_kills++;
    for (1 .. 100) {
        return if waitpid($gdb, POSIX::WNOHANG()) > 0;
        select undef, undef, undef, 0.05;
    }
    kill 'KILL', $gdb;
    waitpid $gdb, 0;
}

# Sends batches of 8 requests at once (keys from $keys->($batch)) until
# one of them reaches the trapped worker; returns that batch's responses
# and keys.
sub spring {
    my ($gdb, $victim, $keys) = @_;
    for my $b (1 .. 30) {
        my @keys = $keys->($b);
        my @raw = map { TRL::build_request('GET', '/',
                                           headers => { 'X-Key' => $_ }) }
                  @keys;
        my @resp = $t->parallel_raw(\@raw, timeout => 10);
        if (grep { $_->{status} == 0 } @resp) {
            waitpid $gdb, 0;
            $t->wait_workers($WORKERS);
            return (\@resp, \@keys);
        }
    }
    untrap($gdb, $victim);
    $t->wait_workers($WORKERS);
    return;
}

sub seq_statuses {
    my ($key, $n) = @_;
    return map { $t->get('/', headers => { 'X-Key' => $key })->{status} }
           1 .. $n;
}

SKIP: {
    skip 'no gdb to stop a worker inside the zone code', 12 unless $have_gdb;

    # 1. A new key's entry half made: in the stripe's hash chain, on no
    #    LRU list, no count stored.  Every request its own fresh key.
    my @trap = gdb_trap('trl::Zone::lru_push');
    skip 'gdb could not attach to a worker', 12 unless @trap;
    my $takeovers0 = () = $t->error_log =~ /took over a lock/g;
    my ($resp, $keys) = spring(@trap, sub {
        my $b = shift;
        map { "take-$b-$_" } 1 .. 8;
    });
    ok($resp, 'worker killed inside take()');
    $gdb_kills++ if $resp;
    my ($lost) = grep { $resp->[$_]{status} == 0 } 0 .. 7;
    my $key = $keys->[$lost // 0];
    is(join(' ', seq_statuses($key, $N + 1)), join(' ', (200) x $N, 429),
       'its key was never counted: exactly N admitted afterwards');
    my $takeovers = () = $t->error_log =~ /took over a lock/g;
    cmp_ok($takeovers, '>', $takeovers0, 'the lock was taken over');
    # (the trapped worker may have accepted the whole batch: then no
    # other key was answered)
    my ($other) = grep { $resp->[$_]{status} == 200 } 0 .. 7;
    SKIP: {
        skip 'the trapped worker took the whole batch', 1
            unless defined $other;
        is(join(' ', seq_statuses($keys->[$other], $N)),
           join(' ', (200) x ($N - 1), 429),
           'another key of the batch: counted once');
    }

    # 2. An admission decided but not stored: the entry is on no LRU list.
    #    The whole batch one key.
    @trap = gdb_trap('trl::admit');
    skip 'gdb could not attach to a worker', 8 unless @trap;
    $takeovers0 = $takeovers;
    ($resp, $keys) = spring(@trap, sub { ("admit-$_[0]") x 8 });
    ok($resp, 'worker killed inside admit()');
    $gdb_kills++ if $resp;
    my $seen = grep { $_->{status} == 200 } @$resp;
    my @after = seq_statuses($keys->[0], $N + 1);
    my $later = grep { $_ == 200 } @after;
    is($seen + $later, $N, "the unstored admission was not counted: $seen "
                           . "+ $later = N admitted");
    is($after[-1], 429, 'and then rejected');
    $takeovers = () = $t->error_log =~ /took over a lock/g;
    cmp_ok($takeovers, '>', $takeovers0, 'the lock was taken over');

    # 3. Everything written, only the unlock missing: the admission counts.
    @trap = gdb_trap('trl::unlock_owned');
    skip 'gdb could not attach to a worker', 4 unless @trap;
    $takeovers0 = $takeovers;
    ($resp, $keys) = spring(@trap, sub { ("unlock-$_[0]") x 8 });
    ok($resp, 'worker killed before unlocking');
    $gdb_kills++ if $resp;
    $seen = grep { $_->{status} == 200 } @$resp;
    @after = seq_statuses($keys->[0], $N + 1);
    $later = grep { $_ == 200 } @after;
    is($seen + $later, $N - 1, "the stored admission was counted: $seen "
                               . "+ $later = N - 1 admitted");
    is($after[-1], 429, 'and then rejected');
    $takeovers = () = $t->error_log =~ /took over a lock/g;
    cmp_ok($takeovers, '>', $takeovers0, 'the lock was taken over');
}

# A fresh hot key: exactly N of N + 1, one connection each.
{
    my @st = map {
        $t->get('/', headers => { 'X-Key' => 'hot-after' })->{status}
    } 1 .. $N + 1;
    is("@st", join(' ', (200) x $N, 429),
       "a fresh key: exactly $N of " . ($N + 1) . ' admitted');
}

# And at once, on 30 connections.
{
    my @resp = $t->parallel(30, '/', headers => { 'X-Key' => 'hot-burst' });
    my $ok = grep { $_->{status} == 200 } @resp;
    my $rej = grep { $_->{status} == 429 } @resp;
    is("$ok $rej", "$N " . (30 - $N), "30 at once: exactly $N admitted");
}

# Every answer is quick again.
{
    my $t1 = time;
    my @st = map {
        $t->get('/', headers => { 'X-Key' => "final-$_" })->{status}
    } 1 .. 50;
    is("@st", join(' ', (200) x 50), '50 fresh keys admitted');
    cmp_ok(time - $t1, '<', 5, 'quickly');
}

my $log = $t->error_log;
my $exits = () = $log =~ /exited on signal 9/g;
is($exits, $KILLS + $gdb_kills, 'the master saw every worker killed');
my $takeovers = () = $log =~ /took over a lock left by a dead process/g;
diag("lock takeovers: $takeovers");

$t->stop;
$t->no_alerts(qr/exited on signal 9|took over a lock left by a dead process/);
done_testing;
