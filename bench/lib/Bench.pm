package Bench;

# What the drivers of make bench (bench/*.pl) share: the knobs (environment,
# validated once, the same for every driver), the CPUs each process gets,
# the output directory and its meta.txt, nginx from a template and the
# bench's redis-server.  Prefixes, free ports and the nginx and
# redis-server processes are the test harness's (t/lib/TRL.pm,
# t/lib/TRLRedis.pm); CPU pinning and wrk go through bench/on-cpus.sh and
# bench/wrk.sh.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our $ROOT;
BEGIN { $ROOT = abs_path(dirname(__FILE__) . '/../..') }
use lib "$ROOT/t/lib";
use TRL;
use TRLRedis;

# the harness loads Test::More: a driver runs no test, say nothing at exit
Test::More->builder->no_ending(1);

# The columns of the throughput nginx (bench/nginx.conf.in), in default
# order.  The Redis columns need the bench's redis-server: the cluster-sync
# ones (the module's token_ratelimit_redis) and the redis-incr ones (a
# per-request INCR+EXPIRE limiter in Lua: bench/redis_incr.lua).
our @SYNC = qw(trl-async-1key trl-async-100k trl-strict-1key);
our @INCR = qw(redis-incr redis-incr-100k);
our @DEFAULT = (qw(stock limit_req trl-1key trl-1key-api limit_req-100k
                   trl-100k trl-distinct-100k limit_req-reject trl-reject),
                @SYNC, @INCR);
our @ALL = (@DEFAULT, 'trl-1key-noheaders');
our @CG_ONLY = qw(stock-nomodule trl-1key-noapi trl-1key-listed);
our $LUA_DIR = '/usr/lib/nginx/modules';

sub is_sync { my $c = shift; scalar grep { $_ eq $c } @SYNC }
sub is_incr { my $c = shift; scalar grep { $_ eq $c } @INCR }
sub is_redis { is_sync($_[0]) || is_incr($_[0]) }

sub die_ { print STDERR "bench: @_\n"; exit 1 }
sub note { print STDERR "bench: @_\n" }

my %DEFAULTS = (
    ROUNDS => 5, DURATION => 5, WARMUP => 1, CONNECTIONS => 32,
    WORKERS => 1, KEYS100K => 100000,
    ONE_KEY => '$binary_remote_addr$remote_port',
    CG_K1 => 2000, CG_K2 => 4000,
    CG_EXTRA => 'stock-nomodule trl-1key-noheaders trl-1key-noapi'
                . ' trl-1key-listed',
    SYNC_INTERVAL => '100ms', SYNC_TIMEOUT => '100ms',
    CG_SYNC_TIMEOUT => '2s', IDLE_WAIT => 0,
    LAT_ROUNDS => 3, LAT_DURATION => 8, LAT_CONNECTIONS => 64,
    API_LOC => '/trl-api', API_SCRAPE_EVERY => 1, API_KEYS => 100000,
    API_OVER => 50, API_ZONE_SIZE => '16m', API_REPEAT => 30,
    API_LOAD => 1, API_MAX_MS => 50, INCR_LIMIT => 65535,
);

my $CFG;

