package TRL;

# A small nginx-tests style harness for the token_ratelimit integration
# tests: every test gets its own temporary prefix and free loopback ports,
# runs Debian's real nginx (NGINX_BIN, default /usr/sbin/nginx) with the
# built module, talks HTTP over raw sockets, and checks at the end that the
# error log holds no [alert], [crit] or [emerg] line.
#
#     my $t = TRL->new;
#     $t->write_config(<<'EOF');
#         token_ratelimit_zone $binary_remote_addr zone=z:1m rate=3r/m;
#         server {
#             listen 127.0.0.1:%%PORT%%;
#             location / { token_ratelimit zone=z; empty_gif; }
#         }
#     EOF
#     $t->run;
#     my $r = $t->get('/');
#     is($r->{status}, 200);
#     is($r->{headers}{'x-ratelimit-remaining'}, 2);

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EINPROGRESS EAGAIN EWOULDBLOCK);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Scalar::Util qw(weaken);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use IO::Socket::IP;
use POSIX qw(WNOHANG);
use Socket qw(SOL_SOCKET SO_REUSEADDR);
use Test::More;
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $MODULE = $ENV{TRL_MODULE}
    || "$ROOT/build/ngx_http_token_ratelimit_module.so";
our $NGINX = $ENV{NGINX_BIN} || '/usr/sbin/nginx';

my %used_ports;
my %running;            # the nginx instances started, by address (weak)

sub new {
    my ($class, %opt) = @_;

    -x $NGINX or BAIL_OUT("no nginx binary at $NGINX");
    -f $MODULE or BAIL_OUT("module not built: $MODULE (run make)");

    # dir => PATH: a prefix of the caller's (make bench keeps its own
    # under build/bench), created if missing and never removed
    my $dir = $opt{dir};
    if ($dir) {
        make_path($dir);
    } else {
        $dir = tempdir('trl-test-XXXXXX', TMPDIR => 1,
                       CLEANUP => !$ENV{TRL_KEEP});
    }
    chmod 0755, $dir;
    mkdir "$dir/logs";
    mkdir "$dir/html";

    my $self = bless {
        dir => $dir,
        ports => {},
        children => [],
        workers => $opt{workers} || 1,
        module => $opt{module} || $MODULE,
    }, $class;

    diag("test prefix: $dir") if $ENV{TRL_KEEP};
    return $self;
}

sub dir { $_[0]{dir} }

# A free loopback port, stable per name within one test.
sub port {
    my ($self, $name) = @_;
    $name //= 'PORT';
    return $self->{ports}{$name} if $self->{ports}{$name};
    return $self->{ports}{$name} = free_port();
}

# A free loopback port, never handed out twice by this process.
sub free_port {
    # Below the ephemeral range: a port the kernel hands out as a free one
    # is also a client's next source port, and thousands of client
    # connections (other tests under prove -j2) then take it before nginx
    # binds it.
    my ($low) = (read_file_once('/proc/sys/net/ipv4/ip_local_port_range')
                 // '32768') =~ /(\d+)/;
    my $top = ($low // 32768) > 12000 ? $low - 1 : 0;

    for (1 .. 200) {
        my $want = $top ? 10000 + int(rand($top - 10000)) : 0;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $want, Proto => 'tcp',
                                      Listen => 1)
            or next;
        my $port = $s->sockport;
        close $s;
        next if $used_ports{$port}++;
        return $port;
    }
    die "no free port";
}

# A port taken otherwise (a Redis cluster node's bus port): never handed out.
sub port_taken { $used_ports{$_[0]}++ }

sub read_file_once {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    return scalar <$fh>;
}

# Writes nginx.conf: the harness's own preamble, then the given http block
# body.  %%PORT%% and %%PORT_<NAME>%% become free ports, %%DIR%% the prefix.
sub write_config {
    my ($self, $http, %opt) = @_;

    my $dir = $self->{dir};
    my $workers = $opt{workers} || $self->{workers};
    my $main = $opt{main} || '';
    my $events = $opt{events} || '';
    my $user = $> == 0 ? "user nobody nogroup;\n" : '';

    my $conf = <<"EOF";
load_module $self->{module};
$user
worker_processes $workers;
daemon on;
master_process on;
pid $dir/nginx.pid;
error_log $dir/logs/error.log info;
$main
events {
    worker_connections 1024;
    $events
}

http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
    keepalive_timeout 10s;

$http
}
EOF
    $conf = $self->expand($conf);
    $self->write_file('nginx.conf', $conf);
    return $conf;
}

