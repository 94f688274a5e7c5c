#!/usr/bin/perl
# throughput.pl - part 1 of make bench: every column of bench/nginx.conf.in
# under wrk (bench/keys.lua), ROUNDS interleaved rounds of DURATION s after
# a WARMUP s run of each column.  Writes runs.tsv (one line per wrk run:
# req/s, non-2xx, the nginx worker's CPU ticks, error-log lines, how busy
# wrk's and nginx's CPUs were), redis.tsv (the bench's redis-server's INFO
# deltas per run, with a Redis column), scrape.tsv (trl-1key-api: the API
# scrapes beside wrk) and, in meta.txt, what one scrape costs the worker.
use strict;
use warnings;
use File::Basename qw(dirname);
use Time::HiRes qw(sleep time);
use lib dirname(__FILE__) . '/lib';
use Bench;

my $c = Bench::cfg();
my $out = Bench::out();
my @cols = @{$c->{COLUMNS}};

idle_wait() if $c->{IDLE_WAIT} > 0;

my $redis = $c->{REDIS_ON} ? Bench::redis() : undef;
if ($redis) {
    Bench::meta('redis.port ' . $redis->port);
    Bench::note('redis-server ' . $redis->port . ' (pid ' . $redis->pid
        . "), interval=$c->{SYNC_INTERVAL} timeout=$c->{SYNC_TIMEOUT}");
}
my $t = Bench::nginx('bench/nginx.conf.in', 'tput', MAIN => Bench::affinity(),
                     REDIS_PORT => $redis ? $redis->port : 0);
my @workers = Bench::start($t);
my $port = $t->port;
if ($c->{SYNC_ON}) {
    # the workers' links to Redis are up (or the log says why not)
    TRLRedis::wait_for(5, sub { $redis->client_count >= $c->{WORKERS} });
    Bench::run_to("$out/wrk/startup.errlog", 'cat', $t->dir . '/logs/error.log');
}

my $ncol = @cols;
my $est = $c->{ROUNDS} * $ncol * ($c->{DURATION} + 1)
        + $ncol * ($c->{WARMUP} + 1);
my $nsync = grep { Bench::is_sync($_) } @cols;
$est += int(($c->{ROUNDS} + 1) * $nsync * (2 * $c->{SYNC_INTERVAL_MS} + 50)
            / 1000);
Bench::note("throughput: $c->{ROUNDS} rounds x $ncol columns x"
            . " $c->{DURATION}s (about ${est}s)");

if ($c->{WARMUP} > 0) {
    run_wrk($_, $c->{WARMUP}, "$out/wrk/warmup-$_.txt") for @cols;
}

open my $runs, '>', "$out/runs.tsv" or die;
print $runs join("\t", qw(round column requests seconds rps non2xx
    socket_errors cpu_ticks wall_ms errlog_lines wrk_cpu_pct
    nginx_cpu_pct)), "\n";
my $rtsv;
if ($redis) {
    open $rtsv, '>', "$out/redis.tsv" or die;
    print $rtsv join("\t", 'round', 'column', @Bench::REDIS_FIELDS,
                     'link_down'), "\n";
}
my ($stsv, $scrapes);
if (grep { $_ eq 'trl-1key-api' } @cols) {
    open $stsv, '>', "$out/scrape.tsv" or die;
    print $stsv join("\t", qw(round column path expected n status_200 bytes
                              med_ms p90_ms max_ms mean_ms)), "\n";
    # scrapes per run: at (k + 1/2) * API_SCRAPE_EVERY < DURATION
    $scrapes = 0;
    $scrapes++ while ($scrapes + 0.5) * $c->{API_SCRAPE_EVERY} < $c->{DURATION};
    Bench::meta("api.scrape_every_s $c->{API_SCRAPE_EVERY}",
                "api.scrapes_per_run $scrapes");
}

