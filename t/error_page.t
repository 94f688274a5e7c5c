#!/usr/bin/perl
# error_page for the rejection status takes precedence over the JSON body;
# the rate-limit headers and Retry-After stay; the redirect target is not
# limited again; error_page for other statuses leaves the JSON alone.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $t = TRL->new;
mkdir $t->dir . '/html/limited';
$t->write_file('html/custom429.html', "custom 429 page\n");
$t->write_file('html/custom503.html', "custom 503 page\n");
$t->write_file('html/limited/page.html', "limited page\n");

$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=e:1m rate=1r/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%DIR%%/html;

        location /ep        { token_ratelimit zone=e;
                              error_page 429 /custom429.html; empty_gif; }
        location /ep_named  { token_ratelimit zone=e;
                              error_page 429 @rl; empty_gif; }
        location @rl        { return 429 "named location\n"; }
        location /ep_code   { token_ratelimit zone=e;
                              error_page 429 =200 /custom429.html; empty_gif; }
        location /ep503     { token_ratelimit zone=e; token_ratelimit_status 503;
                              error_page 503 /custom503.html; empty_gif; }
        location /ep_wrong  { token_ratelimit zone=e; token_ratelimit_status 503;
                              error_page 429 /custom429.html; empty_gif; }
        location /ep_other  { token_ratelimit zone=e;
                              error_page 404 500 502 /custom429.html; empty_gif; }
        location /ep_target { token_ratelimit zone=e;
                              error_page 429 /limited/page.html; empty_gif; }
        location /limited/  { token_ratelimit zone=e; }
        location /ep_redir  { token_ratelimit zone=e;
                              error_page 429 http://example.com/busy; empty_gif; }
        location /ep_ietf   { token_ratelimit zone=e; token_ratelimit_headers both;
                              error_page 429 /custom429.html; empty_gif; }

        location /nested/ {
            error_page 429 /custom429.html;
            location /nested/in { token_ratelimit zone=e; empty_gif; }
        }

        location = /custom429.html { internal; }
        location = /custom503.html { internal; }
    }
EOF
$t->run;

sub count_header {
    my ($r, $name) = @_;
    return scalar grep { lc $_->[0] eq lc $name } @{$r->{header_list}};
}

# Exhausts key $k at $loc and returns the rejected response.
sub rejected {
    my ($loc, $k, %opt) = @_;
    my $first = $t->get("$loc?k=$k");
    is($first->{status}, 200, "$loc: first request admitted");
    return $t->get("$loc?k=$k", %opt);
}

sub has_limit_headers {
    my ($r, $what) = @_;
    is($r->{headers}{'x-ratelimit-limit'}, 1, "$what: X-RateLimit-Limit");
    is($r->{headers}{'x-ratelimit-remaining'}, 0, "$what: X-RateLimit-Remaining 0");
    like($r->{headers}{'x-ratelimit-reset'} // '', qr/^\d+$/, "$what: X-RateLimit-Reset");
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, "$what: Retry-After");
    is(count_header($r, 'X-RateLimit-Limit'), 1, "$what: X-RateLimit-Limit once");
    is(count_header($r, 'X-RateLimit-Remaining'), 1, "$what: X-RateLimit-Remaining once");
    is(count_header($r, 'Retry-After'), 1, "$what: Retry-After once");
}

{
    my $r = rejected('/ep', 'a');
    is($r->{status}, 429, 'error_page: status 429');
    is($r->{body}, "custom 429 page\n", 'error_page: its page instead of the JSON');
    is($r->{headers}{'content-type'}, 'text/html', 'error_page: its content type');
    has_limit_headers($r, 'error_page');

    # still limited, and the error_page response did not count
    my $again = $t->get('/ep?k=a');
    is($again->{status}, 429, 'error_page: still rejected');
    is($again->{headers}{'x-ratelimit-reset'}, $r->{headers}{'x-ratelimit-reset'},
       'error_page: the rejection did not move the reset');
}

{
    my $r = rejected('/ep_named', 'b');
    is($r->{status}, 429, 'named location: 429');
    is($r->{body}, "named location\n", 'named location: its body');
    has_limit_headers($r, 'named location');
}

{
    my $r = rejected('/ep_code', 'c');
    is($r->{status}, 200, 'error_page =200: status changed');
    is($r->{body}, "custom 429 page\n", 'error_page =200: its page');
    has_limit_headers($r, 'error_page =200');
}

{
    my $r = rejected('/ep503', 'd');
    is($r->{status}, 503, 'token_ratelimit_status 503 + error_page 503: 503');
    is($r->{body}, "custom 503 page\n", 'token_ratelimit_status 503 + error_page 503: its page');
    has_limit_headers($r, 'error_page 503');
}

{
    my $r = rejected('/ep_wrong', 'e');
    is($r->{status}, 503, 'error_page for 429 but status 503: 503');
    like($r->{body}, qr/^\{"error":"rate_limit_exceeded",.*"retry_after":\d+\}\z/,
         'error_page for another status: the JSON body');
    is($r->{headers}{'content-type'}, 'application/json', 'error_page for another status: JSON');
    has_limit_headers($r, 'error_page for another status');
}

{
    my $r = rejected('/ep_other', 'f');
    is($r->{status}, 429, 'error_page for 404 500 502 only: 429');
    like($r->{body}, qr/^\{"error":"rate_limit_exceeded",.*\}\z/,
         'error_page for other statuses: the JSON body');
}

{
    # the target location uses the same (exhausted) zone and key: the
    # request is limited once, so the page is served
    my $r = rejected('/ep_target', 'g');
    is($r->{status}, 429, 'limited error_page target: 429');
    is($r->{body}, "limited page\n", 'limited error_page target: served, not limited again');
    has_limit_headers($r, 'limited error_page target');
    is($t->get('/limited/page.html?k=g')->{status}, 429,
       'the target location itself limits direct requests');
    is($t->get('/limited/page.html?k=g2')->{status}, 200,
       'the target location admits another key');
}

{
    my $r = rejected('/ep_redir', 'h');
    is($r->{status}, 302, 'error_page to a URL: 302');
    is($r->{headers}{'location'}, 'http://example.com/busy', 'error_page to a URL: Location');
    has_limit_headers($r, 'error_page to a URL');
}

{
    my $r = rejected('/ep_ietf', 'i');
    is($r->{status}, 429, 'error_page with both header sets: 429');
    is($r->{headers}{'ratelimit-policy'}, '"e";q=1;w=60', 'error_page: RateLimit-Policy');
    like($r->{headers}{'ratelimit'} // '', qr/^"e";r=0;t=\d+$/, 'error_page: RateLimit');
    is(count_header($r, 'RateLimit'), 1, 'error_page: RateLimit once');
    is(count_header($r, 'RateLimit-Policy'), 1, 'error_page: RateLimit-Policy once');
}

{
    my $r = rejected('/nested/in', 'j');
    is($r->{status}, 429, 'inherited error_page: 429');
    is($r->{body}, "custom 429 page\n", 'inherited error_page: its page');
    has_limit_headers($r, 'inherited error_page');
}

{
    # HEAD through error_page
    $t->request(TRL::build_request('HEAD', '/ep?k=head'));
    my $r = $t->request(TRL::build_request('HEAD', '/ep?k=head'));
    is($r->{status}, 429, 'HEAD + error_page: 429');
    is($r->{body}, '', 'HEAD + error_page: no body');
    has_limit_headers($r, 'HEAD + error_page');
}

$t->stop;
$t->no_alerts;
done_testing;
