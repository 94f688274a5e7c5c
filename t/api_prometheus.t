#!/usr/bin/perl
# token_ratelimit_api's Prometheus text: GET {loc}/metrics and
# {loc}/?format=prometheus.
#
# - Real traffic of every outcome (passed, warned, rejected, penalized,
#   dry-run, bypassed, denied) on two workers: each counter is the sum over
#   both, equals what the traffic made and what the JSON at {loc}/ says.
# - "promtool check metrics" (the real Prometheus parser and linter)
#   accepts the text with nothing to say; HELP and TYPE come before a
#   family's samples, families are not interleaved, no series repeats.
# - No per-key label: the keys of the traffic appear nowhere in the text;
#   label values (the key expression) are escaped (\\, \", \n; bytes that
#   are not UTF-8 become ?).
# - Sync zones (a real redis-server): token_ratelimit_redis_up 1, the sync
#   counters; Redis stopped: redis_up 0, outages counted, local fallback.
# - Runtime lists: entries per action.
# - Values survive "nginx -s reload"; HEAD works; POST is 405.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Temp qw(tempfile);
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $PROMTOOL = $ENV{PROMTOOL} || 'promtool';
my $have_promtool = system("command -v $PROMTOOL >/dev/null 2>&1") == 0;

my $t = TRL->new(workers => 2);
my $redis = TRLRedis->new(port => $t->port('REDIS'));
my $raddr = $redis->address;

# The key expression of zone "esc" holds \, ", a line feed (nginx reads \n
# in a quoted string as one), a byte that is not UTF-8 and a UTF-8 "e".
my $esc_conf = "\"k=\$http_x_key\\\\q\\\"\\n\xff\xc3\xa9\"";
my $esc_key = "k=\$http_x_key\\q\"\n\xff\xc3\xa9";
my $esc_label = "k=\$http_x_key\\q\"\n?\xc3\xa9";      # as bytes

my $conf = <<"EOF";
    token_ratelimit_zone \$http_x_key zone=z:1m rate=4r/m;
    token_ratelimit_zone $esc_conf zone=esc:64k rate=2r/90s;
    token_ratelimit_zone \$http_x_key zone=s:1m rate=10r/m sync;
    token_ratelimit_zone \$http_x_key zone=st:1m rate=2r/m sync=strict;
    token_ratelimit_redis $raddr interval=50ms timeout=200ms;

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        add_header X-Status \$token_ratelimit_status always;
        add_header X-Pid \$pid always;

        location /z {
            token_ratelimit zone=z warn=3 penalty=30s;
            token_ratelimit_bypass \$http_x_bypass;
            token_ratelimit_deny \$http_x_deny;
            empty_gif;
        }
        location /zdry { token_ratelimit zone=z dry_run; empty_gif; }
        location /esc  { token_ratelimit zone=esc; empty_gif; }
        location /s    { token_ratelimit zone=s; empty_gif; }
        location /st   { token_ratelimit zone=st; empty_gif; }

        location /api {
            token_ratelimit_api;
            allow 127.0.0.1;
            deny all;
        }
    }
EOF
$t->write_config($conf);
$t->run;

# --- helpers -----------------------------------------------------------------

my (%pids, %status);

