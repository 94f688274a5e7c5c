#!/usr/bin/perl
# token_ratelimit_api's live HTML dashboard: {loc}/dashboard (+ .js, .css).
#
# - HTTP: content types, the Content-Security-Policy, nosniff and no-cache
#   headers on all three assets, HEAD, POST 405, unknown assets 404; the
#   page has no inline script, style or event handler; no asset names an
#   absolute URL; the script never writes markup (innerHTML & co); the
#   relative URLs work under a location with and without a trailing slash
#   and for {loc}/dashboard/.
# - A real browser (Debian's chromium, headless, virtual time so that the
#   page polls several times in about a second): against a node with real
#   state (admitted and rejected traffic, penalties, a key that is an HTML
#   tag, a binary key, a runtime deny entry, a zone synced through a real
#   Redis, a zone in attack mode), the rendered DOM shows every zone with a
#   chart of at least two points, the attack mode banner naming the zone,
#   the offenders (the HTML key as text, no <img> made of it), the
#   penalties, Redis up, the sync zone, the list entry with its exact ID;
#   no Content-Security-Policy violation under the CSP the module sends
#   (checked against a probe page that does violate it); a screenshot is
#   kept in the test's directory (TRL_KEEP=1 keeps the directory).
# - An API that fails (503) shows the error banner; one that fails twice
#   and then answers recovers; counters that go down (another nginx, a
#   zone made anew) break the line and never draw a negative rate.
#
# CHROMIUM names the browser (default: chromium, chromium-browser or
# google-chrome from PATH); without one the browser part is skipped.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Spec;
use POSIX ();
use Time::HiRes qw(sleep time);
use TRL;
use TRLRedis;

my $CSP = "default-src 'none'; script-src 'self'; style-src 'self'; "
        . "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
        . "form-action 'none'; frame-ancestors 'none'";

my $t = TRL->new;
my $redis = TRLRedis->new(port => $t->port('REDIS'));
my $raddr = $redis->address;

$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=login:1m rate=3r/10s;
    token_ratelimit_zone \$http_x_key zone=shared:1m rate=5r/m sync;
    token_ratelimit_redis $raddr interval=50ms;
    token_ratelimit_attack zone=shared rejected=100% min=1000000/s;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /login { token_ratelimit zone=login penalty=1h; empty_gif; }
        location /shared { token_ratelimit zone=shared; empty_gif; }

        # the API, under a location without and one with a trailing slash
        location /trl-api { token_ratelimit_api; allow 127.0.0.1; deny all; }
        location /admin/ { token_ratelimit_api; }

        # a page that violates the dashboard's CSP
        location = /probe.html {
            add_header Content-Security-Policy "$CSP";
        }
    }
EOF

$t->write_file('html/probe.html', <<'EOF');
<!doctype html>
<html><head><title>probe</title><style>p { color: red }</style></head>
<body><p style="color: blue">probe</p>
<script>document.title = 'inline script ran';</script>
</body></html>
EOF

$t->run;

# A second node whose API misbehaves: its dashboard's JSON comes from the
# locations below, sequenced by zones that admit a few requests each
my $u = TRL->new;
$u->write_config(<<"EOF");
    token_ratelimit_zone \$host zone=gate1:64k rate=2r/h;
    token_ratelimit_zone \$host zone=gate2:64k rate=2r/h;
    token_ratelimit_zone \$host zone=gate3:64k rate=2r/h;
    token_ratelimit_headers off;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /trl-api { token_ratelimit_api; }

        # an API that always fails
        location /broken/ { token_ratelimit_api; }
        location = /broken/ { try_files /nonexistent =503; }

        # one that fails twice (gate1 admits 2), then answers
        location /flaky/ { token_ratelimit_api; }
        location = /flaky/ {
            token_ratelimit zone=gate1;
            error_page 429 = /trl-api/;
            try_files /nonexistent =503;
        }

        # step1.json twice, step2.json twice, then step3.json
        location /steps/ { token_ratelimit_api; }
        location = /steps/ {
            token_ratelimit zone=gate2;
            error_page 429 = /steps-next;
            try_files /step1.json =404;
        }
        location = /steps-next {
            internal;
            proxy_pass http://127.0.0.1:%%PORT%%/steps-2;
        }
        location = /steps-2 {
            token_ratelimit zone=gate3;
            error_page 429 = /step3.json;
            try_files /step2.json =404;
        }
        location = /step3.json { }
    }
EOF

