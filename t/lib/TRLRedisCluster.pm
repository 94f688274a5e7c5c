package TRLRedisCluster;

# A real Redis Cluster for the cluster= tests: masters (and replicas) are
# TRLRedis servers started with --cluster-enabled on free loopback ports
# and joined by "redis-cli --cluster create"; new() returns once every node
# says cluster_state:ok (at most 30 s).  Every wait is bounded.
#
#     my $c = TRLRedisCluster->new(masters => 3, replicas => 1,
#                                  password => 'pw');      # optional
#     'token_ratelimit_redis cluster=' . $c->seeds . ';'
#     my $node = $c->node_of('trl:{z:k}');    # the master serving a key
#     $c->cli('GET', 'x');                    # redis-cli -c on a seed

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use TRLRedis;

sub new {
    my ($class, %opt) = @_;
    my $masters = $opt{masters} // 3;
    my $replicas = $opt{replicas} // 0;
    my $n = $masters * (1 + $replicas);

    # password => PW: every node wants it (requirepass, and masterauth
    # for its replicas)
    my $pw = $opt{password};
    my @nodes = map {
        TRLRedis->new(cluster => 1, password => $pw,
                      args => ['--cluster-config-file', 'nodes.conf',
                               '--cluster-node-timeout',
                               $opt{node_timeout} // 1000,
                               '--cluster-require-full-coverage', 'yes',
                               defined $pw ? ('--masterauth', $pw) : ()])
    } 1 .. $n;

    my $self = bless { nodes => \@nodes, masters => $masters }, $class;

    my @cmd = ('timeout', '-s', 'KILL', 30, $TRLRedis::CLI,
               (defined $pw ? ('-a', $pw, '--no-auth-warning') : ()),
               '--cluster', 'create', (map { $_->address } @nodes),
               '--cluster-replicas', $replicas, '--cluster-yes');
    my $out = `@cmd 2>&1`;
    $? == 0 or die "redis-cli --cluster create failed:\n$out";

    $self->wait_ok(30) or die "the cluster is not ok after 30 s:\n"
                              . $nodes[0]->cli('CLUSTER', 'INFO');
    return $self;
}

sub nodes { @{$_[0]{nodes}} }

# "127.0.0.1:P1,127.0.0.1:P2,...": every node, for cluster=
sub seeds { join ',', map { $_->address } $_[0]->nodes }

# Waits until every running node says cluster_state:ok and agrees on who
# serves every slot; returns false after secs.
sub wait_ok {
    my ($self, $secs) = @_;
    my $deadline = time + ($secs // 20);
    while (time < $deadline) {
        my $ok = 1;
        for my $node (grep { $_->running } $self->nodes) {
            my $info = $node->cli('CLUSTER', 'INFO');
            $ok = 0, last unless $info =~ /cluster_state:ok/
                                 && $info =~ /cluster_slots_ok:16384/;
        }
        return 1 if $ok && $self->masters == $self->{masters};
        sleep 0.1;
    }
    return 0;
}

# The running masters, by CLUSTER NODES of a running node.
sub masters {
    my ($self) = @_;
    my ($any) = grep { $_->running } $self->nodes or return 0;
    my @m = grep { /\bmaster\b/ && !/\bfail\b/ && /\d+-\d+|\d+$/ }
            split /\n/, $any->cli('CLUSTER', 'NODES');
    return scalar grep { (split / /)[8] } @m;
}

# The slot of a Redis key, as Redis computes it.
sub slot {
    my ($self, $key) = @_;
    my ($any) = grep { $_->running } $self->nodes;
    return $any->cli('CLUSTER', 'KEYSLOT', $key);
}

# The slot of a Redis key, computed here (CRC16-XMODEM of the key or of its
# hash tag, modulo 16384, as the Redis Cluster specification says): for
# searching keys by slot without a redis-cli call per candidate.
sub keyslot {
    my ($key) = @_;
    if ($key =~ /\{([^}]+)\}/) {
        $key = $1;
    }
    my $crc = 0;
    for my $byte (unpack 'C*', $key) {
        $crc ^= $byte << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) & 0xffff
                                 : ($crc << 1) & 0xffff;
        }
    }
    return $crc % 16384;
}

# The node's cluster id.
sub id_of {
    my ($self, $node) = @_;
    return $node->cli('CLUSTER', 'MYID');
}

# The node (TRLRedis) that serves a Redis key now.
sub node_of {
    my ($self, $key) = @_;
    my $slot = $self->slot($key);
    for my $node (grep { $_->running } $self->nodes) {
        my $role = $node->cli('ROLE');
        next unless $role =~ /^master/;
        # a master serves the slot when it owns it in its own view
        my ($me) = grep { /\bmyself\b/ } split /\n/,
                   $node->cli('CLUSTER', 'NODES');
        for my $range ((split / /, $me)[8 .. 40]) {
            next unless defined $range && $range =~ /^(\d+)(?:-(\d+))?$/;
            my ($lo, $hi) = ($1, $2 // $1);
            return $node if $slot >= $lo && $slot <= $hi;
        }
    }
    return undef;
}

# redis-cli -c (following redirections) on the first running node.
sub cli {
    my ($self, @args) = @_;
    my ($any) = grep { $_->running } $self->nodes;
    return $any->cli('-c', @args);
}

1;
