#!/usr/bin/perl
# The rejection log: line format, key escaping and truncation, only the first
# rejection of a key logged with a summary line when it is admitted again,
# token_ratelimit_log_level and error_log levels.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF');
    # log_rate=off: these check every line's form, many in a second
    # (t/log_flood.t checks the budget)
    token_ratelimit_zone $http_x_key zone=lg:1m rate=1r/m log_rate=off;
    token_ratelimit_zone $http_x_key zone=sl:1m rate=1r/2s log_rate=off;
    token_ratelimit_zone $http_x_key zone=canon:1m rate=2r/5m log_rate=off;
    token_ratelimit_zone $binary_remote_addr zone=ip:1m rate=1r/m log_rate=off;

    server {
        listen 127.0.0.1:%%PORT%%;
        large_client_header_buffers 4 16k;

        location /log    { token_ratelimit zone=lg; empty_gif; }
        location /slog   { token_ratelimit zone=sl; empty_gif; }
        location /canon  { token_ratelimit zone=canon; empty_gif; }
        location /ip     { token_ratelimit zone=ip; empty_gif; }
        location /error  { token_ratelimit zone=lg; token_ratelimit_log_level error;
                           empty_gif; }
        location /warn   { token_ratelimit zone=lg; token_ratelimit_log_level warn;
                           empty_gif; }
        location /notice { token_ratelimit zone=lg; token_ratelimit_log_level notice;
                           empty_gif; }
        location /info   { token_ratelimit zone=lg; token_ratelimit_log_level info;
                           empty_gif; }
        location /dry    { token_ratelimit zone=lg; token_ratelimit_dry_run on;
                           empty_gif; }

        location /quiet {
            token_ratelimit zone=lg;
            token_ratelimit_log_level info;
            error_log %%DIR%%/logs/quiet.log notice;
            empty_gif;
        }
        location /quiet_warn {
            token_ratelimit zone=lg;
            token_ratelimit_log_level warn;
            error_log %%DIR%%/logs/quiet_warn.log error;
            empty_gif;
        }
        location /loud {
            token_ratelimit zone=lg;
            token_ratelimit_log_level warn;
            error_log %%DIR%%/logs/loud.log notice;
            empty_gif;
        }
    }
EOF
$t->run;

sub key { return (headers => { 'X-Key' => $_[0] }) }

# admits the key once, then sends $n more (rejected) requests
sub reject {
    my ($loc, $k, $n) = @_;
    $n //= 1;
    my @r = map { $t->get($loc, key($k)) } 0 .. $n;
    return @r;
}

sub lines { return grep { $_[1] ? /$_[1]/ : 1 } split /\n/, $t->read_file($_[0]) }
sub log_lines { return lines('logs/error.log', $_[0]) }

my $prefix = qr/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d/;
my $tail = qr/, client: 127\.0\.0\.1, server: [^,]*, request: "GET \S+ HTTP\/1\.0", host: "localhost"$/;

# --- format ----------------------------------------------------------------------

