#!/usr/bin/perl
# conf.d/monitoring/: the Prometheus alerting rules, their unit tests, the
# example scrape configuration and the Grafana dashboard.
#
# - "promtool check rules" accepts the rules; "promtool test rules" passes
#   the unit tests, which show every alert both firing and staying quiet;
#   "promtool check config" accepts the example prometheus.yml.
# - The Grafana dashboard is JSON, every panel has an id, a place and a
#   query; every query is valid PromQL (promtool checks it as a rule).
# - Every metric name in a rule, a unit test series or a dashboard query is
#   one the module really exports, read from a live scrape of nginx with a
#   local zone, async and strict sync zones, Redis and the runtime lists;
#   the dashboard shows every family the module exports.
# - End to end: the alerts evaluated (promtool test rules) on series made
#   from two real scrapes (before and after traffic that floods a small
#   zone, with Redis then stopped) fire with the real labels: rejection
#   spike, many offending keys, Redis down, zone near full and evicting.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $PROMTOOL = $ENV{PROMTOOL} || 'promtool';
my $DIR = "$TRL::ROOT/conf.d/monitoring";
my $RULES = "$DIR/token-ratelimit.rules.yml";
my $TESTS = "$DIR/token-ratelimit.rules.test.yml";
my $SCRAPE = "$DIR/prometheus-scrape.yml";
my $GRAFANA = "$DIR/grafana-token-ratelimit.json";

my $have_promtool = system("command -v $PROMTOOL >/dev/null 2>&1") == 0;

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

