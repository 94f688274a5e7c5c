#!/usr/bin/perl
# token_ratelimit_api refuses cross-site requests (SPEC 7): any method but
# GET, HEAD and OPTIONS with a Sec-Fetch-Site other than same-origin or
# none, or with an Origin that is not the request's own scheme, host and
# port, gets 403 with a JSON error and changes nothing.
#
# - Raw requests for every header case (Sec-Fetch-Site cross-site,
#   same-site, same-origin, none, another value; Origin matching, another
#   port, host or scheme, "null", with a path, default ports on either
#   side, IPv6, host case, no Host; both headers; neither) on every route
#   that changes state (POST lists/allow, POST lists/deny, DELETE lists/ID,
#   DELETE zones/NAME/keys); after each refusal the lists and the key are
#   as before.  A refusal comes before routing: an unknown path, zone or a
#   wrong method is refused the same way.  GET, HEAD and OPTIONS with
#   cross-site headers are served as before.
# - The scheme is the connection's: an https server (reached through
#   nginx's own proxy) takes an https Origin, not an http one.
# - Logging: the first refusal at warn, the next ones at info.
# - A real browser (headless chromium): a page of another origin
#   (127.0.0.2) that auto-submits a POST form to lists/allow?cidr=0.0.0.0/0
#   and one that sends no-cors fetches to lists/allow and lists/deny, a
#   page of the same site on another port: the API says 403 to each
#   (its access log shows the requests and the headers chromium sent) and
#   no entry is added.  A page of the API's own origin adds and removes an
#   entry with fetch (POST, DELETE); the dashboard stays live.
#   Without chromium that part is skipped.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use TRL;

my $t = TRL->new;
my $dir = $t->dir;
mkdir "$dir/evil";

# a certificate for the https server
my $have_tls = system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
                      . "-subj /CN=localhost -keyout $dir/key.pem "
                      . "-out $dir/cert.pem >/dev/null 2>&1") == 0;

my $tls = $have_tls ? <<'EOF' : '';
    server {
        listen 127.0.0.1:%%PORT_TLS%% ssl;
        ssl_certificate %%DIR%%/cert.pem;
        ssl_certificate_key %%DIR%%/key.pem;
        location /trl-api { token_ratelimit_api; access_log off; }
    }
EOF

$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=login:1m rate=2r/m;
    log_format csrf '\$request_method \$uri \$status '
                    'sfs="\$http_sec_fetch_site" origin="\$http_origin"';

    server {
        listen 127.0.0.1:%%PORT%%;

        location /login { token_ratelimit zone=login; empty_gif; }
        location /trl-api {
            token_ratelimit_api;
            access_log %%DIR%%/logs/api.log csrf;
        }
        location = /same.html { }

        # the https API, through nginx's own proxy: Host, Origin and
        # Sec-Fetch-Site as the client sent them
        location /tls/ {
            proxy_pass https://127.0.0.1:%%PORT_TLS%%/trl-api/;
            proxy_set_header Host \$http_host;
        }
    }

    # other origins: another site, and the same site on another port
    server {
        listen 127.0.0.2:%%PORT_EVIL%%;
        root %%DIR%%/evil;
    }
    server {
        listen 127.0.0.1:%%PORT_SIB%%;
        root %%DIR%%/evil;
    }
$tls
EOF
$t->run;

my $port = $t->port;
my $api = "http://127.0.0.1:$port/trl-api";

# --- state -------------------------------------------------------------------

# key "victim" has used its quota; one runtime entry to remove
$t->get('/login', headers => { 'X-Key' => 'victim' }) for 1 .. 3;
my $r = $t->post('/trl-api/lists/deny?key=seed&zone=login&ttl=1h', '');
is($r->{status}, 201, 'seed entry added');
my ($seed) = $r->{body} =~ /"id":(\d+)/;

