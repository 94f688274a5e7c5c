#!/usr/bin/perl

# CrowdSec "In" (issue 14 part 3): a REAL CrowdSec local API (crowdsec
# -no-cs, its own sqlite database in the test's prefix, no central API),
# the REAL crowdsec-custom-bouncer running scripts/trl-crowdsec-bouncer,
# which turns CrowdSec's decisions into runtime deny entries of our API.
#
# - cscli decisions add -i ADDR -d 1h: ADDR gets 403 on a limited location
#   (the client address through set_real_ip_from), an entry of origin
#   crowdsec:SCENARIO expiring in about an hour; another address passes
# - a range decision denies the addresses of the range
# - a captcha decision is left alone
# - cscli decisions delete: the address passes again; deleting the range
#   removes CrowdSec's entry only, not the operator's entry of the same
#   range
# - the bouncer restarting (every decision added again) leaves one entry
#   per decision, not two

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLCrowdSec;

for ($TRLCrowdSec::BOUNCER, $TRLCrowdSec::CROWDSEC, $TRLCrowdSec::CSCLI) {
    plan skip_all => "$_ is not installed (crowdsec, cscli and "
                     . "crowdsec-custom-bouncer are needed)"
        unless -x $_;
}

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $binary_remote_addr zone=login:1m rate=100r/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /login {
            token_ratelimit zone=login;
            empty_gif;
        }
        location /trl/ {
            token_ratelimit_api;
        }
    }
EOF
$t->run;

my $json = JSON::PP->new;
my $lapi = TRLCrowdSec::lapi($t);
my $cscli = $lapi->{cscli};
my $dir = $t->dir;

sub from {
    my ($addr) = @_;
    return $t->get('/login', headers => { 'X-Forwarded-For' => $addr })
        ->{status};
}

sub entries {
    my $r = $t->get('/trl/lists');
    return eval { $json->decode($r->{body}) } || [];
}

sub crowdsec_entries {
    my ($cidr) = @_;
    return [grep { $_->{cidr} eq $cidr && ($_->{origin} // '') =~ /^crowdsec:/ }
            @{entries()}];
}

is(from('198.51.100.9'), 200, 'before: 198.51.100.9 passes');

# the script's configuration: a file of the test's own
TRLCrowdSec::write_text("$dir/trl-crowdsec.conf",
    "# test\napi_url=http://127.0.0.1:" . $t->port . "/trl/\ntimeout=5\n");
$ENV{TRL_CROWDSEC_CONF} = "$dir/trl-crowdsec.conf";
delete $ENV{TRL_API_URL};

my $script = "$TRL::ROOT/scripts/trl-crowdsec-bouncer";
ok(-x $script, 'scripts/trl-crowdsec-bouncer is executable');

my $bouncer = TRLCrowdSec::bouncer($t, bin_path => $script,
                                   api_url => $lapi->{url},
                                   api_key => $lapi->{key});

# --- an address ----------------------------------------------------------------

my ($rc, $out) = $cscli->('decisions', 'add', '-i', '198.51.100.9', '-d',
                          '1h');
is($rc, 0, 'cscli decisions add -i 198.51.100.9 -d 1h') or diag($out);

ok(TRLCrowdSec::wait_for(20, sub { from('198.51.100.9') == 403 }),
   '198.51.100.9 gets 403 on the limited location')
    or diag($t->read_file('bouncer.log'));
is(from('198.51.100.10'), 200, '198.51.100.10 still passes');

my ($e) = @{crowdsec_entries('198.51.100.9/32')};
ok($e, 'a deny entry of origin crowdsec:...') or diag(explain(entries()));
like($e->{origin} // '', qr/^crowdsec:manual_'ban'_from_'trltest'$/,
     '... crowdsec: and the scenario, blanks made _');
ok($e && abs($e->{expires} - time - 3600) < 30,
   '... expiring in about an hour');

# --- a range, and a decision of another type -------------------------------------

is(call_api('POST', '/trl/lists/deny?cidr=192.0.2.0/24&ttl=2h'), 201,
   'an operator\'s own entry for 192.0.2.0/24');
($rc, $out) = $cscli->('decisions', 'add', '-r', '192.0.2.0/24', '-d', '30m',
                       '-R', 'trl/test-range');
is($rc, 0, 'cscli decisions add -r 192.0.2.0/24 -d 30m') or diag($out);
($rc, $out) = $cscli->('decisions', 'add', '-i', '198.51.100.20', '-t',
                       'captcha', '-d', '1h');
is($rc, 0, 'cscli decisions add -i 198.51.100.20 -t captcha') or diag($out);

ok(TRLCrowdSec::wait_for(20, sub {
    @{crowdsec_entries('192.0.2.0/24')} == 1
}), 'the range: a crowdsec entry') or diag(explain(entries()));
is(crowdsec_entries('192.0.2.0/24')->[0]{origin}, 'crowdsec:trl/test-range',
   '... of origin crowdsec:trl/test-range');
sleep 1.5;      # a pull after the captcha's
is(scalar(grep { $_->{cidr} eq '198.51.100.20/32' } @{entries()}), 0,
   'the captcha decision: left alone');
is(from('198.51.100.20'), 200, '... 198.51.100.20 passes');

# --- the bouncer restarting: every decision again -----------------------------------

kill 'TERM', $bouncer;
waitpid $bouncer, 0;
$bouncer = TRLCrowdSec::bouncer($t, name => 'bouncer2', bin_path => $script,
                                api_url => $lapi->{url},
                                api_key => $lapi->{key});
ok(TRLCrowdSec::wait_for(20, sub {
    $t->read_file('bouncer2.log') =~ /198\.51\.100\.9/
}), 'the bouncer restarted: decisions added again')
    or diag($t->read_file('bouncer2.log'));
sleep 1;
is(scalar @{crowdsec_entries('198.51.100.9/32')}, 1,
   '... one entry per decision still');

# --- deletion --------------------------------------------------------------------

($rc, $out) = $cscli->('decisions', 'delete', '-i', '198.51.100.9');
is($rc, 0, 'cscli decisions delete -i 198.51.100.9') or diag($out);
ok(TRLCrowdSec::wait_for(20, sub { from('198.51.100.9') == 200 }),
   '198.51.100.9 passes again')
    or diag($t->read_file('bouncer2.log'));
is(scalar @{crowdsec_entries('198.51.100.9/32')}, 0, '... its entry gone');

($rc, $out) = $cscli->('decisions', 'delete', '-r', '192.0.2.0/24');
is($rc, 0, 'cscli decisions delete -r 192.0.2.0/24') or diag($out);
ok(TRLCrowdSec::wait_for(20, sub {
    @{crowdsec_entries('192.0.2.0/24')} == 0
}), 'the range: CrowdSec\'s entry gone');
is(scalar(grep { $_->{cidr} eq '192.0.2.0/24' && $_->{origin} eq 'api' }
          @{entries()}), 1, '... the operator\'s entry kept');
is(from('192.0.2.55'), 403, '... and still denying');

$t->stop;
$t->no_alerts;

done_testing;

sub call_api {
    my ($method, $path) = @_;
    return $t->request(TRL::build_request($method, $path))->{status};
}
