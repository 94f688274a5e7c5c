#!/usr/bin/perl
# Reputation lists uploaded through the API, shared through Redis: nginx
# nodes (2 workers each) and one real redis-server.
#
# - A PUT on node A is in the hash <prefix>reputation:<NAME> (version =
#   the version A answered, checksum, body, at, node) and served by node B
#   within ~2 s: B's X-RateLimit-Limit shows the scaled N for a listed
#   client.  GET {loc}/reputation on both nodes shows the same version and
#   checksum, and "redis" says what Redis holds, the same on both; B's list
#   has origin "redis".  Each node logs each outcome once (A: published, B:
#   installed from Redis), and nothing while nothing changes.
# - An upload on B while Redis is down is installed on B ("unpublished":
#   true), published once Redis is back (a fresh, empty Redis: A, which
#   still has the older version, cannot win with it) and reaches A.
# - A body in Redis that does not decode (a newer version): each node
#   refuses it once, keeps its list and says why; a good upload ends it.
# - A reload of B keeps the list: served scaled at once, same version.
# - A third node started later gets the list from Redis.
# - With cluster= (three masters): two lists whose hashes are on two
#   masters, each uploaded on one node, are in the hash on the master of
#   its slot and served by the other node.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;
use TRLRedisCluster;

my @t = map { TRL->new(workers => 2) } 0 .. 2;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;
my $KEY = 'trl:reputation:up';

my $conf = <<"EOF";
    token_ratelimit_zone \$binary_remote_addr zone=login:1m rate=10000r/m;
    token_ratelimit_redis $raddr interval=50ms timeout=200ms;
    token_ratelimit_reputation size=8m;
    token_ratelimit_reputation_list up score=40;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /login { token_ratelimit zone=login scale=up:0.5; empty_gif; }
        location /api { token_ratelimit_api; }
    }
EOF

# node C starts later
for my $t (@t[0, 1]) {
    $t->write_config($conf);
    $t->run;
}

my $json = JSON::PP->new->allow_bignum;

sub call {
    my ($i, $method, $path, $body) = @_;
    my $r = $t[$i]->request(TRL::build_request($method, "/api$path",
                                               defined $body
                                               ? (body => $body) : ()));
    $r->{json} = eval { $json->decode($r->{body}) };
    return $r;
}
sub up { call($_[0], 'GET', '/reputation/up')->{json} || {} }
sub limit_of {
    my ($i, $addr) = @_;
    my $r = $t[$i]->get('/login', headers => { 'X-Forwarded-For' => $addr });
    return $r->{headers}{'x-ratelimit-limit'} // "status $r->{status}";
}
sub in_redis {
    my @v = $redis->cli_lines('HMGET', $KEY, 'version', 'checksum', 'at',
                              'node');
    return { version => $v[0], checksum => $v[1], at => $v[2],
             node => $v[3] };
}
sub wait_for { TRLRedis::wait_for(@_) }
sub count_in_log {
    my ($i, $re) = @_;
    return scalar(() = $t[$i]->error_log =~ /$re/g);
}

# --- an upload on A reaches B ------------------------------------------------------

is(limit_of(1, '203.0.113.7'), 10000, 'B: the full limit before');

my $r = call(0, 'PUT', '/reputation/up', "203.0.113.0/24\n2001:db8:7::/48\n");
is($r->{status}, 200, 'A: PUT') or diag($r->{body});
my $v1 = $r->{json}{version};
my $c1 = $r->{json}{checksum};
ok($v1 > 1_600_000_000_000, "A: version $v1");
my $t0 = time;

