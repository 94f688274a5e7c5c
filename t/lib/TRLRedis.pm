package TRLRedis;

# A real redis-server (Debian's /usr/bin/redis-server, REDIS_SERVER to
# override) for the cluster-sync tests: loopback TCP on a free port (and,
# with unix => 1, a unix socket in its directory), persistence off, an
# optional password.  Every wait is bounded; every redis-cli call runs under
# a time limit, so a frozen server (pause) cannot hang a test.
#
#     my $r = TRLRedis->new(port => $t->port('REDIS'));
#     $t->write_config(... 'token_ratelimit_redis ' . $r->address . ';' ...);
#     $r->cli('HGETALL', 'trl:{z:k}');
#     $r->stop; $r->start;          # same port, all data gone
#     $r->pause; $r->resume;        # SIGSTOP / SIGCONT
#     $r->client_count;             # normal clients, this cli not counted

use strict;
use warnings;

use Digest::SHA ();
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

our $SERVER = $ENV{REDIS_SERVER} || '/usr/bin/redis-server';
our $CLI = $ENV{REDIS_CLI} || '/usr/bin/redis-cli';

my %used_ports;

# A test stopped with Ctrl-C or SIGTERM still runs DESTROY (redis-server is
# not a daemon of its own; it would outlive the test).
for my $sig ('INT', 'TERM') {
    $SIG{$sig} = sub { exit 1 } unless $SIG{$sig};
}

# new(port => N, password => 'pw', unix => 1, dir => '/path',
#     args => ['--maxmemory', '1mb'], cluster => 1)
# args: more redis-server arguments.  cluster => 1: --cluster-enabled yes
# (no slot assigned) on a port whose cluster bus port (+10000) is free too.
sub new {
    my ($class, %opt) = @_;

    -x $SERVER or die "no redis-server at $SERVER "
                      . "(scripts/install-deps.sh installs it)\n";
    -x $CLI or die "no redis-cli at $CLI\n";

    my $dir = $opt{dir};
    unless ($dir) {
        $dir = tempdir('trl-redis-XXXXXX', TMPDIR => 1,
                       CLEANUP => !$ENV{TRL_KEEP});
    }
    # nginx workers run as nobody: they must reach the unix socket
    chmod 0755, $dir;

    my $port = $opt{port};
    if ($opt{cluster}) {
        $port = cluster_port();
        $opt{args} = ['--cluster-enabled', 'yes', @{$opt{args} || []}];
    }

    my $self = bless {
        dir => $dir,
        port => $port || free_port(),
        password => $opt{password},
        unix => $opt{unix},
        args => $opt{args} || [],
        sentinel => $opt{sentinel},
        pid => undef,
        paused => 0,
    }, $class;
    $used_ports{$self->{port}}++;

    $self->start;
    return $self;
}

# TRL's: below the ephemeral range, never twice in this process.
sub free_port {
    require TRL;
    my $port = TRL::free_port();
    $used_ports{$port}++;
    return $port;
}

# A free port whose port + 10000 is free too.
sub cluster_port {
    for (1 .. 50) {
        my $port = free_port();
        next if $port + 10000 > 65535;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port + 10000,
                                      Proto => 'tcp', Listen => 1)
            or next;
        close $s;
        $used_ports{$port + 10000}++;
        TRL::port_taken($port + 10000);
        return $port;
    }
    die "no free port pair for a cluster node";
}

# A sentinel (redis-server sentinel.conf --sentinel) that monitors the
# master on 127.0.0.1:master as name:
#     TRLRedis->sentinel(master => $m->port, name => 'trl', quorum => 2,
#                        down_after => 500, failover_timeout => 2000,
#                        auth_pass => 'pw', password => 'sentinel pw');
sub sentinel {
    my ($class, %opt) = @_;
    my %s = (name => 'trl', quorum => 2, down_after => 500,
             failover_timeout => 2000);
    $s{$_} = delete $opt{$_}
        for grep { exists $opt{$_} }
            qw(master name quorum down_after failover_timeout auth_pass);
    defined $s{master} or die "sentinel: no master port";
    return $class->new(%opt, sentinel => \%s);
}