my $t0 = time;
Bench::meta('host.loadavg_before ' . loadavg());
$_->autoflush(1) for grep { $_ } $runs, $rtsv, $stsv;
for my $round (1 .. $c->{ROUNDS}) {
    # round r starts at the r-th column: no column is always first, or
    # always right after a given one
    for my $i (0 .. $#cols) {
        my $col = $cols[($i + $round - 1) % @cols];
        my $f = "$out/wrk/round$round-$col.txt";
        my $r = run_wrk($col, $c->{DURATION}, $f);
        my $w = Bench::parse_wrk($f);
        print $runs join("\t", $round, $col, $w->{requests},
            sprintf('%.3f', $w->{seconds}), sprintf('%.2f', $w->{rps}),
            $w->{non2xx}, $w->{socket_errors}, $r->{ticks}, $r->{wall_ms},
            $r->{lines}, $r->{wrk_cpu}, $r->{ngx_cpu}), "\n";
        my $tck = POSIX::sysconf(POSIX::_SC_CLK_TCK());
        Bench::note(sprintf('  round %s %-18s %8.0f req/s  non-2xx %-7d'
            . '  nginx busy %3.0f%% (its CPU %s%%)  wrk CPU %s%%', $round,
            $col, $w->{rps}, $w->{non2xx},
            $r->{ticks} / $tck / $w->{seconds} / $c->{WORKERS} * 100,
            $r->{ngx_cpu}, $r->{wrk_cpu}));
        scrape_lines($round, $col, "$f.scrape") if $col eq 'trl-1key-api';
        next unless $redis;
        my @d = @{$r->{redis}};
        print $rtsv join("\t", $round, $col, @d, $r->{down}), "\n";
        next unless Bench::is_redis($col);
        my %d;
        @d{@Bench::REDIS_FIELDS} = @d;
        my $sec = $w->{seconds};
        Bench::note(sprintf('           redis: %.2f commands/request, %.0f'
            . ' scripts/s (%.0f us each), keys published %.0f/s, read'
            . ' %.0f/s, CPU %.0f%%; link down %d times',
            $w->{requests} ? $d{total_cmds} / $w->{requests} : 0,
            $d{scripts} / $sec, $d{scripts} ? $d{script_usec} / $d{scripts} : 0,
            $d{keys_pub} / $sec, $d{keys_read} / $sec,
            $d{cpu_us} / $sec / 1e4, $r->{down}));
    }
}
Bench::meta('host.loadavg_after ' . loadavg(),
            'time.throughput_s ' . int(time - $t0));

# What one scrape costs this nginx, now idle: the workers' CPU time per
# GET API_LOC/ and per GET API_LOC/metrics (10 of each)
if ($stsv) {
    my %ms;
    for my $p ('/', '/metrics') {
        my $ns0 = Bench::cpu_ns(@workers);
        my $name = $p eq '/' ? 'json' : 'metrics';
        Bench::run_to("$out/wrk/scrape-cost-$name.txt",
            Bench::on_cpus($c->{WRK_CPUS}, 'perl', 'bench/apiclient.pl',
                '--port', $port, '--count', 10, "$c->{API_LOC}$p"))
            or Bench::die_('the API client failed (scrape cost)');
        $ms{$name} = (Bench::cpu_ns(@workers) - $ns0) / 1e6 / 10;
        Bench::meta(sprintf('api.scrape_cpu_ms.%s %.3f', $name, $ms{$name}));
    }
    Bench::note(sprintf('one scrape, idle: %.3f ms of nginx CPU for %s/,'
        . ' %.3f ms for %s/metrics', $ms{json}, $c->{API_LOC}, $ms{metrics},
        $c->{API_LOC}));
}

if (grep { /\[(alert|crit|emerg)\]|exited on signal/ }
        map { Bench::slurp($_) } $t->dir . '/logs/error.log',
            glob("$out/wrk/*.errlog.head")) {
    Bench::note("WARNING: nginx logged alerts during the throughput runs"
                . " (see $out/wrk/*.errlog.head)");
}
$t->stop;

