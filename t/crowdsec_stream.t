#!/usr/bin/perl

# CrowdSec "Out" (issue 14 part 3): token_ratelimit_api answers the
# CrowdSec local API's decisions stream, pulled by the REAL
# crowdsec-custom-bouncer; token_ratelimit_netset writes the same set to a
# file.
#
# - the stream without a key, or with a wrong one: 403 and LAPI's body; an
#   unknown v1 path 404; usage-metrics POST 201, cross-site 403 (SPEC 7)
# - startup=true: every decision in force as new (deny entries of the API,
#   an address serving a penalty in a zone keyed on $binary_remote_addr),
#   deleted null; never a trusted address; the next pull: null and null;
#   scopes= filters; a live bouncer's ?ip= and ?range= get only the
#   decisions that hold the address (null when none)
# - the real bouncer: its script runs "add VALUE SECONDS SCENARIO JSON"
#   for each (scope Ip/Range, the TTL left), "del" once the entry is
#   removed through DELETE {loc}/lists/deny?address=
# - the netset file: the same set, sorted, replaced by rename (a new
#   inode, no PATH.tmp left), not rewritten while nothing changes;
#   {loc}/crowdsec shows it and the bouncers
# - a reload keeps each bouncer's memory
# - a netset path that cannot be written: one error line for the outage,
#   the API shows it failing; written once the directory exists

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use TRL;
use TRLCrowdSec;

plan skip_all => "crowdsec-custom-bouncer is not installed "
                 . "($TRLCrowdSec::BOUNCER)"
    unless -x $TRLCrowdSec::BOUNCER;

my $KEY = 'k3y-' . join '', map { sprintf '%02x', int rand 256 } 1 .. 16;

my $t = TRL->new(workers => 2);
$t->write_file('bouncer.key', "$KEY\n");
mkdir $t->dir . '/netset';
chmod 0777, $t->dir . '/netset';        # the workers may run as nobody
$t->write_config(<<'EOF');
    token_ratelimit_zone $binary_remote_addr zone=login:1m rate=2r/m;
    token_ratelimit_netset %%DIR%%/netset/ban.netset interval=1s;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /login {
            token_ratelimit zone=login penalty=10m;
            empty_gif;
        }
        location /trl/ {
            token_ratelimit_api;
            token_ratelimit_crowdsec_key file=%%DIR%%/bouncer.key;
        }
        location /plain/ {
            token_ratelimit_api;
        }
    }
EOF
$t->run;

my $json = JSON::PP->new;

sub call {
    my ($method, $path, %h) = @_;
    my $r = $t->request(TRL::build_request($method, $path, headers => \%h,
                                           $method eq 'POST'
                                           ? (body => '{}') : ()));
    $r->{json} = eval { $json->decode($r->{body}) };
    return $r;
}

