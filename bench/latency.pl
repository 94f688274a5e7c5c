#!/usr/bin/perl
# latency.pl - part 1b of make bench: the p99 that sync=strict adds, at
# half of trl-strict-1key's saturation rate (its median req/s in runs.tsv;
# LAT_RATE sets another).  wrk with bench/paced.lua sends at a fixed rate
# from LAT_CONNECTIONS connections, LAT_ROUNDS rounds of LAT_DURATION s
# alternating trl-1key and trl-strict-1key, with redis-server on each CPU
# list of LAT_REDIS_CPUS in turn.  Writes latency.tsv.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__) . '/lib';
use Bench;

my $c = Bench::cfg();
my $out = Bench::out();
exit 0 unless $c->{SYNC_ON} && grep { $_ eq 'trl-strict-1key' } @{$c->{COLUMNS}};

my @rps;
open my $fh, '<', "$out/runs.tsv" or Bench::die_('no runs.tsv: run bench/throughput.pl first');
while (<$fh>) {
    my @f = split /\t/;
    push @rps, $f[4] if $f[1] eq 'trl-strict-1key';
}
my $sat = sprintf '%.0f', Bench::median(@rps) // 0;
my $rate = $c->{LAT_RATE} || int($sat / 2);
Bench::die_("strict latency: rate $rate is below one request per second per thread")
    if $rate < $c->{THREADS};
my $per_thread = int($rate / $c->{THREADS});
$rate = $per_thread * $c->{THREADS};
Bench::meta("lat.saturation_rps $sat", "lat.rate $rate",
    'lat.rate_from ' . ($c->{LAT_RATE} ? 'LAT_RATE' : 'half'),
    "lat.connections $c->{LAT_CONNECTIONS}", "lat.rounds $c->{LAT_ROUNDS}",
    "lat.duration_s $c->{LAT_DURATION}");
my @places = @{$c->{LAT_REDIS_CPUS}};
Bench::note("strict latency: trl-strict-1key saturates at $sat req/s;"
    . " $c->{LAT_ROUNDS} rounds x 2 columns x $c->{LAT_DURATION}s at $rate"
    . " req/s, -c$c->{LAT_CONNECTIONS}, redis-server on CPUs: @places");

my $t0 = time;
my $redis = Bench::redis();
my $t = Bench::nginx('bench/nginx.conf.in', 'latency',
                     MAIN => Bench::affinity(), REDIS_PORT => $redis->port);
my @workers = Bench::start($t);
TRLRedis::wait_for(5, sub { $redis->client_count >= $c->{WORKERS} });
my $log = $t->dir . '/logs/error.log';

open my $lat, '>', "$out/latency.tsv" or die;
$lat->autoflush(1);
print $lat join("\t", qw(redis_cpus round column rate requests seconds
    p50_us p90_us p99_us p999_us max_us mean_us late slots errors
    status_errors cpu_ticks errlog_lines scripts nginx_cpu_pct wrk_cpu_pct
    link_down)), "\n";
local $ENV{THREADS} = $c->{THREADS};
for my $place (@places) {
    Bench::pin($place, $redis->pid);
    for my $round (1 .. $c->{LAT_ROUNDS}) {
        my @cols = qw(trl-1key trl-strict-1key);
        @cols = reverse @cols unless $round % 2;
        for my $col (@cols) {
            my $f = "$out/wrk/latency-cpu$place-round$round-$col.txt";
            truncate $log, 0;
            my $i0 = Bench::info($redis);
            my $k0 = Bench::cpu_ticks(@workers);
            my @w0 = Bench::cpu_jiffies($c->{WRK_CPUS});
            my @g0 = Bench::cpu_jiffies($c->{NGINX_CPUS});
            Bench::run_to($f, 'bench/wrk.sh', $c->{WRK_CPUS},
                $c->{LAT_DURATION}, 'http://127.0.0.1:' . $t->port . "/$col",
                "-c$c->{LAT_CONNECTIONS}", '--latency', '-s',
                'bench/paced.lua', '--', 1, $per_thread)
                or do { print STDERR Bench::slurp($f);
                        Bench::die_("wrk failed on $col") };
            my @w1 = Bench::cpu_jiffies($c->{WRK_CPUS});
            my @g1 = Bench::cpu_jiffies($c->{NGINX_CPUS});
            my $ticks = Bench::cpu_ticks(@workers) - $k0;
            my @d = Bench::redis_delta($i0, Bench::info($redis));
            my $text = Bench::slurp($log);
            my $lines = () = $text =~ /\n/g;
            my $down = () = $text =~ /is unreachable/g;
            my ($line) = Bench::slurp($f) =~ /^(paced:.*)$/m
                or do { print STDERR Bench::slurp($f);
                        Bench::die_("no paced: line in $f") };
            my %v = $line =~ /(\w+)=([\d.]+)/g;
            print $lat join("\t", $place, $round, $col, $rate, $v{requests},
                sprintf('%.3f', $v{duration_us} / 1e6),
                @v{qw(p50_us p90_us p99_us p999_us max_us mean_us late slots
                      errors status_errors)}, $ticks, $lines, $d[0],
                Bench::busy_pct(\@g0, \@g1), Bench::busy_pct(\@w0, \@w1), $down), "\n";
            Bench::note(sprintf('  redis on %s, round %s %-16s %6.0f req/s'
                . '  p50 %5d us  p99 %5d us  p99.9 %5d us  late %d'
                . '  link down %d', $place, $round, $col,
                $v{requests} / ($v{duration_us} / 1e6), $v{p50_us},
                $v{p99_us}, $v{p999_us}, $v{late}, $down));
        }
    }
}
$t->stop;
Bench::meta('time.latency_s ' . int(time - $t0));

