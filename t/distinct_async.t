#!/usr/bin/perl
# Distinct zones with sync=async: a value the node holds for the key (admitted
# through Redis, live, settled) is decided on the node at once; any other
# value goes to Redis exactly as with sync=strict.
#
# - 20 parallel attempts with 20 usernames from one address, spread over 3
#   nodes (2 workers each), at N=5: exactly 5 admitted (new values are
#   exact while Redis answers), Redis holds 5.
# - repeats of an admitted name on the node that admitted it pass without
#   a call to Redis for the key (MONITOR shows none; the members'
#   scores, their times, unchanged); a repeat on another node passes
#   through Redis (its member refreshed), and that node then holds it; a
#   new name is rejected everywhere.
# - Redis stopped: the fail policy, as for sync=strict (fail=open: each
#   node's own slots; fail=closed: 503, even for a name the node holds).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use TRL;
use TRLRedis;

my $NODES = 3;
my $SECRET = 'q7Wc2Lr9xP4tVb8nJm3sK6dZ';
my @t = map { TRL->new(workers => 2) } 1 .. $NODES;
my $closed = TRL->new;
my $redis = TRLRedis->new(port => $t[0]->port('REDIS'));
my $raddr = $redis->address;

sub conf {
    my ($fail) = @_;
    return <<"EOF";
    token_ratelimit_subject \$trl_user from=arg:user case=lower;
    token_ratelimit_distinct_secret $SECRET;
    token_ratelimit_zone \$http_x_client zone=acc:1m rate=5r/10m
                         distinct=\$trl_user sync=async;
    token_ratelimit_redis $raddr interval=50ms timeout=2s fail=$fail;
    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        add_header X-Distinct \$token_ratelimit_distinct always;
        location /login { token_ratelimit zone=acc; empty_gif; }
    }
EOF
}

for my $i (0 .. $NODES - 1) {
    $t[$i]->write_config(conf('open'));
    $t[$i]->run;
}
$closed->write_config(conf('closed'));
$closed->run;

sub login {
    my ($t, $client, $user) = @_;
    return $t->get("/login?user=$user", headers => { 'X-Client' => $client });
}