# A sentinel's master as "127.0.0.1:port" (undef when it has none).
sub master_addr {
    my ($self, $name) = @_;
    my @l = $self->cli_lines('SENTINEL', 'get-master-addr-by-name',
                             $name // $self->{sentinel}{name});
    return @l == 2 && $l[1] =~ /^\d+$/ ? "$l[0]:$l[1]" : undef;
}

# A sentinel's view of its master: SENTINEL master as a perl hash.
sub sentinel_master {
    my ($self, $name) = @_;
    my @l = $self->cli_lines('SENTINEL', 'master',
                             $name // $self->{sentinel}{name});
    return () if @l % 2;
    return @l;
}

# Waits (at most secs) until every sentinel knows the others and at least
# replicas replicas of its master: then a failover can happen.
sub sentinels_ready {
    my ($secs, $replicas, @sentinels) = @_;
    return wait_for($secs, sub {
        for my $s (@sentinels) {
            my %m = $s->sentinel_master;
            return 0 unless ($m{'num-other-sentinels'} // -1)
                            == @sentinels - 1
                            && ($m{'num-slaves'} // 0) >= $replicas;
        }
        return 1;
    });
}

# The first line of ROLE: "master", "slave" or "sentinel".
sub role {
    my ($self) = @_;
    return ($self->cli_lines('ROLE'))[0] // '';
}

sub port { $_[0]{port} }
sub dir { $_[0]{dir} }
sub pid { $_[0]{pid} }
sub password { $_[0]{password} }
sub socket_path { "$_[0]{dir}/redis.sock" }

# "127.0.0.1:PORT", or "unix:/path" with address('unix').
sub address {
    my ($self, $kind) = @_;
    return 'unix:' . $self->socket_path if ($kind // '') eq 'unix';
    return "127.0.0.1:$self->{port}";
}

sub server_log { my ($self) = @_; return slurp("$self->{dir}/redis.log") }

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    local $/;
    my $c = <$fh>;
    close $fh;
    return $c // '';
}

# Starts redis-server (a fresh one: nothing is persisted) on the same port
# and waits (at most 10 s) until it answers PING.
sub start {
    my ($self) = @_;
    return if $self->{pid};

    my @args = ($SERVER);
    if (my $s = $self->{sentinel}) {
        # the sentinel rewrites its file: written once, kept by restarts
        my $conf = "$self->{dir}/sentinel.conf";
        unless (-e $conf) {
            open my $fh, '>', $conf or die "$conf: $!";
            print $fh "sentinel monitor $s->{name} 127.0.0.1 $s->{master} "
                      . "$s->{quorum}\n"
                      . "sentinel down-after-milliseconds $s->{name} "
                      . "$s->{down_after}\n"
                      . "sentinel failover-timeout $s->{name} "
                      . "$s->{failover_timeout}\n"
                      . "sentinel parallel-syncs $s->{name} 1\n";
            print $fh "sentinel auth-pass $s->{name} $s->{auth_pass}\n"
                if defined $s->{auth_pass};
            close $fh;
        }
        push @args, $conf, '--sentinel';
    }
    push @args,
        '--port', $self->{port},
        '--bind', '127.0.0.1',
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
        '--protected-mode', 'no',
        '--dir', $self->{dir},
        '--logfile', "$self->{dir}/redis.log",
        $self->{sentinel} ? () : ('--databases', '16'),
        '--maxclients', '1000';
    if ($self->{unix}) {
        unlink $self->socket_path;
        push @args, '--unixsocket', $self->socket_path,
                    '--unixsocketperm', '777';
    }
    push @args, '--requirepass', $self->{password}
        if defined $self->{password};
    push @args, @{$self->{args}};

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/redis.out";
        open STDERR, '>&', \*STDOUT;
        delete $ENV{LD_PRELOAD};    # make test-asan preloads nginx's only
        exec @args or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{paused} = 0;

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{pid} = undef;
            die "redis-server exited at start:\n"
                . slurp("$self->{dir}/redis.out") . $self->server_log;
        }
        my $pong = $self->cli_timeout(2, 'PING');
        return $self
            if $pong =~ /PONG/ && (!$self->{unix} || -S $self->socket_path);
        sleep 0.05;
    }
    die "redis-server on port $self->{port} did not answer PING in 10 s:\n"
        . $self->server_log;
}

# Stops the server (SIGTERM; SIGKILL after 5 s).  With kill => 1 at once
# with SIGKILL, like a crash.
sub stop {
    my ($self, %opt) = @_;
    my $pid = $self->{pid} or return;
    kill 'CONT', $pid if $self->{paused};
    $self->{paused} = 0;
    kill($opt{kill} ? 'KILL' : 'TERM', $pid);
    my $deadline = time + 5;
    while (time < $deadline) {
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    if (kill 0, $pid) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
    $self->{pid} = undef;
    # the port must be free again before this returns
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                      Proto => 'tcp') or last;
        close $s;
        sleep 0.02;
    }
}

# Stops and starts: same port, every key gone, scripts flushed.
sub restart {
    my ($self) = @_;
    $self->stop;
    $self->start;
}

# SIGSTOP: connections are accepted by the kernel, nothing is answered.
sub pause {
    my ($self) = @_;
    kill 'STOP', $self->{pid} or die "pause: $!";
    $self->{paused} = 1;
}

sub resume {
    my ($self) = @_;
    kill 'CONT', $self->{pid} or die "resume: $!";
    $self->{paused} = 0;
}

sub running { defined $_[0]{pid} }

sub cli_args {
    my ($self, %o) = @_;
    my @a = ($CLI, '-h', '127.0.0.1', '-p', $self->{port});
    push @a, '-a', $self->{password}, '--no-auth-warning'
        if defined $self->{password};
    return @a;
}

# redis-cli with the given arguments (list form, nothing goes through a
# shell); returns its output (stdout and stderr) with the last newline
# removed.  At most 5 s.  Before any argument, "-n", DB selects a database.
sub cli {
    my ($self, @args) = @_;
    return $self->cli_timeout(5, @args);
}

sub cli_timeout {
    my ($self, $secs, @args) = @_;
    my @cmd = ('timeout', '-s', 'KILL', $secs, $self->cli_args, @args);
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        delete $ENV{LD_PRELOAD};
        exec @cmd or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\n\z//;
    return $out;
}

# The output of cli as a list of lines.
sub cli_lines {
    my ($self, @args) = @_;
    return grep { length } split /\n/, $self->cli(@args);
}

# Keys matching a pattern (redis-cli --scan), sorted.  scan(pattern, db).
sub scan {
    my ($self, $pattern, $db) = @_;
    my @n = defined $db ? ('-n', $db) : ();
    return sort $self->cli_lines(@n, '--scan', '--pattern', $pattern);
}

# A hash as a perl hash (field => value).  hgetall(key, db).
sub hgetall {
    my ($self, $key, $db) = @_;
    my @n = defined $db ? ('-n', $db) : ();
    my @l = $self->cli_lines(@n, 'HGETALL', $key);
    return () if @l % 2;
    return @l;
}

# The admissions a key's hash counts: the sum of its time cells (0 when
# there is none).
sub hsum {
    my ($self, $key, $db) = @_;
    my %h = $self->hgetall($key, $db);
    my $sum = 0;
    # the time cells (numeric names): not pu, pv, nor a node's reserved
    # places (l:<node>:<end>)
    $sum += $h{$_} for grep { /^\d+$/ && $h{$_} =~ /^-?\d+$/ } keys %h;
    return $sum;
}

# The sum over the cells of a key's hash that are still in the window
# (window and cell width in ms): fields >= floor((now - window) / cell).
sub hsum_window {
    my ($self, $key, $window_ms, $cell_ms, $db) = @_;
    my %h = $self->hgetall($key, $db);
    my $first = int(($self->time_ms - $window_ms) / $cell_ms);
    my $sum = 0;
    for my $f (keys %h) {
        $sum += $h{$f} if $f =~ /^\d+$/ && $f >= $first
                          && $h{$f} =~ /^-?\d+$/;
    }
    return $sum;
}

# Redis server time in ms.
sub time_ms {
    my ($self) = @_;
    my ($s, $us) = $self->cli_lines('TIME');
    return undef unless defined $us;
    return $s * 1000 + int($us / 1000);
}

# Clients of type normal, not counting the redis-cli that asks.
sub clients {
    my ($self) = @_;
    return grep { !/\bcmd=client\|list\b/ }
           $self->cli_lines('CLIENT', 'LIST', 'TYPE', 'normal');
}

sub client_count { scalar($_[0]->clients) }

# INFO commandstats as { command => calls }, e.g. {evalsha => 12}.
sub commandstats {
    my ($self) = @_;
    my %c;
    for ($self->cli_lines('INFO', 'commandstats')) {
        $c{$1} = $2 if /^cmdstat_([^:]+):calls=(\d+)/;
    }
    return \%c;
}

# Calls of one command so far (0 when never called).
sub calls {
    my ($self, $cmd) = @_;
    return $self->commandstats->{lc $cmd} // 0;
}

# Polls code every 20 ms until it returns true, at most secs; returns the
# last value (false on time out).
sub wait_for {
    my ($secs, $code) = @_;
    my $deadline = time + $secs;
    while (1) {
        my $v = $code->();
        return $v if $v;
        return $v if time >= $deadline;
        sleep 0.02;
    }
}

# The Redis key of (zone, key) as documented: prefix{zone:name}.  A key of
# up to 64 bytes: the key verbatim when every byte is printable ASCII other
# than { and } and it does not start with "x:", otherwise "x:" and its
# lowercase hex.  A longer key: its first 32 bytes if they are such a key,
# otherwise "x:" and the hex of its first 16 bytes (fewer, down to 13, when
# the 17th is a UTF-8 continuation byte), then "~" and the first 32 hex
# digits of the SHA-256 of the whole key.
sub key_name {
    my ($zone, $key, $prefix) = @_;
    $prefix //= 'trl:';
    my $plain = sub {
        $_[0] =~ /^[\x21-\x7a\x7c\x7e]*\z/ && $_[0] !~ /^x:/
    };
    my $part;
    if (length $key <= 64) {
        $part = $plain->($key) ? $key : 'x:' . unpack('H*', $key);
    } else {
        my $head = substr($key, 0, 32);
        unless ($plain->($head)) {
            my $n = 16;
            $n-- while $n > 13 && (ord(substr($key, $n, 1)) & 0xc0) == 0x80;
            $head = 'x:' . unpack('H*', substr($key, 0, $n));
        }
        $part = $head . '~' . substr(Digest::SHA::sha256_hex($key), 0, 32);
    }
    return "$prefix\{$zone:$part}";
}

sub DESTROY {
    my ($self) = @_;
    local $?;
    $self->stop if $self->{pid};
}

1;