# Runs a conf.d-style snippet (http-level directives in a file) in this
# harness: its upstream 127.0.0.1:9000 becomes the harness backend, its
# listen a free port (%%PORT%%).  Returns how many upstream addresses and
# listen directives were rewritten.
sub run_snippet {
    my ($self, $path) = @_;
    my $text = $self->read_file($path);
    length $text or die "$path: empty or unreadable";
    my $backend = $self->start_backend;
    my $up = ($text =~ s/127\.0\.0\.1:9000\b/127.0.0.1:$backend/g);
    my $ls = ($text =~ s/^(\s*)listen\s+[^;]+;/${1}listen 127.0.0.1:%%PORT%%;/mg);
    $self->write_config($text);
    $self->run;
    return ($up, $ls);
}

sub expand {
    my ($self, $text) = @_;
    $text =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    $text =~ s/%%PORT%%/$self->port('PORT')/ge;
    $text =~ s/%%DIR%%/$self->{dir}/g;
    return $text;
}

sub write_file {
    my ($self, $name, $content) = @_;
    my $path = "$self->{dir}/$name";
    open my $fh, '>', $path or die "$path: $!";
    binmode $fh;
    print $fh $content;
    close $fh;
    return $path;
}

sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '<', $path or return '';
    binmode $fh;
    local $/;
    my $content = <$fh>;
    close $fh;
    return $content;
}

sub nginx_args {
    my ($self) = @_;
    my $dir = $self->{dir};
    return ('-p', "$dir/", '-c', "$dir/nginx.conf", '-e',
            "$dir/logs/error.log");
}

# "nginx -t" on the current config: (exit code, combined output).
sub test_config {
    my ($self) = @_;
    my @cmd = ($NGINX, '-t', $self->nginx_args);
    my $out = qx{@cmd 2>&1};
    return ($? >> 8, $out);
}

# Writes the configuration and runs "nginx -t", which must fail with an
# [emerg] message matching every pattern of $res (array ref); $name names
# the case in the test output.  Returns (nginx's output, the
# configuration written).
sub config_fails {
    my ($self, $http, $res, $name, %opt) = @_;
    my $conf = $self->write_config($http, %opt);
    my ($rc, $out) = $self->test_config;
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/\[emerg\]/, "$name: an [emerg] message");
    like($out, $_, "$name: message matches $_") for @$res;
    like($out, qr/test failed/, "$name: nginx says the test failed");
    return ($out, $conf);
}

# A server block listening on %%PORT%%: $srv at server level, and
# "location /" with $loc, served by empty_gif.
sub server_block {
    my ($loc, $srv) = @_;
    $srv //= '';
    return <<"EOF";
    server {
        listen 127.0.0.1:%%PORT%%;
        $srv
        location / {
            $loc
            empty_gif;
        }
    }
EOF
}

sub run {
    my ($self) = @_;
    my ($rc, $out) = $self->test_config;
    if ($rc != 0) {
        die "nginx -t failed:\n$out";
    }
    system($NGINX, $self->nginx_args) == 0
        or die "nginx did not start: " . $self->read_file('logs/error.log');
    $self->{running} = 1;
    $self->wait_for_port($_) for $self->listen_ports;
    $self->wait_workers;
    # kept: stop() must find the master when its prefix is gone already
    $self->{pid} = $self->master_pid;
    $self->{owner} = $$;
    $running{"$self"} = $self;
    weaken($running{"$self"});
    return $self;
}

# The loopback ports nginx.conf listens on.
sub listen_ports {
    my ($self) = @_;
    my $conf = $self->read_file('nginx.conf');
    my %ports = map { $_ => 1 } $conf =~ /listen\s+127\.0\.0\.1:(\d+)/g;
    return keys %ports;
}

sub master_pid {
    my ($self) = @_;
    my $pid = $self->read_file('nginx.pid');
    $pid =~ s/\s+//g;
    return $pid;
}

