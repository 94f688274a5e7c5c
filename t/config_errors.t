#!/usr/bin/perl
# Configuration errors: "nginx -t" fails (exit status != 0) with a message
# that names the directive and the offending value; valid configurations
# (every documented form) pass and run.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

# Bad configurations are tested in a prefix of their own: their [emerg]
# lines land in its error.log, which no_alerts() must not see.
my $bad = TRL->new;

my $zone = 'token_ratelimit_zone $binary_remote_addr zone=z:1m rate=5r/m;';

sub srv { TRL::server_block(@_) }

sub fails { $bad->config_fails(@_) }

my $d_zone = qr/"token_ratelimit_zone"/;
my $d_limit = qr/"token_ratelimit"/;

# --- token_ratelimit_zone --------------------------------------------------

{
    my ($out, $conf) = fails($zone . srv('token_ratelimit zone=nosuch;'),
          [qr/unknown zone "nosuch" in "token_ratelimit" directive/,
           qr/nginx\.conf:\d+/], 'unknown zone');
    # the line named is the one of the token_ratelimit directive
    my @lines = split /\n/, $conf;
    my ($line) = grep { $lines[$_ - 1] =~ /zone=nosuch/ } 1 .. @lines;
    like($out, qr/nginx\.conf:$line\b/, 'unknown zone: names the line of the reference');
}

{
    my $http = "token_ratelimit_zone \$binary_remote_addr zone=dup:1m rate=5r/m;\n"
        . "token_ratelimit_zone \$http_x_key zone=dup:1m rate=6r/m;\n"
        . srv('token_ratelimit zone=dup;');
    my ($out, $conf) = fails($http,
          [qr/zone "dup" in "token_ratelimit_zone" directive is already defined in \S*nginx\.conf:\d+/],
          'duplicate zone');
    my @lines = split /\n/, $conf;
    my ($first) = grep { $lines[$_ - 1] =~ /zone=dup:1m rate=5r/ } 1 .. @lines;
    like($out, qr/already defined in \S*nginx\.conf:$first\b/,
         'duplicate zone: names the first definition');
}

# zone names fit the runtime lists' entries (63 bytes)
fails("token_ratelimit_zone \$binary_remote_addr zone=" . ('n' x 64)
      . ":1m rate=5r/m;\n",
      [qr/zone name in "zone=n{64}:1m" in "token_ratelimit_zone" directive is too long, it must be at most 63 bytes/],
      'zone name of 64 bytes');
{
    my $ok = TRL->new;
    $ok->write_config("token_ratelimit_zone \$binary_remote_addr zone="
                      . ('n' x 63) . ":1m rate=5r/m;\n");
    my ($rc, $out) = $ok->test_config;
    is($rc, 0, 'zone name of 63 bytes: nginx -t passes') or diag($out);
}

fails("token_ratelimit_zone \$binary_remote_addr zone=dup:1m rate=5r/m;\n"
      . "token_ratelimit_zone \$binary_remote_addr zone=dup:2m rate=5r/m;\n",
      [qr/"dup"/], 'duplicate zone of another size');

for my $rate ('abc', '0r/s', '5r/0m', '70000r/s', '5r/366d', '', '5', '5r',
              '5r/', '5r/x', 'r/s', '5x/s', '-1r/s', '5r/1.5m', '5r/10',
              '5r/sec', '5r/s/m', '1e3r/s', '5R/s')
{
    fails("token_ratelimit_zone \$binary_remote_addr zone=r:1m rate=$rate;\n",
          [qr/invalid rate "rate=\Q$rate\E" in "token_ratelimit_zone" directive/],
          "rate=$rate");
}

{
    my ($out) = fails("token_ratelimit_zone \$binary_remote_addr zone=r:1m rate=abc;\n",
                      [qr/: expected .*Nr\/s/], 'rate=abc: says what is accepted');
    ($out) = fails("token_ratelimit_zone \$binary_remote_addr zone=r:1m rate=0r/s;\n",
                   [qr/rate=0r\/s.*: \S/], 'rate=0r/s: says why');
    ($out) = fails("token_ratelimit_zone \$binary_remote_addr zone=r:1m rate=70000r/s;\n",
                   [qr/65535/], 'rate=70000r/s: names the maximum');
    ($out) = fails("token_ratelimit_zone \$binary_remote_addr zone=r:1m rate=5r/366d;\n",
                   [qr/365d/], 'rate=5r/366d: names the maximum window');

    # whatever is wrong, the message says what is accepted and the bounds
    for my $rate ('0r/s', '5r/0m', '70000r/s', '5r/366d', 'abc', '5r/x') {
        fails("token_ratelimit_zone \$binary_remote_addr zone=r:1m rate=$rate;\n",
              [qr{Nr/s, Nr/m, Nr/h, Nr/d or Nr/<count><unit> .*20r/15m.*1 <= N <= 65535 and 1s <= window <= 365d}],
              "rate=$rate: says what is accepted");
    }
}