# run_wrk(COLUMN, SECONDS, FILE, [WRK ARGS]): one wrk run against the
# column's location (by default bench/keys.lua over CONNECTIONS
# connections, the column's number of keys as its argument), the error log
# emptied first; the figures around it
sub run_wrk {
    my ($col, $secs, $file, @args) = @_;
    @args = ("-c$c->{CONNECTIONS}", '-s', 'bench/keys.lua') unless @args;
    my $log = $t->dir . '/logs/error.log';
    truncate $log, 0;
    my $i0 = $redis ? Bench::info($redis) : undef;
    my $c0 = Bench::cpu_ticks(@workers);
    my @w0 = Bench::cpu_jiffies($c->{WRK_CPUS});
    my @g0 = Bench::cpu_jiffies($c->{NGINX_CPUS});
    my $spid;
    if ($col eq 'trl-1key-api') {
        # scrapes at 1/2, 3/2, ... API_SCRAPE_EVERY into the run, while
        # wrk runs (it starts a few ms after this)
        $spid = Bench::spawn("$file.scrape",
            Bench::on_cpus($c->{WRK_CPUS}, 'perl', 'bench/apiclient.pl',
                '--port', $port, '--every', $c->{API_SCRAPE_EVERY},
                '--duration', $secs, '--timeout', $secs + 30,
                "$c->{API_LOC}/", "$c->{API_LOC}/metrics"));
    }
    my $path = $col eq 'trl-1key-api' ? '/trl-1key' : "/$col";
    my $keys = $col =~ /-100k$/ ? $c->{KEYS100K} : 1;
    my $t0 = time;
    local $ENV{THREADS} = $c->{THREADS};
    Bench::run_to($file, 'bench/wrk.sh', $c->{WRK_CPUS}, $secs,
                  "http://127.0.0.1:$port$path", @args, '--', $keys,
                  defined $ENV{WRK_XARG} ? $ENV{WRK_XARG} : ())
        or do { print STDERR Bench::slurp($file);
                Bench::die_("wrk failed on $col") };
    my $wall = int((time - $t0) * 1000);
    if ($spid && !Bench::reap($spid)) {
        print STDERR Bench::slurp("$file.scrape");
        Bench::die_("the API scraper failed during $col");
    }
    my @w1 = Bench::cpu_jiffies($c->{WRK_CPUS});
    my @g1 = Bench::cpu_jiffies($c->{NGINX_CPUS});
    my $c1 = Bench::cpu_ticks(@workers);
    my %r = (ticks => $c1 - $c0, wall_ms => $wall,
             wrk_cpu => Bench::busy_pct(\@w0, \@w1), ngx_cpu => Bench::busy_pct(\@g0, \@g1));
    if ($redis) {
        # after a sync column, two intervals: its last publish counts
        sleep((2 * $c->{SYNC_INTERVAL_MS} + 50) / 1000)
            if Bench::is_sync($col);
        $r{redis} = [Bench::redis_delta($i0, Bench::info($redis))];
    }
    my $text = Bench::slurp($log);
    $r{lines} = () = $text =~ /\n/g;
    # the link to Redis went down (a missed deadline): fail=open decided
    # locally until it was back
    $r{down} = () = $text =~ /is unreachable/g;
    open my $fh, '>', "$file.errlog.head" or die;
    print $fh substr($text, 0, 4096);
    close $fh;
    truncate $log, 0;
    return \%r;
}


sub loadavg { join ' ', (split ' ', Bench::slurp('/proc/loadavg'))[0 .. 2] }

sub scrape_lines {
    my ($round, $col, $file) = @_;
    for (split /\n/, Bench::slurp($file)) {
        next unless /^path=/;
        my %v = map { /^([^=]+)=(.*)$/ } split ' ';
        print $stsv join("\t", $round, $col, $v{path}, $scrapes, $v{n},
            $v{status_200} // 0, @v{qw(bytes med_ms p90_ms max_ms mean_ms)}),
            "\n";
        Bench::note(sprintf('           scrape %-16s %d of %d 200 OK'
            . '  median %.2f ms  max %.2f ms  %d bytes', $v{path},
            $v{status_200} // 0, $scrapes, $v{med_ms}, $v{max_ms}, $v{bytes}));
    }
}

# Waits, at most IDLE_WAIT s, for all CPUs to be under 10% busy over 2 s
sub idle_wait {
    my $all = '0-' . ($c->{NCPU} - 1);
    my $t0 = time;
    my $busy;
    while (1) {
        my @a = Bench::cpu_jiffies($all);
        sleep 2;
        my @b = Bench::cpu_jiffies($all);
        $busy = Bench::busy_pct(\@a, \@b);
        last if $busy eq '-' || $busy < 10;
        if (time - $t0 >= $c->{IDLE_WAIT}) {
            Bench::note("the machine is still $busy% busy after"
                        . " $c->{IDLE_WAIT}s: going on");
            last;
        }
        Bench::note("waiting for an idle machine: $busy% busy");
    }
    Bench::meta(sprintf('host.idle_wait_s %d busy_pct %s', time - $t0, $busy));
}
