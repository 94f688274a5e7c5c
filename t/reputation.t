#!/usr/bin/perl
# IP reputation on the request path: token_ratelimit_reputation, lists
# from files, and what token_ratelimit does with them.
#
# - scale=: a listed source gets the scaled N (X-RateLimit-Limit,
#   $token_ratelimit_limit, the 429 body) and is rejected after N'
#   requests with Retry-After; an unlisted one the full N; a source on two
#   lists gets the smallest factor; IPv6 ranges.
# - deny_score=: a source whose score reaches it gets 403 with
#   token_ratelimit_deny's JSON body, counted as denied, logged once.
# - penalty_level=: a listed source's first block is base*factor^(L-1).
# - A dry_run list changes nothing, but fills
#   $token_ratelimit_reputation_dry_run and logs what it would do.
# - The variables work in add_header and log_format, with or without a
#   limit.
# - A list holding 10.0.0.0/8 and 10.1.0.0/16 (trusted: private) does not
#   touch 10.1.2.3, while its other entries apply; the drop is logged.
# - A strict sync zone (Redis) decides on the scaled N.
#
# Clients come from documentation ranges through realip (X-Forwarded-For
# from 127.0.0.1).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use TRL;

my $t = TRL->new;

$t->write_file('tor.txt', <<'EOF');
# Tor exit nodes (test)
198.51.100.0/24
2001:db8:1::/48
EOF
$t->write_file('bad.txt', <<'EOF');
198.51.100.192/26 ; SBL000001
203.0.113.0/25
2001:db8:bad::/48
EOF
$t->write_file('watch.txt', "192.0.2.0/25\n");
$t->write_file('wide.txt', <<'EOF');
10.0.0.0/8
10.1.0.0/16
192.0.2.128/25
EOF

my $CONF = <<'EOF';
    token_ratelimit_reputation size=1m check=1s;
    token_ratelimit_reputation_list tor file=%%DIR%%/tor.txt score=40;
    token_ratelimit_reputation_list bad file=%%DIR%%/bad.txt score=90;
    token_ratelimit_reputation_list watch file=%%DIR%%/watch.txt score=95
                                    dry_run;
    token_ratelimit_reputation_list wide file=%%DIR%%/wide.txt;

    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;

    token_ratelimit_zone $binary_remote_addr zone=s:1m rate=10r/m;
    token_ratelimit_zone $binary_remote_addr zone=d:1m rate=10r/m;
    token_ratelimit_zone $binary_remote_addr zone=p:1m rate=1r/s;
    token_ratelimit_zone $binary_remote_addr zone=dr:1m rate=10r/m;
    token_ratelimit_zone $binary_remote_addr zone=w:1m rate=10r/m;

    log_format rep '$remote_addr [$token_ratelimit_reputation] '
                   '$token_ratelimit_reputation_score '
                   '[$token_ratelimit_reputation_dry_run]';

    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%DIR%%/logs/rep.log rep;
        add_header X-Rep "[$token_ratelimit_reputation]" always;
        add_header X-Score "[$token_ratelimit_reputation_score]" always;
        add_header X-Dry "[$token_ratelimit_reputation_dry_run]" always;
        add_header X-Limit "[$token_ratelimit_limit]" always;

        location /scale { token_ratelimit zone=s scale=tor:0.5,bad:0.2;
                          empty_gif; }
        location /deny  { token_ratelimit zone=d deny_score=80; empty_gif; }
        location /pen   { token_ratelimit zone=p penalty=1s:2:1h
                                          penalty_level=bad:3;
                          empty_gif; }
        location /dry   { token_ratelimit zone=dr scale=watch:0.1
                                          deny_score=50;
                          empty_gif; }
        location /wide  { token_ratelimit zone=w scale=wide:0.1; empty_gif; }
        location /vars  { empty_gif; }

        location /trl-api {
            token_ratelimit_api;
            allow 127.0.0.1;
            deny all;
        }
    }
EOF
$t->write_config($CONF);
$t->run;

sub from {
    my ($path, $addr) = @_;
    return $t->get($path, headers => { 'X-Forwarded-For' => $addr });
}

sub codes { join ' ', map { $_->{status} } @_ }
sub seq { my ($path, $addr, $n) = @_; map { from($path, $addr) } 1 .. $n }