# zone "web": +10 admitted, +20 rejected, +5 denied from step 1 to 2 (one
# poll, 2 s); step 3 is a new nginx: lower counters, "gone" gone, "fresh"
# (list IDs beyond 2^53 must keep their digits)
my $STEP = '{"module":"token_ratelimit","nginx":"1.22.1","time":1700000000,'
         . '"redis":null,"lists":[{"id":12345678901234567891,'
         . '"action":"allow","cidr":"203.0.113.0/24","created":1699999000,'
         . '"expires":null}],"zones":{%s}}';
my $ZONE = '"%s":{"rate":"1r/s","sync":"off","requests":{"passed":%d,'
         . '"warned":0,"rejected":%d,"rejected_dry_run":0,"bypassed":0,'
         . '"denied":%d,"penalized":0}}';
$u->write_file('html/step1.json', sprintf $STEP, join ',',
               sprintf($ZONE, 'web', 100, 50, 0),
               sprintf($ZONE, 'gone', 5, 0, 0));
$u->write_file('html/step2.json', sprintf $STEP, join ',',
               sprintf($ZONE, 'web', 110, 70, 5),
               sprintf($ZONE, 'gone', 5, 0, 0));
$u->write_file('html/step3.json', sprintf $STEP, join ',',
               sprintf($ZONE, 'web', 3, 1, 0),
               sprintf($ZONE, 'fresh', 0, 0, 0));

$u->run;

# --- state to show ---------------------------------------------------------

my $XSS = '<img src=x onerror=alert(1)>';
my $BIN = "\x01\xfe";

for my $key ('alice', 'mallory', $XSS, $BIN) {
    # 3 admitted, the 4th rejected (a penalty of 1h starts), the 5th
    # rejected while serving it
    my @st = map { $t->get('/login', headers => { 'X-Key' => $key })
                     ->{status} } 1 .. 5;
    is("@st", '200 200 200 429 429', "traffic for login key " . esc($key));
}

my @st = map { $t->get('/shared', headers => { 'X-Key' => 'bob' })->{status} }
         1 .. 7;
is("@st", '200 200 200 200 200 429 429', 'traffic for the sync zone');

my $r = $t->post('/trl-api/lists/deny?key=evil&zone=login&ttl=1h', '');
is($r->{status}, 201, 'runtime deny entry added');
my ($list_id) = $r->{body} =~ /"id":(\d+)/;
ok($list_id, "list entry id $list_id");

# attack mode (issue 14): the banner names the zone
$r = $t->post('/trl-api/attack/shared?ttl=1h', '');
like($r->{body}, qr/"on":true/, 'zone "shared" put in attack mode');

# the sync zone has talked to Redis
my $json = '';
for (1 .. 100) {
    $json = $t->get('/trl-api/')->{body};
    last if $json =~ /"redis":\{[^}]*"up":true/
            && $json =~ /"last_success":\d+/;
    sleep 0.05;
}
like($json, qr/"redis":\{[^}]*"up":true/, 'Redis is up');

# --- HTTP ------------------------------------------------------------------

my %type = ('' => qr{^text/html; charset=utf-8$},
            '.js' => qr{^application/javascript; charset=utf-8$},
            '.css' => qr{^text/css; charset=utf-8$});
my %asset;

for my $ext ('', '.js', '.css') {
    my $path = "/trl-api/dashboard$ext";
    my $r = $t->get($path);
    is($r->{status}, 200, "GET $path");
    like($r->{headers}{'content-type'}, $type{$ext}, "$path content type");
    is($r->{headers}{'content-security-policy'}, $CSP, "$path CSP");
    is($r->{headers}{'x-content-type-options'}, 'nosniff', "$path nosniff");
    is($r->{headers}{'cache-control'}, 'no-cache', "$path no-cache");
    is($r->{headers}{'content-length'}, length $r->{body},
       "$path content length");
    $asset{$ext} = $r->{body};

    my $h = $t->request("HEAD $path HTTP/1.0\r\nHost: localhost\r\n\r\n");
    is($h->{status}, 200, "HEAD $path");
    is($h->{body}, '', "HEAD $path has no body");
    is($h->{headers}{'content-length'}, length $r->{body},
       "HEAD $path content length");
    is($h->{headers}{'content-security-policy'}, $CSP, "HEAD $path CSP");

    $h = $t->post($path, '');
    is($h->{status}, 405, "POST $path: 405");
    is($h->{headers}{'allow'}, 'GET, HEAD', "POST $path: Allow");
}

