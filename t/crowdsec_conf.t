#!/usr/bin/perl

# token_ratelimit_crowdsec_key and token_ratelimit_netset at nginx -t (each
# error names the directive, the bad value and what is accepted; a key
# where no token_ratelimit_api answers is an error), and the
# shipped example conf.d/crowdsec.conf: it passes nginx -t, runs (its
# netset path moved into the test's prefix), limits its login location and
# answers a bouncer with its key.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use TRL;
use TRLCrowdSec;

my $ROOT = $TRL::ROOT;
my $c = TRL->new;          # nginx -t only
my $t = TRL->new;          # the example, running

sub api_server {
    my ($inside) = @_;
    return <<"EOF";
    server {
        listen 127.0.0.1:%%PORT%%;
        location /trl/ {
            token_ratelimit_api;
            $inside
        }
    }
EOF
}

# --- token_ratelimit_crowdsec_key --------------------------------------------

$c->config_fails(api_server('token_ratelimit_crowdsec_key short;'),
                 [qr/"token_ratelimit_crowdsec_key" needs a key of at least 16 characters/,
                  qr/this one has 5/],
                 'a short key');
$c->config_fails(api_server('token_ratelimit_crowdsec_key "0123456789 abcdef";'),
                 [qr/"token_ratelimit_crowdsec_key" takes a key of printable ASCII characters without blanks/],
                 'a key with a blank');
$c->config_fails(api_server('token_ratelimit_crowdsec_key file=%%DIR%%/none.key;'),
                 [qr/"token_ratelimit_crowdsec_key" cannot open the key file ".*none\.key"/],
                 'a missing key file');
$c->write_file('empty.key', "\n");
$c->config_fails(api_server('token_ratelimit_crowdsec_key file=%%DIR%%/empty.key;'),
                 [qr/needs a key of at least 16 characters.*this one has 0/],
                 'an empty key file');
$c->config_fails("token_ratelimit_crowdsec_key 0123456789abcdef0123;\n"
                 . api_server(''),
                 [qr/"token_ratelimit_crowdsec_key" directive is not allowed here/],
                 'the key at http level');
$c->config_fails(<<'EOF',
    server {
        listen 127.0.0.1:%%PORT%%;
        location /trl/ {
            token_ratelimit_crowdsec_key 0123456789abcdef0123;
        }
    }
EOF
                 [qr/"token_ratelimit_crowdsec_key" is used in location "\/trl\/" without "token_ratelimit_api": it takes effect only in the API's own location/],
                 'the key where no API answers');
$c->write_config(<<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location /trl/ {
            token_ratelimit_crowdsec_key 0123456789abcdef0123;
            token_ratelimit_api;
        }
    }
EOF
my ($krc, $kout) = $c->test_config;
is($krc, 0, 'the key before token_ratelimit_api in its location: nginx -t '
   . 'passes') or diag $kout;
my ($out) = $c->config_fails(api_server('token_ratelimit_crowdsec_key 012;'),
                             [qr/needs a key/], 'a bad key is not shown');
unlike($out, qr/"012"/, '... its value is not echoed');

# --- token_ratelimit_netset ----------------------------------------------------

$c->config_fails("token_ratelimit_netset %%DIR%%/n interval=100ms;\n"
                 . api_server(''),
                 [qr/"token_ratelimit_netset" has a bad "interval=100ms": takes a time from 1s to 1h/],
                 'netset interval too short');
$c->config_fails("token_ratelimit_netset %%DIR%%/n every=1s;\n"
                 . api_server(''),
                 [qr/"token_ratelimit_netset" has an unknown parameter "every=1s": takes PATH and "interval=TIME"/],
                 'netset unknown parameter');
$c->config_fails("token_ratelimit_netset %%DIR%%/n;\n"
                 . "token_ratelimit_netset %%DIR%%/m;\n" . api_server(''),
                 [qr/"token_ratelimit_netset" directive is duplicate/],
                 'netset twice');
$c->config_fails("token_ratelimit_netset %%DIR%%/;\n" . api_server(''),
                 [qr/"token_ratelimit_netset" takes the path of a file/],
                 'netset a directory');

# --- conf.d/crowdsec.conf ----------------------------------------------------

my $text = $t->read_file("$ROOT/conf.d/crowdsec.conf");
ok($text =~ s{(token_ratelimit_netset )/var/lib/token-ratelimit/ban\.netset interval=10s}
             {$1%%DIR%%/netset/ban.netset interval=1s},
   'crowdsec.conf: its netset path, checked every second');
ok($text =~ s{set_real_ip_from 10\.0\.0\.0/8;}{set_real_ip_from 127.0.0.1;},
   'crowdsec.conf: the test client as its load balancer');
mkdir $t->dir . '/netset';
chmod 0777, $t->dir . '/netset';
my $copy = $t->write_file('crowdsec.conf', $text);
my ($up, $ls) = $t->run_snippet($copy);
ok($up >= 1 && $ls == 1, 'crowdsec.conf: runs (upstream, listen rewritten)');

my @st = map { $t->get('/login', headers => { 'X-Forwarded-For' =>
                                               '203.0.113.9' })->{status} }
         1 .. 11;
is(join(' ', @st[0, 9, 10]), '200 200 429',
   'crowdsec.conf: 10 logins a minute, then 429');

my ($key) = $text =~ /token_ratelimit_crowdsec_key\s+(\S+);/;
my $r = $t->get('/trl-api/v1/decisions/stream?startup=true',
                headers => { 'X-Api-Key' => $key });
is($r->{status}, 200, 'crowdsec.conf: the stream answers its key');
my $j = eval { JSON::PP->new->decode($r->{body}) } || {};
is(join(' ', map { $_->{value} } @{$j->{new} || []}), '203.0.113.9',
   '... the penalised client');
ok(TRLCrowdSec::wait_for(15, sub {
    $t->read_file('netset/ban.netset') eq "203.0.113.9\n"
}), '... and the netset file');

$t->stop;
$t->no_alerts;

done_testing;