ok(wait_for(3, sub { (in_redis()->{version} // '') eq "$v1" }),
   'the upload is in Redis');
my $h = in_redis();
is($h->{checksum}, $c1, 'Redis: the checksum A answered');
ok(abs(($h->{at} // 0) - time) < 60, 'Redis: at, Unix seconds');
chomp(my $host = `hostname`);
is($h->{node}, $host, 'Redis: node, the host name');
my ($body_len) = $redis->cli_lines('HSTRLEN', $KEY, 'body');
ok($body_len > 0, "Redis: a body ($body_len bytes)");
ok(wait_for(2, sub { !up(0)->{unpublished} }), 'A: published');

ok(wait_for(3, sub { limit_of(1, '203.0.113.7') == 5000 }),
   'B: the scaled limit');
my $took = time - $t0;
ok($took < 2.5, sprintf('B served the upload %.2f s after the PUT', $took));
is(limit_of(1, '203.0.113.99'), 5000, 'B: another address of the range');
is(limit_of(1, '198.51.100.1'), 10000, 'B: an address outside: full');

# both polls have seen Redis's version
ok(wait_for(3, sub {
       my ($a, $b) = (up(0), up(1));
       ($a->{redis}{version} // 0) == $v1 && ($b->{redis}{version} // 0) == $v1
   }), 'both nodes have polled Redis');

{
    my @j = map { call($_, 'GET', '/reputation')->{json} || {} } 0, 1;
    my @l = map { (grep { $_->{name} eq 'up' } @{$_->{lists} || []})[0] || {}
                } @j;
    is($l[1]{version}, $l[0]{version}, 'GET /reputation: the same version');
    is($l[1]{checksum}, $l[0]{checksum}, '... and checksum');
    is($l[0]{checksum}, $c1, '... the one of the upload');
    is_deeply($l[0]{redis}, { version => $v1, checksum => $c1 },
              'A: redis field');
    is_deeply($l[1]{redis}, { version => $v1, checksum => $c1 },
              'B: redis field');
    is($l[0]{origin}, 'api', 'A: origin api');
    is($l[1]{origin}, 'redis', 'B: origin redis');
    is($l[1]{ranges6}, 1, 'B: the IPv6 range too');
    ok(!$l[1]{unpublished}, 'B: nothing to publish');
}

# each outcome once; a quiet poll logs nothing
sleep 3;
is(count_in_log(0, qr/"up": version $v1 published to Redis/), 1,
   'A: published, logged once');
is(count_in_log(1, qr/"up": version $v1 from Redis installed/), 1,
   'B: installed from Redis, logged once');
my @before = map { length $t[$_]->error_log } 0, 1;
sleep 2.5;
is(join('', map { substr($t[$_]->error_log, $before[$_])
                  =~ /reputation/ ? "node $_ logged; " : '' } 0, 1),
   '', 'polls that change nothing log nothing');

# --- an upload while Redis is down ----------------------------------------------

$redis->stop;
sleep 0.5;
$r = call(1, 'PUT', '/reputation/up', "198.51.100.0/24\n");
is($r->{status}, 200, 'B: PUT while Redis is down') or diag($r->{body});
my $v2 = $r->{json}{version};
ok($v2 > $v1, 'B: a newer version');
ok($r->{json}{unpublished}, 'B: unpublished');
is(limit_of(1, '198.51.100.1'), 5000, 'B: applies it at once');
is(limit_of(1, '203.0.113.7'), 10000, 'B: the old list is gone');
is(limit_of(0, '198.51.100.1'), 10000, 'A: still the old list');
like($t[1]->error_log, qr/"up": version $v2 is kept unpublished/,
     'B: logged that it waits for Redis');

$redis->start;                          # empty
ok(wait_for(8, sub { (in_redis()->{version} // '') eq "$v2" }),
   'B published the upload once Redis was back');
ok(wait_for(3, sub { limit_of(0, '198.51.100.1') == 5000 }),
   'A: took it from Redis');
is(limit_of(0, '203.0.113.7'), 10000, 'A: the older list is gone');
ok(wait_for(3, sub { !up(1)->{unpublished} }), 'B: published now');
like($t[1]->error_log, qr/"up": version $v2 published to Redis \(uploaded while/,
     'B: logged the late publication');
is(up(0)->{version}, $v2, 'A: the same version as B');
sleep 1.5;
is(in_redis()->{version}, $v2, 'Redis keeps the newest version');

# --- a body in Redis that does not decode ---------------------------------------

{
    my $bad = $v2 + 1;
    $redis->cli('HSET', $KEY, 'version', $bad, 'checksum',
                '0123456789abcdef', 'body', 'not a wire form');
    ok(wait_for(4, sub {
           count_in_log(0, qr/"up": version $bad from Redis not installed: .*; keeping version $v2/)
           && count_in_log(1, qr/"up": version $bad from Redis not installed/)
       }), 'both nodes: the bad version is refused, the version kept');
    like(up(0)->{error}{message} // '', qr/^redis version $bad: /,
         'A: the list says why');
    is(limit_of(0, '198.51.100.1'), 5000, 'A: still serves its list');
    sleep 2.5;
    is(count_in_log(0, qr/version $bad from Redis not installed/)
       + count_in_log(1, qr/version $bad from Redis not installed/), 2,
       'refused once per node, not at every poll');

    # a good upload ends it
    $r = call(0, 'PUT', '/reputation/up', "198.51.100.0/24\n");
    is($r->{status}, 200, 'A: a new upload');
    $v2 = $r->{json}{version};
    ok(wait_for(4, sub { up(1)->{version} == $v2 }), 'B: took it');
    is(up(0)->{error}, undef, 'A: no error any more');
}

# --- reload of B -----------------------------------------------------------------

{
    my $before = up(1);
    my ($rc, $out) = $t[1]->reload;
    is($rc, 0, 'B reloaded') or diag($out);
    is(limit_of(1, '198.51.100.1'), 5000, 'B: scaled at once after reload');
    my $after = up(1);
    is($after->{version}, $before->{version}, 'B: the same version');
    is($after->{checksum}, $before->{checksum}, 'B: the same checksum');
}

# --- a node started later ------------------------------------------------------------

$t[2]->write_config($conf);
$t0 = time;
$t[2]->run;
ok(wait_for(4, sub { limit_of(2, '198.51.100.1') == 5000 }),
   sprintf('C: got the list from Redis (%.2f s after its start)',
           time - $t0));
is(up(2)->{version}, $v2, 'C: the version of Redis');
is(up(2)->{origin}, 'redis', 'C: origin redis');

$_->no_alerts for @t;

# --- cluster=: each list's hash on the master of its own slot --------------------

{
    my $C = TRLRedisCluster->new(masters => 3);
    # two names whose hashes live on two different masters
    my @names = ('up');
    my $up_port = $C->node_of('trl:reputation:up')->port;
    for my $n (map { "list$_" } 1 .. 20) {
        next if $C->node_of("trl:reputation:$n")->port == $up_port;
        push @names, $n;
        last;
    }
    isnt($C->node_of("trl:reputation:$names[0]")->port,
         $C->node_of("trl:reputation:$names[1]")->port,
         "cluster: $names[0] and $names[1] on two masters");

    my @n = map { TRL->new(workers => 2) } 0 .. 1;
    my $seeds = $C->seeds;
    for my $t (@n) {
        $t->write_config(<<"EOF");
    token_ratelimit_zone \$binary_remote_addr zone=login:1m rate=10000r/m;
    token_ratelimit_redis cluster=$seeds timeout=200ms;
    token_ratelimit_reputation size=8m;
    token_ratelimit_reputation_list $names[0];
    token_ratelimit_reputation_list $names[1];

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /login {
            token_ratelimit zone=login scale=$names[0]:0.5,$names[1]:0.2;
            empty_gif;
        }
        location /api { token_ratelimit_api; }
    }
EOF
        $t->run;
    }

    my %addr = ($names[0] => '203.0.113.7', $names[1] => '198.51.100.7');
    my %want = ($names[0] => 5000, $names[1] => 2000);
    for my $name (@names) {
        my $r;
        # the node's links to the masters come up first
        wait_for(10, sub {
            $r = $n[0]->request(TRL::build_request('PUT',
                     "/api/reputation/$name", body => "$addr{$name}\n"));
            $r->{status} == 200
                && wait_for(1, sub {
                       my $j = $json->decode($n[0]->get(
                                   "/api/reputation/$name")->{body});
                       !$j->{unpublished};
                   });
        });
        is($r->{status}, 200, "cluster: PUT $name on node D");
        my $v = $json->decode($r->{body})->{version};
        my $node = $C->node_of("trl:reputation:$name");
        is($node->cli('HGET', "trl:reputation:$name", 'version'), $v,
           "cluster: $name is in the hash on the master of its slot");
        ok(wait_for(4, sub {
               my $g = $n[1]->get('/login',
                                  headers => { 'X-Forwarded-For'
                                               => $addr{$name} });
               ($g->{headers}{'x-ratelimit-limit'} // 0) == $want{$name}
           }), "cluster: node E serves $name");
    }

    $_->no_alerts for @n;
}

done_testing;
