#!/usr/bin/perl
# An error log an attacker cannot flood: token_ratelimit_zone log_rate=N.
#
# A flood of fresh keys (each reaches the warning threshold, then is
# rejected: a [notice] and a "limiting requests" line per key without a
# bound) over keep-alive connections to 2 workers:
# - zone fl (log_rate=3): the error log gets at most 3 of its lines per
#   second touched, all workers together; the lines refused are counted,
#   the next line written says ", N lines suppressed by log_rate", and the
#   counts said add up to the API's log_suppressed (and Prometheus'
#   token_ratelimit_log_suppressed_total); written + suppressed
#   is every line the zone had to write (what zone ctl, log_rate=off,
#   writes for the same traffic)
# - zone dflt (no log_rate=): the default, 5 a second
# - no "rejected 0 more requests" line ever (a warning used to be
#   followed by one)
# - the count survives a reload; nginx -t refuses bad log_rate= values
#   and names them
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use POSIX qw(floor);
use Time::HiRes qw(sleep time);
use TRL;

my $KEYS = 9000;
my $CONNS = 16;

my $t = TRL->new(workers => 2);

my $CONF = <<'EOF';
    token_ratelimit_zone $http_x_key zone=fl:4m rate=1r/m log_rate=3;
    token_ratelimit_zone $http_x_key zone=ctl:4m rate=1r/m log_rate=off;
    token_ratelimit_zone $http_x_key zone=dflt:4m rate=1r/m;
    keepalive_requests 100000;
    log_format pid $pid;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        access_log %%DIR%%/logs/pids.log pid;

        location /fl   { token_ratelimit zone=fl warn=1; empty_gif; }
        location /ctl  { token_ratelimit zone=ctl warn=1; empty_gif; }
        location /dflt { token_ratelimit zone=dflt warn=1; empty_gif; }
        location /trl-api { token_ratelimit_api; }
    }
EOF

$t->write_config($CONF);
$t->run;

my $json = JSON::PP->new;

sub api_zone {
    my ($zone) = @_;
    my $r = $t->get("/trl-api/zones/$zone");
    return eval { $json->decode($r->{body}) } || {};
}

sub raw {
    my ($path, $key) = @_;
    return "GET $path HTTP/1.1\r\nHost: localhost\r\nX-Key: $key\r\n\r\n";
}

# Every key of @keys twice (admitted and warned, then rejected), spread
# over $CONNS pipelined keep-alive connections; returns the statuses.
sub flood {
    my ($path, @keys) = @_;
    my %st;
    my @socks = map { $t->connect_keepalive } 1 .. $CONNS;
    my $per = int((@keys + $CONNS - 1) / $CONNS);
    for my $pass (1, 2) {
        for my $i (0 .. $CONNS - 1) {
            my @mine = grep { defined } @keys[$i * $per .. ($i + 1) * $per - 1];
            next unless @mine;
            $st{$_->{status}}++
                for TRL::pipeline($socks[$i], map { raw($path, $_) } @mine);
        }
    }
    close $_ for @socks;
    return \%st;
}

