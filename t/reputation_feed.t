#!/usr/bin/perl
# scripts/trl-feed (issue 13, "feeds stay outside nginx") against a real
# nginx serving feed files as a plain static server (ETag, Last-Modified,
# exact If-Modified-Since); its access log shows which requests reached the
# publisher and with which conditional headers.
#
# - first run: the file is written (mode 0644, mtime = Last-Modified);
#   again: 304, the file untouched (same inode, same mtime);
#   --min-interval 1h: "too soon", no request at all;
#   the feed changes on the server: the new one replaces the file.
# - 429 with Retry-After: 120 (and 503 with an HTTP date): exit 3, and the
#   next runs, --force included, make no request.
# - refused answers keep the old file and exit 4: HTML (by Content-Type
#   and by its content), an empty one (accepted with --allow-empty), a line
#   that is no address, fewer entries than --min-lines.
# - interrupted transfers keep the old file and exit 1: a body cut short
#   (Content-Length not reached), a timeout, the run killed mid-transfer.
#   No temporary file is left beside the list.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);
use TRL;

my $SCRIPT = "$TRL::ROOT/scripts/trl-feed";

my $t = TRL->new;
my $dir = $t->dir;
mkdir "$dir/lists";
my $backend = start_truncating_backend($t);

$t->write_file('html/feed.txt', "# test feed\n192.0.2.0/24\n198.51.100.7\n");
utime time - 3600, time - 3600, "$dir/html/feed.txt";
$t->write_file('html/page.html', "<!DOCTYPE html>\n<html><body>sorry"
               . "</body></html>\n");
$t->write_file('html/empty.txt', '');
$t->write_file('html/bad.txt', "192.0.2.1\n<br>not-an-address\n");
$t->write_file('html/drop.txt', "; Spamhaus DROP List\n"
               . "1.10.16.0/20 ; SBL256894\n2001:db8::/32 ; SBL1\n"
               . "203.0.113.5\t7\n198.51.100.1-198.51.100.9\n");
mkdir "$dir/html/slow";
$t->write_file('html/slow/big.txt', "203.0.113.1\n" x 40000);

my $later = strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime(time + 600));
$t->write_config(<<"EOF");
    log_format feed '\$uri \$status inm=\$http_if_none_match '
                    'ims=\$http_if_modified_since';
    log_format keyed '\$uri key=\$http_x_key accept=\$http_accept';
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%DIR%%/html;
        access_log %%DIR%%/logs/feed.log feed;
        location = /limited { add_header Retry-After 120 always; return 429; }
        location = /busy {
            add_header Retry-After "$later" always;
            return 503;
        }
        location = /html-as-text {
            types { }
            default_type text/plain;
            try_files /page.html =404;
        }
        location /slow/ { limit_rate 2k; }
        location = /cut { proxy_pass http://127.0.0.1:$backend; }
        location /keyed/ {
            alias %%DIR%%/html/;
            access_log %%DIR%%/logs/keyed.log keyed;
        }
    }
EOF
$t->run;
my $base = 'http://127.0.0.1:' . $t->port;

# Runs trl-feed; returns (exit status, stdout, stderr).
sub feed {
    my @args = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', "$dir/feed.err" or die;
        exec $SCRIPT, @args or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $rc = $? >> 8;
    return ($rc, $out, $t->read_file('feed.err'));
}

# The requests nginx logged for a path.
sub logged {
    my ($uri) = @_;
    return grep { /^\Q$uri\E / } split /\n/, $t->read_file('logs/feed.log');
}

sub id { my @s = stat $_[0]; return @s ? "$s[1]:$s[9]" : 'missing' }
sub leftovers { my @f = glob "$dir/lists/.*.new.*"; return scalar @f }

# --- usage -----------------------------------------------------------------

