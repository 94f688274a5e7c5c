#!/usr/bin/perl
# What a client sees (SPEC section 3): the X-RateLimit-* and IETF header
# sets per token_ratelimit_headers, the exact JSON body of a rejection, the
# status override, HEAD, a truthful Retry-After, a sane X-RateLimit-Reset,
# the headers on upstream errors and 404s, and keepalive after a rejected
# request with a body.
use strict;
use warnings;
use lib 't/lib';
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
$t->start_backend;

# a loopback port nothing listens on (not one of the harness's ports, which
# run() waits for)
my $dead = do {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1) or die $!;
    my $p = $s->sockport;
    close $s;
    $p;
};

mkdir $t->dir . '/html/static';
$t->write_file('html/static/file.txt', "static file\n");

$t->write_config(<<'EOF' =~ s/%%DEAD%%/$dead/r);
    token_ratelimit_zone $arg_k zone=r:1m rate=3r/m;
    token_ratelimit_zone $arg_k zone=short:1m rate=2r/3s;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /on     { token_ratelimit zone=r; empty_gif; }
        location /x_on   { token_ratelimit zone=r; token_ratelimit_headers on;
                           empty_gif; }
        location /ietf   { token_ratelimit zone=r;
                           token_ratelimit_headers ietf; empty_gif; }
        location /both   { token_ratelimit zone=r;
                           token_ratelimit_headers both; empty_gif; }
        location /off    { token_ratelimit zone=r;
                           token_ratelimit_headers off; empty_gif; }
        location /s503   { token_ratelimit zone=r;
                           token_ratelimit_status 503; empty_gif; }
        location /s400   { token_ratelimit zone=r;
                           token_ratelimit_status 400; empty_gif; }
        location /short  { token_ratelimit zone=short; empty_gif; }
        location /proxy  { token_ratelimit zone=r;
                           proxy_pass http://127.0.0.1:%%PORT_BACKEND%%; }
        location /dead   { token_ratelimit zone=r;
                           proxy_pass http://127.0.0.1:%%DEAD%%; }
        location /static/ { token_ratelimit zone=r; root %%DIR%%/html; }
        location /free   { empty_gif; }
    }
EOF
$t->run;

my $json_re = qr/^\{"error":"rate_limit_exceeded","message":"Rate limit exceeded\. Try again in (\d+) seconds?\.","limit":(\d+),"remaining":0,"reset_at":(\d+),"retry_after":(\d+)\}\z/;

sub count_header {
    my ($r, $name) = @_;
    return scalar grep { lc $_->[0] eq lc $name } @{$r->{header_list}};
}

sub no_x_headers {
    my ($r, $what) = @_;
    ok(!defined $r->{headers}{'x-ratelimit-limit'}
       && !defined $r->{headers}{'x-ratelimit-remaining'}
       && !defined $r->{headers}{'x-ratelimit-reset'},
       "$what: no X-RateLimit-* headers");
}

sub no_ietf_headers {
    my ($r, $what) = @_;
    ok(!defined $r->{headers}{'ratelimit'}
       && !defined $r->{headers}{'ratelimit-policy'},
       "$what: no RateLimit/RateLimit-Policy headers");
}

# --- token_ratelimit_headers on (default and explicit) -------------------

for my $loc ('/on', '/x_on') {
    my $before = time;
    my $r = $t->get("$loc?k=hdr$loc");
    my $after = time;
    is($r->{status}, 200, "$loc: admitted");
    is($r->{headers}{'x-ratelimit-limit'}, 3, "$loc: X-RateLimit-Limit");
    is($r->{headers}{'x-ratelimit-remaining'}, 2, "$loc: X-RateLimit-Remaining");
    my $reset = $r->{headers}{'x-ratelimit-reset'} // '';
    like($reset, qr/^\d+$/, "$loc: X-RateLimit-Reset is an integer");
    # newest admission (now) + 60 s, rounded up
    ok($reset >= int($before) + 60 && $reset <= int($after) + 61,
       "$loc: X-RateLimit-Reset $reset is now + 60 s (time() $before)");
    is(count_header($r, 'X-RateLimit-Limit'), 1, "$loc: one X-RateLimit-Limit");
    is($r->{headers}{'retry-after'}, undef, "$loc: no Retry-After when admitted");
    no_ietf_headers($r, $loc);
}

# --- ietf ----------------------------------------------------------------

{
    my $r = $t->get('/ietf?k=ietf');
    is($r->{status}, 200, 'ietf: admitted');
    is($r->{headers}{'ratelimit-policy'}, '"r";q=3;w=60', 'ietf: RateLimit-Policy');
    like($r->{headers}{'ratelimit'} // '', qr/^"r";r=2;t=(59|60|61)$/,
         'ietf: RateLimit r=2, t = seconds to full reset');
    no_x_headers($r, 'ietf');

    $t->get('/ietf?k=ietf') for 1 .. 2;
    $r = $t->get('/ietf?k=ietf');
    is($r->{status}, 429, 'ietf: fourth rejected');
    like($r->{headers}{'ratelimit'} // '', qr/^"r";r=0;t=(59|60|61)$/,
         'ietf: RateLimit r=0 on rejection');
    is($r->{headers}{'ratelimit-policy'}, '"r";q=3;w=60',
       'ietf: RateLimit-Policy on rejection');
    like($r->{headers}{'retry-after'} // '', qr/^\d+$/, 'ietf: Retry-After');
    no_x_headers($r, 'ietf rejection');
    like($r->{body}, $json_re, 'ietf: JSON body');
}

# --- both ----------------------------------------------------------------

{
    my $r = $t->get('/both?k=both');
    is($r->{status}, 200, 'both: admitted');
    is($r->{headers}{'x-ratelimit-limit'}, 3, 'both: X-RateLimit-Limit');
    is($r->{headers}{'x-ratelimit-remaining'}, 2, 'both: X-RateLimit-Remaining');
    like($r->{headers}{'x-ratelimit-reset'} // '', qr/^\d+$/, 'both: X-RateLimit-Reset');
    is($r->{headers}{'ratelimit-policy'}, '"r";q=3;w=60', 'both: RateLimit-Policy');
    like($r->{headers}{'ratelimit'} // '', qr/^"r";r=2;t=(59|60|61)$/, 'both: RateLimit');
}

# --- off -----------------------------------------------------------------

{
    my @r = map { $t->get('/off?k=off') } 1 .. 4;
    is_deeply([map { $_->{status} } @r], [200, 200, 200, 429],
              'off: still limited');
    for my $i (0, 3) {
        no_x_headers($r[$i], "off #$i");
        no_ietf_headers($r[$i], "off #$i");
    }
    like($r[3]{body}, $json_re, 'off: rejection still has the JSON body');
}

# --- the rejection: status, JSON body, headers ---------------------------

{
    my @ok = map { $t->get('/on?k=json') } 1 .. 3;
    is_deeply([map { $_->{headers}{'x-ratelimit-remaining'} } @ok], [2, 1, 0],
              'json: remaining counts down');
    my $before = time;
    my $r = $t->get('/on?k=json');
    is($r->{status}, 429, 'json: rejected with 429');
    is($r->{headers}{'content-type'}, 'application/json',
       'json: Content-Type application/json');
    like($r->{body}, $json_re, 'json: body is exactly the documented JSON');
    my ($s1, $limit, $reset_at, $s2) = $r->{body} =~ $json_re;
    $s1 //= -1; $s2 //= -2; $reset_at //= -1;
    is($limit, 3, 'json: limit');
    is($s1, $s2, 'json: message and retry_after agree');
    is($r->{headers}{'retry-after'}, $s2, 'json: Retry-After header = retry_after');
    # 60 s from the oldest admission; admission times are kept on a grid of
    # a few ms, rounded up, so the ceiling may be 61
    ok($s2 >= 59 && $s2 <= 61, "json: retry_after $s2 ~ 60 s (3 admitted just now)");
    is($r->{headers}{'x-ratelimit-reset'}, $reset_at,
       'json: reset_at = X-RateLimit-Reset');
    my $last_reset = $ok[2]{headers}{'x-ratelimit-reset'} // 0;
    ok($reset_at >= $last_reset && $reset_at <= $last_reset + 1,
       "json: reset_at $reset_at is the newest admission + W ($last_reset)");
    ok($reset_at >= int($before) + 59 && $reset_at <= int($before) + 61,
       'json: reset_at ~ time() + 60');
    is($r->{headers}{'x-ratelimit-limit'}, 3, 'json: X-RateLimit-Limit');
    is($r->{headers}{'x-ratelimit-remaining'}, 0, 'json: X-RateLimit-Remaining 0');
    is($r->{headers}{'content-length'}, length $r->{body},
       'json: Content-Length matches the body');
    is(count_header($r, 'Retry-After'), 1, 'json: one Retry-After');
    is(count_header($r, 'X-RateLimit-Remaining'), 1,
       'json: one X-RateLimit-Remaining');
    is($r->{headers}{'ratelimit'}, undef, 'json: no IETF headers by default');

    # rejections are not counted: the state is unchanged
    my $again = $t->get('/on?k=json');
    is($again->{status}, 429, 'json: still rejected');
    is($again->{headers}{'x-ratelimit-reset'}, $reset_at,
       'json: rejection did not move the reset');

    is($t->get('/on?k=json_other')->{status}, 200, 'json: another key admitted');
}

# --- token_ratelimit_status override -------------------------------------

{
    $t->get('/s503?k=st') for 1 .. 3;
    my $r = $t->get('/s503?k=st');
    is($r->{status}, 503, 'status 503: rejection uses it');
    is($r->{headers}{'content-type'}, 'application/json', 'status 503: JSON');
    like($r->{body}, $json_re, 'status 503: exact JSON body');
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
         'status 503: Retry-After');
    is($r->{headers}{'x-ratelimit-remaining'}, 0, 'status 503: remaining 0');

    # the same zone and key from a location with another status
    $r = $t->get('/s400?k=st');
    is($r->{status}, 400, 'status 400 on the same exhausted key');
    like($r->{body}, $json_re, 'status 400: exact JSON body');
    is($t->get('/on?k=st')->{status}, 429, 'default status 429 on that key');
}

# --- HEAD ----------------------------------------------------------------

{
    my @r = map { $t->request(TRL::build_request('HEAD', '/on?k=head')) } 1 .. 4;
    is_deeply([map { $_->{status} } @r], [200, 200, 200, 429],
              'HEAD: counted and limited');
    is($r[0]{headers}{'x-ratelimit-remaining'}, 2, 'HEAD: headers when admitted');
    is($r[3]{headers}{'x-ratelimit-remaining'}, 0, 'HEAD: remaining 0 when rejected');
    is($r[3]{headers}{'x-ratelimit-limit'}, 3, 'HEAD: limit when rejected');
    like($r[3]{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, 'HEAD: Retry-After');
    is($r[3]{body}, '', 'HEAD: no body on rejection');
    is($r[0]{body}, '', 'HEAD: no body when admitted');
}

# --- upstream errors, nginx's own errors and 404s keep the headers ---------

{
    my $r = $t->get('/proxy?status=502&k=up');
    is($r->{status}, 502, 'backend 502 proxied');
    is($r->{headers}{'x-ratelimit-limit'}, 3, 'backend 502: X-RateLimit-Limit');
    is($r->{headers}{'x-ratelimit-remaining'}, 2, 'backend 502: X-RateLimit-Remaining');
    like($r->{body}, qr/backend 502/, 'backend 502: the backend answered');

    $r = $t->get('/proxy?status=500&k=up');
    is($r->{status}, 500, 'backend 500 proxied');
    is($r->{headers}{'x-ratelimit-remaining'}, 1, 'backend 500: X-RateLimit-Remaining');

    $r = $t->get('/proxy?status=200&k=up');
    is($r->{status}, 200, 'backend 200 proxied');
    is($r->{headers}{'x-ratelimit-remaining'}, 0, 'backend 200: X-RateLimit-Remaining');

    $r = $t->get('/proxy?status=200&k=up');
    is($r->{status}, 429, 'proxied location: fourth rejected');
    like($r->{body}, $json_re, 'proxied location: JSON body');

    $r = $t->get('/dead?k=dead');
    is($r->{status}, 502, 'unreachable upstream: nginx 502');
    is($r->{headers}{'x-ratelimit-limit'}, 3, 'nginx 502: X-RateLimit-Limit');
    is($r->{headers}{'x-ratelimit-remaining'}, 2, 'nginx 502: X-RateLimit-Remaining');
    like($r->{headers}{'x-ratelimit-reset'} // '', qr/^\d+$/, 'nginx 502: X-RateLimit-Reset');

    $r = $t->get('/static/no-such-file?k=404');
    is($r->{status}, 404, 'limited location: 404');
    is($r->{headers}{'x-ratelimit-limit'}, 3, '404: X-RateLimit-Limit');
    is($r->{headers}{'x-ratelimit-remaining'}, 2, '404: X-RateLimit-Remaining');

    $r = $t->get('/static/file.txt?k=404');
    is($r->{status}, 200, 'static file served');
    is($r->{body}, "static file\n", 'static file body');
    is($r->{headers}{'x-ratelimit-remaining'}, 1, 'static file: X-RateLimit-Remaining');

    $r = $t->get('/free');
    is($r->{status}, 200, 'unlimited location');
    no_x_headers($r, 'unlimited location');
    no_ietf_headers($r, 'unlimited location');
}

# --- keepalive after a rejected request with a body ------------------------

# Sends requests one by one on one connection, reading each response whole
# (by Content-Length) before the next is sent.  A request is a raw string, or
# [head, body, delay] to send the body delay seconds after the head.
sub keepalive {
    my (@reqs) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port,
                                  Proto => 'tcp', Timeout => 5)
        or return ();
    binmode $s;
    my $sel = IO::Select->new($s);
    my $pending = '';
    my @out;
    for my $req (@reqs) {
        if (ref $req) {
            my ($head, $body, $delay) = @$req;
            syswrite($s, $head);
            sleep $delay;
            syswrite($s, $body);
        } else {
            syswrite($s, $req);
        }
        my $buf = $pending;
        $pending = '';
        my $deadline = time + 5;
        my $need;
        while (1) {
            if (!defined $need && $buf =~ /\r\n\r\n/) {
                my ($head) = $buf =~ /^(.*?\r\n\r\n)/s;
                my ($len) = $head =~ /\r\ncontent-length:\s*(\d+)/i;
                $need = length($head) + ($len // 0);
            }
            last if defined $need && length($buf) >= $need;
            last unless $sel->can_read($deadline - time);
            my $n = sysread($s, my $chunk, 65536);
            last unless $n;
            $buf .= $chunk;
        }
        if (defined $need && length($buf) > $need) {
            $pending = substr($buf, $need);
            $buf = substr($buf, 0, $need);
        }
        push @out, TRL::parse_response($buf);
        last unless length $buf;
    }
    close $s;
    return @out;
}

{
    $t->get('/on?k=ka') for 1 .. 3;     # exhaust the key

    my $body = 'x' x 1000;
    my $post = "POST /on?k=ka HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n";
    my $big = 'y' x 200_000;
    my $post_big = "POST /on?k=ka HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Length: " . length($big) . "\r\n\r\n";
    my $chunked_head = "POST /on?k=ka HTTP/1.1\r\nHost: localhost\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n";
    my $chunked_body = "5\r\nhello\r\n3e8\r\n" . ('z' x 1000) . "\r\n0\r\n\r\n";
    my $get = "GET /on?k=ka_next HTTP/1.1\r\nHost: localhost\r\n\r\n";

    my @r = keepalive($post . $body, [$post, $body, 0.3],
                      [$post_big, $big, 0.1], [$chunked_head, $chunked_body, 0.1],
                      $get);
    is(scalar @r, 5, 'keepalive: five responses on one connection');
    is($r[0]{status}, 429, 'keepalive: POST with body rejected');
    like($r[0]{body}, $json_re, 'keepalive: rejected POST has the JSON body');
    is($r[1]{status}, 429, 'keepalive: POST with a late body rejected');
    is($r[2]{status}, 429, 'keepalive: POST with a 200 KB body rejected');
    is($r[3]{status}, 429, 'keepalive: POST with a chunked body rejected');
    is($r[4]{status}, 200, 'keepalive: next request on the connection works');
    is($r[4]{headers}{'x-ratelimit-remaining'}, 2,
       'keepalive: next request decided on its own key');
    isnt(lc($r[0]{headers}{'connection'} // ''), 'close',
         'keepalive: connection kept open after rejection');
}

# --- Retry-After is truthful ---------------------------------------------

{
    # 2 requests per 3 s: the first at t0, the second 1.2 s later; the third
    # must wait only for the first to leave the window (< 3 s).
    my $r1 = $t->get('/short?k=ra');
    sleep 1.2;
    my $r2 = $t->get('/short?k=ra');
    my $r3 = $t->get('/short?k=ra');
    is_deeply([map { $_->{status} } $r1, $r2, $r3], [200, 200, 429],
              'retry: 2 admitted, third rejected');
    my $s = $r3->{headers}{'retry-after'} // 0;
    ok($s >= 1 && $s <= 2,
       "retry: Retry-After $s counts from the oldest admission (1..2 s)");
    like($r3->{body}, qr/"retry_after":\Q$s\E\}\z/, 'retry: body agrees');

    sleep $s;
    my $r4 = $t->get('/short?k=ra');
    is($r4->{status}, 200, "retry: admitted $s s after Retry-After $s");
    is($r4->{headers}{'x-ratelimit-remaining'}, 0, 'retry: window full again');

    # the second admission is still in the window: rejected again, and the
    # new Retry-After is again enough
    my $r5 = $t->get('/short?k=ra');
    is($r5->{status}, 429, 'retry: rejected right after (window is exact)');
    my $s2 = $r5->{headers}{'retry-after'} // 0;
    ok($s2 >= 1 && $s2 <= 2, "retry: second Retry-After $s2 in 1..2");
    sleep $s2;
    my $r6 = $t->get('/short?k=ra');
    is($r6->{status}, 200, "retry: admitted $s2 s after the second Retry-After");
}

$t->stop;
$t->no_alerts;
done_testing;
