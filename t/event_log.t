#!/usr/bin/perl
# token_ratelimit_event_log: one JSON object per line for every rejection
# ("rejected", "rejected_dry_run"), penalty start ("penalty") and deny
# ("denied": token_ratelimit_deny or a runtime deny entry), to a file or to
# syslog; at most rate=N lines a second per zone over all workers, the
# lines refused reported by a "suppressed" line with their count.
#
# - fields: time (ISO 8601 UTC, ms), event, zone, key or key_hex (a
#   $binary_remote_addr zone's keys as addresses), client
#   (after realip), method, uri, host, status (429 or
#   token_ratelimit_status, 403), limit, window_ms, count, retry_after,
#   reset_at, violations, penalty_s, dry_run, request_id, node
# - hostile keys and URIs (quotes, backslashes, newlines, control bytes,
#   invalid UTF-8) give valid UTF-8 JSON lines, values intact where valid
# - admitted requests write nothing; "off" in a location; inherited from
#   http and server level
# - a flood over keep-alive with 2 workers: <= N lines per second per zone,
#   each zone its own budget, lines + suppressed counts == rejections
# - syslog: a UDP datagram with the syslog header and the JSON message
# - "nginx -s reopen" writes to a new file after the old one was renamed;
#   reload keeps working
# - nginx -t errors name the directive and the bad token
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Encode ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Sys::Hostname ();
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new(workers => 2);

my $udp = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Proto => 'udp')
    or die "udp listener: $!";
my $SYSLOG = $udp->sockport;

my $CONF = <<'EOF';
    token_ratelimit_zone $http_x_key zone=login:1m rate=2r/m;
    token_ratelimit_zone $http_x_key zone=cust:1m rate=1r/m;
    token_ratelimit_zone $binary_remote_addr zone=bin:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=dry:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=pen:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=hostile:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=offz:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=srv:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=sys:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=fa:1m rate=1r/m;
    token_ratelimit_zone $http_x_key zone=fb:1m rate=1r/m;
    keepalive_requests 100000;

    token_ratelimit_event_log logs/events.log;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;

        location /login  { token_ratelimit zone=login; empty_gif; }
        location /custom { token_ratelimit zone=cust;
                           token_ratelimit_status 420; empty_gif; }
        location /bin    { token_ratelimit zone=bin; empty_gif; }
        location /dry    { token_ratelimit zone=dry;
                           token_ratelimit_dry_run on; empty_gif; }
        location /pen    { token_ratelimit zone=pen penalty=30s; empty_gif; }
        location /hostile/ { token_ratelimit zone=hostile; empty_gif; }
        location /deny   { token_ratelimit zone=login;
                           token_ratelimit_deny $http_x_deny; empty_gif; }
        location /off    { token_ratelimit zone=offz;
                           token_ratelimit_event_log off; empty_gif; }
        location /sys    {
            token_ratelimit zone=sys;
            token_ratelimit_event_log
                syslog:server=127.0.0.1:%%SYSLOG%%,tag=trl_events;
            empty_gif;
        }
        location /trl-api { token_ratelimit_api; }
    }

    server {
        listen 127.0.0.1:%%PORT_SRV%%;
        token_ratelimit_event_log logs/server.log;
        location / { token_ratelimit zone=srv; empty_gif; }
    }

    log_format pid $pid;

    server {
        listen 127.0.0.1:%%PORT_FLOOD%% reuseport;
        token_ratelimit_event_log logs/flood.log rate=50;
        access_log logs/flood_access.log pid;
        location /fa { token_ratelimit zone=fa; empty_gif; }
        location /fb { token_ratelimit zone=fb; empty_gif; }
    }
EOF
$CONF =~ s/%%SYSLOG%%/$SYSLOG/g;

$t->write_config($CONF);
$t->run;

my $json = JSON::PP->new->utf8;
my %seen;           # file => bytes already read

# The lines added to a log file since the last call, decoded; every line
# must be valid UTF-8 and valid JSON.
sub new_lines {
    my ($file) = @_;
    my $text = $t->read_file("logs/$file");
    my $from = $seen{$file} // 0;
    $from = 0 if $from > length $text;      # a new file
    my $chunk = substr($text, $from);
    $seen{$file} = length $text;
    my (@out, @bad);
    for my $line (split /\n/, $chunk) {
        my $utf8 = eval {
            Encode::decode('UTF-8', my $copy = $line, Encode::FB_CROAK);
            1;
        };
        my $ev = eval { $json->decode($line) };
        if ($utf8 && $ev && ref $ev eq 'HASH') {
            push @out, $ev;
        } else {
            push @bad, $line;
        }
    }
    ok(!@bad, "$file: lines of valid UTF-8 and JSON") or diag(join "\n", @bad)
        if length $chunk;
    return @out;
}