sub hit {
    my ($path, $key, %h) = @_;
    my $r = $t->get($path, headers => { 'X-Key' => $key, %h });
    $pids{$r->{headers}{'x-pid'} // '?'}++;
    $status{"$path $key"} .= ($r->{headers}{'x-status'} // '?') . ' ';
    return $r;
}

# Parses the exposition text: { families => { name => { type, help,
# first } }, samples => [ { name, labels => {}, value, line } ], errors =>
# [ ... ] } where errors are breaches of the conventions this module keeps.
sub parse_metrics {
    my ($text) = @_;
    my (%fam, @samples, @errors, %seen, $current);
    my $n = 0;
    for my $line (split /\n/, $text) {
        $n++;
        if ($line =~ /^# (HELP|TYPE) (\S+) (.*)$/) {
            my ($what, $name, $rest) = ($1, $2, $3);
            push @errors, "line $n: second $what of $name"
                if exists $fam{$name}{lc $what};
            push @errors, "line $n: $what of $name after its samples"
                if $fam{$name}{samples};
            $fam{$name}{lc $what} = $rest;
            $current = $name;
            next;
        }
        if ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/) {
            my ($name, $labels, $value) = ($1, $2 // '', $3);
            my %l;
            while ($labels =~ /\G([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)",?/gc) {
                my ($k, $v) = ($1, $2);
                $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
                $l{$k} = $v;
            }
            push @errors, "line $n: labels not parsed: {$labels}"
                if (pos($labels) // 0) != length $labels;
            push @errors, "line $n: $name has no HELP or TYPE before it"
                unless $fam{$name}{help} && $fam{$name}{type};
            push @errors, "line $n: $name outside its family"
                unless defined $current && $current eq $name;
            my $id = $name . '{' . join(',', map { "$_=$l{$_}" }
                                              sort keys %l) . '}';
            push @errors, "line $n: $id repeated" if $seen{$id}++;
            $fam{$name}{samples}++;
            push @samples, { name => $name, labels => \%l, value => $value,
                             line => $line, id => $id };
            next;
        }
        push @errors, "line $n: not understood: $line";
    }
    return { families => \%fam, samples => \@samples, errors => \@errors };
}

# The value of one series (undef when absent): value($m, name, label =>
# value, ...).
sub value {
    my ($m, $name, %want) = @_;
    SAMPLE: for my $s (@{$m->{samples}}) {
        next unless $s->{name} eq $name;
        next unless keys %{$s->{labels}} == keys %want;
        for (keys %want) {
            next SAMPLE unless ($s->{labels}{$_} // "\0") eq $want{$_};
        }
        return $s->{value};
    }
    return undef;
}

sub promtool_check {
    my ($text) = @_;
    my ($fh, $file) = tempfile(UNLINK => 1);
    binmode $fh;
    print $fh $text;
    close $fh;
    my $out = qx{$PROMTOOL check metrics < $file 2>&1};
    return ($? >> 8, $out);
}

sub scrape {
    my ($path) = @_;
    my $r = $t->get($path // '/api/metrics');
    return ($r, parse_metrics($r->{body}));
}

sub api_json {
    my $r = $t->get('/api/');
    return eval { JSON::PP->new->decode($r->{body}) } || {};
}

# The per-zone families and where the JSON of a zone keeps them.
my %ZONE_JSON = (
    token_ratelimit_penalized_requests_total => sub { $_[0]{requests}{penalized} },
    token_ratelimit_offenses_total => sub { $_[0]{offenses} },
    token_ratelimit_penalties_started_total => sub { $_[0]{penalties_started} },
    token_ratelimit_penalties_active => sub { $_[0]{penalties_active} },
    token_ratelimit_evictions_total => sub { $_[0]{evictions} },
    token_ratelimit_lock_recoveries_total => sub { $_[0]{locks_recovered} },
    token_ratelimit_zone_keys => sub { $_[0]{memory}{keys} },
    token_ratelimit_zone_capacity_keys => sub { $_[0]{memory}{capacity} },
    token_ratelimit_zone_size_bytes => sub { $_[0]{memory}{size} },
    token_ratelimit_zone_limit => sub { $_[0]{limit} },
    token_ratelimit_zone_window_seconds => sub { $_[0]{window_ms} / 1000 },
);
my %SYNC_JSON = (
    token_ratelimit_sync_published_total => 'published',
    token_ratelimit_sync_errors_total => 'errors',
    token_ratelimit_sync_fallback_total => 'fallback',
    token_ratelimit_sync_strict_calls_total => 'strict_calls',
    token_ratelimit_sync_strict_cached_total => 'strict_cached',
);
my @OUTCOMES = qw(passed warned rejected rejected_dry_run bypassed denied);

# Every series that stays put while no traffic comes (the sync reads, lag
# and last success time move on their own), as { id => value }.
sub stable {
    my ($m) = @_;
    my %v;
    for my $s (@{$m->{samples}}) {
        next if $s->{name} =~ /^token_ratelimit_(sync_(reads_total|lag_seconds
                               |last_success_timestamp_seconds)|redis_)/x;
        $v{$s->{id}} = $s->{value};
    }
    return \%v;
}

# Checks every number of the text against the JSON read just before it.
sub against_json {
    my ($m, $j, $what) = @_;
    my @bad;
    my @zones = sort keys %{$j->{zones} || {}};
    for my $zn (@zones) {
        my $z = $j->{zones}{$zn};
        for my $o (@OUTCOMES) {
            my $v = value($m, 'token_ratelimit_requests_total',
                          zone => $zn, outcome => $o);
            push @bad, "$zn $o: " . ($v // 'none') . " != $z->{requests}{$o}"
                unless defined $v && $v == $z->{requests}{$o};
        }
        for my $name (sort keys %ZONE_JSON) {
            my $v = value($m, $name, zone => $zn);
            my $want = $ZONE_JSON{$name}->($z);
            push @bad, "$zn $name: " . ($v // 'none') . " != $want"
                unless defined $v && $v == $want;
        }
        my $info = value($m, 'token_ratelimit_zone_info', zone => $zn,
                         key => $zn eq 'esc' ? $esc_label : $z->{key},
                         rate => $z->{rate}, sync => $z->{sync});
        push @bad, "$zn zone_info" unless defined $info && $info eq '1';

        if ($z->{sync} eq 'off') {
            push @bad, "$zn has sync series"
                if grep { $_->{name} =~ /_sync_/
                          && $_->{labels}{zone} eq $zn } @{$m->{samples}};
            next;
        }
        my $c = $z->{cluster};
        for my $name (sort keys %SYNC_JSON) {
            my $v = value($m, $name, zone => $zn);
            my $want = $c->{$SYNC_JSON{$name}};
            push @bad, "$zn $name: " . ($v // 'none') . " != $want"
                unless defined $v && $v == $want;
        }
        # read later than the JSON: no less
        my $reads = value($m, 'token_ratelimit_sync_reads_total', zone => $zn);
        push @bad, "$zn reads " . ($reads // 'none') . " < $c->{reads}"
            unless defined $reads && $reads >= $c->{reads};
        my $last = value($m, 'token_ratelimit_sync_last_success_timestamp_seconds',
                         zone => $zn);
        push @bad, "$zn last_success " . ($last // 'none')
            unless defined $last
                   && ($c->{last_success} ? $last >= $c->{last_success}
                                          : 1);
        my $lag = value($m, 'token_ratelimit_sync_lag_seconds', zone => $zn);
        push @bad, "$zn lag " . ($lag // 'none')
            unless defined $lag && $lag =~ /^\d+(\.\d+)?$/;
    }

    my %zones_in_text = map { $_->{labels}{zone} => 1 }
                        grep { exists $_->{labels}{zone} } @{$m->{samples}};
    push @bad, "zones in text: " . join(',', sort keys %zones_in_text)
        unless join(',', sort keys %zones_in_text) eq join(',', @zones);

    if ($j->{redis}) {
        my %want = (token_ratelimit_redis_up => $j->{redis}{up} ? 1 : 0,
                    token_ratelimit_redis_outages_total => $j->{redis}{outages},
                    token_ratelimit_redis_failures_total => $j->{redis}{failures});
        for (sort keys %want) {
            my $v = value($m, $_);
            push @bad, "$_: " . ($v // 'none') . " != $want{$_}"
                unless defined $v && $v == $want{$_};
        }
    }
    for my $action (qw(allow deny)) {
        my $v = value($m, 'token_ratelimit_list_entries', action => $action);
        my $want = grep { $_->{action} eq $action } @{$j->{lists} || []};
        push @bad, "list_entries $action: " . ($v // 'none') . " != $want"
            unless defined $v && $v == $want;
    }

    ok(!@bad, "$what: every number equals the JSON's") or diag(join "\n", @bad);
}

sub well_formed {
    my ($r, $m, $what) = @_;
    is($r->{status}, 200, "$what: 200");
    is($r->{headers}{'content-type'},
       'text/plain; version=0.0.4; charset=utf-8', "$what: content type");
    ok(!@{$m->{errors}} && @{$m->{samples}},
       "$what: HELP and TYPE first, families whole, no series twice")
        or diag(join "\n", @{$m->{errors}});
    like($r->{body}, qr/\n\z/, "$what: ends with a line feed");
    ok($r->{body} !~ /kx-/, "$what: no key of the traffic in the text");
    my %names = map { %{$_->{labels}} } @{$m->{samples}};
    is(join(',', sort keys %names), 'action,key,outcome,rate,sync,zone',
       "$what: labels are zone, outcome, action and zone_info's");
    my @keyed = grep { exists $_->{labels}{key} } @{$m->{samples}};
    ok(!grep({ $_->{name} ne 'token_ratelimit_zone_info' } @keyed),
       "$what: only zone_info has a key label (the key expression)");
    SKIP: {
        skip "no promtool (scripts/install-deps.sh installs prometheus)", 1
            unless $have_promtool;
        my ($rc, $out) = promtool_check($r->{body});
        ok($rc == 0 && $out eq '', "$what: promtool check metrics is silent")
            or diag("promtool rc=$rc:\n$out");
    }
}

# --- traffic --------------------------------------------------------------------
#
# Zone z: 4r/m, warned from the 3rd place on, a 30 s penalty.

hit('/z', 'kx-alpha') for 1 .. 2;                   # passed x2
hit('/z', 'kx-bravo') for 1 .. 6;                   # 2 passed, 2 warned,
                                                    # rejected (penalty),
                                                    # rejected in penalty
hit('/zdry', 'kx-charlie') for 1 .. 6;              # 4 passed, 2 dry run
hit('/z', 'kx-bypasser', 'X-Bypass' => 1) for 1 .. 3;
my @deny = map { hit('/z', 'kx-denied', 'X-Deny' => 1) } 1 .. 2;
hit('/esc', 'kx-foxtrot');
hit('/s', 'kx-delta') for 1 .. 3;
my @st = map { hit('/st', 'kx-golf') } 1 .. 3;      # 2 passed, rejected

is($status{'/z kx-bravo'}, 'PASSED PASSED WARNED WARNED REJECTED REJECTED ',
   'bravo: the statuses the counts below expect');
is($status{'/zdry kx-charlie'},
   'PASSED PASSED PASSED PASSED REJECTED_DRY_RUN REJECTED_DRY_RUN ',
   'charlie: the statuses the counts below expect');
is(join(' ', map { $_->{status} } @deny, @st), '403 403 200 200 429',
   'deny and strict zone answered as expected');
ok(keys(%pids) >= 2, 'both workers served the traffic')
    or diag(join ' ', %pids);

# runtime lists: 1 allow, 2 deny (keys and addresses the traffic never uses)
is($t->post('/api/lists/allow?address=192.0.2.7', '')->{status}, 201,
   'allow entry added');
is($t->post('/api/lists/deny?cidr=203.0.113.0/24', '')->{status}, 201,
   'deny entry added');
my $ghost = $t->post('/api/lists/deny?key=kx-ghost&zone=z', '');
is($ghost->{status}, 201, 'deny key entry added');

# the async zone publishes within a few intervals
TRLRedis::wait_for(3, sub {
    my (undef, $m) = scrape();
    (value($m, 'token_ratelimit_sync_published_total', zone => 's') // 0) >= 3;
});

# --- the text ---------------------------------------------------------------------

my $j = api_json();
my ($r, $m) = scrape();
well_formed($r, $m, '/metrics');

my %z = map { $_ => value($m, 'token_ratelimit_requests_total', zone => 'z',
                          outcome => $_) } @OUTCOMES;
is_deeply(\%z, { passed => 8, warned => 2, rejected => 2,
                 rejected_dry_run => 2, bypassed => 3, denied => 2 },
          'zone z: requests by outcome, summed over both workers');
is(value($m, 'token_ratelimit_penalized_requests_total', zone => 'z'), 1,
   'zone z: one rejected while in penalty');
# bravo's first rejection and charlie's first dry-run rejection
is(value($m, 'token_ratelimit_offenses_total', zone => 'z'), 2,
   'zone z: two keys went over the limit');
is(value($m, 'token_ratelimit_penalties_started_total', zone => 'z'), 1,
   'zone z: one penalty started');
is(value($m, 'token_ratelimit_penalties_active', zone => 'z'), 1,
   'zone z: one key in penalty');
is(value($m, 'token_ratelimit_zone_keys', zone => 'z'), 3,
   'zone z: three keys (bypassed and denied requests make none)');
is(value($m, 'token_ratelimit_zone_limit', zone => 'z'), 4, 'zone z: limit');
is(value($m, 'token_ratelimit_zone_window_seconds', zone => 'z'), 60,
   'zone z: window');
is(value($m, 'token_ratelimit_zone_window_seconds', zone => 'esc'), 90,
   'zone esc: window');
is(value($m, 'token_ratelimit_zone_size_bytes', zone => 'esc'), 65536,
   'zone esc: size');
ok(value($m, 'token_ratelimit_zone_capacity_keys', zone => 'z') > 1000,
   'zone z: capacity');
is(value($m, 'token_ratelimit_zone_info', zone => 'z', key => '$http_x_key',
         rate => '4r/m', sync => 'off'), 1, 'zone z: info');
is(value($m, 'token_ratelimit_zone_info', zone => 'esc', key => $esc_label,
         rate => '2r/90s', sync => 'off'), 1,
   'zone esc: the key expression escaped and read back');
like($r->{body},
     qr/^token_ratelimit_zone_info\{zone="esc",
        key="k=\$http_x_key\\\\q\\"\\n\?\xc3\xa9",/mx,
     'zone esc: \\\\, \\" and \\n escapes; ? for a byte that is not UTF-8');
is(value($m, 'token_ratelimit_zone_info', zone => 's', key => '$http_x_key',
         rate => '10r/m', sync => 'async'), 1, 'zone s: info');
is(value($m, 'token_ratelimit_zone_info', zone => 'st', key => '$http_x_key',
         rate => '2r/m', sync => 'strict'), 1, 'zone st: info');

is(value($m, 'token_ratelimit_redis_up'), 1, 'redis_up 1');
is(value($m, 'token_ratelimit_redis_outages_total'), 0, 'no outage');
is(value($m, 'token_ratelimit_sync_published_total', zone => 's'), 3,
   'zone s: 3 admissions published');
is(value($m, 'token_ratelimit_sync_fallback_total', zone => 's'), 0,
   'zone s: no fallback');
is(value($m, 'token_ratelimit_sync_errors_total', zone => 's'), 0,
   'zone s: no errors');
my $last = value($m, 'token_ratelimit_sync_last_success_timestamp_seconds',
                 zone => 's');
ok(defined $last && abs($last - time) < 10, 'zone s: last success is now')
    or diag($last // 'none');
my %st = map { $_ => value($m, "token_ratelimit_sync_strict_${_}_total",
                           zone => 'st') } qw(calls cached);
ok($st{calls} >= 2 && $st{calls} + $st{cached} >= 3,
   'zone st: strict decisions counted') or diag(explain \%st);
is(value($m, 'token_ratelimit_requests_total', zone => 'st',
         outcome => 'rejected'), 1, 'zone st: one rejection');
ok(!defined value($m, 'token_ratelimit_sync_published_total', zone => 'z'),
   'a local zone has no sync series');
is(value($m, 'token_ratelimit_list_entries', action => 'allow'), 1,
   'one allow entry');
is(value($m, 'token_ratelimit_list_entries', action => 'deny'), 2,
   'two deny entries');

against_json($m, $j, '/metrics');

my ($r2, $m2) = scrape('/api/?format=prometheus');
well_formed($r2, $m2, '?format=prometheus');
is_deeply(stable($m2), stable($m), '?format=prometheus: the same series');

# Prometheus's own Accept at {loc}/ gets the text too (curl and browsers
# get JSON)
{
    my $r3 = $t->get('/api/', headers => { Accept =>
        'application/openmetrics-text;version=1.0.0,application/openmetrics-'
        . 'text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' });
    my $m3 = parse_metrics($r3->{body});
    is($r3->{headers}{'content-type'},
       'text/plain; version=0.0.4; charset=utf-8',
       "a scraper's Accept at {loc}/: the text");
    is_deeply(stable($m3), stable($m), "a scraper's Accept: the same series");
}

# a runtime entry removed: counts follow
my ($id) = $ghost->{body} =~ /"id":(\d+)/;
is($t->request(TRL::build_request('DELETE', "/api/lists/$id"))->{status}, 200,
   'deny entry removed');
(undef, $m2) = scrape();
is(value($m2, 'token_ratelimit_list_entries', action => 'deny'), 1,
   'one deny entry left');

# --- methods ----------------------------------------------------------------------

my $head = $t->request("HEAD /api/metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
is($head->{status}, 200, 'HEAD: 200');
is($head->{body}, '', 'HEAD: no body');
is($head->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   'HEAD: content type');
ok(($head->{headers}{'content-length'} // 0) > 1000, 'HEAD: content length');

for my $path ('/api/metrics', '/api/?format=prometheus') {
    my $p = $t->post($path, '');
    is($p->{status}, 405, "POST $path: 405");
    is($p->{headers}{allow}, 'GET, HEAD', "POST $path: Allow");
}
is($t->request(TRL::build_request('DELETE', '/api/metrics'))->{status}, 405,
   'DELETE /api/metrics: 405');

# --- reload -------------------------------------------------------------------------

{
    my (undef, $before) = scrape();
    my ($rc, $out) = $t->reload;
    is($rc, 0, 'reloaded') or diag($out);
    my (undef, $after) = scrape();
    is_deeply(stable($after), stable($before),
              'after reload: every counter and gauge as before');
    ok(TRLRedis::wait_for(3, sub {
        my (undef, $m) = scrape();
        value($m, 'token_ratelimit_redis_up');
    }), 'after reload: redis_up 1');
    hit('/z', 'kx-hotel');
    my (undef, $more) = scrape();
    is(value($more, 'token_ratelimit_requests_total', zone => 'z',
             outcome => 'passed'), 9, 'after reload: counting goes on');
}

# --- Redis stopped -----------------------------------------------------------------

$redis->stop;
my $down = TRLRedis::wait_for(5, sub {
    hit('/s', 'kx-delta');
    my (undef, $m) = scrape();
    defined value($m, 'token_ratelimit_redis_up')
        && value($m, 'token_ratelimit_redis_up') == 0;
});
ok($down, 'Redis stopped: redis_up 0');
hit('/s', 'kx-delta') for 1 .. 2;
$j = api_json();
($r, $m) = scrape();
well_formed($r, $m, 'Redis down');
ok(value($m, 'token_ratelimit_redis_outages_total') >= 1, 'outage counted');
ok(value($m, 'token_ratelimit_sync_fallback_total', zone => 's') >= 1,
   'zone s: local fallback counted');
against_json($m, $j, 'Redis down');

# --- no zones: the lists alone ----------------------------------------------------

{
    my $t2 = TRL->new;
    $t2->write_config(<<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location /api { token_ratelimit_api; }
    }
EOF
    $t2->run;
    my $r = $t2->get('/api/metrics');
    my $m = parse_metrics($r->{body});
    is($r->{status}, 200, 'no zones: 200');
    is(join(',', sort keys %{$m->{families}}), 'token_ratelimit_list_entries',
       'no zones: only the list entries');
    ok(!@{$m->{errors}}, 'no zones: well formed') or diag(explain $m->{errors});
    SKIP: {
        skip "no promtool", 1 unless $have_promtool;
        my ($rc, $out) = promtool_check($r->{body});
        ok($rc == 0 && $out eq '', 'no zones: promtool check metrics is silent')
            or diag("promtool rc=$rc:\n$out");
    }
    $t2->stop;
    $t2->no_alerts;
}

$t->stop;
$t->no_alerts;

done_testing;