for my $path ('/trl-api/dashboard.foo', '/trl-api/dashboard.',
              '/trl-api/dashboardx', '/trl-api/dashboard.js.map')
{
    my $r = $t->get($path);
    is($r->{status}, 404, "$path: 404");
    like($r->{body}, qr/"error":"not_found"/, "$path: JSON error");
}

my $html = $asset{''};
my $total = 0;
$total += length $_ for values %asset;
cmp_ok($total, '<', 25 * 1024, "assets are small ($total bytes)");

# no inline script, style or event handler; the two assets by relative URL
my @scripts = $html =~ /(<script\b[^>]*>.*?<\/script\s*>)/gis;
is(scalar @scripts, 1, 'one script element');
like($scripts[0], qr{^<script src="dashboard\.js"[^>]*></script>$},
     'the script is dashboard.js, with no inline code');
unlike($html, qr/<style\b/i, 'no <style> element');
unlike($html, qr/\sstyle\s*=/i, 'no style attribute');
unlike($html, qr/\son[a-z]+\s*=/i, 'no event handler attribute');
unlike($html, qr/javascript:/i, 'no javascript: URL');
like($html, qr{<link rel="stylesheet" href="dashboard\.css">},
     'the stylesheet is dashboard.css');
my @urls = $html =~ /\b(?:src|href|action)\s*=\s*"([^"]*)"/gi;
is(join(' ', grep { m{^/|:} } @urls), '', 'every URL of the page is relative');

