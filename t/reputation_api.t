#!/usr/bin/perl
# token_ratelimit_api and the reputation lists (token_ratelimit_reputation):
#
# - GET {loc}/reputation: the zone (size, used, retired) and every list
#   with its fields; GET {loc}/reputation/NAME one list, 404 list_not_found
#   for another name, 404 not_found without a table (another server).
# - PUT replaces an API list (version, checksum, ranges, entries; entries
#   overlapping a trusted range are dropped and counted with an example),
#   POST appends (the union), DELETE empties; each answers the list as it
#   is now; a client in the list gets the scaled limit (X-RateLimit-Limit),
#   one outside the full N.
# - GET {loc}/reputation/lookup?address=IP: lists, dry_run, score; an
#   IPv4-mapped IPv6 address is the IPv4 one; a bad address is a 400.
# - Refusals change nothing: 409 list_from_file for PUT, POST and DELETE
#   on a file list, 400 bad_list "body:LINE: why" (in memory and from
#   nginx's temporary file), 405 for another method, 413 past
#   client_max_body_size, 403 cross_site_request for a PUT with the Origin
#   of another site (SPEC 7).
# - A body of 100k lines (a temporary file) is taken whole.
# - Uploads whose clients close the connection before the answer are
#   installed all the same; no worker dies.
# - Atomic replace under load: while a client hammers /login, its list is
#   replaced again and again by two versions that both hold its address
#   (with other ranges each): every answer shows the scaled limit, never
#   the full N; a second client, held by one version only, sees both
#   limits (the versions did alternate under the load).
# - Prometheus: the reputation families; the error log has no alert.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new(workers => 2);
my $dir = $t->dir;

$t->write_file('fromfile.txt', "198.51.100.0/24\n");

$t->write_config(<<'EOF');
    token_ratelimit_zone $binary_remote_addr zone=login:1m rate=10000r/m;
    token_ratelimit_reputation size=16m;
    token_ratelimit_reputation_list up score=40;
    token_ratelimit_reputation_list big score=70;
    token_ratelimit_reputation_list fromfile file=%%DIR%%/fromfile.txt
                                    score=90;
    token_ratelimit_reputation_list watch dry_run;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /login {
            token_ratelimit zone=login scale=up:0.5,big:0.2,fromfile:0.1;
            empty_gif;
        }
        location /api { token_ratelimit_api; client_max_body_size 16m; }
        location /small-api { token_ratelimit_api; client_max_body_size 1k; }
        location /mem-api {
            token_ratelimit_api;
            client_body_buffer_size 1m;
        }
    }
EOF
$t->run;

my $json = JSON::PP->new->allow_bignum;

sub call {
    my ($method, $path, $body, %h) = @_;
    my $r = $t->request(TRL::build_request($method, $path,
                                           defined $body ? (body => $body)
                                                         : (),
                                           headers => \%h),
                        timeout => 60);
    $r->{json} = eval { $json->decode($r->{body}) };
    return $r;
}
sub list { call('GET', "/api/reputation/$_[0]")->{json} || {} }
sub limit_of {
    my ($addr) = @_;
    my $r = $t->get('/login', headers => { 'X-Forwarded-For' => $addr });
    return $r->{headers}{'x-ratelimit-limit'} // "status $r->{status}";
}
sub wait_until {
    my ($secs, $code) = @_;
    my $deadline = time + $secs;
    until ($code->()) {
        return 0 if time > $deadline;
        sleep 0.05;
    }
    return 1;
}
sub lookup { call('GET', "/api/reputation/lookup?address=$_[0]")->{json} }

# --- GET shapes ----------------------------------------------------------------