# The pids of the master's worker processes (children that are not cache
# managers), from /proc.
sub worker_pids {
    my ($self) = @_;
    my $master = $self->master_pid or return ();
    my @pids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = $self->read_file("/proc/$pid/stat") or next;
        my ($ppid) = $stat =~ /^\d+ \(.*?\) \S (\d+)/ or next;
        next unless $ppid == $master;
        my $cmd = $self->read_file("/proc/$pid/cmdline");
        push @pids, $pid if $cmd =~ /worker process/ && $cmd !~ /shutting/;
    }
    closedir $dh;
    return sort { $a <=> $b } @pids;
}

sub wait_workers {
    my ($self, $count) = @_;
    $count //= $self->{workers};
    for (1 .. 100) {
        my @pids = $self->worker_pids;
        return 1 if @pids >= $count;
        sleep 0.05;
    }
    return 0;
}

sub wait_for_port {
    my ($self, $port) = @_;
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp');
        if ($s) {
            close $s;
            return 1;
        }
        sleep 0.05;
    }
    return 0;
}

# Reload with a new config (if given) and wait until the old workers are
# gone and the new ones answer.  skip_test => 1: no "nginx -t" first (a
# reload the running master takes differently from a first start).
sub reload {
    my ($self, $http, %opt) = @_;
    my @old = $self->worker_pids;
    $self->write_config($http, %opt) if defined $http;
    my ($rc, $out) = $opt{skip_test} ? (0, '') : $self->test_config;
    return ($rc, $out) if $rc != 0;
    my $log_size = length $self->error_log;
    kill 'HUP', $self->master_pid;
    my %old = map { $_ => 1 } @old;
    for (1 .. 200) {
        # a reload the master refuses leaves the old workers running
        if (substr($self->error_log, $log_size) =~ /\[emerg\]/) {
            return (1, substr($self->error_log, $log_size));
        }
        my @now = $self->worker_pids;
        my $fresh = grep { !$old{$_} } @now;
        my $stale = grep { kill(0, $_) } @old;
        last if $fresh >= ($opt{workers} || $self->{workers}) && !$stale;
        sleep 0.05;
    }
    return (0, $out);
}

sub stop {
    my ($self) = @_;
    return unless $self->{running};
    delete $running{"$self"};
    my $pid = $self->master_pid || $self->{pid};
    if ($pid) {
        kill 'QUIT', $pid;
        for (1 .. 250) {
            last unless kill 0, $pid;
            # an exited master waits, a zombie, until init reaps it
            my ($state) = $self->read_file("/proc/$pid/stat") =~ /\) (\S)/;
            last if ($state // '') eq 'Z';
            sleep 0.02;
        }
        kill 'KILL', $pid if kill 0, $pid;
    }
    $self->{running} = 0;
}

sub error_log { $_[0]->read_file('logs/error.log') }

# Fails the test if the error log has [alert], [crit] or [emerg] lines
# (besides those matching an allowed pattern).
sub no_alerts {
    my ($self, $allow) = @_;
    my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, $self->error_log;
    @bad = grep { $_ !~ $allow } @bad if $allow;
    ok(!@bad, 'no alerts in error.log') or diag(join "\n", @bad);
}

# --- HTTP ---------------------------------------------------------------

# Sends one request and returns { status, headers (lower-case names; repeated
# names joined with ", "), header_list ([name, value] pairs), body, raw }.
# Options: port, host (default 127.0.0.1; "::1" too), timeout (seconds).
sub request {
    my ($self, $raw, %opt) = @_;
    my $port = $opt{port} || $self->port('PORT');
    my $s = IO::Socket::IP->new(PeerHost => $opt{host} || '127.0.0.1',
                                PeerPort => $port, Proto => 'tcp',
                                Timeout => 5)
        or return { status => 0, headers => {}, error => "connect: $!" };
    binmode $s;
    print $s $raw;
    my $resp = '';
    my $deadline = time + ($opt{timeout} || 10);
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $resp .= $buf;
    }
    close $s;
    return parse_response($resp);
}

sub parse_response {
    my ($resp) = @_;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my %r = (raw => $resp, body => $body // '', headers => {},
             header_list => [], status => 0);
    return \%r unless defined $head;
    my @lines = split /\r\n/, $head;
    my $status_line = shift @lines // '';
    ($r{status}) = $status_line =~ m{^HTTP/\d\.\d (\d{3})};
    $r{status} //= 0;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        push @{$r{header_list}}, [$k, $v];
        my $lk = lc $k;
        $r{headers}{$lk} = exists $r{headers}{$lk}
            ? "$r{headers}{$lk}, $v" : $v;
    }
    return \%r;
}