# --- scale= --------------------------------------------------------------

{
    my $r = from('/scale', '198.51.100.7');
    is($r->{status}, 200, 'tor source: admitted');
    is($r->{headers}{'x-ratelimit-limit'}, 5,
       'tor source: X-RateLimit-Limit is N x 0.5');
    is($r->{headers}{'x-limit'}, '[5]', '... and $token_ratelimit_limit');
    is($r->{headers}{'x-rep'}, '[tor]', '$token_ratelimit_reputation');
    is($r->{headers}{'x-score'}, '[40]', '$token_ratelimit_reputation_score');
    is($r->{headers}{'x-dry'}, '[]', 'no dry-run list');

    my @r = seq('/scale', '198.51.100.7', 5);
    is(codes(@r), '200 200 200 200 429',
       'tor source: rejected after 5 requests');
    ok(($r[-1]{headers}{'retry-after'} // 0) >= 1, '... with Retry-After');
    like($r[-1]{body}, qr/"limit":5\b/, '... the JSON body says limit 5');
    is($r[-1]{headers}{'x-ratelimit-limit'}, 5, '... and the header too');

    my @u = seq('/scale', '45.33.32.10', 11);
    is($u[0]{headers}{'x-ratelimit-limit'}, 10, 'unlisted: the full N');
    is($u[0]{headers}{'x-rep'}, '[]', 'unlisted: no list');
    is($u[0]{headers}{'x-score'}, '[0]', 'unlisted: score 0');
    is(codes(@u), join(' ', ('200') x 10, '429'),
       'unlisted: rejected after 10 requests');

    $r = from('/scale', '198.51.100.200');
    is($r->{headers}{'x-ratelimit-limit'}, 2,
       'a source on tor and bad: the smallest factor (0.2)');
    is($r->{headers}{'x-rep'}, '[tor,bad]', '... both lists named');
    is($r->{headers}{'x-score'}, '[90]', '... the highest score');

    $r = from('/scale', '2001:db8:1::5');
    is($r->{headers}{'x-ratelimit-limit'}, 5, 'IPv6 source on tor: N x 0.5');
    $r = from('/scale', '2001:db8:bad:1::9');
    is($r->{headers}{'x-ratelimit-limit'}, 2, 'IPv6 source on bad: N x 0.2');
    $r = from('/scale', '2001:db8:2::1');
    is($r->{headers}{'x-ratelimit-limit'}, 10, 'IPv6 source unlisted: N');

    # the API's key view shows the key's N as its limits' scale= makes it
    my $k = $t->get('/trl-api/zones/s/keys?key_hex=c6336407')->{body};
    like($k, qr/"limit":5,"scaled_from":10,"count":5,"remaining":0,/,
         'API key view: the tor source\'s scaled N, its count, none left');
    like($k, qr/"blocked":true/, '... blocked');
    $k = $t->get('/trl-api/zones/s/keys?key_hex=2d21200a')->{body};
    like($k, qr/"limit":10,"count":10,/,
         'API key view: an unlisted key keeps N (no scaled_from)');
}

like($t->error_log,
     qr/limiting requests by zone "s", key "198\.51\.100\.7", limit 5r\/m \(scaled by reputation from 10r\/m\)/,
     'the rejection log line names the scaled limit');

# --- deny_score= ---------------------------------------------------------

{
    my $r = from('/deny', '203.0.113.9');
    is($r->{status}, 403, 'score 90 >= deny_score=80: 403');
    is($r->{body}, '{"error":"access_denied","message":"Access denied."}',
       '... token_ratelimit_deny\'s body');
    is($r->{headers}{'x-rep'}, '[bad]', '... the variable names the list');

    $r = from('/deny', '198.51.100.9');
    is($r->{status}, 200, 'score 40 < 80: admitted');
    is($r->{headers}{'x-ratelimit-limit'}, 10,
       'deny_score alone does not scale');

    my $z = $t->get('/trl-api/zones/d');
    like($z->{body}, qr/"denied":1\b/, 'the zone counts the denial');
    like($t->error_log,
         qr/access denied by reputation list "bad" \(score 90\)/,
         'the denial is logged with the list and score');
}

# --- penalty_level= ------------------------------------------------------

{
    my @r = seq('/pen', '203.0.113.20', 2);
    is(codes(@r), '200 429', 'bad source: over 1r/s');
    is($r[1]{headers}{'retry-after'}, 4,
       'penalty_level=bad:3: the first block is 1s x 2^2 = 4s');

    @r = seq('/pen', '45.33.32.11', 2);
    is(codes(@r), '200 429', 'unlisted source: over 1r/s');
    is($r[1]{headers}{'retry-after'}, 1, 'unlisted: the first block is 1s');
}

# --- a dry-run list --------------------------------------------------------

{
    my @r = seq('/dry', '192.0.2.9', 11);
    is(codes(@r), join(' ', ('200') x 10, '429'),
       'dry-run list: neither denied nor scaled (score 95, deny_score=50)');
    is($r[0]{headers}{'x-ratelimit-limit'}, 10, '... full N in the header');
    is($r[0]{headers}{'x-dry'}, '[watch]',
       '$token_ratelimit_reputation_dry_run names it');
    is($r[0]{headers}{'x-rep'}, '[]', '... not an enforced match');
    is($r[0]{headers}{'x-score'}, '[0]', '... and no score');
    like($t->error_log,
         qr/\[info\].*reputation list "watch" \(dry run\) would scale the limit of zone "dr" to 1/,
         'dry run: what it would do is logged at info');
}

# --- a list overlapping trusted ranges -------------------------------------

{
    my @r = seq('/wide', '10.1.2.3', 2);
    is($r[0]{headers}{'x-ratelimit-limit'}, 10,
       '10.1.2.3: 10.0.0.0/8 and 10.1.0.0/16 were dropped (trusted)');
    is($r[0]{headers}{'x-rep'}, '[]', '... on no list');

    my $r = from('/wide', '192.0.2.130');
    is($r->{headers}{'x-ratelimit-limit'}, 1,
       'the rest of the list applies: N x 0.1');
    like($t->error_log,
         qr/token_ratelimit_reputation_list "wide": dropped 2 entries overlapping trusted ranges/,
         'the drop is logged');
}

# --- variables without a limit, in a log_format ---------------------------

{
    my $r = from('/vars', '198.51.100.200');
    is($r->{status}, 200, 'a location without a limit');
    is($r->{headers}{'x-rep'}, '[tor,bad]', '... has the variables');
    is($r->{headers}{'x-score'}, '[90]', '... and the score');

    from('/vars', '192.0.2.10');
    sleep 0.2;
    my $log = $t->read_file('logs/rep.log');
    like($log, qr/^198\.51\.100\.200 \[tor,bad\] 90 \[\]$/m,
         'log_format: lists and score');
    like($log, qr/^192\.0\.2\.10 \[\] 0 \[watch\]$/m,
         'log_format: the dry-run list');
}

$t->stop;
$t->no_alerts;

# --- a strict sync zone decides on the scaled N ----------------------------

SKIP: {
    my $redis_ok = eval { require TRLRedis; 1 };
    skip 'no TRLRedis', 10 unless $redis_ok;

    my $t2 = TRL->new;
    my $redis = TRLRedis->new(port => $t2->port('REDIS'));
    my $raddr = $redis->address;

    $t2->write_file('tor.txt', "198.51.100.0/24\n");
    my $http = <<"EOF";
    token_ratelimit_reputation size=1m;
    token_ratelimit_reputation_list tor file=%%DIR%%/tor.txt;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    token_ratelimit_zone \$binary_remote_addr zone=st:1m rate=6r/m
                         sync=strict;
    token_ratelimit_zone \$binary_remote_addr zone=sp:1m rate=1r/s
                         sync=strict;
    token_ratelimit_zone \$binary_remote_addr zone=as:1m rate=8r/m
                         sync=async;
    token_ratelimit_redis $raddr interval=50ms timeout=2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { token_ratelimit zone=st scale=tor:0.5; empty_gif; }
        location /pen { token_ratelimit zone=sp penalty=2s:2:1h
                                        penalty_level=tor:3;
                        empty_gif; }
        location /async { token_ratelimit zone=as scale=tor:0.5; empty_gif; }
    }
EOF
    $t2->write_config($http);
    $t2->run;

    # a second node on the same Redis: the async zone's scaled N holds
    # over the cluster (N' = 4, a burst bound of N' + 1 = 5)
    my $t3 = TRL->new;
    $t3->write_file('tor.txt', "198.51.100.0/24\n");
    $t3->write_config($http);
    $t3->run;

    my @r = map { $t2->get('/', headers => {
                      'X-Forwarded-For' => '198.51.100.50' }) } 1 .. 4;
    is(codes(@r), '200 200 200 429', 'strict zone: tor source gets N = 3');
    is($r[0]{headers}{'x-ratelimit-limit'}, 3, '... shown in the header');
    ok(($r[3]{headers}{'retry-after'} // 0) >= 1, '... Retry-After');

    @r = map { $t2->get('/', headers => {
                   'X-Forwarded-For' => '192.0.2.50' }) } 1 .. 7;
    is(codes(@r), join(' ', ('200') x 6, '429'),
       'strict zone: unlisted source gets N = 6');

    # penalty_level in a strict zone: the first block is 2s x 2^2 = 8 s
    my $xff = { 'X-Forwarded-For' => '198.51.100.60' };
    @r = map { $t2->get('/pen', headers => $xff) } 1 .. 2;
    is(codes(@r), '200 429', 'strict zone, penalty_level: rejected');
    ok(($r[1]{headers}{'retry-after'} // 0) >= 7
       && $r[1]{headers}{'retry-after'} <= 60,
       'strict zone, penalty_level=tor:3: the first block is 8 s, '
       . 'not 2 s (Retry-After ' . ($r[1]{headers}{'retry-after'} // '-')
       . ')');

    # async: requests sent to each node in turn
    $xff = { 'X-Forwarded-For' => '198.51.100.70' };
    my @nodes = ($t2, $t3);
    @r = map { $nodes[$_ % 2]->get('/async', headers => $xff) } 0 .. 11;
    is($r[0]{headers}{'x-ratelimit-limit'}, 4,
       'async zone: tor source gets N = 4 on node 1');
    is($r[1]{headers}{'x-ratelimit-limit'}, 4, '... and on node 2');
    my $ok = grep { $_->{status} == 200 } @r;
    ok($ok >= 4 && $ok <= 5,
       "async zone over two nodes: $ok of 12 admitted (N' = 4, at most 5)");

    $t3->stop;
    $t3->no_alerts;
    $t2->stop;
    $t2->no_alerts;
}

# --- a limit looks up the lists it names, the variables all of them ------
# (matched counts the requests that looked a list up and found the source)

{
    my $t3 = TRL->new;
    $t3->write_file('a.txt', "198.51.100.0/24\n");
    $t3->write_file('b.txt', "198.51.100.0/25\n");
    $t3->write_config(<<'EOF');
    token_ratelimit_reputation size=1m;
    token_ratelimit_reputation_list a file=%%DIR%%/a.txt;
    token_ratelimit_reputation_list b file=%%DIR%%/b.txt;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    token_ratelimit_zone $binary_remote_addr zone=o:1m rate=10r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /a    { token_ratelimit zone=o scale=a:0.5; empty_gif; }
        location /vars { add_header X-Rep "[$token_ratelimit_reputation]";
                         token_ratelimit zone=o scale=a:0.5; empty_gif; }
        location /trl-api { token_ratelimit_api; }
    }
EOF
    $t3->run;

    my $matched = sub {
        my $body = $t3->get('/trl-api/reputation')->{body};
        my %m = $body =~ /"name":"(\w+)".*?"matched":(\d+)/g;
        return "a=" . ($m{a} // '?') . " b=" . ($m{b} // '?');
    };
    my $xff = { 'X-Forwarded-For' => '198.51.100.9' };

    my $r = $t3->get('/a', headers => $xff);
    is($r->{headers}{'x-ratelimit-limit'}, 5, 'only list a named: scaled');
    $t3->get('/a', headers => $xff);
    is($matched->(), 'a=2 b=0',
       'a limit naming list a looks up a alone (b not counted)');

    $r = $t3->get('/vars', headers => $xff);
    is($r->{headers}{'x-rep'}, '[a,b]',
       'the variable looks up every list');
    is($matched->(), 'a=3 b=1', '... each counted once for the request');

    $t3->stop;
    $t3->no_alerts;
}

done_testing;