# The error log lines of a zone (the limiter's: they name the zone).
sub zone_lines {
    my ($zone, $from) = @_;
    my $log = substr($t->error_log, $from // 0);
    return grep { /zone "\Q$zone\E"/ } split /\n/, $log;
}

sub sum_suppressed {
    my $n = 0;
    for (@_) {
        $n += $1 if /, (\d+) lines suppressed by log_rate/;
    }
    return $n;
}

# --- the same traffic with no bound: zone ctl --------------------------------

my $st = flood('/ctl', map { "c$_" } 1 .. $KEYS);
is($st->{200}, $KEYS, "ctl: $KEYS admitted");
is($st->{429}, $KEYS, "ctl: $KEYS rejected");

my @ctl = zone_lines('ctl');
my $intended = scalar @ctl;
is(scalar(grep { /reached the warning threshold/ } @ctl), $KEYS,
   'ctl (log_rate=off): a warning line per key');
is(scalar(grep { /limiting requests/ } @ctl), $KEYS,
   'ctl: a "limiting requests" line per key');
is($intended, 2 * $KEYS, 'ctl: nothing else (no "0 more" line)')
    or diag(join "\n", grep { !/reached the warning|limiting requests/ }
                       @ctl[0 .. 9]);
is(api_zone('ctl')->{log_suppressed}, 0, 'ctl: log_suppressed 0');

# --- the flood: zone fl, log_rate=3 ------------------------------------------

my $from = length $t->error_log;
my $t0 = time;
$st = flood('/fl', map { "f$_" } 1 .. $KEYS);
my $t1 = time;

is($st->{200}, $KEYS, "fl: $KEYS admitted");
is($st->{429}, $KEYS, "fl: $KEYS rejected");

my %pids = map { $_ => 1 } split /\n/, $t->read_file('logs/pids.log');
is(scalar keys %pids, 2, 'both workers answered some');

# the seconds the flood touched (Unix time, as the budget counts them)
my $seconds = floor($t1) - floor($t0) + 1;
my @fl = zone_lines('fl', $from);
my $elapsed = sprintf '%.2f', $t1 - $t0;
diag("flood of $KEYS keys x 2 in $elapsed s: " . scalar(@fl)
     . " lines of zone fl (ctl: $intended)");
ok(@fl <= 3 * $seconds,
   "fl: at most 3 lines a second ($seconds s touched): " . scalar @fl)
    or diag(join "\n", @fl[0 .. 9]);
ok(@fl >= 1, 'fl: some lines written');

my $api = api_zone('fl');
ok($api->{log_suppressed} > 0, "fl: API log_suppressed $api->{log_suppressed}");
is($api->{log_suppressed} + @fl, $intended,
   'fl: written + log_suppressed = every line the zone had to write');
is($api->{log_rate}, 3, 'fl: API log_rate 3');
is(api_zone('ctl')->{log_rate}, undef, 'ctl: API log_rate null (off)');

# the next second: one more line, which reports what is left to report
my $wait = 1 - (time - floor(time)) + 0.05;
sleep $wait;
is($t->get('/fl', headers => { 'X-Key' => 'after' })->{status}, 200,
   'after: admitted');
my @all = zone_lines('fl', $from);
my @after = @all[@fl .. $#all];
is(scalar @after, 1, 'after: one line');
like($after[0] // '', qr/reached the warning threshold.*, \d+ lines suppressed by log_rate, client:/,
     'after: its line says how many were suppressed');
is(sum_suppressed(@all), $api->{log_suppressed},
   'the counts the lines say add up to log_suppressed');
is(api_zone('fl')->{log_suppressed}, $api->{log_suppressed},
   'log_suppressed unchanged by a line written');
my ($prom) = $t->get('/trl-api/metrics')->{body}
    =~ /^token_ratelimit_log_suppressed_total\{zone="fl"\} (\d+)$/m;
is($prom, $api->{log_suppressed},
   'Prometheus: token_ratelimit_log_suppressed_total{zone="fl"} the same');

ok(!grep({ / 0 more requests/ } split /\n/, $t->error_log),
   'no "rejected 0 more requests" line anywhere');

# --- the default: 5 a second -------------------------------------------------

$from = length $t->error_log;
$t0 = time;
$st = flood('/dflt', map { "d$_" } 1 .. 2000);
$t1 = time;
$seconds = floor($t1) - floor($t0) + 1;
my @d = zone_lines('dflt', $from);
ok(@d <= 5 * $seconds && @d >= 1,
   "dflt: at most 5 lines a second by default ($seconds s): " . scalar @d);
my $dz = api_zone('dflt');
is($dz->{log_rate}, 5, 'dflt: API log_rate 5');
is($dz->{log_suppressed} + @d, 4000, 'dflt: written + suppressed = 4000');

# --- reload keeps the count ----------------------------------------------------

my $before = api_zone('fl')->{log_suppressed};
my ($rc) = $t->reload;
is($rc, 0, 'reload');
is(api_zone('fl')->{log_suppressed}, $before,
   'reload: log_suppressed kept');

$t->stop;
$t->no_alerts;

# --- nginx -t ---------------------------------------------------------------------

for my $bad ('log_rate=0', 'log_rate=-1', 'log_rate=x', 'log_rate=',
             'log_rate=100001', 'log_rate=on')
{
    $t->config_fails(
        "token_ratelimit_zone \$http_x_key zone=bad:1m rate=1r/m $bad;\n"
        . TRL::server_block('token_ratelimit zone=bad;'),
        [qr/invalid value "\Q$bad\E" in "token_ratelimit_zone" directive, "log_rate=": expected the error log lines a second per zone, 1 to 100000, or off/],
        "nginx -t: $bad");
}

done_testing;