for my $ext (sort keys %asset) {
    unlike($asset{$ext}, qr{https?://}i,
           "dashboard$ext names no http(s) URL");
    unlike($asset{$ext}, qr{url\(|\@import}i,
           "dashboard$ext fetches nothing") if $ext eq '.css';
}

# markup is never written from data
unlike($asset{'.js'},
       qr/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\b|
          new\s+Function|srcdoc|createContextualFragment/x,
       'the script never turns text into markup');
like($asset{'.js'}, qr/textContent/, 'it sets text with textContent');

# relative URLs under other locations
$r = $t->get('/admin/dashboard');
is($r->{status}, 200, 'dashboard under a location with a trailing slash');
like($r->{body}, qr{href="dashboard\.css".*src="dashboard\.js"}s,
     '... its assets beside it');
is($t->get('/admin/dashboard.js')->{body}, $asset{'.js'}, '... its script');

$r = $t->get('/trl-api/dashboard/');
is($r->{status}, 200, '{loc}/dashboard/ (a trailing slash)');
like($r->{body}, qr{href="\.\./dashboard\.css".*src="\.\./dashboard\.js"}s,
     '... its assets one level up');

# --- the browser -----------------------------------------------------------

my $chromium = TRL::chromium();

SKIP: {
    skip 'chromium is not installed (scripts/install-deps.sh installs it;'
         . ' CHROMIUM=/path names another)', 1 unless $chromium;

    my $base = 'http://127.0.0.1:' . $t->port;
    my $shot = File::Spec->catfile($t->dir, 'dashboard.png');

    # 1. the dashboard of this node; about 8 polls of 1 s virtual time,
    # with some traffic meanwhile (for the screenshot: nothing below
    # depends on how much)
    my $traffic = fork // die "fork: $!";
    if ($traffic == 0) {
        for (1 .. 2000) {
            $t->get('/shared', headers => { 'X-Key' => 'carol' });
            $t->get('/login', headers => { 'X-Key' => "user$_" });
            sleep 0.01;
        }
        POSIX::_exit(0);
    }
    my ($dom, $log) = $t->browse("$base/trl-api/dashboard?interval=1",
                             budget => 8000, screenshot => $shot,
                             name => 'main');
    kill 'KILL', $traffic;
    waitpid $traffic, 0;

    my %b = body_attrs($dom);
    is($b{'data-state'}, 'ok', 'browser: the page is live');
    cmp_ok($b{'data-polls'} // 0, '>=', 4, "browser: polled $b{'data-polls'}"
                                            . ' times');
    is($b{'data-errors'}, '0', 'browser: no failed poll');
    is($b{'data-csp-violations'}, undef,
       'browser: no securitypolicyviolation event');
    unlike($log, qr/Content Security Policy/i,
           'browser: no CSP violation in the console');
    unlike($log, qr/Uncaught|SyntaxError|TypeError/,
           'browser: no script error in the console');
    like(table($dom, 'banner', 'div'), qr/^$/, 'browser: no error banner');
    like(table($dom, 'attack', 'div'), qr/^Attack mode: shared \(api, since /,
         'browser: the attack mode banner names the zone');
    unlike($dom, qr/<div id="attack"[^>]*hidden/,
           'browser: the attack mode banner is shown');

    # charts: one per zone, at least 2 points each, within the plot
    for my $zone ('login', 'shared') {
        my $svg = chart($dom, $zone);
        ok($svg, "browser: chart of $zone");
        my ($pts) = $svg =~ /data-points="(\d+)"/;
        cmp_ok($pts // 0, '>=', 2, "browser: $zone chart has $pts points");
        my @lines = $svg =~ /<polyline ([^>]*)>/g;
        my %series = map { /data-series="([^"]*)"/ ? ($1 => 1) : () } @lines;
        ok($series{admitted} && $series{rejected},
           "browser: $zone chart draws admitted and rejected");
        my ($adm) = grep { /data-series="admitted"/ } @lines;
        my @xy = ($adm // '') =~ /(-?[\d.]+),(-?[\d.]+)/g;
        cmp_ok(@xy / 2, '>=', 2, "browser: $zone admitted line has 2+ points");
        ok(!grep({ $_ < 0 || $_ > 600 } @xy), "browser: $zone within the plot");
    }

    my $zones = table($dom, 'zones');
    like($zones, qr/>$_</, "browser: zone $_ listed")
        for 'login', 'shared';
    like($zones, qr/<meter\b/, 'browser: keys/capacity bar');

    my $off = table($dom, 'offenders');
    like($off, qr{<span class="keytext">$_</span>},
         "browser: offender $_ shown") for 'alice', 'mallory';
    like($off,
         qr{<span class="keytext">&lt;img src=x onerror=alert\(1\)&gt;</span>},
         'browser: the HTML key is shown as text');
    like($off,
         qr{<span class="keytext"[^>]*><span class="tag">hex</span>01fe</span>},
         'browser: the binary key is shown as hex');
    unlike($dom, qr/<img\b/i, 'browser: no <img> element made of a key');

    my $pen = table($dom, 'penalties');
    my $row = '<td>login</td><td><span class="keytext">mallory</span></td>'
            . '<td>(59m|1h)[^<]*</td><td>[^<]+</td><td class="num">1</td>';
    like($pen, qr/$row/,
         'browser: penalty row of mallory');
    like($pen, qr{keytext">&lt;img src=x}, 'browser: penalty of the HTML key');

    my $red = table($dom, 'redis');
    like($red, qr{<td>\Q$raddr\E</td><td><span class="pill ok">up</span>},
         'browser: Redis up');
    $row = '<td>shared</td><td>async</td><td>\d+s ago</td><td>\d+ ms</td>'
         . '<td>[1-9]\d* published, [1-9]\d* reads</td>';
    like(table($dom, 'sync'), qr/$row/,
         'browser: the sync zone, its last success');

    $row = "<td>$list_id</td><td><span class=\"pill deny\">deny</span></td>"
         . '<td><span class="keytext">evil</span></td><td>login</td>';
    like(table($dom, 'lists'), qr/\Q$row\E/,
         'browser: the deny entry, its exact ID');
    like(table($dom, 'lists'), qr{<td>api</td></tr>},
         'browser: the entry\'s origin');

    ok(-f $shot, "browser: screenshot $shot");
    cmp_ok(-s $shot // 0, '>', 20000, 'browser: the screenshot is not blank');
    is($t->read_file($shot) =~ /^\x89PNG/ ? 1 : 0, 1, 'browser: a PNG');
    diag("dashboard screenshot: $shot" . ($ENV{TRL_KEEP} ? ''
         : ' (removed at exit; TRL_KEEP=1 keeps it)'));

    # the console check above is worth something: a page that breaks the
    # same CSP is reported there
    my ($pdom, $plog) = $t->browse("$base/probe.html", budget => 1000,
                               name => 'probe');
    like($pdom, qr{<title>probe</title>},
         'probe: the inline script was blocked');
    like($plog, qr/Content Security Policy/,
         'probe: its violations are logged');

    # 2. an API that fails; the page under {loc}/dashboard/
    my $ubase = 'http://127.0.0.1:' . $u->port;
    ($dom) = $t->browse("$ubase/broken/dashboard/?interval=1", budget => 4000,
                    name => 'broken');
    %b = body_attrs($dom);
    is($b{'data-state'}, 'error', 'broken: the page says so');
    cmp_ok($b{'data-errors'} // 0, '>=', 2, 'broken: it kept trying');
    is($b{'data-polls'}, '0', 'broken: no poll succeeded');
    my $banner = '^Cannot update from the API at http://127\.0\.0\.1:\d+'
               . '/broken/: HTTP 503\. Retrying every 1s\.$';
    like(table($dom, 'banner', 'div'), qr/$banner/, 'broken: the error banner');
    like($dom, qr{<span id="status" class="pill bad">offline</span>},
         'broken: offline');
    my $access = $u->read_file('logs/access.log');
    like($access, qr{"GET /broken/dashboard\.css HTTP/1\.1" 200},
         'broken: the stylesheet loaded from one level up');

    # 3. fails twice, then answers; a location with a trailing slash
    ($dom) = $t->browse("$ubase/flaky/dashboard?interval=1", budget => 8000,
                    name => 'flaky');
    %b = body_attrs($dom);
    is($b{'data-errors'}, '2', 'flaky: two failed polls');
    is($b{'data-recovered'}, '1', 'flaky: recovered once');
    is($b{'data-state'}, 'ok', 'flaky: live again');
    cmp_ok($b{'data-polls'} // 0, '>=', 3, 'flaky: polls after that');
    is(table($dom, 'banner', 'div'), '', 'flaky: the banner is gone');
    like($dom, qr{<div id="banner" class="banner" role="alert" hidden="">},
         'flaky: hidden');
    like(table($dom, 'zones'), qr{<td><span>gate1<}, 'flaky: data shown');

    # 4. known counters: rates from deltas, and counters that go down;
    # polls every 2 s
    ($dom) = $t->browse("$ubase/steps/dashboard?interval=2", budget => 16000,
                    name => 'steps');
    %b = body_attrs($dom);
    is($b{'data-errors'}, '0', 'steps: no failed poll');
    cmp_ok($b{'data-polls'} // 0, '>=', 6, 'steps: all steps seen');
    my $svg = chart($dom, 'web') // '';
    my ($resets) = $svg =~ /data-resets="(\d+)"/;
    is($resets, 1, 'steps: the counters went down once');
    my ($top) = $dom =~ m{data-zone="web".*?<span class="ymax">([\d.]+)/s<}s;
    is($top, '10.0', 'steps: the scale fits the highest rate');
    my %want = (admitted => 5, rejected => 10, denied => 2.5);
    for my $series (sort keys %want) {
        my @lines = grep { /data-series="$series"/ }
                    $svg =~ /<polyline ([^>]*)>/g;
        is(scalar @lines, 2, "steps: $series line broken in two");
        my @y = map { /,(-?[\d.]+)/g } @lines;
        ok(@y && !grep({ $_ > 150 || $_ < 0 } @y),
           "steps: $series never below zero (y: @y)");
        my ($min) = sort { $a <=> $b } @y;
        my $peak = (150 - ($min // 150)) / 146 * ($top // 0);
        ok(abs($peak - $want{$series}) <= $want{$series} * 0.2,
           "steps: $series peaks at $want{$series}/s ("
           . sprintf('%.2f', $peak) . ')');
    }
    ok(!chart($dom, 'gone'), 'steps: a zone gone is no longer drawn');
    ok(chart($dom, 'fresh'), 'steps: a new zone is');
    unlike(table($dom, 'zones'), qr/>-/, 'steps: no negative number');
    $row = '<td>12345678901234567891</td>'
         . '<td><span class="pill allow">allow</span></td>'
         . '<td>203\.0\.113\.0/24</td><td></td><td>[^<]+</td><td>never</td>';
    like(table($dom, 'lists'), qr/$row/,
         'steps: a list ID beyond 2^53, exact');
}

$t->stop;
$t->no_alerts;
$u->stop;
$u->no_alerts;
done_testing;

# --- helpers ---------------------------------------------------------------

sub esc {
    my ($s) = @_;
    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return $s;
}

sub body_attrs {
    my ($dom) = @_;
    my ($tag) = $dom =~ /<body\b([^>]*)>/;
    return ($tag // '') =~ /([\w-]+)="([^"]*)"/g;
}

# the inside of <TAG id="ID" ...>...</TAG>
sub table {
    my ($dom, $id, $tag) = @_;
    $tag //= 'table';
    my ($in) = $dom =~ m{<$tag id="$id"[^>]*>(.*?)</$tag>}s;
    return $in // '';
}

sub chart {
    my ($dom, $zone) = @_;
    my ($svg) = $dom =~ m{(<svg [^>]*data-zone="$zone".*?</svg>)}s;
    return $svg;
}