fails("token_ratelimit_zone \$binary_remote_addr zone=r:1m;\n",
      [qr/"token_ratelimit_zone" directive must have a "rate=/], 'missing rate');

fails("token_ratelimit_zone \$binary_remote_addr rate=5r/m;\n",
      [qr/"token_ratelimit_zone" directive must have a "zone=/], 'missing zone=');

fails("token_ratelimit_zone \$binary_remote_addr zone=x:abc rate=5r/m;\n",
      [qr/"zone=x:abc" in "token_ratelimit_zone" directive/], 'bad zone size');

fails("token_ratelimit_zone \$binary_remote_addr zone=x rate=5r/m;\n",
      [qr/"zone=x" in "token_ratelimit_zone" directive/], 'zone without size');

fails("token_ratelimit_zone \$binary_remote_addr zone=:1m rate=5r/m;\n",
      [qr/"zone=:1m" in "token_ratelimit_zone" directive/], 'zone without name');

fails("token_ratelimit_zone \$binary_remote_addr zone=x:8k rate=5r/m;\n",
      [qr/"zone=x:8k" in "token_ratelimit_zone" directive is too small/],
      'zone too small');

fails("token_ratelimit_zone \$binary_remote_addr zone=x:1m rate=5r/m burst=5;\n",
      [qr/"burst=5" in "token_ratelimit_zone" directive/],
      'unknown parameter of token_ratelimit_zone');

fails("token_ratelimit_zone \$binary_remote_addr zone=x:1m rate=5r/m sync=bogus;\n",
      [qr/"sync=bogus" in "token_ratelimit_zone" directive/], 'bad sync mode');

fails("token_ratelimit_zone \"\" zone=x:1m rate=5r/m;\n",
      [qr/empty key in "token_ratelimit_zone" directive/], 'empty key');

fails("token_ratelimit_zone \$binary_remote_addr zone=x:1m;\n",
      [qr/$d_zone/], 'too few arguments');

for my $sync ('sync', 'sync=async', 'sync=strict') {
    fails("token_ratelimit_zone \$binary_remote_addr zone=s:1m rate=5r/m $sync;\n"
          . srv('token_ratelimit zone=s;'),
          [qr/"token_ratelimit_zone" "s" has "sync" but no "token_ratelimit_redis" is configured/],
          "$sync without token_ratelimit_redis");
}

fails($zone . srv('', 'token_ratelimit_zone $http_x_key zone=y:1m rate=5r/m;'),
      [qr/"token_ratelimit_zone" directive is not allowed here/],
      'token_ratelimit_zone in server');

fails($zone . srv('token_ratelimit_zone $http_x_key zone=y:1m rate=5r/m;'),
      [qr/"token_ratelimit_zone" directive is not allowed here/],
      'token_ratelimit_zone in location');

fails('', [qr/"token_ratelimit_zone" directive is not allowed here/],
      'token_ratelimit_zone in main',
      main => 'token_ratelimit_zone $pid zone=m:1m rate=5r/m;');

# --- token_ratelimit ---------------------------------------------------------

fails($zone . srv('token_ratelimit zone=z count=foo;'),
      [qr/"count=foo" in "token_ratelimit" directive/], 'bad count');

fails($zone . srv('token_ratelimit zone=z burst=5;'),
      [qr/"burst=5" in "token_ratelimit" directive/],
      'unknown parameter of token_ratelimit');

fails($zone . srv('token_ratelimit count=all;'),
      [qr/"token_ratelimit" directive must have a "zone=/], 'token_ratelimit without zone=');

fails($zone . srv('token_ratelimit zone=;'),
      [qr/"zone=" in "token_ratelimit" directive/], 'token_ratelimit zone= empty');

fails($zone . srv('token_ratelimit zone=z count=all nodelay;'),
      [qr/$d_limit/], 'token_ratelimit with too many arguments');

fails($zone . srv('token_ratelimit zone=z; token_ratelimit zone=z;'),
      [qr/zone "z"/, qr/"token_ratelimit"/], 'same zone twice in a location');

fails($zone . srv('', 'token_ratelimit zone=z; token_ratelimit zone=z count=failed;'),
      [qr/zone "z"/, qr/"token_ratelimit"/], 'same zone twice in a server');

fails($zone . "token_ratelimit zone=z;\ntoken_ratelimit zone=z;\n" . srv(''),
      [qr/zone "z"/, qr/"token_ratelimit"/], 'same zone twice in http');

fails($zone . srv('if ($arg_x) { token_ratelimit zone=z; }'),
      [qr/"token_ratelimit" directive is not allowed here/],
      'token_ratelimit in "if"');

fails('', [qr/"token_ratelimit" directive is not allowed here/],
      'token_ratelimit in main', main => 'token_ratelimit zone=z;');

fails("limit_req_zone \$binary_remote_addr zone=lr:1m rate=1r/s;\n"
      . srv('token_ratelimit zone=lr;'),
      [qr/"lr"/], 'token_ratelimit naming a limit_req zone');

# --- other directives --------------------------------------------------------

for my $status ('600', 'abc', '399', '200', '1000', '-429', '') {
    fails($zone . srv("token_ratelimit zone=z; token_ratelimit_status \"$status\";"),
          [qr/"\Q$status\E" in "token_ratelimit_status" directive/],
          "token_ratelimit_status \"$status\"");
}

fails($zone . srv('token_ratelimit zone=z; token_ratelimit_status 429; '
                  . 'token_ratelimit_status 503;'),
      [qr/"token_ratelimit_status" directive is duplicate/],
      'token_ratelimit_status twice');

for my $level ('debug', 'crit', 'warning', 'err', 'abc') {
    fails($zone . srv("token_ratelimit zone=z; token_ratelimit_log_level $level;"),
          [qr/"\Q$level\E" in "token_ratelimit_log_level" directive/],
          "token_ratelimit_log_level $level");
}

for my $h ('yes', 'x', 'ietf,on', 'true') {
    fails($zone . srv("token_ratelimit zone=z; token_ratelimit_headers $h;"),
          [qr/"\Q$h\E" in "token_ratelimit_headers" directive/],
          "token_ratelimit_headers $h");
}

for my $v ('maybe', 'yes', '1') {
    fails($zone . srv("token_ratelimit zone=z; token_ratelimit_dry_run $v;"),
          [qr/"\Q$v\E" in "token_ratelimit_dry_run" directive/],
          "token_ratelimit_dry_run $v");
}

for my $d ('token_ratelimit_status', 'token_ratelimit_log_level',
           'token_ratelimit_headers', 'token_ratelimit_dry_run')
{
    fails($zone . srv("token_ratelimit zone=z; $d;"),
          [qr/invalid number of arguments in "$d" directive/],
          "$d without a value");
}

# --- valid configurations ----------------------------------------------------

my $t = TRL->new;

my @rates = ('10r/s', '10r/m', '10r/h', '10r/d', '20r/15m', '3r/5m', '100r/1h',
             '5r/30s', '1r/1s', '65535r/s', '1r/365d', '2r/3s');
my $zones = '';
for my $i (0 .. $#rates) {
    $zones .= "    token_ratelimit_zone \$arg_k zone=v$i:1m rate=$rates[$i];\n";
}

$t->write_config(<<"EOF" . $zones);
    # referenced before it is defined, at http level
    token_ratelimit zone=later;
    token_ratelimit_status 503;
    token_ratelimit_log_level warn;
    token_ratelimit_dry_run off;
    token_ratelimit_headers both;

    server {
        listen 127.0.0.1:%%PORT%%;
        token_ratelimit zone=later count=failed;
        token_ratelimit zone=v0 count=succeeded;
        token_ratelimit_status 400;
        token_ratelimit_log_level info;
        token_ratelimit_headers ietf;

        location / {
            token_ratelimit zone=v0;
            token_ratelimit zone=v1 count=all;
            token_ratelimit zone=v2 count=failed;
            token_ratelimit zone=v3 count=succeeded;
            token_ratelimit zone=v4;
            token_ratelimit zone=v5;
            token_ratelimit zone=v6;
            token_ratelimit zone=v7;
            token_ratelimit zone=v8;
            token_ratelimit zone=v9;
            token_ratelimit zone=v10;
            token_ratelimit zone=v11;
            token_ratelimit_status 599;
            token_ratelimit_log_level notice;
            token_ratelimit_dry_run on;
            token_ratelimit_headers on;
            empty_gif;
        }
        location /off { token_ratelimit_headers off; token_ratelimit_log_level error;
                        token_ratelimit_status 429; empty_gif; }
        location /cases { token_ratelimit_headers IETF; token_ratelimit_log_level WARN;
                          token_ratelimit_dry_run OFF; empty_gif; }
    }

    token_ratelimit_zone \$binary_remote_addr zone=later:64k rate=5r/m;
    token_ratelimit_zone "\$binary_remote_addr:\$http_x_client_id" zone=multi:1m rate=1r/s;
    token_ratelimit_zone \$cookie_x zone=cookie:1m rate=1r/s;
EOF

{
    my ($rc, $out) = $t->test_config;
    is($rc, 0, 'valid configuration: nginx -t passes') or diag($out);
}
$t->run;

{
    my $r = $t->get('/?k=a');
    is($r->{status}, 200, 'valid configuration: serves');
    is($r->{headers}{'x-ratelimit-limit'}, 1, 'valid configuration: most restrictive zone (1r/1s)');
    $r = $t->get('/off');
    is($r->{status}, 200, 'valid configuration: /off serves');
    ok(!defined $r->{headers}{'x-ratelimit-limit'} && !defined $r->{headers}{'ratelimit'},
       'valid configuration: headers off');
    $r = $t->get('/cases?k=c');
    like($r->{headers}{'ratelimit-policy'} // '', qr/^"later";q=5;w=60, "v0";q=10;w=1$/,
         'valid configuration: inherited server-level zones, IETF (values are case-insensitive)');
}

$t->stop;
$t->no_alerts;
done_testing;