sub pull {
    my ($query, $ua) = @_;
    return call('GET', "/trl/v1/decisions/stream$query", 'X-Api-Key' => $KEY,
                'User-Agent' => $ua // 'trl-test/1');
}

# --- decisions in force ------------------------------------------------------

is(call('POST', '/trl/lists/deny?address=203.0.113.7&ttl=1h')->{status},
   201, 'deny entry 203.0.113.7 (1h)');
is(call('POST', '/trl/lists/deny?cidr=198.51.100.0/24')->{status}, 201,
   'deny entry 198.51.100.0/24 (no TTL)');
is(call('POST', '/trl/lists/deny?address=192.0.2.99&ttl=1h'
        . '&origin=crowdsec:crowdsecurity%2Fssh-bf')->{status}, 201,
   'deny entry 192.0.2.99 of origin crowdsec:crowdsecurity/ssh-bf');
is(call('POST', '/trl/lists/deny?address=10.1.2.3&ttl=1h')->{status}, 201,
   'deny entry 10.1.2.3 (a trusted range)');

my @st = map { $t->get('/login', headers => { 'X-Forwarded-For' =>
                                               '203.0.113.50' })->{status} }
         1 .. 3;
is("@st", '200 200 429', '203.0.113.50 over the limit: a penalty');

# --- auth --------------------------------------------------------------------

my $r = call('GET', '/trl/v1/decisions/stream?startup=true');
is($r->{status}, 403, 'no X-Api-Key: 403');
is($r->{body}, '{"message":"access forbidden"}', '... LAPI\'s body');
$r = call('GET', '/trl/v1/decisions/stream?startup=true',
          'X-Api-Key' => "x$KEY");
is($r->{status}, 403, 'a wrong key: 403');
$r = call('GET', '/trl/v1/decisions?startup=true',
          'X-Api-Key' => substr($KEY, 0, 8));
is($r->{status}, 403, 'a prefix of the key: 403');
is(call('GET', '/plain/v1/decisions/stream', 'X-Api-Key' => $KEY)
   ->{status}, 404, 'a location without a key: 404');
is(call('GET', '/trl/v1/alerts', 'X-Api-Key' => $KEY)->{status}, 404,
   'an unknown v1 path: 404');
$r = call('HEAD', '/trl/v1/decisions/stream?startup=true', 'X-Api-Key' => $KEY);
is($r->{status}, 405, 'HEAD of the stream: 405 (a pull changes state)');
is($r->{headers}{allow}, 'GET', '... Allow: GET');
$r = call('POST', '/trl/v1/usage-metrics', 'X-Api-Key' => $KEY);
is($r->{status}, 201, 'usage-metrics: 201');
is(call('POST', '/trl/v1/usage-metrics', 'X-Api-Key' => "x$KEY")->{status},
   403, 'usage-metrics, wrong key: 403');
is(call('POST', '/trl/v1/usage-metrics', 'X-Api-Key' => $KEY,
        'Sec-Fetch-Site' => 'cross-site')->{status},
   403, 'usage-metrics, cross-site: 403');
unlike($t->error_log, qr/\Q$KEY\E|\Q${\ substr($KEY, 4)}\E/,
       'the key is never logged');

# --- the stream --------------------------------------------------------------

$r = pull('?startup=true');
is($r->{status}, 200, 'startup=true: 200');
like($r->{headers}{'content-type'}, qr{^application/json},
     '... JSON');
like($r->{body}, qr/^\{"deleted":null,"new":\[\{"duration":"[^"]+","id":\d+,"origin":"token-ratelimit","scenario":"[^"]*","scope":"(Ip|Range)","type":"ban","value":"[^"]+"\}/,
     '... in LAPI\'s key order, deleted null');
my %new = map { $_->{value} => $_ } @{$r->{json}{new} || []};
is(join(' ', sort keys %new),
   '192.0.2.99 198.51.100.0/24 203.0.113.50 203.0.113.7',
   '... the deny entries and the penalised address, not the trusted one');
is($new{'203.0.113.7'}{scope}, 'Ip', '203.0.113.7: scope Ip');
like($new{'203.0.113.7'}{duration}, qr/^59m5\ds$/, '... 59m5Xs left');
is($new{'198.51.100.0/24'}{scope}, 'Range', '198.51.100.0/24: scope Range');
is($new{'198.51.100.0/24'}{duration}, '87600h0m0s',
   '... no TTL: ten years');
is($new{'203.0.113.50'}{scenario}, 'login',
   '203.0.113.50: scenario = the zone');
like($new{'203.0.113.50'}{duration}, qr/^9m5\ds$/, '... the penalty left');
is($new{'203.0.113.7'}{type}, 'ban', 'type ban');
is($new{'203.0.113.7'}{scenario}, 'api', '... scenario: its origin, api');
is($new{'192.0.2.99'}{scenario}, 'crowdsec:crowdsecurity/ssh-bf',
   '192.0.2.99: scenario crowdsec:crowdsecurity/ssh-bf');

$r = pull('');
is($r->{body}, '{"deleted":null,"new":null}', 'the next pull: nothing new');

$r = pull('?startup=true&scopes=range', 'trl-test/2');
is(join(' ', map { $_->{value} } @{$r->{json}{new}}), '198.51.100.0/24',
   'scopes=range: only the range');

$r = call('GET', '/trl/v1/decisions', 'X-Api-Key' => $KEY);
is(scalar @{$r->{json}}, 4, 'GET v1/decisions: the four in force');

# a live bouncer asks about one address: only what holds it, or null
sub live {
    my ($q) = @_;
    my $r = call('GET', "/trl/v1/decisions?$q", 'X-Api-Key' => $KEY);
    return $r->{status} == 200
        ? join(' ', map { $_->{value} } @{$r->{json} || []}) || $r->{body}
        : $r->{status};
}
is(live('ip=198.51.100.77'), '198.51.100.0/24', '?ip= in the range');
is(live('ip=203.0.113.7'), '203.0.113.7', '?ip= of an entry');
is(live('ip=203.0.113.8'), 'null', '?ip= of no decision: null');
is(live('range=198.51.100.128/25'), '198.51.100.0/24',
   '?range= inside the range');
is(live('range=198.0.0.0/8'), 'null', '?range= wider: null');
is(live('scope=ip&value=203.0.113.7'), '203.0.113.7', '?scope=&value=');
is(live('scope=range&value=203.0.113.7'), 'null', '... of another scope');
is(live('ip=203.0.113.7&type=captcha'), 'null', '?type=captcha: null');
is(live('ip=nope'), 400, '?ip= not an address: 400');
is(live('ip=198.51.100.0/24'), 400, '?ip= a range: 400');

# the entries of a value, or of a value and an origin
is(call('DELETE', '/trl/lists/deny?address=192.0.2.99&origin=api')
   ->{status}, 404, 'DELETE by value, another origin: 404');
$r = call('DELETE', '/trl/lists/deny?address=192.0.2.99'
          . '&origin=crowdsec:crowdsecurity%2Fssh-bf');
is($r->{status}, 200, 'DELETE by value and its origin: 200');
$r = pull('');
is(join(' ', map { $_->{value} } @{$r->{json}{deleted} || []}),
   '192.0.2.99', 'the bouncer holding it: deleted');
is($r->{json}{new}, undef, '... nothing new');

# --- the real bouncer ----------------------------------------------------------

my $dir = $t->dir;
my $calls = "$dir/calls.txt";
TRLCrowdSec::write_text("$dir/record.sh",
    "#!/bin/sh\nprintf '%s|%s|%s|%s|%s\\n' \"\$1\" \"\$2\" \"\$3\" \"\$4\" "
    . "\"\$5\" >> $calls\n");
chmod 0755, "$dir/record.sh";

TRLCrowdSec::bouncer($t, bin_path => "$dir/record.sh",
                     api_url => 'http://127.0.0.1:' . $t->port . '/trl/',
                     api_key => $KEY);

sub calls {
    my %c;
    for (split /\n/, $t->read_file($calls)) {
        my ($op, $value, $secs, $scenario, $j) = split /\|/, $_, 5;
        $c{"$op $value"} = { secs => $secs, scenario => $scenario,
                             json => eval { $json->decode($j) } };
    }
    return \%c;
}

my $c = TRLCrowdSec::wait_for(20, sub {
    my $c = calls();
    return keys %$c >= 3 ? $c : undef;
}) || {};
is(join(' ', sort keys %$c),
   'add 198.51.100.0/24 add 203.0.113.50 add 203.0.113.7',
   'the bouncer\'s script: add for each decision')
    or diag($t->read_file('bouncer.log'));
ok(($c->{'add 203.0.113.7'}{secs} // 0) > 3500
   && $c->{'add 203.0.113.7'}{secs} <= 3600, '... 203.0.113.7 for ~3600 s');
is($c->{'add 203.0.113.7'}{json}{scope}, 'Ip', '... scope Ip');
is($c->{'add 198.51.100.0/24'}{json}{scope}, 'Range',
   '... 198.51.100.0/24: scope Range');
is($c->{'add 203.0.113.50'}{scenario}, 'login',
   '... 203.0.113.50: the zone as the reason');
ok(($c->{'add 203.0.113.50'}{secs} // 0) > 500, '... for the penalty left');

# --- the netset file -----------------------------------------------------------

my $netset = "$dir/netset/ban.netset";
ok(TRLCrowdSec::wait_for(5, sub {
    $t->read_file($netset) eq "198.51.100.0/24\n203.0.113.7\n203.0.113.50\n"
}), 'the netset file: the same set, sorted')
    or diag($t->read_file($netset));
my @before = stat $netset;
my $cs = call('GET', '/trl/crowdsec')->{json};
my $writes = $cs->{netset}{writes};
sleep 2.5;
is(call('GET', '/trl/crowdsec')->{json}{netset}{writes}, $writes,
   'nothing changed: not written again');
is((stat $netset)[1], $before[1], '... the same file');
is($cs->{netset}{entries}, 3, '{loc}/crowdsec: 3 entries');
ok($cs->{bouncers} && @{$cs->{bouncers}} >= 2,
   '{loc}/crowdsec: the bouncers seen');

# --- deletion --------------------------------------------------------------------

$r = call('DELETE', '/trl/lists/deny?address=203.0.113.7');
is($r->{status}, 200, 'DELETE lists/deny?address=203.0.113.7: 200');
is(scalar @{$r->{json}{removed} || []}, 1, '... one entry removed');
is(call('DELETE', '/trl/lists/deny?address=203.0.113.7')->{status}, 404,
   '... again: 404');

$c = TRLCrowdSec::wait_for(20, sub {
    my $c = calls();
    return $c->{'del 203.0.113.7'} ? $c : undef;
}) || {};
ok($c->{'del 203.0.113.7'}, 'the bouncer\'s script: del 203.0.113.7')
    or diag($t->read_file('bouncer.log'));
is(scalar(grep { /^del / } keys %$c), 1, '... and nothing else deleted');

ok(TRLCrowdSec::wait_for(5, sub {
    $t->read_file($netset) eq "198.51.100.0/24\n203.0.113.50\n"
}), 'the netset file without it');
isnt((stat $netset)[1], $before[1], '... replaced (a new inode: rename)');
ok(!-e "$netset.tmp", '... no temporary file left');

$r = pull('');
is($r->{json}{new}, undef, 'our own next pull: nothing new');
is(join(' ', map { $_->{value} } @{$r->{json}{deleted} || []}),
   '203.0.113.7', '... 203.0.113.7 deleted');
is($r->{json}{deleted}[0]{duration}, '0s', '... removed before its time');

# a reload keeps what each bouncer was sent (the same shared memory)
my ($rc) = $t->reload;
is($rc, 0, 'reload');
is(pull('')->{body}, '{"deleted":null,"new":null}',
   'after the reload: nothing new for a bouncer that has it all');
is(scalar @{pull('?startup=true')->{json}{new}}, 2,
   '... startup=true: all again');

# --- a netset path that cannot be written ---------------------------------------

my $t2 = TRL->new;
$t2->write_config(<<'EOF');
    token_ratelimit_zone $binary_remote_addr zone=z:1m rate=2r/m;
    token_ratelimit_netset %%DIR%%/later/ban.netset interval=1s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /api/ { token_ratelimit_api; }
    }
EOF
$t2->run;
sleep 3.5;
my @lines = grep { /cannot write/ } split /\n/, $t2->error_log;
is(scalar @lines, 1, 'unwritable: one error line for the outage')
    or diag(join "\n", @lines);
like($lines[0] // '', qr/token_ratelimit_netset: cannot write ".*later\/ban\.netset": open\(.*\) failed/,
     '... naming the path and the failing call');
my $st = eval { $json->decode($t2->get('/api/crowdsec')->{body}) } || {};
ok($st->{netset}{failing_since}, 'the API: failing since');
like($st->{netset}{error} // '', qr/open/, '... with the error');
ok($st->{netset}{failures} >= 3, '... every tick counted');
mkdir $t2->dir . '/later';
chmod 0777, $t2->dir . '/later';
ok(TRLCrowdSec::wait_for(5, sub { -e $t2->dir . '/later/ban.netset' }),
   'written once the directory exists');
ok(TRLCrowdSec::wait_for(3, sub {
    $t2->error_log =~ /"[^"]+ban\.netset" written again/
}), '... said once');
$st = eval { $json->decode($t2->get('/api/crowdsec')->{body}) } || {};
is($st->{netset}{failing_since}, undef, '... the API: no longer failing');
$t2->stop;

$t->stop;
ok($t->no_alerts, 'no alerts');

done_testing;
