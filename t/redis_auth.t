#!/usr/bin/perl
# password=, db=, prefix= and unix socket addresses.
#
# One Redis with a password, on TCP and on a unix socket.
# - node A: TCP, password=right, db=3, prefix=app1: -> keys appear in db 3
#   under app1:{zone:key}, none in db 0.
# - node D: unix socket, password=right, db=3, prefix=app1: -> shares A's
#   counters (same server, db, prefix, zone).
# - node B: password=wrong, fail=closed -> treated as unreachable: 503 with
#   Retry-After, an [error] naming redis; nothing written.
# - node E: no password, fail=open -> unreachable (NOAUTH): limits alone,
#   writes nothing.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my ($A, $D, $B, $E) = map { TRL->new(workers => 2) } 1 .. 4;
my $redis = TRLRedis->new(port => $A->port('REDIS'), password => 's3cr3t',
                          unix => 1);
my $tcp = $redis->address;
my $unix = $redis->address('unix');

sub conf {
    my ($redis_args) = @_;
    return <<"EOF";
    token_ratelimit_zone \$http_x_key zone=za:1m rate=4r/m sync;
    token_ratelimit_zone \$http_x_key zone=zs:1m rate=4r/m sync=strict;
    token_ratelimit_redis $redis_args interval=50ms timeout=200ms;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /za { token_ratelimit zone=za; empty_gif; }
        location /zs { token_ratelimit zone=zs; empty_gif; }
        # never counts: makes the node read a key's cluster total
        location /peek-za { token_ratelimit zone=za count=failed; empty_gif; }
    }
EOF
}

$A->write_config(conf("$tcp password=s3cr3t db=3 prefix=app1:"));
$D->write_config(conf("$unix password=s3cr3t db=3 prefix=app1:"));
$B->write_config(conf("$tcp password=wrong fail=closed"));
$E->write_config(conf("$tcp db=3 prefix=app1:"));
$_->run for $A, $D, $B, $E;

sub hit {
    my ($t, $path, $key) = @_;
    return $t->get($path, headers => { 'X-Key' => $key });
}

sub statuses {
    my ($t, $path, $key, $n) = @_;
    return join ' ', map { hit($t, $path, $key)->{status} } 1 .. $n;
}

# --- password and db, over TCP ---------------------------------------------------

is(statuses($A, '/za', 'k', 2), '200 200', 'A (TCP, AUTH, db 3): admits');
is(statuses($A, '/zs', 'k', 2), '200 200', 'A: strict admits');
ok(TRLRedis::wait_for(2, sub {
       $redis->hsum('app1:{za:k}', 3) == 2
   }), 'A: async key app1:{za:k} in db 3 holds 2');
is($redis->hsum('app1:{zs:k}', 3), 2, 'A: strict key app1:{zs:k} in db 3 holds 2');
is(join(' ', $redis->scan('*', 0)), '', 'nothing in db 0');
is(join(' ', $redis->scan('trl:*', 3)), '', 'no key with the default prefix');

# --- the unix socket, same db and prefix: one cluster with A ----------------------

is(hit($D, '/zs', 'k')->{status}, 200,
   'D (unix socket): strict admits the 3rd of 4');
is(hit($A, '/zs', 'k')->{status}, 200, 'A: the 4th');
is(hit($D, '/zs', 'k')->{status}, 429, 'D: the 5th is rejected');
is($redis->hsum('app1:{zs:k}', 3), 4, 'Redis holds 4 (from A and D)');
# async: a node decides at once on the total it last read; D reads it
hit($D, '/peek-za', 'k');
sleep 0.15;
is(statuses($D, '/za', 'k', 3), '200 200 429',
   "D: async counts A's 2 and admits 2");
ok(TRLRedis::wait_for(2, sub {
       $redis->hsum('app1:{za:k}', 3) == 4
   }), 'D published over the unix socket');
my @clients = $redis->clients;
my $unix_clients = grep { /\baddr=\/|\bladdr=\// || /unix/ } @clients;
cmp_ok($unix_clients, '>=', 1, 'D is connected over the unix socket')
    or diag(join "\n", @clients);

# --- a wrong password: unreachable ----------------------------------------------

{
    sleep 0.3;
    my $r = hit($B, '/za', 'b');
    is($r->{status}, 503, 'B (wrong password, fail=closed): async zone 503');
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, 'with Retry-After');
    $r = hit($B, '/zs', 'b');
    is($r->{status}, 503, 'B: strict zone 503');
    my @err = grep { /\[error\]/ && /redis/i } split /\n/, $B->error_log;
    ok(@err, 'B: an [error] about redis') or diag($B->error_log);
    diag("B: $err[0]") if @err;
    is(join(' ', $redis->scan('*', 0)), '', 'B wrote nothing to db 0');
}

# --- no password: unreachable, fail=open limits alone ----------------------------

{
    sleep 0.3;
    is(statuses($E, '/zs', 'e', 5), '200 200 200 200 429',
       'E (no password, fail=open): strict limits with its own counts');
    is(statuses($E, '/za', 'e', 5), '200 200 200 200 429',
       'E: async limits with its own counts');
    sleep 0.3;
    is(join(' ', $redis->scan('app1:{z?:e}', 3)), '',
       'E wrote nothing');
    my @err = grep { /\[error\]/ && /redis/i } split /\n/, $E->error_log;
    ok(@err, 'E: an [error] about redis') or diag($E->error_log);
}

$_->stop for $A, $D, $B, $E;
$_->no_alerts for $A, $D, $B, $E;
done_testing;