# Waits a little for the workers' writes (they come before the response,
# but keep it robust) and returns the new lines.
sub lines_of {
    my ($file, $min) = @_;
    $min //= 1;
    my @l;
    for (1 .. 20) {
        push @l, new_lines($file);
        last if @l >= $min;
        sleep 0.05;
    }
    return @l;
}

sub req {
    my ($path, %h) = @_;
    my $port = delete $h{port};
    return $t->get($path, headers => {%h}, $port ? (port => $port) : ());
}

my $host = Sys::Hostname::hostname();
my $iso = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

sub iso_to_epoch {
    my ($s) = @_;
    my ($y, $mo, $d, $h, $mi, $se, $ms) =
        $s =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z$/ or return 0;
    require Time::Local;
    return Time::Local::timegm($se, $mi, $h, $d, $mo - 1, $y) + $ms / 1000;
}

# --- a rejection -------------------------------------------------------------

new_lines('events.log');
is(req('/login', 'X-Key' => 'alice', 'X-Real-IP' => '192.0.2.10')->{status},
   200, 'login: first admitted');
is(req('/login', 'X-Key' => 'alice', 'X-Real-IP' => '192.0.2.10')->{status},
   200, 'login: second admitted');
sleep 0.1;
is(scalar new_lines('events.log'), 0, 'admitted requests write no line');