my ($rc, $out, $err) = feed('--help');
is($rc, 0, '--help exits 0');
like($out, qr/^usage: trl-feed \[OPTIONS\] URL FILE/, '--help: usage');
($rc, $out, $err) = feed('--min-interval', 'soon', "$base/feed.txt",
                         "$dir/lists/x.txt");
is($rc, 2, 'a bad option: exit 2');
like($err, qr/--min-interval: not a duration: "soon"/, 'it says why');
ok(!logged('/feed.txt'), 'no request on a usage error');

# --- fetch, 304, --min-interval, change -------------------------------------

my $list = "$dir/lists/feed.txt";
($rc, $out, $err) = feed('--min-interval', '0', "$base/feed.txt", $list);
is($rc, 0, 'first run: exit 0') or diag($err);
like($out, qr/^trl-feed: \Q$list\E: updated: 2 entries, \d+ bytes/,
     'first run: one line, "updated"');
is($err, '', 'first run: nothing on stderr');
is($t->read_file($list), $t->read_file('html/feed.txt'), 'the file written');
is((stat $list)[9], (stat "$dir/html/feed.txt")[9],
   'its mtime is the Last-Modified');
is((stat $list)[2] & 07777, 0644, 'readable by nginx workers (0644)');
my @log = logged('/feed.txt');
is(scalar @log, 1, 'one request');
like($log[0], qr{^/feed\.txt 200 inm=- ims=-$}, 'unconditional the first time');

my $before = id($list);
($rc, $out, $err) = feed('--min-interval', '0', "$base/feed.txt", $list);
is($rc, 0, 'second run: exit 0') or diag($err);
like($out, qr/: not modified \(HTTP 304\)$/, 'second run: "not modified"');
@log = logged('/feed.txt');
is(scalar @log, 2, 'second run: one more request');
like($log[1], qr{^/feed\.txt 304 inm=\\x22[^\\]+\\x22 ims=\w{3}, },
     'conditional: If-None-Match and If-Modified-Since');
is(id($list), $before, 'the file untouched (inode and mtime)');

($rc, $out, $err) = feed('--min-interval', '1h', "$base/feed.txt", $list);
is($rc, 0, '--min-interval 1h: exit 0') or diag($err);
like($out, qr/: too soon: last request .*--min-interval 3600s: next after .*; no request made$/,
     '--min-interval 1h: "too soon"');
is(scalar(logged('/feed.txt')), 2, '--min-interval: no request made');
($rc, $out, $err) = feed("$base/feed.txt", $list);
is($rc, 0, 'the default --min-interval (1h): exit 0');
like($out, qr/too soon/, 'the default --min-interval is remembered');
is(scalar(logged('/feed.txt')), 2, 'default --min-interval: no request');

$t->write_file('html/feed.txt', "# test feed\n192.0.2.0/24\n198.51.100.7\n"
               . "2001:db8:1::/48\n");
($rc, $out, $err) = feed('--min-interval', '0', "$base/feed.txt", $list);
is($rc, 0, 'changed on the server: exit 0') or diag($err);
like($out, qr/: updated: 3 entries/, 'changed on the server: updated');
is($t->read_file($list), $t->read_file('html/feed.txt'), 'the new file');
isnt(id($list), $before, 'replaced (rename: a new inode)');
like((logged('/feed.txt'))[-1], qr{^/feed\.txt 200 inm=\\x22}, 'a 200 this time');

# a rollback: the publisher's new file is older than the one we have
$t->write_file('html/feed.txt', "192.0.2.0/24\n");
utime time - 7200, time - 7200, "$dir/html/feed.txt";
($rc, $out, $err) = feed('--min-interval', '0', "$base/feed.txt", $list);
like($out, qr/: updated: 1 entries/, 'an older Last-Modified: updated');
is((stat $list)[9], (stat "$dir/html/feed.txt")[9], 'with the older mtime');
$t->write_file('html/feed.txt', "# test feed\n192.0.2.0/24\n198.51.100.7\n"
               . "2001:db8:1::/48\n");

