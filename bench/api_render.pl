#!/usr/bin/perl
# api_render.pl - part 1c of make bench: how long the API takes to render a
# full zone.  An nginx of its own (bench/api.conf.in), zone "api" of
# API_ZONE_SIZE at 1r/m with penalty=10m, filled with API_KEYS keys
# (bench/hclient.pl, pipelined: each key once, admitted; then the first
# API_OVER percent again: rejected, a penalty each).  bench/apiclient.pl
# then times API_REPEAT GETs of each call, one at a time ("idle": the
# worker's CPU per call from /proc/PID/schedstat), then all four in turn
# while wrk loads /limited with the same keys ("load").  Writes api.tsv and
# api.* lines in meta.txt.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use JSON::PP;
use Time::HiRes qw(sleep time);
use lib dirname(__FILE__) . '/lib';
use Bench;

my $c = Bench::cfg();
my $out = Bench::out();
my $t0 = time;
my $t = Bench::nginx('bench/api.conf.in', 'api', workers => 1,
                     MAIN => Bench::affinity());
my ($worker) = Bench::start($t);
my $dir = $t->dir;
my $port = $t->port;
my $over = int($c->{API_KEYS} * $c->{API_OVER} / 100);
Bench::note("API render time: zone \"api\" of $c->{API_ZONE_SIZE},"
    . " $c->{API_KEYS} keys, $over of them over their limit (penalty 10m);"
    . " $c->{API_REPEAT} calls each");

sub client {        # client(FILE, SCRIPT, ARGS...): a client on wrk's CPUs
    my ($file, $script, @args) = @_;
    return Bench::run_to($file, Bench::on_cpus($c->{WRK_CPUS}, 'perl',
                                                "bench/$script", '--port',
                                                $port, @args));
}

sub kv {            # kv(NAME, FILE): NAME=value in FILE, or 0
    my ($n, $f) = @_;
    return Bench::slurp($f) =~ /(?:^|\s)\Q$n\E=(\S+)/ ? $1 : 0;
}

# the fill: every key once (admitted), then the first API_OVER percent once
# more (rejected: a penalty each)
my $tf = time;
client("$dir/fill-admit.txt", 'hclient.pl', '--path', '/limited', '--from', 1,
       '--to', $c->{API_KEYS}, '--wrk-keys', '--pipeline', 256,
       '--timeout', 60) or Bench::die_('API render time: the fill failed');
if ($over > 0) {
    client("$dir/fill-reject.txt", 'hclient.pl', '--path', '/limited',
           '--from', 1, '--to', $over, '--wrk-keys', '--pipeline', 256,
           '--timeout', 60) or Bench::die_('API render time: the fill failed');
}
my $fill_ms = int((time - $tf) * 1000);
my ($adm, $rej) = (kv('status_200', "$dir/fill-admit.txt"),
                   kv('status_429', "$dir/fill-reject.txt"));
Bench::meta("api.zone_size $c->{API_ZONE_SIZE}", "api.keys_sent $c->{API_KEYS}",
    "api.over_sent $over", "api.fill_ms $fill_ms", "api.fill_admitted $adm",
    "api.fill_rejected $rej", "api.repeat $c->{API_REPEAT}",
    "api.max_ms $c->{API_MAX_MS}");
Bench::note("  filled in $fill_ms ms: $adm admitted, $rej rejected");

my $loc = $c->{API_LOC};
my @calls = (['zone', "$loc/zones/api"], ['all', "$loc/"],
             ['metrics', "$loc/metrics"],
             ['key', "$loc/zones/api/keys?key=key-000000"]);
my %label = map { $_->[1] => $_->[0] } @calls;
open my $tsv, '>', "$out/api.tsv" or die;
$tsv->autoflush(1);
print $tsv join("\t", qw(phase call path n status_200 bytes med_ms p90_ms
                         max_ms mean_ms cpu_ms)), "\n";

sub tsv_lines {     # api.tsv lines from apiclient.pl's output
    my ($phase, $cpu, $file) = @_;
    my @rows;
    for (split /\n/, Bench::slurp($file)) {
        next unless /^path=/;
        my %v = map { /^([^=]+)=(.*)$/ } split ' ';
        push @rows, [$phase, $label{$v{path}}, $v{path}, $v{n},
                     $v{status_200} // 0,
                     @v{qw(bytes med_ms p90_ms max_ms mean_ms)}, $cpu];
        print $tsv join("\t", @{$rows[-1]}), "\n";
    }
    return @rows;
}

