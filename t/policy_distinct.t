#!/usr/bin/perl
# YAML policy twins of distinct zones: "distinct: $var" in a policy (or in
# defaults:, cancelled by "distinct: off") makes its zone count distinct
# values per key, as token_ratelimit_zone's distinct= does, through nginx:
# - a policy of 3 distinct users per address: the 4th user is rejected, a
#   counted user passes again, other addresses are counted apart; a policy
#   with "distinct: off" counts requests;
# - with token_ratelimit_redis and token_ratelimit_distinct_secret a
#   "sync: strict" distinct policy decides in Redis (a sorted set per key);
# - nginx -t: sync: strict or async without the secret, N > 1000 and a
#   value without variables fail, with FILE:LINE:COLUMN for the core's; a
#   sync: async distinct policy with the secret passes.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;
use TRLRedis;

my $yaml = <<'EOF';
defaults:
  key: $http_x_client
  distinct: $trl_user
environments:
  production:
    users_per_ip: { rate: 3r/10m }
    plain: { rate: 2r/m, distinct: off }
    strict_users: { rate: 2r/10m, sync: strict }
EOF

my $t = TRL->new;
my $redis = TRLRedis->new(port => $t->port('REDIS'));
my $raddr = $redis->address;
$t->write_file('policies.yaml', $yaml);
$t->write_config(<<"EOF");
    token_ratelimit_subject \$trl_user from=arg:user case=lower;
    token_ratelimit_distinct_secret 0123456789abcdef-secret;
    token_ratelimit_redis $raddr timeout=2s;
    token_ratelimit_policy_file policies.yaml;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /login  { token_ratelimit policy=users_per_ip; empty_gif; }
        location /plain  { token_ratelimit policy=plain; empty_gif; }
        location /strict { token_ratelimit policy=strict_users; empty_gif; }
    }
EOF
my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t passes') or diag($out);
like($t->error_log, qr/token_ratelimit_zone "users_per_ip" counts at most 3 distinct values of "\$trl_user" per key/,
     'nginx -t states the distinct policy\'s memory');
$t->run;

sub login {
    my ($path, $client, $user) = @_;
    return $t->get("$path?user=$user", headers => { 'X-Client' => $client })
        ->{status};
}

is(join(' ', map { login('/login', 'a', "u$_") } 1 .. 5),
   '200 200 200 429 429',
   'distinct policy: 3 users per address, the 4th is rejected');
is(login('/login', 'a', 'U2'), 200, 'a counted user passes again');
is(login('/login', 'b', 'u9'), 200, 'another address is counted apart');
is(join(' ', map { login('/plain', 'a', 'same') } 1 .. 3), '200 200 429',
   'distinct: off counts requests (2r/m)');

is(join(' ', map { login('/strict', 'c', "s$_") } 1 .. 3), '200 200 429',
   'sync: strict distinct policy: 2 users, the 3rd is rejected');
is($redis->cli('ZCARD', TRLRedis::key_name('strict_users', 'c')), 2,
   'sync: strict: Redis holds the 2 users in the key\'s sorted set');

$t->stop;
$t->no_alerts;

# --- nginx -t ----------------------------------------------------------------

sub fails {
    my ($policy, $re, $name, $secret) = @_;
    my $t2 = TRL->new;
    $t2->write_file('p.yaml', "environments:\n  e:\n    p: $policy\n");
    $t2->config_fails(<<"EOF", [$re], $name);
    @{[ $secret ? "token_ratelimit_distinct_secret $secret;" : '' ]}
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_policy_file p.yaml;
    server { listen 127.0.0.1:%%PORT%%; }
EOF
}

fails('{ rate: 2r/m, key: $k, distinct: $u, sync: strict }',
      qr/"token_ratelimit_zone" "p" in \S+:\d+ has "distinct=" and "sync=strict" but no "token_ratelimit_distinct_secret" is configured/,
      'strict without the secret');
fails('{ rate: 2r/m, key: $k, distinct: $u, sync: async }',
      qr/"token_ratelimit_zone" "p" in \S+:\d+ has "distinct=" and "sync=async" but no "token_ratelimit_distinct_secret" is configured/,
      'async without the secret');
{
    my $t2 = TRL->new;
    $t2->write_file('p.yaml', "environments:\n  e:\n    p: { rate: 2r/m, "
                    . "key: \$http_x_k, distinct: \$http_x_u, sync: async }\n");
    $t2->write_config(<<"EOF");
    token_ratelimit_distinct_secret a-secret-of-16-bytes;
    token_ratelimit_redis 127.0.0.1:1;
    token_ratelimit_policy_file p.yaml;
    server { listen 127.0.0.1:%%PORT%%; }
EOF
    my ($rc, $o) = $t2->test_config;
    is($rc, 0, 'sync: async distinct policy with the secret passes nginx -t')
        or diag($o);
}
fails('{ rate: 1001r/m, key: $k, distinct: $u }',
      qr/p\.yaml:3:16: rate "1001r\/m" of policy "p" of environment "e" counts distinct values .*expected at most 1000/,
      'N above 1000');
fails('{ rate: 2r/m, key: $k, distinct: user }',
      qr/p\.yaml:3:41: bad distinct "user" in policy "p" of environment "e"; expected an nginx string with variables/,
      'no variables');

done_testing;
