#!/usr/bin/perl
# Scripts lost by Redis while the link stays up (SCRIPT FLUSH, a failover
# to a replica that never loaded them): the node's EVALSHA gets NOSCRIPT
# and is sent again as EVAL with the script's text, so nothing is lost.
#
# - strict zone: after SCRIPT FLUSH, decisions stay exact (3 of 4
#   admitted, Redis holds 3) and Redis saw EVAL calls;
# - async zone: the admissions made after the flush are published (the
#   Redis hash sums them) and the other node counts them;
# - the reply of an EVAL is as good as an EVALSHA's: no [error] or [alert]
#   about replies in either log.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use TRL;
use TRLRedis;

my ($A, $B) = map { TRL->new } 1 .. 2;
my $redis = TRLRedis->new(port => $A->port('REDIS'));
my $raddr = $redis->address;

for my $t ($A, $B) {
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=ns:1m rate=3r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=na:1m rate=5r/m sync;
    token_ratelimit_redis $raddr interval=50ms timeout=2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /ns { token_ratelimit zone=ns; empty_gif; }
        location /na { token_ratelimit zone=na; empty_gif; }
    }
EOF
    $t->run;
}

sub statuses {
    my ($t, $path, $key, $n) = @_;
    return join ' ', map {
        $t->get($path, headers => { 'X-Key' => $key })->{status}
    } 1 .. $n;
}

# the links are up and the scripts loaded: a first strict decision each
is(statuses($A, '/ns', 'warm-a', 1), '200', 'A: strict decision before');
is(statuses($B, '/ns', 'warm-b', 1), '200', 'B: strict decision before');
ok(TRLRedis::wait_for(5, sub { $redis->calls('evalsha') >= 2 }),
   'the nodes use EVALSHA');
my $eval0 = $redis->calls('eval');

like($redis->cli('SCRIPT', 'FLUSH'), qr/OK/, 'SCRIPT FLUSH');

# --- strict: exact through the fallback -----------------------------------------

is(statuses($A, '/ns', 'k', 2) . ' ' . statuses($B, '/ns', 'k', 2),
   '200 200 200 429',
   'strict after the flush: 3 of 4 admitted over two nodes');
is($redis->hsum(TRLRedis::key_name('ns', 'k')), 3,
   'strict after the flush: Redis holds exactly 3');
cmp_ok($redis->calls('eval'), '>', $eval0,
       'NOSCRIPT was answered by sending the script itself (EVAL)');

# --- async: admissions after the flush are published ----------------------------

$redis->cli('SCRIPT', 'FLUSH');
is(statuses($A, '/na', 'q', 3), '200 200 200',
   'async after the flush: A admits 3');
ok(TRLRedis::wait_for(3, sub {
       $redis->hsum(TRLRedis::key_name('na', 'q')) == 3
   }), 'async after the flush: the 3 admissions reach Redis')
    or diag('Redis holds ' . $redis->hsum(TRLRedis::key_name('na', 'q')));
# B learns the cluster total at its next publish of the key
is($B->get('/na', headers => { 'X-Key' => 'q' })->{status}, 200,
   'async: B admits the 4th');
sleep 0.3;
is(statuses($B, '/na', 'q', 2), '200 429',
   'async: B counts what A published after the flush (5th admitted, 6th 429)');

for my $t ($A, $B) {
    unlike($t->error_log, qr/\[(error|alert|crit)\].*(reply|script)/i,
           'no error about replies or scripts in the log');
}
$_->stop for $A, $B;
ok($_->no_alerts, 'no alerts') for $A, $B;

done_testing;
