#!/usr/bin/perl
# token_ratelimit_api in an exact location whose name ends in /metrics
# ("location = /x/metrics", "location = /metrics") serves the Prometheus
# text there, as {loc}/metrics does under a prefix location (which keeps
# working): the same series and counts, HEAD, POST 405.  Other exact
# locations ("= /x/stats", "= /x/mymetrics") serve the JSON as before.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $http_x_key zone=z:1m rate=3r/m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /z { token_ratelimit zone=z; empty_gif; }

        location /api { token_ratelimit_api; }
        location = /x/metrics { token_ratelimit_api; allow 127.0.0.1; }
        location = /metrics { token_ratelimit_api; }
        location = /x/stats { token_ratelimit_api; }
        location = /x/mymetrics { token_ratelimit_api; }
    }
EOF
$t->run;

# 3 passed and 2 rejected
$t->get('/z', headers => { 'X-Key' => 'k' }) for 1 .. 5;

my $TEXT = 'text/plain; version=0.0.4; charset=utf-8';
my $PASSED =
    qr/^token_ratelimit_requests_total\{zone="z",outcome="passed"\} 3$/m;
my $REJECTED =
    qr/^token_ratelimit_requests_total\{zone="z",outcome="rejected"\} 2$/m;

# the series, without the values of gauges that may move between scrapes
sub series {
    my ($body) = @_;
    return join "\n", map { /^(\S+)/ } grep { !/^#/ } split /\n/, $body;
}

my $prefix = $t->get('/api/metrics');
is($prefix->{status}, 200, 'prefix location: GET {loc}/metrics');
is($prefix->{headers}{'content-type'}, $TEXT, '... Prometheus text');
like($prefix->{body}, $PASSED, '... passed counted');

for my $path ('/x/metrics', '/metrics') {
    my $r = $t->get($path);
    is($r->{status}, 200, "exact location: GET $path");
    is($r->{headers}{'content-type'}, $TEXT, "$path: Prometheus text");
    like($r->{body}, qr/^# TYPE token_ratelimit_requests_total counter$/m,
         "$path: the families");
    like($r->{body}, $PASSED, "$path: passed counted");
    like($r->{body}, $REJECTED, "$path: rejected counted");
    is(series($r->{body}), series($prefix->{body}),
       "$path: the series of {loc}/metrics");

    $r = $t->get($path, headers => { Accept => 'application/json' });
    is($r->{headers}{'content-type'}, $TEXT, "$path: text whatever Accept");

    $r = $t->request("HEAD $path HTTP/1.0\r\nHost: localhost\r\n\r\n");
    is($r->{status}, 200, "HEAD $path: 200");
    is($r->{headers}{'content-type'}, $TEXT, "HEAD $path: content type");
    is($r->{body}, '', "HEAD $path: no body");

    $r = $t->post($path, '');
    is($r->{status}, 405, "POST $path: 405");
    is($r->{headers}{allow}, 'GET, HEAD', "POST $path: Allow");
}

# the root of a prefix location, and other exact locations: JSON as before
for my $path ('/api', '/api/', '/x/stats', '/x/mymetrics') {
    my $r = $t->get($path);
    is($r->{status}, 200, "GET $path");
    like($r->{headers}{'content-type'}, qr{^application/json}, "$path: JSON");
    like($r->{body}, qr/^\{"module":"token_ratelimit"/, "$path: the document");
}

$t->stop;
$t->no_alerts;
done_testing;