sub build_request {
    my ($method, $path, %opt) = @_;
    my $headers = $opt{headers} || {};
    my $body = $opt{body};
    my $req = "$method $path HTTP/1.0\r\nHost: localhost\r\n";
    $req .= "$_: $headers->{$_}\r\n" for sort keys %$headers;
    $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    $req .= "\r\n";
    $req .= $body if defined $body;
    return $req;
}

# A request to the API (or anything answering JSON): the response, with
# {json} its decoded body (undef when it is not JSON).  A POST sends an
# empty body, whatever %opt says.
sub json_request {
    my ($self, $method, $path, %opt) = @_;
    my $r = $self->request(build_request($method, $path, %opt,
        $method eq 'POST' ? (body => '') : ()));
    $r->{json} = eval { JSON::PP->new->allow_bignum->decode($r->{body}) };
    return $r;
}

sub get {
    my ($self, $path, %opt) = @_;
    return $self->request(build_request('GET', $path, %opt), %opt);
}

sub post {
    my ($self, $path, $body, %opt) = @_;
    return $self->request(build_request('POST', $path, %opt, body => $body),
                          %opt);
}

# Sends n requests at once (n connections opened before any is answered)
# and returns their parsed responses, in no particular order.
sub parallel {
    my ($self, $n, $path, %opt) = @_;
    my $port = $opt{port} || $self->port('PORT');
    my $raw = build_request($opt{method} || 'GET', $path, %opt);
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp', Timeout => 5)
            or next;
        binmode $s;
        push @socks, $s;
    }
    print $_ $raw for @socks;
    return collect_responses($opt{timeout} || 20, @socks);
}

# Sends every raw request (an array ref) on its own connection, all at
# once, and returns the parsed responses in the same order.
sub parallel_raw {
    my ($self, $raws, %opt) = @_;
    my $port = $opt{port} || $self->port('PORT');
    my @socks;
    for my $raw (@$raws) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        binmode $s;
        push @socks, $s;
    }
    print { $socks[$_] } $raws->[$_] for 0 .. $#socks;
    return collect_responses($opt{timeout} || 20, @socks);
}

# Opens one connection per [node, raw request] (nodes: TRL objects, maybe
# several nginx) and sends them all at once; returns the sockets, in order
# (read them with collect_responses()).  A function.
sub send_all {
    my (@reqs) = @_;
    my @socks;
    for my $r (@reqs) {
        my ($t, $raw) = @$r;
        my $s = IO::Socket::INET->new(
            PeerAddr => '127.0.0.1:' . $t->port('PORT'),
            Proto => 'tcp', Timeout => 5) or die "connect: $!";
        binmode $s;
        push @socks, $s;
    }
    print { $socks[$_] } $reqs[$_][1] for 0 .. $#socks;
    return @socks;
}

# Reads every socket until the server closes it (at most secs in all) and
# returns the parsed responses in the order of the sockets, which it
# closes.  (A function: the sockets may lead to several servers.)
sub collect_responses {
    my ($secs, @socks) = @_;
    my %buf = map { fileno($_) => '' } @socks;
    my $sel = IO::Select->new(@socks);
    my $deadline = time + $secs;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read($deadline - time)) {
            my $got = sysread($s, my $chunk, 65536);
            if ($got) {
                $buf{fileno $s} .= $chunk;
            } else {
                $sel->remove($s);
            }
        }
    }
    my @responses = map { parse_response($buf{fileno $_}) } @socks;
    close $_ for @socks;
    return @responses;
}

# --- pipelined requests on one keep-alive connection -------------------

# A connection to the server (or port given) for pipeline().
sub connect_keepalive {
    my ($self, $port) = @_;
    $port ||= $self->port('PORT');
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    binmode $s;
    return $s;
}