# (exit code, output) of promtool with the given arguments
sub promtool {
    my @args = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec $PROMTOOL, @args or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# The expressions of a rules file: "expr: ..." on one line or "expr: |"
# and the lines indented below it.
sub rule_exprs {
    my ($text) = @_;
    my (@exprs, $block, $indent);
    for my $line (split /\n/, $text) {
        if (defined $block) {
            if ($line =~ /^(\s*)\S/ && length($1) > $indent) {
                $block .= "$line\n";
                next;
            }
            push @exprs, $block;
            undef $block;
        }
        next unless $line =~ /^(\s*)expr:\s*(.*)$/;
        if ($2 eq '|' || $2 eq '|-') {
            ($block, $indent) = ('', length $1);
        } else {
            push @exprs, $2;
        }
    }
    push @exprs, $block if defined $block;
    return @exprs;
}

sub metric_names {
    my %n = map { $_ => 1 } map { /\b(token_ratelimit_[a-z0-9_]+)/g } @_;
    return sort keys %n;
}

my $rules_text = slurp($RULES);
my $tests_text = slurp($TESTS);
my @alerts = $rules_text =~ /^\s*- alert:\s*(\w+)/mg;
my @rule_exprs = rule_exprs($rules_text);
is(scalar @rule_exprs, scalar @alerts, 'every alert has an expression');
ok(@alerts >= 5, 'alerts: ' . join(' ', @alerts));

# --- promtool on the shipped files ---------------------------------------

SKIP: {
    skip "no promtool (scripts/install-deps.sh installs prometheus)", 3
        unless $have_promtool;

    my ($rc, $out) = promtool('check', 'rules', $RULES);
    ok($rc == 0 && $out =~ /SUCCESS: ${\ scalar @alerts} rules found/,
       'promtool check rules') or diag($out);

    ($rc, $out) = promtool('test', 'rules', $TESTS);
    ok($rc == 0 && $out =~ /SUCCESS/, 'promtool test rules') or diag($out);

    ($rc, $out) = promtool('check', 'config', $SCRAPE);
    ok($rc == 0, 'promtool check config (the example scrape job)')
        or diag($out);
}

# Each alert is tested firing (exp_labels under its name) and quiet
# (exp_alerts: []) somewhere in the unit tests.
{
    my @bad;
    my %case;
    for my $chunk (split /^\s*- eval_time:/m, $tests_text) {
        my ($name) = $chunk =~ /alertname:\s*(\w+)/ or next;
        $case{$name}{firing}++ if $chunk =~ /exp_labels:/;
        $case{$name}{quiet}++ if $chunk =~ /exp_alerts:\s*\[\]/;
    }
    for my $a (@alerts) {
        push @bad, "$a never fires" unless $case{$a}{firing};
        push @bad, "$a is never shown quiet" unless $case{$a}{quiet};
    }
    ok(!@bad, 'every alert is tested firing and quiet') or diag(join "\n", @bad);
}

# --- the Grafana dashboard ---------------------------------------------------

my $dash = eval { JSON::PP->new->decode(slurp($GRAFANA)) };
ok($dash, 'Grafana dashboard: JSON') or diag($@);
$dash ||= {};

my (@dash_exprs, %ids, @bad_panels);
for my $p (@{$dash->{panels} || []}) {
    push @bad_panels, "panel without id: $p->{title}" unless $p->{id};
    push @bad_panels, "id $p->{id} twice" if $p->{id} && $ids{$p->{id}}++;
    my $g = $p->{gridPos} || {};
    push @bad_panels, "$p->{title}: no gridPos"
        unless defined $g->{x} && defined $g->{y} && $g->{w} && $g->{h}
               && $g->{x} + $g->{w} <= 24;
    next if $p->{type} eq 'row';
    push @bad_panels, "$p->{title}: no query" unless @{$p->{targets} || []};
    push @bad_panels, "$p->{title}: no title" unless $p->{title};
    push @bad_panels, "$p->{title}: data source not \${datasource}"
        unless ($p->{datasource}{uid} // '') eq '${datasource}';
    for my $q (@{$p->{targets} || []}) {
        push @bad_panels, "$p->{title}: empty expr" unless $q->{expr};
        push @dash_exprs, $q->{expr} if $q->{expr};
    }
}
ok(@dash_exprs >= 20 && !@bad_panels,
   'Grafana dashboard: ' . scalar(@dash_exprs) . ' queries, panels complete')
    or diag(join "\n", @bad_panels);

my @var_queries;
for my $v (@{$dash->{templating}{list} || []}) {
    next unless $v->{type} eq 'query';
    my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
    push @var_queries, $q;
}
is(join(' ', sort map { $_->{name} } @{$dash->{templating}{list} || []}),
   'datasource instance job zone', 'Grafana dashboard: variables');

# Every query parses as PromQL: promtool checks them as recording rules
# (Grafana's variables replaced by what they stand for).
SKIP: {
    skip "no promtool", 1 unless $have_promtool;
    my @exprs = @dash_exprs;
    for (@var_queries) {
        push @exprs, $1 if /^label_values\((.*),\s*\w+\)$/;
    }
    my $yaml = "groups:\n  - name: dashboard\n    rules:\n";
    my $i = 0;
    for my $e (@exprs) {
        (my $x = $e) =~ s/\$__rate_interval/5m/g;
        $x =~ s/\$(job|instance|zone)\b/.*/g;
        $i++;
        $yaml .= "      - record: dashboard:query$i\n        expr: |\n"
               . join('', map { "          $_\n" } split /\n/, $x);
    }
    my $t = TRL->new;       # (for its temporary directory)
    my $file = $t->write_file('dashboard.rules.yml', $yaml);
    my ($rc, $out) = promtool('check', 'rules', $file);
    ok($rc == 0 && $out =~ /SUCCESS: $i rules found/,
       "Grafana dashboard: all $i queries are valid PromQL") or diag($out);
}

# --- a live nginx: what the module exports ------------------------------------

my $t = TRL->new(workers => 2);
my $redis = TRLRedis->new(port => $t->port('REDIS'));
my $raddr = $redis->address;

$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=tiny:32k rate=2r/m;
    token_ratelimit_zone \$http_x_key zone=s:1m rate=10r/m sync;
    token_ratelimit_zone \$http_x_key zone=st:1m rate=10r/m sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=200ms;
    keepalive_requests 100000;

    server {
        listen 127.0.0.1:%%PORT%%;
        location /tiny { token_ratelimit zone=tiny; empty_gif; }
        location /s    { token_ratelimit zone=s; empty_gif; }
        location /st   { token_ratelimit zone=st; empty_gif; }
        location /api  { token_ratelimit_api; }
    }
EOF
$t->run;

# Sends GET path for each key, pipelined on one keep-alive connection (in
# batches, so that neither side's buffers fill up); returns the statuses.
sub pipeline {
    my ($path, @keys) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port('PORT'),
                                  Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    binmode $s;
    my @status;
    while (my @batch = splice @keys, 0, 100) {
        print $s join '', map {
            "GET $path HTTP/1.1\r\nHost: localhost\r\nX-Key: $_\r\n\r\n"
        } @batch;
        my $buf = '';
        my $sel = IO::Select->new($s);
        my $deadline = time + 10;
        my $got = 0;
        while ($got < @batch && time < $deadline) {
            last unless $sel->can_read($deadline - time);
            sysread($s, my $chunk, 65536) or last;
            $buf .= $chunk;
            $got = () = $buf =~ m{HTTP/1\.1 \d{3} }g;
        }
        push @status, $buf =~ m{HTTP/1\.1 (\d{3}) }g;
    }
    close $s;
    return @status;
}

sub scrape {
    my $r = $t->get('/api/metrics');
    my (%type, @samples);
    for (split /\n/, $r->{body}) {
        $type{$1} = $2 if /^# TYPE (\S+) (\S+)/;
        push @samples, [$1, $2 // '', $3]
            if /^(token_ratelimit_\w+)(\{.*\})? (\S+)$/;
    }
    return { type => \%type, samples => \@samples };
}

sub value {
    my ($m, $name, $labels) = @_;
    for (@{$m->{samples}}) {
        return $_->[2] if $_->[0] eq $name && $_->[1] eq $labels;
    }
    return undef;
}

# traffic before the first scrape: every family present
pipeline('/s', ('kx-s') x 3);
pipeline('/st', ('kx-st') x 3);
is($t->post('/api/lists/deny?cidr=198.51.100.0/24', '')->{status}, 201,
   'a runtime deny entry');
TRLRedis::wait_for(3, sub {
    (value(scrape(), 'token_ratelimit_sync_published_total', '{zone="s"}')
     // 0) >= 3;
});

my $A = scrape();
my %exported = %{$A->{type}};

my @used = metric_names(@rule_exprs, @dash_exprs, @var_queries);
my @series = metric_names($tests_text =~ /series:\s*'([^']*)'/g);
ok(@used >= 20, scalar(@used) . ' metric names in rules and dashboard');
my @unknown = grep { !$exported{$_} } @used, @series;
ok(!@unknown, 'every metric name in the rules, their tests and the '
              . 'dashboard is exported') or diag("unknown: @unknown");
my %in_dash = map { $_ => 1 } metric_names(@dash_exprs, @var_queries);
my @unshown = grep { !$in_dash{$_} } sort keys %exported;
ok(!@unshown, 'the dashboard shows every exported family ('
              . scalar(keys %exported) . ')') or diag("not shown: @unshown");
is(join(' ', sort keys %exported), join(' ', sort qw(
    token_ratelimit_requests_total token_ratelimit_penalized_requests_total
    token_ratelimit_offenses_total token_ratelimit_penalties_started_total
    token_ratelimit_penalties_active token_ratelimit_evictions_total
    token_ratelimit_lock_recoveries_total token_ratelimit_log_suppressed_total
    token_ratelimit_zone_keys
    token_ratelimit_zone_capacity_keys token_ratelimit_zone_size_bytes
    token_ratelimit_zone_limit token_ratelimit_zone_window_seconds
    token_ratelimit_zone_info
    token_ratelimit_sync_published_total token_ratelimit_sync_reads_total
    token_ratelimit_sync_errors_total token_ratelimit_sync_fallback_total
    token_ratelimit_sync_strict_calls_total
    token_ratelimit_sync_strict_cached_total
    token_ratelimit_sync_last_success_timestamp_seconds
    token_ratelimit_sync_lag_seconds
    token_ratelimit_redis_up token_ratelimit_redis_outages_total
    token_ratelimit_redis_failures_total
    token_ratelimit_list_entries)), 'the documented families, all exported');

# --- end to end: the alerts on real series --------------------------------------

# The zone of 248 keys (32k): a flood of one key, 250 keys over the limit
# (each three requests in a row), 300 more keys once each (the zone
# evicts); then Redis is stopped.
my $cap = value($A, 'token_ratelimit_zone_capacity_keys', '{zone="tiny"}');
my @flood = pipeline('/tiny', ('kx-flood') x 1100);
my @offenders = pipeline('/tiny', map { ("kx-o$_") x 3 } 1 .. 250);
my @fill = pipeline('/tiny', map { "kx-f$_" } 1 .. 300);
is(scalar(grep { $_ == 429 } @flood), 1098, 'flood: 1098 rejected');
is(scalar(grep { $_ == 429 } @offenders), 250, 'offenders: 250 rejected');
is(scalar(grep { $_ == 200 } @fill), 300, 'fill: 300 admitted');

$redis->stop;
ok(TRLRedis::wait_for(5, sub {
    pipeline('/s', 'kx-s');
    (value(scrape(), 'token_ratelimit_redis_up', '') // 1) == 0;
}), 'Redis stopped: redis_up 0');

my $B = scrape();
ok(value($B, 'token_ratelimit_evictions_total', '{zone="tiny"}') > 0,
   'zone tiny evicted live keys');
is(value($B, 'token_ratelimit_zone_keys', '{zone="tiny"}'), $cap,
   'zone tiny is full');

# Series: the first scrape until 60m; counters climb to the second scrape
# over 15 minutes (61m..75m), gauges take its value at 61m; then flat.
{
    my %a = map { ("$_->[0]$_->[1]" => $_->[2]) } @{$A->{samples}};
    my $input = '';
    for my $s (@{$B->{samples}}) {
        my ($name, $labels, $b) = @$s;
        next if $name eq 'token_ratelimit_zone_info';
        my $a = $a{"$name$labels"} // $b;
        my @v = ($a) x 61;
        my $counter = ($B->{type}{$name} // '') eq 'counter';
        for my $k (1 .. 15) {
            push @v, $counter ? $a + ($b - $a) * $k / 15 : $b;
        }
        push @v, ($b) x 30;
        my $l = $labels eq '' ? '{' : substr($labels, 0, -1) . ',';
        $input .= "      - series: '$name${l}job=\"nginx\",instance=\"e2e:1\"}'\n"
                . "        values: '@v'\n";
    }

    # the rules without their annotations: the labels are what counts here
    (my $bare = $rules_text) =~ s/^(\s+)annotations:\n(?:\1\s+.*\n|\s*\n)*//mg;
    unlike($bare, qr/annotations|summary|description/,
           'annotations taken out for the end-to-end test');
    $t->write_file('e2e.rules.yml', $bare);

    my $labels = sub {
        my ($severity, $zone) = @_;
        return "          - exp_labels:\n"
             . "              severity: $severity\n"
             . "              job: nginx\n"
             . "              instance: 'e2e:1'\n"
             . ($zone ? "              zone: $zone\n" : '');
    };
    my $case = sub {
        my ($time, $alert, @exp) = @_;
        return "      - eval_time: $time\n        alertname: $alert\n"
             . (@exp ? "        exp_alerts:\n" . join('', @exp)
                     : "        exp_alerts: []\n");
    };

    my $yaml = "rule_files:\n  - e2e.rules.yml\nevaluation_interval: 1m\n"
             . "tests:\n  - interval: 1m\n    input_series:\n$input"
             . "    alert_rule_test:\n";
    # before the traffic: all quiet
    $yaml .= $case->('55m', $_) for @alerts;
    $yaml .= $case->('73m', 'TokenRateLimitRejectionSpike',
                     $labels->('warning', 'tiny'));
    $yaml .= $case->('73m', 'TokenRateLimitManyOffendingKeys',
                     $labels->('warning', 'tiny'));
    $yaml .= $case->('73m', 'TokenRateLimitRedisDown',
                     $labels->('critical'));
    $yaml .= $case->('73m', 'TokenRateLimitRedisFlapping');
    $yaml .= $case->('73m', 'TokenRateLimitZoneEvicting',
                     $labels->('warning', 'tiny'));
    $yaml .= $case->('80m', 'TokenRateLimitZoneNearFull',
                     $labels->('info', 'tiny'));
    my $file = $t->write_file('e2e.test.yml', $yaml);

    SKIP: {
        skip "no promtool", 1 unless $have_promtool;
        my ($rc, $out) = promtool('test', 'rules', $file);
        ok($rc == 0 && $out =~ /SUCCESS/,
           'end to end: the alerts fire on real series with real labels')
            or diag($out);
    }
}

$t->stop;
$t->no_alerts;

done_testing;