{
    my @r = reject('/log', 'fmt');
    is_deeply([map { $_->{status} } @r], [200, 429], 'format: admitted, rejected');
    my @l = log_lines(qr/key "fmt"/);
    is(scalar @l, 1, 'format: one line');
    like($l[0] // '', qr/$prefix \[error\] \d+#\d+: \*\d+ limiting requests by zone "lg", key "fmt", limit 1r\/m$tail/,
         'format: the documented line at [error] (the default)');
    like($l[0] // '', qr/request: "GET \/log HTTP\/1\.0"/, 'format: names the request');

    @r = reject('/canon', 'canon', 1);
    $t->get('/canon', key('canon'));
    @l = log_lines(qr/key "canon"/);
    is(scalar @l, 1, 'rate with a window count: one line');
    like($l[0] // '', qr/limiting requests by zone "canon", key "canon", limit 2r\/5m, client:/,
         'rate with a window count: limit 2r/5m');
}

# --- escaping ---------------------------------------------------------------------

{
    my $k = "a\"b\\c\x01\x7f\xff \xc3\xa9~z";
    reject('/log', $k);
    my @l = log_lines(qr/key "a/);
    is(scalar @l, 1, 'escaping: one line');
    like($l[0] // '', qr/, key "a\\x22b\\x5cc\\x01\\x7f\\xff \\xc3\\xa9~z", limit 1r\/m, client:/,
         'escaping: \xNN for non-printable bytes, " and \\');

    reject('/ip', 'unused');
    @l = log_lines(qr/zone "ip"/);
    is(scalar @l, 1, 'binary key: one line');
    like($l[0] // '', qr/limiting requests by zone "ip", key "127\.0\.0\.1", limit 1r\/m, client:/,
         'address key ($binary_remote_addr of 127.0.0.1) as an address');
}

# --- truncation -------------------------------------------------------------------

{
    my %cases = (
        ('k' x 100) => ('k' x 64) . '...',
        ('m' x 64)  => ('m' x 64),
        ('n' x 65)  => ('n' x 64) . '...',
        ("\xff" x 70) => ('\\xff' x 64) . '...',
        (('p' x 63) . '"' . ('p' x 10)) => ('p' x 63) . '\\x22...',
        ('q' x 8000) => ('q' x 64) . '...',
    );
    for my $k (sort keys %cases) {
        reject('/log', $k);
        my $want = $cases{$k};
        my $first = substr($want, 0, 8);
        my @l = log_lines(qr/limiting requests by zone "lg", key "\Q$first\E/);
        is(scalar @l, 1, 'truncation: one line for a key of ' . length($k) . ' bytes');
        like($l[0] // '', qr/, key "\Q$want\E", limit 1r\/m, client:/,
             'truncation: key of ' . length($k) . ' bytes logged as '
             . substr($want, 0, 12) . '... (' . length($want) . ' chars)');
    }
}

# --- first rejection only, then a summary ---------------------------------------

{
    # 1 request per 2 s
    my $t0 = time;
    my @b = reject('/slog', 'burst', 5);
    my @s = reject('/slog', 'single', 1);
    my @n = reject('/slog', 'none', 0);
    is_deeply([map { $_->{status} } @b], [200, (429) x 5], 'burst: admitted, 5 rejected');
    is(scalar(log_lines(qr/limiting requests by zone "sl", key "burst"/)), 1,
       'burst: only the first rejection is logged');
    is(scalar(log_lines(qr/limiting requests by zone "sl", key "single"/)), 1,
       'single: its rejection is logged');
    is(scalar(log_lines(qr/key "none"/)), 0, 'never rejected: nothing logged');
    is(scalar(log_lines(qr/rejected \d+ more/)), 0, 'no summary before the key is admitted again');

    my $wait = 2.2 - (time - $t0);
    sleep $wait if $wait > 0;

    my $r = $t->get('/slog', key('burst'));
    is($r->{status}, 200, 'burst: admitted again after the window');
    my @sum = log_lines(qr/zone "sl" rejected \d+ more requests of key "burst"/);
    is(scalar @sum, 1, 'burst: one summary line');
    like($sum[0] // '', qr/$prefix \[error\] \d+#\d+: \*\d+ zone "sl" rejected 4 more requests of key "burst" after the one logged, limit 1r\/2s$tail/,
         'burst: summary line "rejected 4 more ... after the one logged"');

    is($t->get('/slog', key('single'))->{status}, 200, 'single: admitted again');
    is(scalar(log_lines(qr/more requests of key "single"/)), 0,
       'single: no summary when nothing more was rejected');
    is($t->get('/slog', key('none'))->{status}, 200, 'none: admitted again');
    is(scalar(log_lines(qr/key "none"/)), 0, 'none: still nothing logged');

    # a new episode is logged again, once
    reject('/slog', 'burst', 0) for 1;
    $t->get('/slog', key('burst')) for 1 .. 3;
    is(scalar(log_lines(qr/limiting requests by zone "sl", key "burst"/)), 2,
       'burst: the first rejection of the next episode is logged');
    is(scalar(log_lines(qr/zone "sl" rejected \d+ more requests of key "burst"/)), 1,
       'burst: no new summary while still rejected');
}

# --- first-only is per key: the same key in another zone is another episode ----

{
    reject('/log', 'perzone', 2);
    reject('/canon', 'perzone', 3);
    is(scalar(log_lines(qr/zone "lg", key "perzone"/)), 1, 'per zone: lg once');
    is(scalar(log_lines(qr/zone "canon", key "perzone"/)), 1, 'per zone: canon once');
}

# --- log levels ---------------------------------------------------------------------

for my $level (qw(error warn notice info)) {
    my $k = "level_$level";
    reject("/$level", $k, 2);
    my @l = log_lines(qr/key "\Q$k\E"/);
    is(scalar @l, 1, "log_level $level: one line");
    like($l[0] // '', qr/$prefix \[$level\] \d+#\d+: \*\d+ limiting requests by zone "lg", key "\Q$k\E"/,
         "log_level $level: logged at [$level]");
}

{
    reject('/dry', 'dry1', 2);
    my @l = log_lines(qr/key "dry1"/);
    is(scalar @l, 1, 'dry run: one line');
    like($l[0] // '', qr/$prefix \[error\] \d+#\d+: \*\d+ limiting requests, dry run, by zone "lg", key "dry1", limit 1r\/m$tail/,
         'dry run: "limiting requests, dry run, by zone ..."');
}

{
    # error_log above token_ratelimit_log_level: nothing
    my @r = reject('/quiet', 'q_info', 2);
    is($r[1]{status}, 429, 'quiet: rejected');
    is(scalar(lines('logs/quiet.log', qr/limiting requests|more requests/)), 0,
       'log_level info under error_log notice: not logged');
    is(scalar(log_lines(qr/q_info/)), 0, 'log_level info under error_log notice: not in the main log either');

    @r = reject('/quiet_warn', 'q_warn', 2);
    is($r[1]{status}, 429, 'quiet_warn: rejected');
    is(scalar(lines('logs/quiet_warn.log', qr/limiting requests|more requests/)), 0,
       'log_level warn under error_log error: not logged');

    # the control: log_level warn under error_log notice is logged there
    reject('/loud', 'loud', 2);
    my @l = lines('logs/loud.log', qr/key "loud"/);
    is(scalar @l, 1, 'log_level warn under error_log notice: logged');
    like($l[0] // '', qr/\[warn\] .*limiting requests by zone "lg", key "loud"/,
         'log_level warn under error_log notice: at [warn]');
}

# nothing but the expected lines at [error] and above from the module
{
    my @other = grep { /token_ratelimit/ } log_lines(qr/\[(error|crit|alert|emerg)\]/);
    is(scalar @other, 0, 'no other token_ratelimit errors') or diag(join "\n", @other);
}

$t->stop;
$t->no_alerts;
done_testing;
