#!/usr/bin/perl
# Reputation lists from files, without a reload: one worker per check=
# interval stat()s each file; a changed one is read, parsed and installed
# in a thread of the thread pool, and the outcome is logged once.
#
# - A file change applies within a few seconds, while a client keeps
#   sending requests, none of which fails (no 5xx, no connection error).
# - A malformed file keeps the last good version; the error log names
#   file:line once.
# - A missing file fails "nginx -t" (and the start) with the list's name.
# - A reload keeps the table; a changed rate applies, scaled.
# - A file of 1M ranges loads in a thread while requests are answered: the
#   longest request latency during the load is reported.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new(workers => 2);
my $dir = $t->dir;

sub write_atomic {
    my ($name, $content) = @_;
    $t->write_file("$name.tmp", $content);
    rename("$dir/$name.tmp", "$dir/$name") or die "rename: $!";
}

write_atomic('tor.txt', "198.51.100.0/24\n");

sub conf {
    my ($rate) = @_;
    return <<"EOF";
    token_ratelimit_reputation size=48m check=1s;
    token_ratelimit_reputation_list tor file=%%DIR%%/tor.txt;
    token_ratelimit_reputation_list big file=%%DIR%%/big.txt;

    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;

    token_ratelimit_zone \$binary_remote_addr zone=s:1m rate=$rate;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Rep "[\$token_ratelimit_reputation]" always;

        location /scale { token_ratelimit zone=s scale=tor:0.5,big:0.5;
                          empty_gif; }
        location /vars  { empty_gif; }
        location /trl-api { token_ratelimit_api; }
    }
EOF
}

# token_ratelimit_reputation_load_failed of a list (the metrics)
sub load_failed {
    my ($list) = @_;
    my $m = $t->get('/trl-api/metrics')->{body} // '';
    return $m =~ /^token_ratelimit_reputation_load_failed\{list="$list"\} (\d+)$/m
           ? $1 : 'none';
}

write_atomic('big.txt', "# empty for now\n");
$t->write_config(conf('100r/m'));
$t->run;

sub from {
    my ($path, $addr) = @_;
    return $t->get($path, headers => { 'X-Forwarded-For' => $addr });
}