sub tally {
    my %n;
    $n{$_->{status}}++ for @_;
    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

# Redis's MONITOR: every command Redis runs from now on, for monitored()
sub monitor {
    my $s = IO::Socket::INET->new(PeerAddr => $redis->address,
                                  Proto => 'tcp', Timeout => 5)
        or die "monitor: $!";
    print $s "MONITOR\r\n";
    my $ok = <$s>;
    die "MONITOR: $ok" unless ($ok // '') =~ /^\+OK/;
    return $s;
}

# the commands seen so far (ends the monitoring)
sub monitored {
    my ($s) = @_;
    sleep 0.2;                          # what is in flight reaches Redis
    my ($buf, @lines) = ('');
    my $sel = IO::Select->new($s);
    while ($sel->can_read(0.2)) {
        last unless sysread($s, $buf, 65536, length $buf);
    }
    close $s;
    return grep { /EVAL/i } split /\r\n/, $buf;
}

sub zcard { $redis->cli('ZCARD', TRLRedis::key_name(@_)) }

for my $i (0 .. $NODES - 1) {
    ok(TRLRedis::wait_for(10, sub {
           login($t[$i], "probe$i", 'p');
           zcard('acc', "probe$i") == 1
       }), "node $i asks Redis for a new value");
}

# --- 20 parallel new names over 3 nodes, N=5 ------------------------------

my @admitted;
{
    my @resp = TRL::collect_responses(20, TRL::send_all(map {
        [$t[$_ % $NODES],
         TRL::build_request('GET', "/login?user=user$_",
                            headers => { 'X-Client' => 'k1' })]
    } 0 .. 19));
    @admitted = grep { $resp[$_]{status} == 200 } 0 .. 19;
    is(scalar @admitted, 5,
       '20 parallel distinct names over 3 nodes, N=5: exactly 5 admitted')
        or diag(tally(@resp));
    is(scalar(grep { $_->{status} == 429 } @resp), 15, '15 rejected')
        or diag(tally(@resp));
    is(zcard('acc', 'k1'), 5, 'Redis holds exactly 5 members');
}

# --- repeats: held here, no Redis; elsewhere, through Redis ---------------

# a member's score is its time in Redis: a repeat decided by Redis moves
# it, one decided on a node leaves it as it is
sub fp_scores {
    return $redis->cli('ZRANGE', TRLRedis::key_name('acc', 'k1'), 0, -1,
                       'WITHSCORES');
}

{
    sleep 0.3;                  # what the burst left in flight is done
    my $scores = fp_scores();
    my $mon = monitor();
    my @st;
    for my $j (@admitted) {
        push @st, login($t[$j % $NODES], 'k1', "user$j")->{status} for 1 .. 3;
    }
    is("@st", join(' ', ('200') x 15),
       'repeats of each admitted name on the node that admitted it pass');
    my @calls = grep { /"\Q${\ TRLRedis::key_name('acc', 'k1')}\E"/ }
                monitored($mon);
    is(scalar @calls, 0,
       'those repeats made no call to Redis for the key (MONITOR)')
        or diag(join "\n", @calls);
    is(fp_scores(), $scores, '... and left the members\' times as they were');

    my $j = $admitted[0];
    my $other = $t[($j + 1) % $NODES];
    my $before = $redis->calls('evalsha');
    $mon = monitor();
    my $r = login($other, 'k1', "user$j");
    is($r->{status}, 200, 'a repeat on another node passes');
    is($r->{headers}{'x-distinct'}, 5, '... with the cluster count');
    ok($redis->calls('evalsha') > $before, '... asked through Redis');
    cmp_ok(scalar(grep { /"\Q${\ TRLRedis::key_name('acc', 'k1')}\E"/ }
                  monitored($mon)), '>=', 1,
           '... a call for the key, as MONITOR shows it');
    ok(fp_scores() ne $scores, '... which refreshed its member');
    sleep 0.05;
    $scores = fp_scores();
    is(login($other, 'k1', "user$j")->{status}, 200,
       'that node holds the name now');
    is(fp_scores(), $scores,
       '... and decides it by itself (its member\'s time unchanged)');
    is(zcard('acc', 'k1'), 5, 'repeats add no member');

    my @new = map { login($t[$_], 'k1', "fresh$_")->{status} }
              0 .. $NODES - 1;
    is("@new", '429 429 429', 'a new name is rejected on every node');
}

# --- Redis stopped: the fail policy ----------------------------------------

ok(TRLRedis::wait_for(10, sub {
       login($closed, 'c1', 'held')->{status} == 200
   }), 'fail=closed node: a name admitted through Redis');
$redis->stop;
{
    my @st = map { login($t[0], 'down', "d$_")->{status} } 0 .. 5;
    is("@st", '200 200 200 200 200 429',
       'Redis down, fail=open: node 0 counts 5 names on its own slots');
    is(login($closed, 'down2', 'x')->{status}, 503,
       'Redis down, fail=closed: a new name gets 503');
    is(login($closed, 'c1', 'held')->{status}, 503,
       'Redis down, fail=closed: a held name gets 503 too');
}

$_->stop for @t, $closed;
$_->no_alerts for @t, $closed;

# --- nginx -t ----------------------------------------------------------------

my $t2 = TRL->new;
$t2->config_fails(<<"EOF", [qr/"token_ratelimit_zone" "s" in \S+:\d+ has "distinct=" and "sync=async" but no "token_ratelimit_distinct_secret" is configured/], 'no secret');
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_zone \$http_x_client zone=s:1m rate=5r/m sync=async
                         distinct=\$http_x_user;
    server { listen 127.0.0.1:%%PORT%%; }
EOF

done_testing;