# Sends the raw requests on the connection, all pipelined, and reads as
# many responses (each framed by Content-Length).  A response missing at
# the deadline (10 s) or on EOF is returned as status 0.
sub pipeline {
    my ($s, @raws) = @_;
    my $out = join '', @raws;
    while (length $out) {
        my $n = syswrite($s, $out);
        die "write: $!" unless defined $n;
        substr($out, 0, $n) = '';
    }
    my ($buf, @resp) = ('');
    my $deadline = time + 10;
    while (@resp < @raws) {
        if ($buf =~ /\r\n\r\n/) {
            my $hlen = $+[0];
            my ($cl) = substr($buf, 0, $hlen) =~ /\r\ncontent-length:\s*(\d+)/i;
            $cl //= 0;
            if (length($buf) >= $hlen + $cl) {
                push @resp, parse_response(substr($buf, 0, $hlen + $cl, ''));
                next;
            }
        }
        last if time > $deadline;
        next unless IO::Select->new($s)->can_read(0.5);
        my $n = sysread($s, my $chunk, 262144);
        last unless $n;
        $buf .= $chunk;
    }
    push @resp, { status => 0, headers => {} } while @resp < @raws;
    return @resp;
}

# Pipelined bursts on several keep-alive connections at once (each job:
# [socket, raw request, ...]): every burst is written before any response
# is read.  Returns, per job, an array ref of its responses in order, each
# with {time} (Time::HiRes) when it was read; a response missing at the
# deadline (secs, default 10) or on EOF has status 0.
sub pipelines {
    my ($jobs, $secs) = @_;
    for my $j (@$jobs) {
        my ($s, @raws) = @$j;
        my $out = join '', @raws;
        while (length $out) {
            my $n = syswrite($s, $out);
            die "write: $!" unless defined $n;
            substr($out, 0, $n) = '';
        }
    }
    my @want = map { scalar(@$_) - 1 } @$jobs;
    my @buf = ('') x @$jobs;
    my @resp = map { [] } @$jobs;
    my %job = map { fileno($jobs->[$_][0]) => $_ } 0 .. $#$jobs;
    my $sel = IO::Select->new(map { $_->[0] } @$jobs);
    my $deadline = Time::HiRes::time() + ($secs || 10);
    while ($sel->count && Time::HiRes::time() < $deadline) {
        for my $s ($sel->can_read(0.2)) {
            my $i = $job{fileno $s};
            my $n = sysread($s, my $chunk, 262144);
            if (!$n) {
                $sel->remove($s);
                next;
            }
            $buf[$i] .= $chunk;
            my $now = Time::HiRes::time();
            while ($buf[$i] =~ /\r\n\r\n/) {
                my $hlen = $+[0];
                my ($cl) = substr($buf[$i], 0, $hlen)
                           =~ /\r\ncontent-length:\s*(\d+)/i;
                $cl //= 0;
                last if length($buf[$i]) < $hlen + $cl;
                my $r = parse_response(substr($buf[$i], 0, $hlen + $cl, ''));
                $r->{time} = $now;
                push @{$resp[$i]}, $r;
            }
            $sel->remove($s) if @{$resp[$i]} >= $want[$i];
        }
    }
    for my $i (0 .. $#$jobs) {
        push @{$resp[$i]}, { status => 0, headers => {} }
            while @{$resp[$i]} < $want[$i];
    }
    return @resp;
}

# --- a scriptable HTTP backend -------------------------------------------

# Starts a forking HTTP server on a loopback port.  It answers every request
# with the status and delay given in the query string (?status=401&delay=500,
# delay in ms; defaults 200 and 0) and a small text body; with echo=1 the
# body ends with the request body as received, with auth_user=NAME the
# answer has the header "X-Auth-User: NAME".  Returns the port.
sub start_backend {
    my ($self, $name) = @_;
    $name //= 'BACKEND';
    my $port = $self->port($name);
    my $listen = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port",
                                       Proto => 'tcp', Listen => 128,
                                       ReuseAddr => 1)
        or die "backend listen on $port: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        while (1) {
            my $c = $listen->accept or next;
            my $child = fork;
            if (defined $child && $child == 0) {
                serve_backend($c);
                POSIX::_exit(0);
            }
            close $c;
        }
    }
    close $listen;
    push @{$self->{children}}, $pid;
    return $port;
}

