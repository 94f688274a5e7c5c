#!/usr/bin/perl
# Basics: admission up to N, then 429 with the JSON body and headers.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF2');
    token_ratelimit_zone $binary_remote_addr zone=login:1m rate=3r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /login {
            token_ratelimit zone=login;
            empty_gif;
        }
        location /free {
            empty_gif;
        }
    }
EOF2
$t->run;

for my $n (1 .. 3) {
    my $r = $t->get('/login');
    is($r->{status}, 200, "request $n admitted");
    is($r->{headers}{'x-ratelimit-limit'}, 3, "limit header $n");
    is($r->{headers}{'x-ratelimit-remaining'}, 3 - $n, "remaining $n");
}
my $r = $t->get('/login');
is($r->{status}, 429, 'fourth rejected');
is($r->{headers}{'content-type'}, 'application/json', 'json');
like($r->{headers}{'retry-after'}, qr/^\d+$/, 'retry-after');
like($r->{body}, qr/"error":"rate_limit_exceeded"/, 'body');
is($t->get('/free')->{headers}{'x-ratelimit-limit'}, undef, 'no headers where no zone');
$t->stop;
$t->no_alerts;
done_testing;
