#!/usr/bin/perl
# A Redis that answers, but refuses the module's calls (a read-only replica:
# READONLY to every script that writes), is an outage (t/redis_health.t)
# logged once, not once per call: with the calls that are retried
# (publishes every interval, the lists' reconcile every second, the link's
# probe) and strict decisions, over 3 s the error log gains the one line
# that names the refusal and its reason, from one of the node's two
# workers.  Once Redis serves again (REPLICAOF NO ONE), one line says so,
# with how long it lasted and how many calls were refused.
#
# Today's per-call logging wrote tens of lines a second.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $t = TRL->new(workers => 2);
my $master = TRLRedis->new(port => $t->port('MASTER'));
my $redis = TRLRedis->new(port => $t->port('REDIS'));
my $raddr = $redis->address;
(my $raddr_re = $raddr) =~ s/\./\\./g;

$master->cli('CONFIG', 'SET', 'repl-diskless-sync-delay', '0');
like($redis->cli('REPLICAOF', '127.0.0.1', $master->port), qr/OK/,
     'Redis is a replica (read-only)');
ok(TRLRedis::wait_for(10, sub {
       $redis->cli('INFO', 'replication') =~ /master_link_status:up/
   }), 'the replica is in sync with its master');
like($redis->cli('SET', 'probe', 1), qr/READONLY/,
     'the replica refuses writes');

$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=as:1m rate=3r/m sync;
    token_ratelimit_zone \$http_x_key zone=st:1m rate=3r/m sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=500ms;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        location /as { token_ratelimit zone=as; empty_gif; }
        location /st { token_ratelimit zone=st; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF
$t->run;

sub hit {
    my ($path, $key) = @_;
    return $t->get($path, headers => { 'X-Key' => $key })->{status};
}

# The module's lines about Redis in the error log, from offset on.
sub redis_lines {
    my ($from) = @_;
    return grep { /token_ratelimit/ && /redis/i }
           split /\n/, substr($t->error_log, $from);
}

sub refused_lines { grep { /is unreachable \(.* refused: / } @_ }
sub again_lines { grep { /reachable again/ } @_ }

# the lists' first reconcile comes right after the start
my $log0 = 0;

# --- refused -----------------------------------------------------------------

my $t0 = time;
my @st;
for my $i (1 .. 6) {
    push @st, hit('/as', "a$i"), hit('/st', "s$i");
}
is("@st", join(' ', (200) x 12),
   'refused: requests are admitted (fail=open, counted locally)');
# the publishes of a1..a6 are refused and retried every interval; the
# lists' reconcile is refused every second
sleep 3 - (time - $t0) if time - $t0 < 3;
push @st, hit('/st', 's7'), hit('/as', 'a7');

{
    my @lines = redis_lines($log0);
    cmp_ok(scalar @lines, '<=', 2,
           'refused: at most a couple of lines about redis in 3 s ('
           . scalar(@lines) . ')')
        or diag(join "\n", @lines[0 .. ($#lines < 9 ? $#lines : 9)]);
    my @r = refused_lines(@lines);
    is(scalar @r, 1, 'refused: the outage is logged once');
    like($r[0] // '', qr/\[error\].*redis $raddr_re is unreachable .*refused: READONLY/,
         'refused: [error], the address, and the reason (READONLY)');
    is(scalar again_lines(@lines), 0, 'refused: no "again" line yet');
}

# --- served again --------------------------------------------------------------

$master->cli('CONFIG', 'SET', 'repl-diskless-sync-delay', '0');
like($redis->cli('REPLICAOF', 'NO', 'ONE'), qr/OK/, 'REPLICAOF NO ONE');
my $log1 = length $t->error_log;
my $up_at = time;
my $n = 0;
ok(TRLRedis::wait_for(10, sub {
       $n++;
       hit('/as', "b$n");
       hit('/st', "b$n");
       again_lines(redis_lines($log1));
   }), 'served again: logged');
diag(sprintf 'the "again" line came %.2f s after REPLICAOF NO ONE',
             time - $up_at);
for (1 .. 5) {
    $n++;
    hit('/st', "b$n");
    sleep 0.1;
}
{
    my @lines = redis_lines($log1);
    my @a = again_lines(@lines);
    is(scalar @a, 1, 'served again: one line') or diag(join "\n", @a);
    like($a[0] // '', qr/redis $raddr_re is reachable again after \d+ s \(\d+ calls refused\)/,
         'served again: the address, how long, how many calls were refused');
    my ($calls) = ($a[0] // '') =~ /\((\d+) calls refused\)/;
    cmp_ok($calls // 0, '>=', 4,
           'served again: the retried calls were counted (' . ($calls // 0)
           . ')');
    is(scalar refused_lines(@lines), 0, 'served again: no refusal since');
}

# the admissions made meanwhile are published
ok(TRLRedis::wait_for(2, sub {
       $redis->hsum(TRLRedis::key_name('as', 'a1')) == 1
   }), 'served again: the admissions refused meanwhile are published');
is(hit('/st', 'fresh') . ' ' . $redis->hsum(TRLRedis::key_name('st', 'fresh')),
   '200 1', 'served again: strict decides in Redis');

$t->no_alerts;
done_testing;