{
    my $r = call('GET', '/api/reputation');
    is($r->{status}, 200, 'GET /reputation');
    like($r->{headers}{'content-type'}, qr{^application/json}, 'JSON');
    my $j = $r->{json} || {};
    ok($j->{zone}{size} > 15 * 1024 * 1024
       && $j->{zone}{size} <= 16 * 1024 * 1024, 'zone.size: about size=');
    ok(defined $j->{zone}{used} && defined $j->{zone}{retired},
       'zone.used and zone.retired');
    is(join(' ', map { $_->{name} } @{$j->{lists} || []}),
       'up big fromfile watch', 'the lists, in their order');

    my ($f) = grep { $_->{name} eq 'fromfile' } @{$j->{lists}};
    is($f->{source}, 'file', 'fromfile: source file');
    is($f->{file}, "$dir/fromfile.txt", 'fromfile: its path');
    is($f->{score}, 90, 'fromfile: score');
    is($f->{ranges4}, 1, 'fromfile: one range');
    is($f->{origin}, 'file', 'fromfile: origin');
    like($f->{checksum}, qr/^[0-9a-f]{16}$/, 'fromfile: checksum');
    ok($f->{version} >= 1, 'fromfile: a version');

    my $u = list('up');
    my @keys = qw(name score dry_run source file version checksum ranges4
                  ranges6 entries bytes dropped loaded load_ms matched
                  origin error unpublished redis);
    is(join(' ', grep { !exists $u->{$_} } @keys), '', 'up: every field');
    is($u->{source}, 'api', 'up: source api');
    is($u->{file}, undef, 'up: no file');
    is($u->{version}, 0, 'up: never loaded');
    is($u->{checksum}, undef, 'up: no checksum yet');
    is($u->{loaded}, undef, 'up: not loaded');
    ok(!$u->{unpublished}, 'up: nothing unpublished (no Redis)');
    is($u->{redis}, undef, 'up: redis null (no Redis)');
    is($u->{error}, undef, 'up: no error');
    ok(JSON::PP::is_bool($u->{dry_run}) && !$u->{dry_run}, 'up: dry_run');
    ok(list('watch')->{dry_run}, 'watch: dry_run true');

    $r = call('GET', '/api/reputation/nope');
    is($r->{status}, 404, 'unknown list: 404');
    is($r->{json}{error}, 'list_not_found', 'unknown list: the error');
}

# --- PUT, POST, DELETE, lookup ------------------------------------------------

is(limit_of('203.0.113.7'), 10000, 'before: the full limit');