sub serve_backend {
    my ($c) = @_;
    my $req = '';
    while ($req !~ /\r\n\r\n/) {
        my $n = sysread($c, my $buf, 4096) or return;
        $req .= $buf;
    }
    my ($path) = $req =~ m{^\w+ (\S+)};
    my %q = ($path // '') =~ /[?&](\w+)=([^&\s]*)/g;
    my $status = $q{status} || 200;
    sleep(($q{delay} || 0) / 1000);
    my $body = "backend $status\n";
    if ($q{echo}) {                 # the request body, after that line
        my ($len) = $req =~ /\r\nContent-Length: *(\d+)/i;
        my $got = substr($req, index($req, "\r\n\r\n") + 4);
        while (length($got) < ($len // 0)) {
            sysread($c, my $buf, 65536) or last;
            $got .= $buf;
        }
        $body .= $got;
    }
    my $extra = $q{auth_user} ? "X-Auth-User: $q{auth_user}\r\n" : '';
    print $c "HTTP/1.0 $status Backend\r\nContent-Type: text/plain\r\n"
        . $extra
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n"
        . $body;
    close $c;
}

# --- a headless browser ----------------------------------------------------

# The chromium to drive: $CHROMIUM, else Debian's /usr/bin/chromium, else
# chromium, chromium-browser or google-chrome from PATH; undef if none.
sub chromium {
    return -x $ENV{CHROMIUM} ? $ENV{CHROMIUM} : undef if $ENV{CHROMIUM};
    return '/usr/bin/chromium' if -x '/usr/bin/chromium';
    for my $name ('chromium', 'chromium-browser', 'google-chrome') {
        for my $d (split /:/, $ENV{PATH} // '') {
            return "$d/$name" if -x "$d/$name";
        }
    }
    return undef;
}

# Loads url in headless chromium (TRL::chromium) with virtual time (timers
# run as soon as the page idles; network time does not count) for
# budget ms (default 3000), and returns the rendered DOM and chromium's
# log (console messages included).  Options: name (files
# chromium-NAME.* in the test's directory, and its own profile),
# screenshot (a PNG path).  Fails the test if chromium renders nothing or
# runs past 90 s.
sub browse {
    my ($self, $url, %opt) = @_;
    my $chromium = chromium() or die "no chromium";
    my $dir = $self->{dir};
    my $name = $opt{name} // 'page';
    my $out = "$dir/chromium-$name.html";
    my $err = "$dir/chromium-$name.log";
    my @cmd = ($chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
               '--disable-dev-shm-usage', '--no-first-run',
               '--no-default-browser-check',
               '--disable-background-networking', '--disable-extensions',
               '--disable-sync', '--disable-component-update',
               '--mute-audio', '--hide-scrollbars',
               "--user-data-dir=$dir/chromium-profile-$name",
               '--enable-logging=stderr', '--v=0',
               '--virtual-time-budget=' . ($opt{budget} // 3000),
               '--window-size=1280,1000');
    push @cmd, "--screenshot=$opt{screenshot}" if $opt{screenshot};
    push @cmd, '--dump-dom', $url;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>', $err or POSIX::_exit(127);
        delete $ENV{LD_PRELOAD};      # make test-asan preloads nginx's only
        { exec @cmd }
        POSIX::_exit(127);
    }

    my $deadline = time + 90;
    my $done;
    while (time < $deadline) {
        $done = waitpid($pid, WNOHANG) and last;
        sleep 0.05;
    }
    unless ($done) {
        kill 'KILL', -$pid;
        waitpid $pid, 0;
        fail("chromium ($name) timed out");
    }
    kill 'KILL', -$pid;     # anything it left behind

    my $dom = $self->read_file($out);
    my $log = $self->read_file($err);
    ok(length $dom, "chromium ($name) rendered $url") or diag($log);
    return ($dom, $log);
}

# A test's nginx kept in a file-scoped variable is destroyed only after
# the END block of File::Temp removed its prefix (nginx.pid with it): stop
# every nginx still running first (this END block runs before File::Temp's,
# defined earlier), in the process that started it (not in forked clients).
END {
    local $?;
    for my $t (grep { defined } values %running) {
        $t->stop if ($t->{owner} // 0) == $$;
    }
}

sub DESTROY {
    my ($self) = @_;
    local $?;
    $self->stop;
    for my $pid (@{$self->{children}}) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
}

1;
