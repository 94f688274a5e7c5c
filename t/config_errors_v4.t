#!/usr/bin/perl
# Configuration errors of the newer directives and parameters (warn=,
# penalty=, dry_run, token_ratelimit_bypass / _deny / _enabled /
# _ipv6_prefix): "nginx -t" fails with a message that names the directive
# and the offending value; every documented valid form passes and runs.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

# Bad configurations are tested in a prefix of their own: their [emerg]
# lines land in its error.log, which no_alerts() must not see.
my $bad = TRL->new;

my $zone = 'token_ratelimit_zone $arg_k zone=z:1m rate=5r/m;';

sub srv { TRL::server_block(@_) }

sub fails { $bad->config_fails(@_) }

# --- warn= -------------------------------------------------------------------

for my $w ('0', '101%', 'abc', '0%', '%', '', '-1', '1.5', '80 %', '70000',
           '50%%', 'x%')
{
    fails($zone . srv("token_ratelimit zone=z \"warn=$w\";"),
          [qr/invalid value "warn=\Q$w\E" in "token_ratelimit" directive/],
          "warn=$w");
}

{
    my ($out) = fails($zone . srv('token_ratelimit zone=z warn=abc;'),
                      [qr/warn=abc" in "token_ratelimit" directive: expected a percentage of the rate's N \(1% to 100%\), a number of requests \(1 to N\) or off, such as 80% or 8/],
                      'warn=abc: says what is accepted (the words of the YAML twin)');
}

# above N: checked against the zone, also one defined further down
{
    my ($out, $conf) = fails($zone . srv('token_ratelimit zone=z warn=6;'),
          [qr/invalid value "warn=6" in "token_ratelimit" directive, it must not exceed the limit of zone "z" \(5r\/m\)/,
           qr/nginx\.conf:\d+/],
          'warn=6 above the limit 5');
    my @lines = split /\n/, $conf;
    my ($line) = grep { $lines[$_ - 1] =~ /warn=6/ } 1 .. @lines;
    like($out, qr/nginx\.conf:$line\b/, 'warn above N: names the line of the directive');
}

fails("token_ratelimit zone=later warn=4;\n" . srv('')
      . "token_ratelimit_zone \$arg_k zone=later:64k rate=3r/m;\n",
      [qr/"warn=4".*must not exceed the limit of zone "later"/],
      'warn above N of a zone defined further down (http level)');

fails($zone . srv('', 'token_ratelimit zone=z warn=100;'),
      [qr/"warn=100".*must not exceed the limit of zone "z"/],
      'warn above N at server level');

# --- penalty= -----------------------------------------------------------------

for my $p ('abc', '1s:0.5', '10s:2:5s', '1s:2:1h:1h:9', '', '0s', '0',
           '1s:abc', '1s::1h', '1s:2:', '1s:2:1h:', '1s:2:0s', '1s:0',
           '1s:1001', '1s:2.5.1', '1s:-2', 'xs', '1s:2:1h:0s', ':2')
{
    fails($zone . srv("token_ratelimit zone=z \"penalty=$p\";"),
          [qr/invalid value "penalty=\Q$p\E" in "token_ratelimit" directive/],
          "penalty=$p");
}

fails($zone . srv('token_ratelimit zone=z penalty=abc;'),
      [qr/BASE "abc": expected <N><unit> .*; a penalty is BASE\[:FACTOR\[:MAX\[:FORGIVE\]\]\] such as 30s:2:1h:24h/],
      'penalty=abc: says what is wrong and what is accepted');

# one grammar with the policy files: what one refuses, the other does
for my $p ('30s:2.', '1w', '30s:.5', '2M') {
    fails($zone . srv("token_ratelimit zone=z \"penalty=$p\";"),
          [qr/invalid value "penalty=\Q$p\E" in "token_ratelimit" directive: /],
          "penalty=$p (refused in policy files too)");
}

# A trailing ':' after the fourth part is a fifth (empty) part.
fails($zone . srv('token_ratelimit zone=z "penalty=1s:2:1h:1h:";'),
      [qr/invalid value "penalty=1s:2:1h:1h:" in "token_ratelimit" directive/],
      'penalty=1s:2:1h:1h: (trailing colon)');

# --- other token_ratelimit parameters -------------------------------------------

fails($zone . srv('token_ratelimit zone=z dry_run=on;'),
      [qr/invalid parameter "dry_run=on" in "token_ratelimit" directive/],
      'dry_run=on');

fails($zone . srv('token_ratelimit zone=z burst=5;'),
      [qr/"burst=5" in "token_ratelimit" directive.*warn=.*penalty=.*dry_run/],
      'unknown parameter: the message lists the new ones');

# --- token_ratelimit_ipv6_prefix -------------------------------------------------

for my $n ('0', '129', 'abc', '-1', '', '64k', '1000000000000000000000') {
    fails($zone . srv("token_ratelimit zone=z; token_ratelimit_ipv6_prefix \"$n\";"),
          [qr/invalid value "\Q$n\E" in "token_ratelimit_ipv6_prefix" directive/],
          "token_ratelimit_ipv6_prefix \"$n\"");
}

fails($zone . srv('token_ratelimit zone=z; token_ratelimit_ipv6_prefix 0;'),
      [qr/from 1 to 128/], 'token_ratelimit_ipv6_prefix 0: names the range');

fails($zone . srv('token_ratelimit zone=z; token_ratelimit_ipv6_prefix 48; '
                  . 'token_ratelimit_ipv6_prefix 56;'),
      [qr/"token_ratelimit_ipv6_prefix" directive is duplicate/],
      'token_ratelimit_ipv6_prefix twice');

fails($zone . srv('token_ratelimit zone=z; token_ratelimit_ipv6_prefix;'),
      [qr/invalid number of arguments in "token_ratelimit_ipv6_prefix" directive/],
      'token_ratelimit_ipv6_prefix without a value');

fails('', [qr/"token_ratelimit_ipv6_prefix" directive is not allowed here/],
      'token_ratelimit_ipv6_prefix in main',
      main => 'token_ratelimit_ipv6_prefix 64;');

# --- token_ratelimit_enabled -------------------------------------------------------

for my $v ('maybe', 'yes', '1', 'true') {
    fails($zone . srv("token_ratelimit zone=z; token_ratelimit_enabled $v;"),
          [qr/"\Q$v\E" in "token_ratelimit_enabled" directive/],
          "token_ratelimit_enabled $v");
}

fails($zone . srv('token_ratelimit zone=z; token_ratelimit_enabled;'),
      [qr/invalid number of arguments in "token_ratelimit_enabled" directive/],
      'token_ratelimit_enabled without a value');

fails($zone . srv('token_ratelimit zone=z; token_ratelimit_enabled on; '
                  . 'token_ratelimit_enabled off;'),
      [qr/"token_ratelimit_enabled" directive is duplicate/],
      'token_ratelimit_enabled twice');

# --- token_ratelimit_bypass / token_ratelimit_deny -----------------------------------

for my $d ('token_ratelimit_bypass', 'token_ratelimit_deny') {
    fails($zone . srv("token_ratelimit zone=z; $d;"),
          [qr/invalid number of arguments in "$d" directive/],
          "$d without a value");
    fails($zone . srv("token_ratelimit zone=z; $d \$nosuchvariable_x;"),
          [qr/unknown "nosuchvariable_x" variable/],
          "$d with an unknown variable");
    fails('', [qr/"$d" directive is not allowed here/], "$d in main",
          main => "$d 1;");
}

# --- valid configurations ---------------------------------------------------------

# Every parameter of token_ratelimit combined with the others: the syntax
# is "zone=NAME [count=..] [warn=..] [penalty=..] [dry_run]".
# (A directive declared NGX_CONF_TAKE12 would refuse any two optional
# parameters together: 'invalid number of arguments'.)
{
    my $ok = TRL->new;
    for my $params ('warn=3 penalty=1s', 'count=failed warn=80%',
                    'penalty=1s dry_run', 'warn=2 dry_run',
                    'count=succeeded penalty=30s:2:1h:24h',
                    'count=all warn=5 penalty=500ms:1.5 dry_run',
                    'dry_run penalty=1m:1000:1d warn=1% count=failed')
    {
        $ok->write_config($zone . srv("token_ratelimit zone=z $params;"));
        my ($rc, $out) = $ok->test_config;
        is($rc, 0, "token_ratelimit zone=z $params: nginx -t passes")
            or diag($out);
    }
}

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=z:1m rate=5r/m;
    token_ratelimit_zone $arg_k zone=one:64k rate=1r/m;

    # http level
    token_ratelimit_bypass $arg_nobody_sends_this;
    token_ratelimit_deny $arg_nobody_sends_this_either "";
    token_ratelimit_enabled on;
    token_ratelimit_ipv6_prefix 56;
    token_ratelimit zone=later warn=3;

    map $http_x_admin $is_admin { default 0; "secret" 1; }
    geo $blocked { default 0; 203.0.113.0/24 1; }

    server {
        listen 127.0.0.1:%%PORT%%;
        token_ratelimit_bypass $is_admin;
        token_ratelimit_deny $blocked;
        token_ratelimit_ipv6_prefix 1;
        token_ratelimit_enabled off;

        location / {
            token_ratelimit zone=z warn=1;
            token_ratelimit zone=one warn=100%;
            token_ratelimit_bypass $is_admin $arg_admin "${arg_y}$arg_z";
            token_ratelimit_deny $blocked $http_x_deny;
            token_ratelimit_ipv6_prefix 128;
            token_ratelimit_enabled on;
            empty_gif;
        }
        location /a { token_ratelimit zone=z warn=5; token_ratelimit zone=one dry_run;
                      token_ratelimit_enabled on; empty_gif; }
        location /b { token_ratelimit zone=z warn=1%; token_ratelimit zone=one penalty=30s:2:1h:24h;
                      token_ratelimit_enabled on; empty_gif; }
        location /c { token_ratelimit zone=z penalty=1m:1000:1d;
                      token_ratelimit_enabled on; empty_gif; }
        location /d { token_ratelimit zone=z penalty=2h:1:3h;
                      token_ratelimit_enabled on; empty_gif; }
        location /e { token_ratelimit zone=z penalty=500ms:1.5:2s:500ms;
                      token_ratelimit_enabled on; empty_gif; }
        location /f { token_ratelimit zone=z penalty=1s;
                      token_ratelimit_enabled on; empty_gif; }
        location /off { empty_gif; }
    }

    token_ratelimit_zone $arg_k zone=later:64k rate=3r/m;
EOF

{
    my ($rc, $out) = $t->test_config;
    is($rc, 0, 'valid configuration: nginx -t passes') or diag($out);
}
$t->run;

{
    my $r = $t->get('/?k=a');
    is($r->{status}, 200, 'valid configuration: serves');
    is($r->{headers}{'x-ratelimit-limit'}, 1, 'valid configuration: most restrictive zone');
    is($r->{headers}{'x-ratelimit-warning'}, '"z";used=1;limit=5, "one";used=1;limit=1',
       'valid configuration: warn=1 and warn=100% (of 1)');
    is($t->get('/off?k=a')->{headers}{'x-ratelimit-limit'}, undef,
       'valid configuration: token_ratelimit_enabled off at server level');
    is($t->get('/b?k=b')->{headers}{'x-ratelimit-limit'}, 1,
       'valid configuration: /b limited');
}

$t->stop;
$t->no_alerts;
done_testing;