sub lists_of { from('/vars', $_[0])->{headers}{'x-rep'} // '' }

# A client that keeps sending requests (from addresses on and off the
# lists) until the file stop exists; one line per request: status and ms.
sub client {
    my ($name) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $out, '>', "$dir/$name.out" or die;
    my $i = 0;
    until (-e "$dir/$name.stop") {
        my $addr = $i++ % 2 ? '198.51.100.77' : "192.0.2." . ($i % 250);
        my $t0 = time;
        my $r = from($i % 3 ? '/vars' : '/scale', $addr);
        printf $out "%d %.1f\n", $r->{status}, (time - $t0) * 1000;
    }
    close $out;
    POSIX::_exit(0);
}

sub client_stop {
    my ($name, $pid) = @_;
    $t->write_file("$name.stop", '');
    waitpid($pid, 0);
    open my $in, '<', "$dir/$name.out" or die;
    return map { [split] } <$in>;
}

# --- a change applies without a reload, no request fails ------------------

is(lists_of('203.0.113.5'), '[]', 'before the change: not listed');
is(lists_of('198.51.100.5'), '[tor]', 'the file loaded at start');

my $pid = client('change');
sleep 0.5;
my $changed = time;
write_atomic('tor.txt', "198.51.100.0/24\n203.0.113.0/24\n");

my $applied;
for (1 .. 100) {
    if (lists_of('203.0.113.5') eq '[tor]') {
        $applied = time - $changed;
        last;
    }
    sleep 0.1;
}
sleep 0.5;
my @rows = client_stop('change', $pid);

ok(defined $applied, 'the change applies without a reload');
ok(defined $applied && $applied < 5, 'within a few seconds')
    and diag(sprintf 'the change applied after %.1f s', $applied);
ok(@rows > 20, 'the client kept sending (' . scalar(@rows) . ' requests)');
is(scalar(grep { $_->[0] == 0 || $_->[0] >= 500 } @rows), 0,
   'no request failed meanwhile (no 5xx, no connection error)');
is(from('/scale', '203.0.113.6')->{headers}{'x-ratelimit-limit'}, 50,
   'the new entry scales the limit');
like($t->error_log,
     qr/\[notice\].*token_ratelimit_reputation_list "tor": loaded \S+tor\.txt: 2 ranges \(2 IPv4, 0 IPv6\), 0 dropped, \d+ ms, version \d+/,
     'the load is logged at notice with counts and version');

# --- a malformed file keeps the last good version --------------------------

my $log_before = length $t->error_log;
write_atomic('tor.txt', "198.51.100.0/24\n# a comment\n<html>\n");
sleep 3.5;

my $new = substr($t->error_log, $log_before);
my @errors = $new =~ /(\[error\].*token_ratelimit_reputation_list "tor": \S+tor\.txt:3: [^\n]*)/g;
is(scalar(@errors), 1, 'a malformed file: one error line (not one per check)')
    or diag($new);
like($errors[0] // '', qr/tor\.txt:3: .*keeping version \d+/,
     '... naming file:line, keeping the version');
is(lists_of('203.0.113.5'), '[tor]', 'the last good version is kept');
is(load_failed('tor'), 1, 'the metrics say the load failed');
like($t->get('/trl-api/reputation/tor')->{body},
     qr/"error":\{"message":"[^"]*tor\.txt:3: /, '... and so does the API');

# a fixed file is loaded again
write_atomic('tor.txt', "198.51.100.0/24\n");
my $fixed;
for (1 .. 60) {
    if (lists_of('203.0.113.5') eq '[]') { $fixed = 1; last }
    sleep 0.1;
}
ok($fixed, 'the fixed file is loaded');
is(load_failed('tor'), 0, '... and the metric is back to 0');

# --- reload keeps the table, a changed rate applies -----------------------

# a reload with a broken file keeps the table of a list that has one
# ("nginx -t" would fail: it is a first start)
write_atomic('tor.txt', "198.51.100.0/24\nnot-an-address\n");
my ($rc, $out) = $t->reload(conf('40r/m'), skip_test => 1);
is($rc, 0, 'a reload with a bad file goes on') or diag($out);
like($t->error_log,
     qr/\[error\].*token_ratelimit_reputation_list "tor": \S+tor\.txt:2: .*keeping version/,
     '... the list keeps its table, logged at error');
my $r = from('/scale', '198.51.100.8');
is($r->{headers}{'x-rep'}, '[tor]', 'after the reload: still listed');
is($r->{headers}{'x-ratelimit-limit'}, 20,
   'the new rate applies, scaled (40 x 0.5)');
is(from('/scale', '192.0.2.9')->{headers}{'x-ratelimit-limit'}, 40,
   'unlisted: the new rate');

# --- 1M ranges load in a thread while requests are answered ---------------

{
    # 1,048,576 separate /32s (every other address from 11.0.0.0)
    open my $f, '>', "$dir/big.tmp" or die;
    my $n = 1 << 20;
    for my $i (0 .. $n - 1) {
        my $a = 11 * 16777216 + 2 * $i;
        printf $f "%d.%d.%d.%d\n", $a >> 24, ($a >> 16) & 255,
               ($a >> 8) & 255, $a & 255;
    }
    close $f;

    my $log0 = length $t->error_log;
    my $cpid = client('big');
    sleep 0.5;
    rename("$dir/big.tmp", "$dir/big.txt") or die;

    my $loaded;
    for (1 .. 600) {
        $loaded = substr($t->error_log, $log0)
            =~ /list "big": loaded \S+: (\d+) ranges .*?, (\d+) ms/ ? [$1, $2]
            : undef;
        last if $loaded;
        sleep 0.1;
    }
    sleep 0.5;
    my @rows = client_stop('big', $cpid);

    ok($loaded, '1M ranges loaded') or diag(substr($t->error_log, $log0));
    is($loaded->[0], $n, '... all of them') if $loaded;

    my ($max) = sort { $b <=> $a } map { $_->[1] } @rows;
    diag(sprintf '1M ranges: load %d ms in the thread; %d requests meanwhile,'
         . ' the longest %.1f ms', $loaded ? $loaded->[1] : -1,
         scalar(@rows), $max // -1);
    is(scalar(grep { $_->[0] == 0 || $_->[0] >= 500 } @rows), 0,
       'no request failed during the load');
    ok(defined $max && $max < 500,
       'no request waited for the load (longest under 500 ms)');

    is(lists_of('11.0.0.2'), '[big]', 'a listed address of the 1M');
    is(lists_of('11.0.0.1'), '[]', 'an address between two entries');
}

$t->stop;
$t->no_alerts;

# --- a missing or malformed file at start fails ---------------------------

{
    my $t2 = TRL->new;
    $t2->config_fails(<<'EOF',
    token_ratelimit_reputation size=1m;
    token_ratelimit_reputation_list tor file=%%DIR%%/missing.txt;
EOF
        [qr/token_ratelimit_reputation_list "tor": \S+missing\.txt: cannot open: No such file/],
        'missing file');

    $t2->write_file('bad.txt', "192.0.2.1\n\n<html>\n");
    $t2->config_fails(<<'EOF',
    token_ratelimit_reputation size=1m;
    token_ratelimit_reputation_list tor file=%%DIR%%/bad.txt;
EOF
        [qr/token_ratelimit_reputation_list "tor": \S+bad\.txt:3: /],
        'malformed file');
}

done_testing;