# a file removed or edited by hand is fetched in full, not conditionally
unlink $list;
($rc, $out, $err) = feed('--force', "$base/feed.txt", $list);
is($rc, 0, 'file removed, --force: exit 0') or diag($err);
like($out, qr/updated: 3 entries/, '--force ignores --min-interval');
like((logged('/feed.txt'))[-1], qr{^/feed\.txt 200 inm=- ims=-$},
     'the missing file is fetched unconditionally');

($rc, $out, $err) = feed('--min-interval', '0', '--quiet', "$base/feed.txt",
                         $list);
is("$rc|$out|$err", '0||', '--quiet: nothing printed on a 304');

# --header, given as is and from a file (an API key kept out of ps)
$t->write_file('key.headers', "X-Key: from-a-file\nAccept: text/plain\n");
($rc, $out, $err) = feed('--header', 'X-Key: on-the-line',
                         "$base/keyed/feed.txt", "$dir/lists/k1.txt");
is($rc, 0, '--header: exit 0') or diag($err);
($rc, $out, $err) = feed('--header', "\@$dir/key.headers",
                         "$base/keyed/feed.txt", "$dir/lists/k2.txt");
is($rc, 0, '--header @FILE: exit 0') or diag($err);
is($t->read_file('logs/keyed.log'),
   "/keyed/feed.txt key=on-the-line accept=*/*\n"
   . "/keyed/feed.txt key=from-a-file accept=text/plain\n",
   'the headers sent');

# --- the publisher's rate limits --------------------------------------------

my $limited = "$dir/lists/limited.txt";
($rc, $out, $err) = feed('--min-interval', '0', "$base/limited", $limited);
is($rc, 3, '429: exit 3');
like($err, qr/: HTTP 429: rate limited, Retry-After 120s: no request before .*; kept the old file$/,
     '429: one line with Retry-After');
is(scalar(logged('/limited')), 1, '429: one request');
for my $opt ('--min-interval', '--force') {
    ($rc, $out, $err) = feed($opt eq '--force' ? ('--force')
                                               : ('--min-interval', '0'),
                             "$base/limited", $limited);
    is($rc, 0, "after the 429 ($opt): exit 0");
    like($out, qr/too soon: the publisher asked to wait until .*\(Retry-After\); no request made/,
         "after the 429 ($opt): too soon");
    is(scalar(logged('/limited')), 1, "after the 429 ($opt): no request");
}
ok(!-e $limited, 'no file written by a 429');

my $busy = "$dir/lists/busy.txt";
($rc, $out, $err) = feed('--min-interval', '0', "$base/busy", $busy);
is($rc, 3, '503 with an HTTP date: exit 3');
my ($secs) = $err =~ /Retry-After (\d+)s/;
ok(defined $secs && $secs >= 590 && $secs <= 600,
   '503: the date read as about 600 s') or diag($err);
($rc, $out, $err) = feed('--min-interval', '0', "$base/busy", $busy);
like($out, qr/too soon/, '503: the next run waits');
is(scalar(logged('/busy')), 1, '503: no second request');

# --- refused answers keep the old file --------------------------------------

my $kept = "$dir/lists/kept.txt";
($rc) = feed('--min-interval', '0', "$base/feed.txt", $kept);
is($rc, 0, 'a good list first');
my $good = $t->read_file($kept);
my $good_id = id($kept);