{
    my $r = call('PUT', '/api/reputation/up',
                 "# a netset\n203.0.113.0/25\n203.0.113.200 ; SBL1\n"
                 . "10.1.0.0/16\n2001:db8:1::/48\n");
    is($r->{status}, 200, 'PUT: 200') or diag($r->{body});
    my $u = $r->{json} || {};
    is($u->{name}, 'up', 'PUT answers the list');
    is($u->{ranges4}, 2, 'PUT: two IPv4 ranges');
    is($u->{ranges6}, 1, 'PUT: one IPv6 range');
    is($u->{entries}, 3, 'PUT: three entries kept');
    is($u->{dropped}{trusted}, 1, 'PUT: the 10/8 entry dropped');
    like($u->{dropped}{example} // '', qr/10\.1\.0\.0/, 'dropped: example');
    is($u->{origin}, 'api', 'PUT: origin api');
    like($u->{checksum}, qr/^[0-9a-f]{16}$/, 'PUT: checksum');
    ok($u->{version} > 1_600_000_000_000, 'PUT: version = Unix ms')
        or diag("version $u->{version}");
    ok(abs($u->{loaded} - time) < 60, 'PUT: loaded now');
    is(list('up')->{version}, $u->{version}, 'GET shows the same version');

    is(limit_of('203.0.113.7'), 5000, 'listed: scaled (0.5)');
    is(limit_of('203.0.113.200'), 5000, 'the second entry too');
    is(limit_of('203.0.113.150'), 10000, 'not listed: full');
    is(limit_of('10.1.2.3'), 10000, 'the dropped trusted entry: full');
    is(limit_of('198.51.100.9'), 1000, 'the file list: 0.1');

    my $l = lookup('203.0.113.7');
    is_deeply([$l->{address}, $l->{lists}, $l->{dry_run}, $l->{score}],
              ['203.0.113.7', ['up'], [], 40], 'lookup: up, score 40');
    $l = lookup('::ffff:203.0.113.7');
    is($l->{address}, '203.0.113.7', 'lookup: v4-mapped is IPv4');
    is_deeply($l->{lists}, ['up'], 'lookup: v4-mapped matches');
    $l = lookup('2001:db8:1::abcd');
    is_deeply($l->{lists}, ['up'], 'lookup: IPv6');
    $l = lookup('203.0.113.150');
    is_deeply([$l->{lists}, $l->{score}], [[], 0], 'lookup: nothing');
    for my $bad ('', 'x', '203.0.113.0/24', '300.1.1.1') {
        my $r = call('GET', "/api/reputation/lookup?address=$bad");
        is($r->{status}, 400, "lookup \"$bad\": 400");
    }
    is(call('GET', '/api/reputation/lookup')->{status}, 400,
       'lookup without address=: 400');

    # POST: the union
    my $v = $u->{version};
    $r = call('POST', '/api/reputation/up', "192.0.2.9\n203.0.113.1\n");
    is($r->{status}, 200, 'POST: 200') or diag($r->{body});
    is($r->{json}{ranges4}, 3, 'POST: the union (192.0.2.9 added)');
    ok($r->{json}{version} > $v, 'POST: a newer version');
    isnt($r->{json}{checksum}, $u->{checksum}, 'POST: another checksum');
    is(limit_of('192.0.2.9'), 5000, 'POST: the new entry applies');
    is(limit_of('203.0.113.7'), 5000, 'POST: the old ones stay');

    # the dry run list: reported, never applied
    $r = call('PUT', '/api/reputation/watch', "192.0.2.77\n");
    is($r->{status}, 200, 'PUT watch');
    $l = lookup('192.0.2.77');
    is_deeply([$l->{lists}, $l->{dry_run}], [[], ['watch']],
              'lookup: a dry-run match');

    # DELETE empties
    $v = list('up')->{version};
    $r = call('DELETE', '/api/reputation/up');
    is($r->{status}, 200, 'DELETE: 200') or diag($r->{body});
    is($r->{json}{ranges4} + $r->{json}{ranges6}, 0, 'DELETE: empty');
    ok($r->{json}{version} > $v, 'DELETE: a newer version');
    is(limit_of('203.0.113.7'), 10000, 'DELETE: full limit again');
    is_deeply(lookup('203.0.113.7')->{lists}, [], 'DELETE: lookup empty');
}

# --- refusals: nothing changes -------------------------------------------------

{
    call('PUT', '/api/reputation/up', "203.0.113.7\n");
    my $before = list('up');
    my $file = list('fromfile');

    for my $m ('PUT', 'POST', 'DELETE') {
        my $r = call($m, '/api/reputation/fromfile',
                     $m eq 'DELETE' ? undef : "192.0.2.1\n");
        is($r->{status}, 409, "$m on a file list: 409");
        is($r->{json}{error}, 'list_from_file', "$m: list_from_file");
    }
    is(list('fromfile')->{version}, $file->{version}, 'file list unchanged');

    my $r = call('PUT', '/api/reputation/up',
                 "203.0.113.9\n192.0.2.5\n<html>\n203.0.113.10\n");
    is($r->{status}, 400, 'a bad body: 400');
    is($r->{json}{error}, 'bad_list', 'bad_list');
    like($r->{json}{message}, qr/^body:3: /, 'the message: body:LINE: why')
        or diag($r->{json}{message});

    # the same from nginx's temporary file (a body over the buffer)
    my $big = join('', map { "198.18.0.$_\n" } 1 .. 200) x 20 . "nonsense\n";
    $r = call('PUT', '/api/reputation/up', $big);
    is($r->{status}, 400, 'a bad body in a temporary file: 400');
    like($r->{json}{message}, qr/^body:4001: /, 'its line, named body')
        or diag($r->{json}{message});
    like(list('up')->{error}{message} // '', qr/^body:4001: /,
         'the list\'s error names it body too');

    # a file body, taken from memory when it fits the buffer
    $r = call('PUT', '/mem-api/reputation/up', $big);
    like($r->{json}{message} // '', qr/^body:4001: /,
         'the same body in memory: the same message');

    $r = call('PATCH', '/api/reputation/up', "192.0.2.1\n");
    is($r->{status}, 405, 'PATCH: 405');
    like($r->{headers}{allow} // '', qr/PUT/, 'Allow names PUT');

    $r = call('PUT', '/small-api/reputation/up', "192.0.2.1\n" x 200);
    is($r->{status}, 413, 'over client_max_body_size: 413');

    $r = call('PUT', '/api/reputation/up', "192.0.2.1\n",
              Origin => 'http://evil.example');
    is($r->{status}, 403, 'cross-site PUT: 403');
    is($r->{json}{error}, 'cross_site_request', 'cross_site_request');
    $r = call('DELETE', '/api/reputation/up', undef,
              'Sec-Fetch-Site' => 'cross-site');
    is($r->{status}, 403, 'cross-site DELETE: 403');

    my $after = list('up');
    is_deeply([@$after{qw(version checksum ranges4)}],
              [@$before{qw(version checksum ranges4)}],
              'after the refusals: the list as it was');
    is(limit_of('203.0.113.7'), 5000, '... and applied as it was');

    # the API still answers on the same keep-alive-less connections
    is(call('GET', '/api/reputation/up')->{status}, 200, 'still serving');
}

# --- a body of 100k lines --------------------------------------------------------

{
    my @lines;
    for my $i (0 .. 99_999) {
        # every other address of 11.0.0.0/8: no two merge
        my $n = 2 * $i;
        push @lines, sprintf("11.%d.%d.%d", $n >> 16, ($n >> 8) & 255,
                             $n & 255);
    }
    my $t0 = time;
    my $r = call('PUT', '/api/reputation/big', join("\n", @lines) . "\n");
    my $took = time - $t0;
    is($r->{status}, 200, '100k lines: 200') or diag($r->{body});
    is($r->{json}{ranges4}, 100_000, '100k lines: 100k ranges');
    is($r->{json}{entries}, 100_000, '100k lines: 100k entries');
    diag(sprintf("100k lines: %.2f s, %d bytes in the table, load_ms %d",
                 $took, $r->{json}{bytes}, $r->{json}{load_ms}));
    is_deeply(lookup('11.1.134.160')->{lists}, ['big'],
              'a line of the body is held');
    is_deeply(lookup('11.1.134.161')->{lists}, [],
              'the address between two is not');
    is(limit_of($lines[-1]), 2000, 'its last line: 0.2');
}

# --- an atomic replace under load ----------------------------------------------

{
    # two versions: both hold 203.0.113.7, with 20k other ranges each;
    # only A holds 203.0.113.99
    my $a = join('', map { sprintf("12.%d.%d.1\n", $_ >> 8, $_ & 255) }
                         0 .. 19_999) . "203.0.113.7\n203.0.113.99\n";
    my $b = join('', map { sprintf("13.%d.%d.1\n", $_ >> 8, $_ & 255) }
                         0 .. 19_999) . "203.0.113.7\n";

    is(call('PUT', '/api/reputation/up', $a)->{status}, 200, 'version A');
    my $v0 = list('up')->{version};

    my $PUTS = 30;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $ok = 1;
        for my $i (1 .. $PUTS) {
            my $r = call('PUT', '/api/reputation/up', $i % 2 ? $b : $a);
            $ok = 0 if $r->{status} != 200;
        }
        POSIX::_exit($ok ? 0 : 1);
    }

    # the client: bursts of 50 pipelined requests, each on a keep-alive
    # connection of its own, the two addresses in turn (rejections too
    # show the limit)
    my @raw = map { "GET /login HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: "
                    . ($_ % 2 ? '203.0.113.99' : '203.0.113.7')
                    . "\r\n\r\n" } 0 .. 49;
    my (%seen, %other, $n);
    my $deadline = time + 60;
    while (time < $deadline) {
        my $s = $t->connect_keepalive;
        my @r = TRL::pipeline($s, @raw);
        close $s;
        for my $i (0 .. $#r) {
            my $l = $r[$i]{headers}{'x-ratelimit-limit'}
                    // "status $r[$i]{status}";
            ($i % 2 ? \%other : \%seen)->{$l}++;
            $n++;
        }
        last if waitpid($pid, POSIX::WNOHANG()) == $pid;
    }
    my $status = $? >> 8;
    is($status, 0, "the $PUTS PUTs answered 200");
    diag("$n requests under the PUTs: 203.0.113.7 "
         . join(', ', map { "$_ x$seen{$_}" } sort keys %seen)
         . "; 203.0.113.99 "
         . join(', ', map { "$_ x$other{$_}" } sort keys %other));
    ok($n >= 500, "the client made $n requests during the PUTs");
    is(join(' ', sort keys %seen), '5000',
       'every answer for the address of both versions: the scaled limit');
    is(join(' ', sort keys %other), '10000 5000',
       'the address of version A only: both limits seen');
    ok(list('up')->{version} > $v0, 'the version moved on');
}

# --- a client that goes away ------------------------------------------------------

{
    my @pids = $t->worker_pids;
    my $v = list('big')->{version};
    my $body = join('', map { sprintf("14.%d.%d.1\n", $_ >> 8, $_ & 255) }
                            0 .. 49_999);
    for my $i (1 .. 5) {
        my $s = $t->connect_keepalive;
        print $s TRL::build_request('PUT', '/api/reputation/big',
                                    body => $body);
        close $s;                       # gone before the answer
    }
    ok(wait_until(10, sub { list('big')->{ranges4} == 50_000 }),
       'uploads whose clients went away are installed all the same');
    ok(list('big')->{version} > $v, '... as a newer version');
    is(join(' ', $t->worker_pids), join(' ', @pids), 'no worker died');
    is(call('GET', '/api/reputation/big')->{status}, 200, 'still serving');
}

# --- metrics --------------------------------------------------------------------

{
    my $r = call('GET', '/api/metrics');
    is($r->{status}, 200, 'metrics');
    my $m = $r->{body};
    like($m, qr/^# TYPE token_ratelimit_reputation_ranges gauge$/m,
         'ranges: TYPE');
    like($m, qr/^token_ratelimit_reputation_ranges\{list="big"\} 50000$/m,
         'ranges of big');
    like($m, qr/^token_ratelimit_reputation_ranges\{list="fromfile"\} 1$/m,
         'ranges of fromfile');
    my $u = list('up');
    like($m, qr/^token_ratelimit_reputation_version\{list="up"\} $u->{version}$/m,
         'version of up');
    like($m, qr/^token_ratelimit_reputation_matched_total\{list="up"\} \d+$/m,
         'matched of up');
    my ($matched) = $m =~ /^token_ratelimit_reputation_matched_total\{list="up"\} (\d+)$/m;
    ok(($matched // 0) > 20, "matched of up counts requests ($matched)");
    like($m, qr/^token_ratelimit_reputation_bytes \d+$/m, 'bytes');
}

# --- no table: 404 ---------------------------------------------------------------

{
    my $t2 = TRL->new;
    $t2->write_config(<<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location /api { token_ratelimit_api; }
    }
EOF
    $t2->run;
    for my $m ('GET', 'PUT') {
        my $r = $t2->request(TRL::build_request($m, '/api/reputation/up',
                                                body => "192.0.2.1\n"));
        is($r->{status}, 404, "$m without a table: 404");
        like($r->{body}, qr/"error":"not_found"/, 'not_found');
    }
    $t2->no_alerts;
}

$t->no_alerts;

done_testing;