# The knobs, validated: a hash of every knob above plus COLUMNS (a list),
# CG_COLUMNS, REDIS_ON, the CPU lists, THREADS, OUT and MODULE (the copy
# under OUT that every driver loads).
sub cfg {
    return $CFG if $CFG;
    my %c = %DEFAULTS;
    for my $k (keys %DEFAULTS) {
        $c{$k} = $ENV{$k} if defined $ENV{$k} && $ENV{$k} ne '';
    }
    $c{CG_EXTRA} = $ENV{CG_EXTRA} if defined $ENV{CG_EXTRA};
    $c{$_} = $ENV{$_} // '' for qw(NO_SYNC NO_CALLGRIND NO_MEMORY NO_LATENCY
                                   NO_API_TIMING LAT_RATE);
    $c{NGINX_BIN} = $TRL::NGINX;
    $c{BUILT_MODULE} = $ENV{MODULE_SO}
        || "$ROOT/build/ngx_http_token_ratelimit_module.so";
    my $out = $ENV{BENCH_OUT} || "$ROOT/build/bench";
    $out = "$ROOT/$out" unless $out =~ m{^/};
    $c{OUT} = $out;
    $c{MODULE} = "$out/ngx_http_token_ratelimit_module.so";

    # a purely numeric COLUMNS is a terminal width
    my $cols = $ENV{COLUMNS} // '';
    my @cols = $cols =~ /^\s*\d*\s*$/ ? @DEFAULT : split ' ', $cols;
    my %known = map { $_ => 1 } @ALL;
    for (@cols) {
        die_("unknown column \"$_\" in COLUMNS (known: @ALL)")
            unless $known{$_};
    }
    my @extra = split ' ', $c{CG_EXTRA};
    my %cgk = (%known, map { $_ => 1 } @CG_ONLY);
    for (@extra) {
        die_("unknown column \"$_\" in CG_EXTRA") unless $cgk{$_};
    }
    if ($c{NO_SYNC}) {
        my @kept = grep { !is_redis($_) } @cols;
        note('NO_SYNC: the Redis columns are left out') if @kept < @cols;
        @cols = @kept;
        @extra = grep { !is_redis($_) } @extra;
        die_('NO_SYNC=1 leaves no column to run') unless @cols;
    }
    if (!-f "$LUA_DIR/ngx_http_lua_module.so" && grep { is_incr($_) } @cols) {
        note('no nginx Lua module in $LUA_DIR (apt-get install'
             . ' libnginx-mod-http-lua, or scripts/install-deps.sh):'
             . ' the redis-incr columns are left out');
        @cols = grep { !is_incr($_) } @cols;
        die_('no column left to run') unless @cols;
    }
    $c{COLUMNS} = \@cols;
    $c{CG_EXTRA_LIST} = \@extra;
    # trl-1key-api's requests are trl-1key's; LuaJIT is not measured
    # under valgrind: the redis-incr columns have no callgrind figure
    my %seen;
    $c{CG_COLUMNS} = [grep { $_ ne 'trl-1key-api' && !is_incr($_)
                             && !$seen{$_}++ } @cols, @extra];
    $c{REDIS_ON} = (grep { is_redis($_) } @cols, @extra) ? 1 : 0;
    $c{SYNC_ON} = (grep { is_sync($_) } @cols, @extra) ? 1 : 0;
    $c{LUA_ON} = (grep { is_incr($_) } @cols) ? 1 : 0;

    for my $v (qw(ROUNDS DURATION WARMUP CONNECTIONS WORKERS KEYS100K CG_K1
                  CG_K2 LAT_ROUNDS LAT_DURATION LAT_CONNECTIONS IDLE_WAIT
                  API_KEYS API_OVER API_REPEAT API_LOAD API_MAX_MS
                  INCR_LIMIT)) {
        die_("$v must be a whole number") unless $c{$v} =~ /^\d+$/;
    }
    $c{CG_KEYS} = $ENV{CG_KEYS} || $c{CG_K1};
    die_('CG_KEYS must be a whole number') unless $c{CG_KEYS} =~ /^\d+$/;
    die_('LAT_RATE must be a whole number of requests per second')
        if $c{LAT_RATE} ne '' && $c{LAT_RATE} !~ /^[1-9]\d*$/;
    die_('need LAT_ROUNDS >= 1, LAT_DURATION >= 1')
        unless $c{LAT_ROUNDS} >= 1 && $c{LAT_DURATION} >= 1;
    die_('API_LOC must be a location path such as /trl-api')
        unless $c{API_LOC} =~ m{^/[A-Za-z0-9_./-]*[A-Za-z0-9_-]$};
    die_('API_SCRAPE_EVERY must be a number of seconds, at least 0.1')
        unless $c{API_SCRAPE_EVERY} =~ /^\d+(\.\d+)?$/
               && $c{API_SCRAPE_EVERY} >= 0.1;
    die_('API_ZONE_SIZE must be a size such as 16m')
        unless $c{API_ZONE_SIZE} =~ /^[1-9]\d*[km]$/;
    die_('need API_KEYS >= 1, API_OVER <= 100, API_REPEAT >= 1')
        unless $c{API_KEYS} >= 1 && $c{API_OVER} <= 100
               && $c{API_REPEAT} >= 1;
    die_("API_KEYS: at most 1000000 (bench/keys.lua's key-NNNNNN)")
        if $c{API_KEYS} > 1000000;
    for my $v (qw(SYNC_INTERVAL SYNC_TIMEOUT CG_SYNC_TIMEOUT)) {
        die_("$v must be a whole number of ms or s, such as 100ms or 1s")
            unless $c{$v} =~ /^[1-9]\d*(ms|s)$/;
    }
    $c{SYNC_INTERVAL_MS} = to_ms($c{SYNC_INTERVAL});
    die_('need ROUNDS >= 1, DURATION >= 1, WORKERS >= 1, CG_K2 > CG_K1')
        unless $c{ROUNDS} >= 1 && $c{DURATION} >= 1 && $c{WORKERS} >= 1
               && $c{CG_K2} > $c{CG_K1};

    cpus(\%c);
    die_('CONNECTIONS must be >= THREADS') if $c{CONNECTIONS} < $c{THREADS};
    die_('LAT_CONNECTIONS must be >= THREADS')
        if $c{LAT_CONNECTIONS} < $c{THREADS};
    return $CFG = \%c;
}

