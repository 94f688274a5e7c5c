#!/usr/bin/perl
# Reloads leak no Redis connections and no file descriptors.
#
# Two nginx instances with 2 workers each, an async and a strict zone, one
# Redis.  After traffic has reached every worker, Redis sees exactly
# workers x instances clients.  After each of 20 "nginx -s reload"s (both
# instances at once) and once the old workers are gone, it is again exactly
# that many (after a short settle time); the masters' fd counts and the
# workers' fd counts are the same as before the first reload; counting in
# Redis goes on across the reloads.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $WORKERS = 2;
my $ROUNDS = 20;
my @t = map { TRL->new(workers => $WORKERS) } 1 .. 2;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;
my $EXPECT = $WORKERS * @t;

sub conf {
    my ($n) = @_;
    return <<"EOF";
    # generation $n
    token_ratelimit_zone \$http_x_key zone=ra:1m rate=100r/m sync;
    token_ratelimit_zone \$http_x_key zone=rs:1m rate=100r/m sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=500ms;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /ra { token_ratelimit zone=ra; empty_gif; }
        location /rs { token_ratelimit zone=rs; empty_gif; }
    }
EOF
}

for my $t (@t) {
    $t->write_config(conf(0));
    $t->run;
}

sub fd_count {
    my ($pid) = @_;
    opendir my $dh, "/proc/$pid/fd" or return -1;
    my $n = grep { /^\d+$/ } readdir $dh;
    closedir $dh;
    return $n;
}

sub worker_fds {
    my $sum = 0;
    $sum += fd_count($_) for map { $_->worker_pids } @t;
    return $sum;
}

# Connections at once to every instance and both zones, fresh keys: with
# reuseport they reach every worker.
my $warm = 0;
sub traffic {
    for my $t (@t) {
        for my $z ('ra', 'rs') {
            $warm++;
            my @r = $t->parallel(8, "/$z",
                                 headers => { 'X-Key' => "warm-$warm" });
            my @bad = grep { $_->{status} != 200 } @r;
            diag('traffic: ' . join ' ', map { $_->{status} } @bad) if @bad;
        }
    }
}

# Waits (at most 3 s) until Redis sees exactly the expected clients.
sub settled_clients {
    my $n;
    TRLRedis::wait_for(3, sub { ($n = $redis->client_count) == $EXPECT });
    return $n;
}

traffic();
is(settled_clients(), $EXPECT,
   "before reloading: $EXPECT Redis clients ($WORKERS workers x "
   . scalar(@t) . ' instances)') or diag(join "\n", $redis->clients);
my @master_fds0 = map { fd_count($_->master_pid) } @t;
sleep 0.3;
my $worker_fds0 = worker_fds();
diag("master fds @master_fds0, worker fds $worker_fds0");

my (@counts, @master_fds, @worker_fds, @ticks);
for my $round (1 .. $ROUNDS) {
    my %old = map { $_ => 1 } map { $_->worker_pids } @t;
    for my $t (@t) {
        # every other round rewrites the file, the others are a plain HUP
        $t->write_config(conf($round)) if $round % 2;
        kill 'HUP', $t->master_pid;
    }
    my $ok = TRLRedis::wait_for(10, sub {
        return 0 if grep { kill 0, $_ } keys %old;
        for my $t (@t) {
            my @new = grep { !$old{$_} } $t->worker_pids;
            return 0 if @new < $WORKERS;
        }
        return 1;
    });
    ok($ok, "reload $round: old workers gone, new ones up") or last;
    $_->wait_for_port($_->port('PORT')) for @t;
    traffic();
    push @ticks, $t[$round % 2]->get('/rs', headers => { 'X-Key' => 'tick' })
                     ->{status};
    push @counts, settled_clients();
    push @master_fds, join ' ', map { fd_count($_->master_pid) } @t;
    # a worker's fd count moves while its new siblings' channels come and
    # go: wait (at most 2 s) for it to settle
    my $wf;
    TRLRedis::wait_for(2, sub { ($wf = worker_fds()) == $worker_fds0 });
    push @worker_fds, $wf;
}

is("@counts", join(' ', ($EXPECT) x $ROUNDS),
   "after each of $ROUNDS reloads: $EXPECT Redis clients")
    or diag(join "\n", $redis->clients);
is(join(',', @master_fds), join(',', ("@master_fds0") x $ROUNDS),
   'the masters\' fd counts never changed');
is("@worker_fds", join(' ', ($worker_fds0) x $ROUNDS),
   'the workers\' fd counts never changed');
is("@ticks", join(' ', (200) x $ROUNDS), 'a request after every reload');
is($redis->hsum(TRLRedis::key_name('rs', 'tick')), $ROUNDS,
   "Redis counted all $ROUNDS of them");

# no connection is left behind by the masters: with nginx stopped, none
{
    $_->stop for @t;
    my $n;
    TRLRedis::wait_for(3, sub { ($n = $redis->client_count) == 0 });
    is($n, 0, 'nginx stopped: no Redis client left');
}

$_->no_alerts for @t;
done_testing;