my $before = time;
my $r = req('/login', 'X-Key' => 'alice', 'X-Real-IP' => '192.0.2.10');
is($r->{status}, 429, 'login: third rejected');
{
    my @l = lines_of('events.log');
    is(scalar @l, 1, 'one line for one rejection');
    my $e = $l[0] || {};
    is($e->{event}, 'rejected', 'event');
    is($e->{zone}, 'login', 'zone');
    is($e->{key}, 'alice', 'key');
    ok(!exists $e->{key_hex}, 'no key_hex for a printable key');
    is($e->{client}, '192.0.2.10', 'client: the address after realip');
    is($e->{method}, 'GET', 'method');
    is($e->{uri}, '/login', 'uri');
    is($e->{host}, 'localhost', 'host');
    is($e->{status}, 429, 'status 429');
    is($e->{limit}, 2, 'limit');
    is($e->{window_ms}, 60000, 'window_ms');
    is($e->{count}, 2, 'count: in the window');
    is($e->{retry_after}, $r->{headers}{'retry-after'},
       'retry_after: the Retry-After sent');
    is($e->{reset_at}, $r->{headers}{'x-ratelimit-reset'},
       'reset_at: the X-RateLimit-Reset sent');
    ok(JSON::PP::is_bool($e->{dry_run}) && !$e->{dry_run}, 'dry_run false');
    like($e->{request_id} // '', qr/^[0-9a-f]{32}$/, 'request_id');
    is($e->{node}, $host, 'node: the host name');
    like($e->{time} // '', $iso, 'time: ISO 8601 UTC with ms');
    my $when = iso_to_epoch($e->{time} // '');
    ok($when >= int($before) - 1 && $when <= time + 1, 'time: now')
        or diag("$e->{time} vs $before");
    ok(!exists $e->{penalty_s} && !exists $e->{reason},
       'no fields that do not apply');
}

# --- token_ratelimit_status, address keys, dry run, penalty -----------------------

req('/custom', 'X-Key' => 'c') for 1;
is(req('/custom', 'X-Key' => 'c')->{status}, 420, 'custom status: rejected');
{
    my ($e) = lines_of('events.log');
    is($e->{status}, 420, 'status: the token_ratelimit_status');
    is($e->{zone}, 'cust', 'custom: zone');
}

req('/bin', 'X-Real-IP' => '192.0.2.7');
is(req('/bin', 'X-Real-IP' => '192.0.2.7')->{status}, 429, 'bin: rejected');
{
    my ($e) = lines_of('events.log');
    is($e->{key}, '192.0.2.7', 'address key: $binary_remote_addr as an '
                               . 'address');
    ok(!exists $e->{key_hex}, 'address key: no key_hex');
    is($e->{client}, '192.0.2.7', 'address key: client');
}

req('/dry', 'X-Key' => 'd');
is(req('/dry', 'X-Key' => 'd')->{status}, 200, 'dry run: passes');
{
    my ($e) = lines_of('events.log');
    is($e->{event}, 'rejected_dry_run', 'dry run: event rejected_dry_run');
    ok(JSON::PP::is_bool($e->{dry_run}) && $e->{dry_run}, 'dry run: true');
    ok(!exists $e->{status}, 'dry run: no status (the client got none)');
    is($e->{key}, 'd', 'dry run: key');
}

req('/pen', 'X-Key' => 'p');
my $pen_r = req('/pen', 'X-Key' => 'p');
is($pen_r->{status}, 429, 'penalty: rejected');
{
    my @l = lines_of('events.log', 2);
    my %by = map { $_->{event} => $_ } @l;
    is(scalar @l, 2, 'penalty start: two lines');
    ok($by{rejected}, 'penalty start: a rejected line');
    my $p = $by{penalty} || {};
    is($p->{zone}, 'pen', 'penalty: zone');
    is($p->{key}, 'p', 'penalty: key');
    is($p->{penalty_s}, 30, 'penalty: penalty_s');
    is($p->{violations}, 1, 'penalty: violations');
    # the 30 s block ends before the 1r/m window frees a place: the client
    # is told the window's wait, and so is the event
    is($p->{retry_after}, $pen_r->{headers}{'retry-after'},
       'penalty: retry_after is the Retry-After sent');
    ok($p->{retry_after} >= 59 && $p->{retry_after} <= 61,
       "penalty: retry_after the window's, not the block's ($p->{retry_after})");
    ok(abs($p->{reset_at} - (time + 60)) <= 2, 'penalty: reset_at');
    ok(!$p->{dry_run}, 'penalty: not a dry run');
}
is(req('/pen', 'X-Key' => 'p')->{status}, 429, 'penalty: still blocked');
{
    my @l = lines_of('events.log');
    is(scalar @l, 1, 'serving a penalty: one line, no new penalty');
    is($l[0]{event}, 'rejected', 'serving a penalty: rejected');
    ok($l[0]{penalized}, 'serving a penalty: penalized');
    is($l[0]{violations}, 1, 'serving a penalty: violations');
}

# --- denies ------------------------------------------------------------------

is(req('/deny', 'X-Key' => 'bob', 'X-Deny' => '1',
       'X-Real-IP' => '192.0.2.20')->{status}, 403, 'deny: 403');
{
    my @l = lines_of('events.log');
    is(scalar @l, 1, 'deny: one line');
    my $e = $l[0] || {};
    is($e->{event}, 'denied', 'deny: event');
    is($e->{status}, 403, 'deny: status');
    is($e->{reason}, 'token_ratelimit_deny', 'deny: reason');
    is($e->{zone}, 'login', 'deny: the location\'s first zone');
    is($e->{client}, '192.0.2.20', 'deny: client');
    is($e->{uri}, '/deny', 'deny: uri');
}

is($t->post('/trl-api/lists/deny?address=192.0.2.66', '')->{status}, 201,
   'API: deny an address');
is(req('/login', 'X-Key' => 'carol', 'X-Real-IP' => '192.0.2.66')->{status},
   403, 'deny entry (address): 403');
{
    my ($e) = lines_of('events.log');
    is($e->{event}, 'denied', 'deny entry (address): event');
    is($e->{reason}, 'deny_list', 'deny entry (address): reason');
    is($e->{client}, '192.0.2.66', 'deny entry (address): client');
    is($e->{status}, 403, 'deny entry (address): status');
}

is($t->post('/trl-api/lists/deny?key=evil&zone=login', '')->{status}, 201,
   'API: deny a key');
is(req('/login', 'X-Key' => 'evil')->{status}, 403, 'deny entry (key): 403');
{
    my @l = lines_of('events.log');
    is(scalar @l, 1, 'deny entry (key): one line');
    my $e = $l[0] || {};
    is($e->{event}, 'denied', 'deny entry (key): event');
    is($e->{reason}, 'deny_list', 'deny entry (key): reason');
    is($e->{zone}, 'login', 'deny entry (key): zone');
    is($e->{key}, 'evil', 'deny entry (key): key');
}

# --- hostile input -----------------------------------------------------------

{
    my $key = 'a"b\\c' . ('k' x 300);
    req('/hostile/x', 'X-Key' => $key);
    my $uri = '/hostile/%22q%5Cb%0Anl%01ctl%7Fdel%FFbad%C3%A9ok%E2%82'
              . '%ED%A0%80sur';
    is(req($uri, 'X-Key' => $key)->{status}, 429, 'hostile: rejected');

    my $raw = $t->read_file('logs/events.log');
    my ($e) = lines_of('events.log');
    is($e->{key}, substr($key, 0, 256), 'hostile key: quotes, backslash');
    ok($e->{key_truncated}, 'hostile key: cut at 256 bytes, flagged');
    is($e->{uri}, "/hostile/\"q\\b\nnl\x01ctl\x7fdel\x{fffd}bad\x{e9}ok"
                  . "\x{fffd}\x{fffd}\x{fffd}\x{fffd}\x{fffd}sur",
       'hostile uri: escaped; invalid UTF-8 replaced byte by byte');
    my ($last) = $raw =~ /([^\n]*)\n\z/;
    like($last, qr/\\u000a/, 'hostile uri: newline as \\u000a');
    like($last, qr/\\u0001/, 'hostile uri: control byte as \\u0001');
    like($last, qr/\\u007f/, 'hostile uri: DEL as \\u007f');
    unlike($last, qr/[\x00-\x1f]/, 'hostile: no raw control byte');

    my $bin = "k\x01\x7f\xc3\xa9";
    req('/hostile/y', 'X-Key' => $bin);
    is(req('/hostile/y', 'X-Key' => $bin)->{status}, 429,
       'binary key: rejected');
    ($e) = lines_of('events.log');
    is($e->{key_hex}, '6b017fc3a9', 'a key with control bytes: key_hex');

    my $long = '/hostile/' . ('u' x 600);
    req($long, 'X-Key' => 'longuri');
    req($long, 'X-Key' => 'longuri');
    ($e) = lines_of('events.log');
    is(length $e->{uri}, 512, 'a long uri: cut at 512 bytes');
    ok($e->{uri_truncated}, 'a long uri: flagged');
}

# --- off, server level -------------------------------------------------------

req('/off', 'X-Key' => 'o');
is(req('/off', 'X-Key' => 'o')->{status}, 429, 'off: rejected');
sleep 0.2;
is(scalar new_lines('events.log'), 0, 'off in a location: no line');

req('/x', 'X-Key' => 's', port => $t->port('SRV'));
is(req('/x', 'X-Key' => 's', port => $t->port('SRV'))->{status}, 429,
   'server level: rejected');
{
    my ($e) = lines_of('server.log');
    is($e && $e->{zone}, 'srv', 'server level: the server\'s own file');
    is(scalar new_lines('events.log'), 0, 'server level: not the http one');
}

# --- syslog ------------------------------------------------------------------

req('/sys', 'X-Key' => 'y');
is(req('/sys', 'X-Key' => 'y')->{status}, 429, 'syslog: rejected');
{
    my $msg = '';
    if (IO::Select->new($udp)->can_read(3)) {
        $udp->recv($msg, 65536);
    }
    like($msg, qr/^<190>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ trl_events: \{/,
         'syslog: header (local7.info, time, host, tag)') or diag($msg);
    my ($body) = $msg =~ /trl_events: (\{.*\})\z/s;
    my $e = eval { $json->decode($body // '') } || {};
    is($e->{event}, 'rejected', 'syslog: the JSON message');
    is($e->{zone}, 'sys', 'syslog: zone');
    is($e->{key}, 'y', 'syslog: key');
    unlike($msg, qr/\n/, 'syslog: no newline');
    is(scalar new_lines('events.log'), 0, 'syslog: not in the file');
}

# --- flood: rate=50 per zone over two workers --------------------------------

# Pipelines $n requests on one keep-alive connection per path in @$paths;
# returns { path => [statuses] }.
sub flood {
    my ($paths, $n) = @_;
    my (%buf, %path_of, @socks);
    my $port = $t->port('FLOOD');
    for my $path (@$paths) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        binmode $s;
        my $req = "GET $path HTTP/1.1\r\nHost: localhost\r\nX-Key: f\r\n\r\n";
        my $all = $req x ($n - 1);
        $all .= "GET $path HTTP/1.1\r\nHost: localhost\r\nX-Key: f\r\n"
                . "Connection: close\r\n\r\n";
        syswrite($s, $all) == length $all or die "write: $!";
        $buf{fileno $s} = '';
        $path_of{fileno $s} = $path;
        push @socks, $s;
    }
    my $sel = IO::Select->new(@socks);
    my $deadline = time + 20;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(1)) {
            my $got = sysread($s, my $chunk, 65536);
            if ($got) {
                $buf{fileno $s} .= $chunk;
            } else {
                $sel->remove($s);
            }
        }
    }
    my %st;
    for my $s (@socks) {
        push @{$st{$path_of{fileno $s}}},
            $buf{fileno $s} =~ m{HTTP/1\.1 (\d{3}) }g;
        close $s;
    }
    return \%st;
}

{
    my %rejected = (fa => 0, fb => 0);
    my $total = 0;
    my @paths = map { ("/fa", "/fb") } 1 .. 4;      # 8 connections
    for my $batch (1 .. 4) {
        my $st = flood(\@paths, 60);
        for my $p (keys %$st) {
            my ($z) = $p =~ m{/(\w+)};
            $rejected{$z} += grep { $_ == 429 } @{$st->{$p}};
            $total += @{$st->{$p}};
        }
        sleep 0.3;
    }
    is($total, 4 * 8 * 60, 'flood: every request answered');
    my %pids = map { $_ => 1 } split /\n/,
        $t->read_file('logs/flood_access.log');
    is(scalar keys %pids, 2, 'flood: both workers answered some');

    # the first line of a later second reports the last refusals
    my $now = time;
    sleep(int($now) + 1.2 - $now);
    for my $z ('fa', 'fb') {
        is(req("/$z", 'X-Key' => 'f', port => $t->port('FLOOD'))->{status},
           429, "flood: $z: one more rejection");
        $rejected{$z}++;
    }

    my @l = lines_of('flood.log', 10);
    for my $z ('fa', 'fb') {
        my (%per_sec, $lines, $suppressed, $sup_lines);
        for my $e (grep { $_->{zone} eq $z } @l) {
            if ($e->{event} eq 'suppressed') {
                $suppressed += $e->{count};
                $sup_lines++;
                next;
            }
            next unless $e->{event} eq 'rejected';
            my ($sec) = $e->{time} =~ /^(.*:\d\d)\./;
            $per_sec{$sec}++;
            $lines++;
        }
        my ($max) = sort { $b <=> $a } values %per_sec;
        ok($rejected{$z} > 500, "flood: $z: $rejected{$z} rejected");
        ok($max && $max <= 50, "flood: $z: at most 50 lines a second")
            or diag(explain \%per_sec);
        is($max, 50, "flood: $z: its own full budget of 50 in a second");
        ok($sup_lines, "flood: $z: \"suppressed\" lines");
        is(($lines // 0) + ($suppressed // 0), $rejected{$z},
           "flood: $z: lines + suppressed counts == rejections");
    }
    my ($s) = grep { $_->{event} eq 'suppressed' } @l;
    ok($s && $s->{count} > 0 && $s->{time} =~ $iso && $s->{node} eq $host,
       'suppressed: time, zone, count, node') or diag(explain $s);
}

# --- reopen, reload ----------------------------------------------------------

{
    my $dir = $t->dir;
    rename "$dir/logs/events.log", "$dir/logs/events.log.old"
        or die "rename: $!";
    my $old_size = -s "$dir/logs/events.log.old";
    kill 'USR1', $t->master_pid;
    for (1 .. 40) {
        last if -e "$dir/logs/events.log";
        sleep 0.05;
    }
    sleep 0.3;                       # the workers reopen after the master
    req('/login', 'X-Key' => 'reopen') for 1 .. 2;
    is(req('/login', 'X-Key' => 'reopen')->{status}, 429, 'reopen: rejected');
    %seen = ();
    my ($e) = lines_of('events.log');
    is($e && $e->{key}, 'reopen', 'reopen: the line is in the new file');
    is(-s "$dir/logs/events.log.old", $old_size, 'reopen: not in the old one');

    my ($rc, $out) = $t->reload;
    is($rc, 0, 'reload: ok') or diag($out);
    req('/login', 'X-Key' => 'reload') for 1 .. 2;
    is(req('/login', 'X-Key' => 'reload')->{status}, 429, 'reload: rejected');
    ($e) = lines_of('events.log');
    is($e && $e->{key}, 'reload', 'reload: still written');
}

$t->no_alerts;
$t->stop;

# --- nginx -t ----------------------------------------------------------------

my $bad = TRL->new;
my $DIRECTIVE = qr/"token_ratelimit_event_log" directive/;

sub conf_with {
    my ($directive, $where) = @_;
    $where //= 'location';
    return <<"EOF";
    token_ratelimit_zone \$binary_remote_addr zone=z:1m rate=5r/m;
    @{[ $where eq 'http' ? $directive : '' ]}
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            token_ratelimit zone=z;
            @{[ $where eq 'location' ? $directive : '' ]}
            empty_gif;
        }
    }
EOF
}

for my $case (
    ['token_ratelimit_event_log logs/e.log rate=0;', 'rate=0'],
    ['token_ratelimit_event_log logs/e.log rate=abc;', 'rate=abc'],
    ['token_ratelimit_event_log logs/e.log rate=100001;', 'rate=100001'],
    ['token_ratelimit_event_log logs/e.log rate=;', 'rate='],
    ['token_ratelimit_event_log logs/e.log level=info;', 'level=info'],
    ['token_ratelimit_event_log rate=5;', 'rate=5'],
    ['token_ratelimit_event_log off rate=5;', 'rate=5'],
    ['token_ratelimit_event_log "";', '', 'empty file name'],
    ['token_ratelimit_event_log logs/$host.log;', 'logs/$host.log'],
    ['token_ratelimit_event_log syslog:server=127.0.0.1:99999;',
     'syslog:server=127.0.0.1:99999'],
    ['token_ratelimit_event_log syslog:server=127.0.0.1,bogus=1;',
     'syslog:server=127.0.0.1,bogus=1'],
    ['token_ratelimit_event_log syslog:facility=local0;',
     'syslog:facility=local0'],
)
{
    my ($directive, $token, $name) = @$case;
    $name //= $token;
    $bad->write_config(conf_with($directive));
    my ($rc, $out) = $bad->test_config;
    isnt($rc, 0, "nginx -t: $name: fails");
    like($out, qr/\[emerg\].*invalid parameter "\Q$token\E" in $DIRECTIVE/,
         "nginx -t: $name: names the directive and the token") or diag($out);
}

my $NARGS = qr/invalid number of arguments in $DIRECTIVE/;

for my $case (
    ['token_ratelimit_event_log;', $NARGS, 'no file'],
    ['token_ratelimit_event_log logs/e.log rate=5 format=json rate=6;',
     $NARGS, 'four parameters'],
    ['token_ratelimit_event_log logs/e.log rate=5 rate=6;',
     qr/invalid parameter "rate=6" in $DIRECTIVE, given twice/,
     'rate= twice'],
    ['token_ratelimit_event_log logs/e.log format=ecs format=json;',
     qr/invalid parameter "format=json" in $DIRECTIVE, given twice/,
     'format= twice'],
    ["token_ratelimit_event_log logs/a.log;\n"
     . " token_ratelimit_event_log logs/b.log;",
     qr/$DIRECTIVE is duplicate/, 'duplicate'],
)
{
    my ($directive, $re, $name) = @$case;
    $bad->write_config(conf_with($directive));
    my ($rc, $out) = $bad->test_config;
    isnt($rc, 0, "nginx -t: $name: fails");
    like($out, $re, "nginx -t: $name: message") or diag($out);
}

for my $ok (
    ['token_ratelimit_event_log logs/e.log rate=100000;', 'location'],
    ['token_ratelimit_event_log logs/e.log rate=1;', 'http'],
    ['token_ratelimit_event_log off;', 'location'],
    ['token_ratelimit_event_log syslog:server=127.0.0.1:5514,facility=local0,'
     . 'severity=notice,tag=trl,nohostname rate=10;', 'http'],
)
{
    $bad->write_config(conf_with(@$ok));
    my ($rc, $out) = $bad->test_config;
    is($rc, 0, "nginx -t: valid: $ok->[0]") or diag($out);
}

done_testing;