sub to_ms {
    my ($v) = @_;
    return $v =~ /^(\d+)ms$/ ? $1 : $v =~ /^(\d+)s$/ ? 1000 * $1 : $v;
}

# "0-2,5" -> (0, 1, 2, 5)
sub cpu_list {
    my ($l) = @_;
    return () if !defined $l || $l eq '';
    my @c;
    for (split /,/, $l) {
        /^(\d+)(?:-(\d+))?$/ or die_("bad CPU list \"$l\"");
        push @c, $1 .. ($2 // $1);
    }
    return @c;
}

# Where each process runs: nginx's workers on NGINX_CPUS (default the first
# WORKERS CPUs, one left for the rest), wrk on WRK_CPUS (the rest), and
# redis-server on REDIS_CPUS: by default a CPU of its own when the machine
# has one beyond nginx's and wrk's (the last CPU, taken from wrk), else
# wrk's.
sub cpus {
    my ($c) = @_;
    chomp(my $n = `getconf _NPROCESSORS_ONLN` || 1);
    $c->{NCPU} = $n;
    my $nginx = $ENV{NGINX_CPUS};
    if (!defined $nginx || $nginx eq '') {
        my $w = $c->{WORKERS} < $n ? $c->{WORKERS} : $n - 1;
        $nginx = $n > 1 ? ($w > 1 ? '0-' . ($w - 1) : '0') : '';
    }
    my %ng = map { $_ => 1 } cpu_list($nginx);
    my @rest = grep { !$ng{$_} } 0 .. $n - 1;
    my $own_redis = !defined $ENV{REDIS_CPUS} && !defined $ENV{WRK_CPUS}
                    && $c->{REDIS_ON} && @rest >= 2;
    my $redis_own = $own_redis ? pop @rest : undef;
    my $wrk = defined $ENV{WRK_CPUS} ? $ENV{WRK_CPUS}
            : $nginx ne '' ? join(',', @rest) : '';
    my $redis = defined $ENV{REDIS_CPUS} ? $ENV{REDIS_CPUS}
              : defined $redis_own ? $redis_own : $wrk;
    cpu_list($_) for $wrk, $redis;
    $c->{NGINX_CPUS} = $nginx;
    $c->{WRK_CPUS} = $wrk;
    $c->{REDIS_CPUS} = $redis;
    $c->{THREADS} = $ENV{THREADS}
        || ($wrk ne '' ? scalar(cpu_list($wrk)) : 1);
    my @l = split ' ', $ENV{LAT_REDIS_CPUS} // $redis;
    $c->{LAT_REDIS_CPUS} = @l ? \@l : ['any'];
}

# a CPU list as shown: "any" (or what is given) when empty
sub shown { defined $_[0] && $_[0] ne '' ? $_[0] : $_[1] // 'any' }

# worker_cpu_affinity for NGINX_CPUS ("0,2" -> "auto 101"), or ''
sub affinity {
    my @c = cpu_list(cfg()->{NGINX_CPUS}) or return '';
    my %on = map { $_ => 1 } @c;
    my ($max) = sort { $b <=> $a } @c;
    return 'worker_cpu_affinity auto '
        . join('', map { $on{$_} ? 1 : 0 } reverse 0 .. $max) . ';';
}

# --- output -----------------------------------------------------------------

sub out { cfg()->{OUT} }

sub meta {
    open my $fh, '>>', out() . '/meta.txt' or die_("meta.txt: $!");
    print $fh "$_\n" for @_;
    close $fh;
}

sub read_meta {
    my %m;
    open my $fh, '<', out() . '/meta.txt' or return {};
    while (<$fh>) { $m{$1} = $2 if /^(\S+)\s+(.*)$/ }
    return \%m;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# --- processes --------------------------------------------------------------

# on_cpus(CPUS, CMD...): the command line that runs CMD pinned to CPUS
sub on_cpus {
    my ($cpus, @cmd) = @_;
    return ("$ROOT/bench/on-cpus.sh", $cpus // '', @cmd);
}

# pin(CPUS, PID): moves a running process (all its threads)
sub pin {
    my ($cpus, $pid) = @_;
    $cpus = join ',', 0 .. cfg()->{NCPU} - 1 if !defined $cpus || $cpus eq ''
                                                || $cpus eq 'any';
    system("$ROOT/bench/on-cpus.sh", '-p', $cpus, $pid) == 0
        or die_("cannot move process $pid to CPUs $cpus");
}

# run_to(FILE, CMD...): runs CMD with stdout and stderr to FILE; true if it
# exited 0
sub run_to {
    my ($file, @cmd) = @_;
    my $pid = spawn($file, @cmd);
    waitpid $pid, 0;
    return $? == 0;
}

my %bg;

# spawn(FILE, CMD...): CMD in the background, output to FILE; its pid.
# Whatever is still running at exit is stopped (SIGTERM).
sub spawn {
    my ($file, @cmd) = @_;
    my $pid = fork // die_("fork: $!");
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $file or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    $bg{$pid} = 1;
    return $pid;
}

sub reap {
    my ($pid) = @_;
    waitpid $pid, 0;
    delete $bg{$pid};
    return $? == 0;
}

END {
    local $?;
    for my $pid (keys %bg) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}

# nginx(TEMPLATE, NAME, %SUBST): an nginx prefix OUT/NAME (emptied) with
# TEMPLATE's placeholders filled in (@PORT@ a free port, @PREFIX@, @MODULE@
# and the knobs; SUBST adds or overrides), not started.  Lines that start
# with "#" are left alone.
sub nginx {
    my ($tpl, $name, %sub) = @_;
    my $c = cfg();
    my $dir = out() . "/$name";
    remove_tree($dir);
    # workers => N: a template with its own worker_processes
    my $t = TRL->new(dir => $dir, workers => delete $sub{workers}
                                             || $c->{WORKERS},
                     module => $c->{MODULE});
    my %v = (
        MODULE => $c->{MODULE}, PREFIX => $dir, PORT => $t->port,
        MAIN => '', NOMODULE => '', WORKERS => $c->{WORKERS},
        ONE_KEY => $c->{ONE_KEY}, SYNC => $c->{SYNC_ON} ? '' : '#',
        LUA => $c->{LUA_ON} ? '' : '#', LUA_DIR => $LUA_DIR,
        BENCH => "$ROOT/bench", REDIS_PORT => 0,
        SYNC_INTERVAL => $c->{SYNC_INTERVAL},
        SYNC_TIMEOUT => $c->{SYNC_TIMEOUT}, API_LOC => $c->{API_LOC},
        API_ZONE_SIZE => $c->{API_ZONE_SIZE}, API => '',
        INCR_LIMIT => $c->{INCR_LIMIT}, %sub);
    my $text = slurp("$ROOT/$tpl") or die_("cannot read $tpl");
    my @lines = split /^/, $text;
    for (@lines) {
        s/\@([A-Z_]+)\@/exists $v{$1} ? $v{$1} : "\@$1\@"/ge
            unless /^\s*#/;
    }
    $t->write_file('nginx.conf', join '', @lines);
    return $t;
}

# start(T): nginx -t, then master and workers, its workers' pids
sub start {
    my ($t) = @_;
    my ($rc, $out) = $t->test_config;
    die_("nginx -t failed for " . $t->dir . "/nginx.conf:\n$out") if $rc;
    eval { $t->run; 1 } or die_("nginx did not start: $@");
    die_('nginx workers did not start') unless $t->wait_workers;
    my @w = $t->worker_pids;
    return @w;
}

# The bench's redis-server under OUT/redis (persistence off), on REDIS_CPUS.
sub redis {
    my $c = cfg();
    remove_tree(out() . '/redis');
    make_path(out() . '/redis');
    my $r = eval { TRLRedis->new(dir => out() . '/redis') }
        or die_("redis-server did not start: $@");
    pin($c->{REDIS_CPUS}, $r->pid) if $c->{REDIS_CPUS} ne '';
    return $r;
}

# INFO all as { name => value } (cmdstat_X:calls=..,usec=.. as
# cmdstat_X.calls and cmdstat_X.usec)
sub info {
    my ($r) = @_;
    my %v;
    my @l = $r->cli_lines('INFO', 'all')
        or die_('redis-cli INFO failed (port ' . $r->port . ')');
    for (@l) {
        s/\r$//;
        if (/^(cmdstat_[^:]+):(.*)$/) {
            my $cmd = $1;
            for (split /,/, $2) { $v{"$cmd.$1"} = $2 if /^(\w+)=([\d.]+)$/ }
        } elsif (/^(\w+):([\d.]+)$/) {
            $v{$1} = $2;
        }
    }
    return \%v;
}

# The Redis load figures of a run: INFO after - before.  scripts: EVALSHA
# and EVAL calls; total_cmds: total_commands_processed (the commands a
# script runs included); incr and expire: the redis-incr columns' own.
our @REDIS_FIELDS = qw(scripts script_usec evalsha total_cmds keys_pub
                       keys_read pexpire hdel incr expire net_in net_out
                       cpu_us);

sub redis_delta {
    my ($a, $b) = @_;
    my $d = sub {
        my $s = 0;
        $s += ($b->{$_} // 0) - ($a->{$_} // 0) for @_;
        return $s;
    };
    return (
        $d->(qw(cmdstat_evalsha.calls cmdstat_eval.calls)),
        $d->(qw(cmdstat_evalsha.usec cmdstat_eval.usec)),
        $d->('cmdstat_evalsha.calls'), $d->('total_commands_processed'),
        $d->('cmdstat_hincrby.calls'), $d->('cmdstat_hgetall.calls'),
        $d->('cmdstat_pexpire.calls'), $d->('cmdstat_hdel.calls'),
        $d->('cmdstat_incr.calls'), $d->('cmdstat_expire.calls'),
        $d->('total_net_input_bytes'), $d->('total_net_output_bytes'),
        sprintf('%.0f', 1e6 * $d->(qw(used_cpu_user used_cpu_sys))));
}

# --- /proc --------------------------------------------------------------------

sub cpu_ticks {     # utime + stime of the pids, in clock ticks
    my $sum = 0;
    for my $pid (@_) {
        my $s = slurp("/proc/$pid/stat")
            or die_("nginx worker $pid is gone (see the error log)");
        my @f = split ' ', ($s =~ /\) (.*)$/s)[0];
        $sum += $f[11] + $f[12];
    }
    return $sum;
}

sub cpu_ns {        # the CPU time the pids have run, ns (schedstat)
    my $sum = 0;
    for my $pid (@_) {
        my $s = slurp("/proc/$pid/schedstat")
            or die_("process $pid is gone");
        $sum += (split ' ', $s)[0];
    }
    return $sum;
}

# (busy, total) jiffies of a CPU list from /proc/stat (busy: all but idle
# and iowait; softirq included)
sub cpu_jiffies {
    my %want = map { $_ => 1 } cpu_list(shift);
    return (0, 0) unless %want;
    my ($busy, $total) = (0, 0);
    for (split /\n/, slurp('/proc/stat')) {
        next unless /^cpu(\d+)\s+(.*)/ && $want{$1};
        my @f = split ' ', $2;
        my $t = 0;
        $t += $_ for @f[0 .. 7];
        $total += $t;
        $busy += $t - $f[3] - $f[4];
    }
    return ($busy, $total);
}

# busy_pct([busy, total] before, after): percent, or "-"
sub busy_pct {
    my ($a, $b) = @_;
    return $b->[1] > $a->[1]
        ? int(100 * ($b->[0] - $a->[0]) / ($b->[1] - $a->[1])) : '-';
}

# --- wrk ----------------------------------------------------------------------

# parse_wrk(FILE): { requests, seconds, rps, non2xx, socket_errors }
sub parse_wrk {
    my ($file) = @_;
    my %w = (non2xx => 0, socket_errors => 0);
    for (split /\n/, slurp($file)) {
        if (/(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b/) {
            $w{requests} = $1;
            $w{seconds} = $2 * { us => 1e-6, ms => 1e-3, s => 1, m => 60,
                                 h => 3600 }->{$3};
        }
        $w{rps} = $1 if /^Requests\/sec:\s+([\d.]+)/;
        $w{non2xx} = $1 if /Non-2xx or 3xx responses:\s+(\d+)/;
        $w{socket_errors} = $1 + $2 + $3 + $4
            if /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
    }
    die_("cannot read wrk output $file")
        unless defined $w{requests} && defined $w{rps};
    return \%w;
}

1;