my @refused = (
    ['/page.html', [], qr/refused: the answer is HTML \(Content-Type text\/html\)/],
    ['/html-as-text', [], qr/refused: the answer looks like HTML/],
    ['/empty.txt', [], qr/refused: no entries \(0 bytes; --allow-empty/],
    ['/bad.txt', [], qr/refused: line 2: not an address: "<br>not-an-address"/],
    ['/drop.txt', ['--min-lines', '5'],
     qr/refused: 4 entries, fewer than --min-lines 5/],
    ['/missing.txt', [], qr/: HTTP 404; kept the old file$/, 1],
);
for my $case (@refused) {
    my ($uri, $opts, $re, $want) = @$case;
    ($rc, $out, $err) = feed('--min-interval', '0', @$opts, "$base$uri",
                             $kept);
    is($rc, $want // 4, "$uri @$opts: exit " . ($want // 4));
    like($err, $re, "$uri: says why");
    like($err, qr/kept the old file\n\z/, "$uri: one line");
    is($out, '', "$uri: nothing on stdout");
    is($t->read_file($kept), $good, "$uri: the old file kept");
    is(id($kept), $good_id, "$uri: not even touched");
}
is(leftovers(), 0, 'no temporary file left');

my $empty = "$dir/lists/empty.txt";
($rc, $out, $err) = feed('--allow-empty', "$base/empty.txt", $empty);
is($rc, 0, '--allow-empty: an empty answer accepted') or diag($err);
like($out, qr/updated: 0 entries, 0 bytes/, '--allow-empty: updated');
ok(-e $empty && -z $empty, '--allow-empty: the empty file written');

my $drop = "$dir/lists/drop.txt";
($rc, $out, $err) = feed("$base/drop.txt", $drop);
is($rc, 0, 'Spamhaus DROP, IPsum and range lines pass') or diag($err);
like($out, qr/updated: 4 entries/, 'the four entries counted');

# --- interrupted transfers --------------------------------------------------

($rc, $out, $err) = feed('--min-interval', '0', "$base/cut", $kept);
is($rc, 1, 'a body cut short: exit 1');
like($err, qr/transfer interrupted \(curl: \(18\).*\); kept the old file$/,
     'a body cut short: says so');
is(id($kept), $good_id, 'a body cut short: the old file kept');

my $t0 = time;
($rc, $out, $err) = feed('--min-interval', '0', '--timeout', '1',
                         "$base/slow/big.txt", $kept);
is($rc, 1, 'a timeout: exit 1');
like($err, qr/timed out after 1s/, 'a timeout: says so');
ok(time - $t0 < 10, 'a timeout: bounded');
is(id($kept), $good_id, 'a timeout: the old file kept');

# killed mid-transfer (as systemd stops a unit: its whole process group)
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    POSIX::setpgid(0, 0);
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    { exec $SCRIPT, "--min-interval", "0", "$base/slow/big.txt", $kept }
    POSIX::_exit(127);
}
# the transfer has begun when its temporary file has data
my $begun;
for (1 .. 100) {
    last if $begun = grep { -s $_ } glob "$dir/lists/.*.new.*";
    sleep 0.05;
}
ok($begun, 'killed: the transfer had begun');
kill 'TERM', -$pid;
waitpid $pid, 0;
isnt($? >> 8, 0, 'killed: non-zero exit');
is(id($kept), $good_id, 'killed: the old file kept');
is(leftovers(), 0, 'killed: its temporary file removed');

# a run killed is a request made: the next waits --min-interval
($rc, $out, $err) = feed('--min-interval', '1h', "$base/feed.txt", $kept);
like($out, qr/too soon/, 'the killed run counts for --min-interval');

$t->stop;
$t->no_alerts;
done_testing;


# A backend that announces 1000 bytes and sends 40 (nginx passes it on and
# cuts the client's connection).
sub start_truncating_backend {
    my ($t) = @_;
    my $port = $t->port('CUT');
    my $listen = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port",
                                       Proto => 'tcp', Listen => 16,
                                       ReuseAddr => 1)
        or die "listen on $port: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        while (my $c = $listen->accept) {
            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                sysread($c, my $buf, 4096) or last;
                $req .= $buf;
            }
            print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                . "Content-Length: 1000\r\n\r\n" . ("192.0.2.1\n" x 4);
            close $c;
        }
        POSIX::_exit(0);
    }
    close $listen;
    push @{$t->{children}}, $pid;
    return $port;
}