# idle: one call at a time, the worker's CPU around it
for my $call (@calls) {
    my ($label, $path) = @$call;
    make_path("$dir/idle-$label");
    my $ns0 = Bench::cpu_ns($worker);
    client("$dir/idle-$label.txt", 'apiclient.pl', '--count',
           $c->{API_REPEAT}, '--save', "$dir/idle-$label", '--times',
           "$dir/idle-$label.times", $path)
        or Bench::die_("API render time: the client failed ($path)");
    my $cpu = sprintf '%.3f', (Bench::cpu_ns($worker) - $ns0) / 1e6
                              / $c->{API_REPEAT};
    for my $r (tsv_lines('idle', $cpu, "$dir/idle-$label.txt")) {
        Bench::note(sprintf('  idle %-8s %3d/%d 200 OK  median %7.2f ms'
            . '  p90 %7.2f ms  max %7.2f ms  CPU %6.2f ms/call  %d bytes',
            @$r[1, 4, 3, 6, 7, 8, 10, 5]));
    }
}
zone_meta("$dir/idle-zone/1.body", 'idle');
my $m = Bench::read_meta();
Bench::note("  zone: $m->{'api.idle.zone_keys'} keys,"
            . " $m->{'api.idle.penalties_active'} penalties active");

# under load: wrk on /limited with the same keys (all rejected now, or
# about to be), the four calls interleaved from one second on
if ($c->{API_LOAD}) {
    make_path("$dir/load");
    local $ENV{THREADS} = $c->{THREADS};
    # wrk stops at SIGINT (and prints its figures), at the latest after 60 s
    my $wpid = Bench::spawn("$dir/load-wrk.txt", 'bench/wrk.sh',
        $c->{WRK_CPUS}, 60, "http://127.0.0.1:$port/limited",
        "-c$c->{CONNECTIONS}", '-s', 'bench/keys.lua', '--', $c->{API_KEYS});
    sleep 1;
    unless (kill 0, $wpid) {
        print STDERR Bench::slurp("$dir/load-wrk.txt");
        Bench::die_('API render time: wrk failed');
    }
    my $tl = time;
    client("$dir/load.txt", 'apiclient.pl', '--count', $c->{API_REPEAT},
           '--pause', 0.025, '--save', "$dir/load", '--times',
           "$dir/load.times", map { $_->[1] } @calls)
        or Bench::die_('API render time: the client failed under load');
    my $load_ms = int((time - $tl) * 1000);
    Bench::note('WARNING: API render time: wrk ended before the timings'
                . ' under load did') unless kill 0, $wpid;
    # timeout passes SIGINT on to wrk
    kill 'INT', $wpid;
    Bench::reap($wpid) or do { print STDERR Bench::slurp("$dir/load-wrk.txt");
                               Bench::die_('API render time: wrk failed') };
    for my $r (tsv_lines('load', '-', "$dir/load.txt")) {
        Bench::note(sprintf('  load %-8s %3d/%d 200 OK  median %7.2f ms'
            . '  p90 %7.2f ms  max %7.2f ms  %d bytes', @$r[1, 4, 3, 6, 7, 8, 5]));
    }
    zone_meta("$dir/load/1.body", 'load');
    my $w = Bench::parse_wrk("$dir/load-wrk.txt");
    Bench::meta("api.load.wrk_requests $w->{requests}",
        sprintf('api.load.wrk_seconds %.3f', $w->{seconds}),
        sprintf('api.load.wrk_rps %.0f', $w->{requests} / $w->{seconds}),
        "api.load.wrk_non2xx $w->{non2xx}", "api.load.timing_ms $load_ms");
    $m = Bench::read_meta();
    Bench::note("  under load: $m->{'api.load.wrk_rps'} req/s on /limited"
        . " ($w->{non2xx} non-2xx), $m->{'api.load.penalties_active'}"
        . ' penalties active');
}
Bench::note("WARNING: nginx logged alerts during the API timings"
            . " ($dir/logs/error.log)")
    if $t->error_log =~ /\[(alert|crit|emerg)\]|exited on signal/;
$t->stop;
Bench::meta('time.api_s ' . int(time - $t0));

# zone_meta(FILE, PHASE): meta lines from the zone's JSON (GET
# API_LOC/zones/api) saved in FILE
sub zone_meta {
    my ($file, $ph) = @_;
    my $z = eval { JSON::PP->new->decode(Bench::slurp($file)) }
        or Bench::die_("API render time: the zone JSON does not parse: $@");
    my $p = $z->{penalties} || [];
    Bench::meta("api.$ph.zone_keys $z->{memory}{keys}",
        "api.$ph.zone_capacity $z->{memory}{capacity}",
        "api.$ph.penalties_active $z->{penalties_active}",
        "api.$ph.penalties_listed " . scalar(@$p),
        "api.$ph.penalties_with_key "
            . scalar(grep { defined $_->{key} || defined $_->{key_hex} } @$p),
        "api.$ph.top_offenders " . scalar(@{$z->{top_offenders} || []}),
        "api.$ph.rejected $z->{requests}{rejected}");
}
