#!/usr/bin/perl
# The policy file twins of token_ratelimit's reputation options:
#
#     scale: "tor:0.5,bad:0.2"
#     penalty_level: "bad:3"
#     deny_score: 80
#
# They act as the options do (the scaled N in the header fields, a 403 at
# the score, the first block at the level); a list a policy names must be
# declared with token_ratelimit_reputation_list, and the error names the
# policy and its line in the policy file; a bad value names the field.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $POLICY = <<'EOF';
environments:
  production:
    login:
      rate: 10r/m
      key: $binary_remote_addr
      scale: "tor:0.5,bad:0.2"
      deny_score: 80
    pen:
      rate: 1r/s
      key: $binary_remote_addr
      penalty: { base: 1s, factor: 2 }
      penalty_level: "bad:3"
EOF

my $t = TRL->new;
$t->write_file('policy.yaml', $POLICY);
$t->write_file('tor.txt', "198.51.100.0/24\n");
$t->write_file('bad.txt', "203.0.113.0/24\n");
$t->write_config(<<'EOF');
    token_ratelimit_policy_file %%DIR%%/policy.yaml;
    token_ratelimit_reputation size=1m;
    token_ratelimit_reputation_list tor file=%%DIR%%/tor.txt score=40;
    token_ratelimit_reputation_list bad file=%%DIR%%/bad.txt score=90;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;

    server {
        listen 127.0.0.1:%%PORT%%;
        location /login { token_ratelimit policy=login; empty_gif; }
        location /pen   { token_ratelimit policy=pen; empty_gif; }
    }
EOF
$t->run;

sub from {
    my ($path, $addr) = @_;
    return $t->get($path, headers => { 'X-Forwarded-For' => $addr });
}

my $r = from('/login', '198.51.100.3');
is($r->{status}, 200, 'scale: a tor source is admitted');
is($r->{headers}{'x-ratelimit-limit'}, 5, 'scale: N x 0.5');
is(from('/login', '45.33.32.1')->{headers}{'x-ratelimit-limit'}, 10,
   'an unlisted source: N');
is(from('/login', '203.0.113.3')->{status}, 403,
   'deny_score: 80: the bad source (score 90) is denied');

my @r = map { from('/pen', '203.0.113.4') } 1 .. 2;
is($r[1]{status}, 429, 'penalty_level: over the rate');
is($r[1]{headers}{'retry-after'}, 4, 'penalty_level: "bad:3": blocked 4s');
@r = map { from('/pen', '45.33.32.2') } 1 .. 2;
is($r[1]{headers}{'retry-after'}, 1, 'unlisted: blocked 1s');

$t->stop;
$t->no_alerts;

# --- errors -------------------------------------------------------------

my $bad = TRL->new;

sub policy_fails {
    my ($yaml, $res, $name, $lists) = @_;
    $bad->write_file('p.yaml', $yaml);
    $lists //= 'token_ratelimit_reputation size=1m;'
             . 'token_ratelimit_reputation_list tor;';
    return $bad->config_fails(<<"EOF", $res, $name);
    token_ratelimit_policy_file %%DIR%%/p.yaml;
    $lists
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { token_ratelimit policy=login; empty_gif; }
    }
EOF
}

my $head = "environments:\n  production:\n    login:\n      rate: 10r/m\n"
         . "      key: \$arg_k\n";

policy_fails($head . "      scale: \"nope:0.5\"\n",
    [qr/unknown reputation list "nope" in policy "login" in \S+p\.yaml:3, declare it with token_ratelimit_reputation_list/],
    'scale: names an undeclared list (the policy\'s line)');
policy_fails($head . "      penalty_level: \"nope:2\"\n",
    [qr/unknown reputation list "nope" in policy "login" in \S+p\.yaml:3/],
    'penalty_level: names an undeclared list');
policy_fails($head . "      deny_score: 50\n",
    [qr/"deny_score" in policy "login" in \S+p\.yaml:3 needs reputation lists/],
    'deny_score: without any list', '');
policy_fails($head . "      scale: \"tor:0\"\n",
    [qr/p\.yaml:6:\d+: .*scale/],
    'scale: with factor 0');
policy_fails($head . "      penalty_level: \"tor:31\"\n",
    [qr/p\.yaml:6:\d+: .*penalty_level/],
    'penalty_level: 31');
policy_fails($head . "      deny_score: 101\n",
    [qr/p\.yaml:6:\d+: .*deny_score/],
    'deny_score: 101');

done_testing;