sub lists {
    my $r = $t->get('/trl-api/lists');
    return join ' ', map { "$_->{id}:$_->{action}:"
                           . ($_->{cidr} // $_->{address} // $_->{key}) }
                     @{decode_json($r->{body})};
}

sub victim {
    my $r = $t->get('/trl-api/zones/login/keys?key=victim');
    my $k = decode_json($r->{body});
    return "count=$k->{count} known=$k->{known}";
}

my $LISTS = lists();
my $VICTIM = victim();
is($LISTS, "$seed:deny:seed", 'lists: the seed entry');
is($VICTIM, 'count=2 known=1', 'the victim key has used its quota');

# --- raw requests --------------------------------------------------------------

# One request: method, path below /trl-api, the Host header (undef: none;
# HTTP/1.0 allows that) and more headers.
sub call {
    my ($method, $path, $host, @h) = @_;
    my $req = "$method /trl-api$path HTTP/1.0\r\n";
    $req .= "Host: $host\r\n" if defined $host;
    while (my ($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }
    return $t->request("$req\r\n");
}

my $refusals = 0;

sub refused {
    my ($r, $name) = @_;
    $refusals++;
    is($r->{status}, 403, "$name: 403");
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$name: JSON");
    my $e = eval { decode_json($r->{body}) } // {};
    is($e->{error}, 'cross_site_request', "$name: the error");
    like($e->{message} // '', qr/own origin/, "$name: the message");
    is(lists(), $LISTS, "$name: lists unchanged");
    is(victim(), $VICTIM, "$name: key unchanged");
}

# the request is served: an address added, then removed (without headers)
my $n = 0;
sub accepted {
    my ($host, $name, @h) = @_;
    $n++;
    my $r = call('POST', "/lists/allow?address=192.0.2.$n&ttl=1h", $host, @h);
    is($r->{status}, 201, "$name: 201");
    my ($id) = $r->{body} =~ /"id":(\d+)/;
    like(lists(), qr/\b$id:allow:192\.0\.2\.$n\b/, "$name: entry added")
        if $id;
    is(call('DELETE', "/lists/$id", 'x')->{status}, 200, "$name: removed")
        if $id;
}

my $H = 'api.example:8080';
my $ALLOW = '/lists/allow?cidr=0.0.0.0/0&ttl=30s';

# Sec-Fetch-Site
refused(call('POST', $ALLOW, $H, 'Sec-Fetch-Site' => 'cross-site'),
        'Sec-Fetch-Site: cross-site');
refused(call('POST', $ALLOW, $H, 'Sec-Fetch-Site' => 'same-site'),
        'Sec-Fetch-Site: same-site');
refused(call('POST', $ALLOW, $H, 'Sec-Fetch-Site' => 'Same-Origin'),
        'Sec-Fetch-Site: Same-Origin (not a value browsers send)');
refused(call('POST', $ALLOW, $H, 'Sec-Fetch-Site' => ''),
        'Sec-Fetch-Site: empty');
accepted($H, 'Sec-Fetch-Site: same-origin', 'Sec-Fetch-Site' => 'same-origin');
accepted($H, 'Sec-Fetch-Site: none', 'Sec-Fetch-Site' => 'none');

# Origin
accepted($H, 'Origin: matching', Origin => 'http://api.example:8080');
accepted($H, 'Origin: host in other case',
         Origin => 'HTTP://API.Example:8080');
accepted('API.EXAMPLE:8080', 'Host in other case',
         Origin => 'http://api.example:8080');
accepted('api.example', 'Origin with the default port, Host without',
         Origin => 'http://api.example:80');
accepted('api.example:80', 'Host with the default port, Origin without',
         Origin => 'http://api.example');
accepted('api.example', 'neither with a port', Origin => 'http://api.example');
accepted('[::1]:8080', 'IPv6', Origin => 'http://[::1]:8080');
accepted("127.0.0.1:$port", 'the real origin',
         Origin => "http://127.0.0.1:$port");
refused(call('POST', $ALLOW, $H, Origin => 'http://api.example:8081'),
        'Origin: other port');
refused(call('POST', $ALLOW, $H, Origin => 'http://api.example'),
        'Origin: default port, Host another one');
refused(call('POST', $ALLOW, 'api.example', Origin => 'http://api.example:8080'),
        'Origin: a port, Host the default one');
refused(call('POST', $ALLOW, $H, Origin => 'http://evil.example:8080'),
        'Origin: other host');
refused(call('POST', $ALLOW, $H, Origin => 'http://api.example.evil:8080'),
        'Origin: a host that begins like it');
refused(call('POST', $ALLOW, $H, Origin => 'https://api.example:8080'),
        'Origin: other scheme (https on a plain connection)');
refused(call('POST', $ALLOW, $H, Origin => 'null'), 'Origin: null');
refused(call('POST', $ALLOW, $H, Origin => 'http://api.example:8080/'),
        'Origin with a path');
refused(call('POST', $ALLOW, $H, Origin => 'http://u@api.example:8080'),
        'Origin with a user');
refused(call('POST', $ALLOW, $H, Origin => 'http://api.example:x8080'),
        'Origin with a bad port');
refused(call('POST', $ALLOW, $H, Origin => 'http://[::1]:8080'),
        'Origin: IPv6, Host a name');
refused(call('POST', $ALLOW, undef, Origin => 'http://api.example:8080'),
        'Origin and no Host to compare it with');

# a header past the first 20 (nginx keeps them in a list of parts)
refused(call('POST', $ALLOW, $H, (map { ("X-Filler-$_" => $_) } 1 .. 25),
             Origin => 'http://evil.example'),
        'Origin after 25 other headers');
accepted($H, 'a matching Origin after 25 other headers',
         (map { ("X-Filler-$_" => $_) } 1 .. 25),
         Origin => 'http://api.example:8080');

# both headers: each is checked
accepted($H, 'both same-origin', 'Sec-Fetch-Site' => 'same-origin',
         Origin => 'http://api.example:8080');
refused(call('POST', $ALLOW, $H, 'Sec-Fetch-Site' => 'cross-site',
             Origin => 'http://api.example:8080'),
        'Sec-Fetch-Site cross-site, Origin matching');
refused(call('POST', $ALLOW, $H, 'Sec-Fetch-Site' => 'same-origin',
             Origin => 'http://evil.example'),
        'Sec-Fetch-Site same-origin, Origin another one');

# neither (curl, scripts)
accepted($H, 'no header');
accepted(undef, 'no header, no Host');

# every route that changes state, and what routing would refuse
my @routes = (['POST', $ALLOW], ['POST', '/lists/deny?cidr=0.0.0.0/0&ttl=30s'],
              ['DELETE', "/lists/$seed"],
              ['DELETE', '/zones/login/keys?key=victim'],
              ['PUT', $ALLOW], ['PATCH', "/lists/$seed"],
              ['POST', '/zones/login/keys?key=victim'],
              ['DELETE', '/zones/nozone/keys?key=victim'],
              ['DELETE', '/lists/999999'], ['POST', '/nonexistent'],
              ['POST', '/metrics'], ['POST', '/dashboard'], ['POST', '/']);
for my $route (@routes) {
    my ($m, $path) = @$route;
    refused(call($m, $path, $H, 'Sec-Fetch-Site' => 'cross-site'),
            "$m $path, cross-site");
    refused(call($m, $path, $H, Origin => 'http://evil.example'),
            "$m $path, Origin another one");
}

# what is not a state change is served as before
for my $path ('/', '/lists', '/zones', '/zones/login/keys?key=victim',
              '/metrics', '/dashboard')
{
    my $r = call('GET', $path, $H, 'Sec-Fetch-Site' => 'cross-site',
                 Origin => 'http://evil.example');
    is($r->{status}, 200, "GET $path with cross-site headers: 200");
    $r = call('HEAD', $path, $H, 'Sec-Fetch-Site' => 'cross-site',
              Origin => 'http://evil.example');
    is($r->{status}, 200, "HEAD $path with cross-site headers: 200");
}
$r = call('OPTIONS', '/lists/allow', $H, 'Sec-Fetch-Site' => 'cross-site',
          Origin => 'http://evil.example');
is($r->{status}, 405, 'OPTIONS with cross-site headers: 405 as before');
is($r->{headers}{allow}, 'POST, DELETE', '... with its Allow');
is(lists(), $LISTS, 'OPTIONS: lists unchanged');
is(call('GET', '/nonexistent', $H, 'Sec-Fetch-Site' => 'cross-site')
   ->{status}, 404, 'GET of an unknown path with cross-site headers: 404');

# and the same-origin requests of every route work
$r = call('POST', '/lists/deny?key=same&zone=login&ttl=1h', $H,
          'Sec-Fetch-Site' => 'same-origin',
          Origin => 'http://api.example:8080');
is($r->{status}, 201, 'same-origin POST lists/deny: 201');
my ($sid) = $r->{body} =~ /"id":(\d+)/;
$r = call('DELETE', "/lists/$sid", $H, 'Sec-Fetch-Site' => 'same-origin',
          Origin => 'http://api.example:8080');
is($r->{status}, 200, 'same-origin DELETE lists/ID: 200');
is(lists(), $LISTS, '... the entry is gone again');

# --- the connection's scheme ---------------------------------------------------

SKIP: {
    skip 'openssl could not make a certificate', 6 unless $have_tls;
    my $tp = $t->port('TLS');

    my $tls = sub {
        my ($host, $origin) = @_;
        return $t->request("POST /tls/lists/allow?address=198.51.100.1"
                           . "&ttl=1h HTTP/1.0\r\nHost: $host\r\n"
                           . "Origin: $origin\r\n\r\n");
    };

    $r = $tls->("127.0.0.1:$tp", "http://127.0.0.1:$tp");
    is($r->{status}, 403, 'https server, http Origin: 403');
    is(lists(), $LISTS, '... lists unchanged');
    $r = $tls->('api.example', 'https://api.example:443');
    is($r->{status}, 201, 'https server, Origin with port 443, Host none: 201');
    my ($id) = $r->{body} =~ /"id":(\d+)/;
    is(call('DELETE', "/lists/$id", 'x')->{status}, 200, '... removed');
    $r = $tls->("127.0.0.1:$tp", "https://127.0.0.1:$tp");
    is($r->{status}, 201, 'https server, its own https Origin: 201');
    ($id) = $r->{body} =~ /"id":(\d+)/;
    is(call('DELETE', "/lists/$id", 'x')->{status}, 200, '... removed');
    $refusals++;
}

# --- the log -------------------------------------------------------------------

my $log = $t->error_log;
my @warn = $log =~ /\[warn\].*token_ratelimit_api refused a cross-site (.*)/g;
my @info = $log =~ /\[info\].*token_ratelimit_api refused a cross-site (.*)/g;
is(scalar @warn, 1, 'one refusal logged at warn');
like($warn[0] // '', qr/^POST request \(Sec-Fetch-Site "cross-site"\); 0 more/,
     '... the first, with the header that showed it');
is(scalar @info, $refusals - 1, 'the others at info');
like($log, qr/\[info\].*refused a cross-site POST request \(Origin "null"\)/,
     'an Origin refusal logged with the Origin');

# --- a real browser ---------------------------------------------------------------

SKIP: {
    skip 'no chromium (/usr/bin/chromium)', 1 unless TRL::chromium();

    my $evil = 'http://127.0.0.2:' . $t->port('EVIL');
    my $sib = 'http://127.0.0.1:' . $t->port('SIB');

    $t->write_file('evil/form.html', <<"EOF");
<!doctype html>
<html><body>
<form method="POST" action="$api/lists/allow?cidr=0.0.0.0/0&amp;ttl=30s">
</form>
<script>document.forms[0].submit();</script>
</body></html>
EOF

    for my $page ('fetch', 'sibling') {
        my @calls = $page eq 'fetch'
            ? ("$api/lists/allow?cidr=0.0.0.0/0&ttl=30s",
               "$api/lists/deny?cidr=0.0.0.0/0&ttl=30s")
            : ("$api/lists/allow?address=127.0.0.3&ttl=30s");
        my $js = join ",\n  ", map { "fetch('$_', {method: 'POST', "
                                     . "mode: 'no-cors'})" } @calls;
        $t->write_file("evil/$page.html", <<"EOF");
<!doctype html>
<html><head><title>waiting</title></head><body>
<script>
Promise.allSettled([
  $js
]).then(function (r) {
  document.title = 'done ' + r.map(function (x) { return x.status; }).join();
});
</script>
</body></html>
EOF
    }

    # a page of the API's own origin: adds an entry and removes it
    $t->write_file('html/same.html', <<'EOF');
<!doctype html>
<html><head><title>waiting</title></head><body>
<script>
var log = [];
fetch('/trl-api/lists/deny?key=browser&zone=login&ttl=1h', {method: 'POST'})
  .then(function (r) { log.push(r.status); return r.json(); })
  .then(function (e) {
    log.push(e.id);
    return fetch('/trl-api/lists/' + e.id, {method: 'DELETE'});
  })
  .then(function (r) { log.push(r.status); })
  .catch(function (e) { log.push('error ' + e); })
  .then(function () { document.title = 'same ' + log.join(' '); });
</script>
</body></html>
EOF

    my $before = length $t->read_file('logs/api.log');
    my $pre = lists();          # (what the requests above left, before a fix)

    my ($dom) = $t->browse("$evil/form.html", name => 'form');
    like($dom, qr/"error":"cross_site_request"/,
         'browser form: the API answered the refusal');
    is(lists(), $pre, 'browser form: no entry added');

    ($dom) = $t->browse("$evil/fetch.html", name => 'fetch');
    like($dom, qr{<title>done fulfilled,fulfilled</title>},
         'browser fetch: both requests were sent');
    is(lists(), $pre, 'browser fetch: no entry added');

    ($dom) = $t->browse("$sib/sibling.html", name => 'sibling');
    like($dom, qr{<title>done fulfilled</title>},
         'browser, same site on another port: the request was sent');
    is(lists(), $pre, 'browser, same site on another port: nothing added');

    # what chromium sent, and what it got
    my $alog = substr $t->read_file('logs/api.log'), $before;
    my $e = quotemeta $evil;
    my $s = quotemeta $sib;
    my @want = (
        qr{^POST /trl-api/lists/allow 403 sfs="cross-site" origin="$e"$}m,
        qr{^POST /trl-api/lists/deny 403 sfs="cross-site" origin="$e"$}m,
        qr{^POST /trl-api/lists/allow 403 sfs="same-site" origin="$s"$}m);
    like($alog, $_, "api.log: $_") for @want;
    my $posts = () = $alog =~ /^POST /mg;
    is($posts, 4, 'api.log: four POSTs from the pages (form, 2 fetches, 1)');
    unlike($alog, qr/^POST \S+ 201/m, 'api.log: none served');

    $pre = lists();
    ($dom) = $t->browse("http://127.0.0.1:$port/same.html", name => 'same');
    like($dom, qr{<title>same 201 \d+ 200</title>},
         'browser, same origin: POST and DELETE served');
    is(lists(), $pre, 'browser, same origin: the entry added and removed');
    $alog = substr $t->read_file('logs/api.log'), $before;
    my $o = quotemeta "http://127.0.0.1:$port";
    like($alog, qr{^POST /trl-api/lists/deny 201 sfs="same-origin" origin="$o"$}m,
         'api.log: the same-origin POST, with both headers');
    like($alog, qr{^DELETE /trl-api/lists/\d+ 200 sfs="same-origin" origin="$o"$}m,
         'api.log: the same-origin DELETE, with both headers');

    # the dashboard (it only reads) stays live
    ($dom) = $t->browse("$api/dashboard?interval=1", name => 'dashboard');
    my ($body) = $dom =~ /<body\b([^>]*)>/;
    like($body // '', qr/data-state="ok"/, 'the dashboard is live');
    like($body // '', qr/data-errors="0"/, '... no failed poll');
}

$t->stop;
$t->no_alerts;
done_testing;
