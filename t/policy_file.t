#!/usr/bin/perl
# YAML policy files: token_ratelimit_policy_file PATH [environment=NAME] and
# token_ratelimit policy=NAME.  The environment is chosen by the directive,
# else by the file's environment: (with ${VAR:-default} taken from an
# "env VAR=value;" of nginx.conf, else from nginx's environment at start),
# else it is the file's only one.  Every policy field has its effect through
# nginx (rate, key, count, warn, penalty, dry_run, zone_size, ${...} in a
# value); enabled: and token_ratelimit_enabled switch them off; every error
# fails nginx -t with FILE:LINE:COLUMN (checked against the fixture) and the
# nginx.conf line; a reload re-reads the file and keeps the counts.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;

# The variables the fixtures use: none set unless a test sets it.
delete @ENV{qw(TRL_TEST_ENV TRL_TEST_RATE TRL_TEST_SWITCH TRL_TEST_UNSET TRL_TEST_PLAIN TRL_TEST_KEY
               ENABLE_RATE_LIMITING TRL_ENVIRONMENT)};

# --- helpers -------------------------------------------------------------------

# "LINE:COLUMN" (1-based) of the n-th (default first) occurrence of needle in
# text, plus the number of characters added (offset) to the column.
sub pos_of {
    my ($text, $needle, %o) = @_;
    my $nth = $o{nth} || 1;
    my $line = 0;
    for my $l (split /\n/, $text, -1) {
        $line++;
        my $i = -1;
        while (($i = index($l, $needle, $i + 1)) >= 0) {
            return "$line:" . ($i + 1 + ($o{offset} || 0)) unless --$nth;
        }
    }
    die "no \"$needle\" in fixture";
}

# The line of nginx.conf (as written) that holds needle.
sub conf_line {
    my ($t, $needle) = @_;
    my $n = 0;
    for (split /\n/, $t->read_file('nginx.conf')) {
        $n++;
        return $n if index($_, $needle) >= 0;
    }
    die "no \"$needle\" in nginx.conf";
}

# A fresh prefix with the given files and nginx.conf; started unless
# run => 0.  env => { VAR => value (undef: unset) } is nginx's environment.
sub setup {
    my (%o) = @_;
    my $t = TRL->new;
    $t->write_file($_, $o{files}{$_}) for keys %{$o{files} || {}};
    $t->write_config($o{http}, main => $o{main} || '');
    local %ENV = %ENV;
    for my $k (keys %{$o{env} || {}}) {
        if (defined $o{env}{$k}) {
            $ENV{$k} = $o{env}{$k};
        } else {
            delete $ENV{$k};
        }
    }
    if (exists $o{run} && !$o{run}) {
        my ($rc, $out) = $t->test_config;
        return ($t, $rc, $out);
    }
    $t->run;
    return $t;
}

sub server {
    my ($locations) = @_;
    return <<"EOF";
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[\$token_ratelimit_status]" always;
$locations
    }
EOF
}

sub st { $_[0]{headers}{'x-status'} // '(none)' }
sub lim { $_[0]{headers}{'x-ratelimit-limit'} // 'none' }
sub rem { $_[0]{headers}{'x-ratelimit-remaining'} // 'none' }

# n requests, their statuses joined with spaces.
sub statuses {
    my ($t, $path, $n, %o) = @_;
    return join ' ', map { $t->get($path, %o)->{status} } 1 .. $n;
}

# nginx -t fails with a policy file error at FILE:POS.
sub policy_error {
    my ($t, $rc, $out, $file, $pos, $what, $name) = @_;
    isnt($rc, 0, "$name: nginx -t fails");
    my $path = $t->dir . "/$file";
    like($out, qr/\[emerg\] "token_ratelimit_policy_file" directive: \Q$path:$pos: \E$what/,
         "$name: $file:$pos: message");
    my $line = conf_line($t, 'token_ratelimit_policy_file');
    like($out, qr/ in \Q${\ $t->dir}\E\/nginx\.conf:$line$/m,
         "$name: names nginx.conf:$line");
}

# --- the two-environment fixture ---------------------------------------------------

my $SEL = <<'EOF';
# two environments; TRL_TEST_ENV chooses (default development)
environment: ${TRL_TEST_ENV:-development}

defaults:
  key: $arg_k
  zone_size: 64k

environments:
  development:
    sel:
      rate: 5r/m
    devonly:
      rate: 7r/m
  production:
    sel:
      rate: 2r/m
EOF

my $SEL_HTTP = server(<<'EOF');
        location /sel { token_ratelimit policy=sel; empty_gif; }
EOF

sub sel_start {
    my (%o) = @_;
    my $dir = $o{directive} // '';
    return setup(files => { 'sel.yaml' => $SEL },
                 http => "    token_ratelimit_policy_file sel.yaml$dir;\n"
                         . ($o{http} // $SEL_HTTP),
                 main => $o{main}, env => $o{env});
}

# Which limit /sel has: 5 development, 2 production.
sub sel_limit {
    my ($t) = @_;
    my $r = $t->get('/sel?k=probe');
    return lim($r);
}

{
    my $t = sel_start();
    my $r = $t->get('/sel?k=a');
    is($r->{status}, 200, 'default environment: admitted');
    is(lim($r), 5, 'nothing set: ${TRL_TEST_ENV:-development} -> development (5r/m)');
    is(rem($r), 4, 'development: 4 left');
    is(statuses($t, '/sel?k=a', 5), '200 200 200 200 429',
       'development: the 6th request is rejected');
    is(st($t->get('/sel?k=a')), '[REJECTED]', 'development: REJECTED');
    is(st($t->get('/sel?k=b')), '[PASSED]', 'another key: PASSED');
    $t->stop;
    $t->no_alerts;
}

{
    my $t = sel_start(directive => ' environment=production');
    is(sel_limit($t), 2, 'environment=production on the directive: 2r/m');
    is(statuses($t, '/sel?k=a', 3), '200 200 429', 'production: 3rd rejected');
}

is(sel_limit(sel_start(main => 'env TRL_TEST_ENV=production;')), 2,
   'env TRL_TEST_ENV=production; in nginx.conf: production');
is(sel_limit(sel_start(env => { TRL_TEST_ENV => 'production' })), 2,
   "TRL_TEST_ENV=production in nginx's environment: production");
is(sel_limit(sel_start(env => { TRL_TEST_ENV => '' })), 5,
   'TRL_TEST_ENV empty: the default (development)');
is(sel_limit(sel_start(main => 'env TRL_TEST_ENV=development;',
                       env => { TRL_TEST_ENV => 'production' })), 5,
   "env TRL_TEST_ENV=development; wins over nginx's environment");
is(sel_limit(sel_start(directive => ' environment=production',
                       main => 'env TRL_TEST_ENV=development;',
                       env => { TRL_TEST_ENV => 'development' })), 2,
   'environment= on the directive wins over the file\'s environment:');
is(sel_limit(sel_start(directive => ' environment=development',
                       env => { TRL_TEST_ENV => 'production' })), 5,
   'environment=development on the directive, production in the environment');

# Policies of the other environment do not exist.
{
    my $http = server(<<'EOF');
        location /sel { token_ratelimit policy=sel; empty_gif; }
        location /dev { token_ratelimit policy=devonly; empty_gif; }
EOF
    my $t = sel_start(http => $http);
    is(lim($t->get('/dev?k=a')), 7, 'development: its own policy devonly (7r/m)');
    my ($t2, $rc, $out) = setup(
        files => { 'sel.yaml' => $SEL },
        http => "    token_ratelimit_policy_file sel.yaml environment=production;\n"
                . $http,
        run => 0);
    isnt($rc, 0, 'production has no policy devonly: nginx -t fails');
    like($out, qr/unknown policy "devonly" in "token_ratelimit" directive/,
         'production: unknown policy "devonly"');
    like($out, qr/\Q${\ $t2->dir}\E\/nginx\.conf:${\ conf_line($t2, 'policy=devonly')}$/m,
         'unknown policy: names the line of token_ratelimit');
}

# The only environment, with no environment: key, needs no choice.
{
    my $t = setup(files => { 'one.yaml' => <<'EOF' },
environments:
  staging:
    only:
      rate: 4r/m
      key: $arg_k
      zone_size: 64k
EOF
                  http => "    token_ratelimit_policy_file %%DIR%%/one.yaml;\n"
                          . server('        location /o { token_ratelimit policy=only; empty_gif; }'));
    is(lim($t->get('/o?k=a')), 4, 'the only environment (absolute path): 4r/m');
}

# --- every policy field, through nginx ------------------------------------------

my $FIELDS = <<'EOF';
environment: test
defaults:
  key: $http_x_key
  zone_size: 64k
environments:
  test:
    rate3:
      rate: 3r/m
    by_arg:
      rate: 2r/m
      key: $arg_k
    failed:
      rate: 2r/m
      count: failed
    succeeded:
      rate: 2r/m
      count: succeeded
    warned:
      rate: 4r/m
      warn: 50%
    warn_abs:
      rate: 4r/m
      warn: 3
    pen:
      rate: 1r/s
      penalty:
        base: 1s
        factor: 3
        max: 10s
        forgive: 1h
    dry:
      rate: 1r/m
      dry_run: true
    big:
      rate: 1r/m
      zone_size: 3m
    logs:
      rate: 1r/m
      log_rate: "off"
      log_key: hash
    subst:
      rate: ${TRL_TEST_RATE:-9r/m}
      key: "${TRL_TEST_KEY:-$arg_k}"
    plain_var:
      rate: ${TRL_TEST_PLAIN}
      key: $arg_k
EOF

{
    my $t = TRL->new;
    $t->write_file('fields.yaml', $FIELDS);
    $t->write_config("    token_ratelimit_policy_file fields.yaml;\n" . server(<<'EOF'),
        location /rate3     { token_ratelimit policy=rate3; empty_gif; }
        location /by_arg    { token_ratelimit policy=by_arg; empty_gif; }
        location /failed/   {
            token_ratelimit policy=failed;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%/;
        }
        location /succeeded/ {
            token_ratelimit policy=succeeded;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%/;
        }
        location /warned    { token_ratelimit policy=warned; empty_gif; }
        location /warn_abs  { token_ratelimit policy=warn_abs; empty_gif; }
        location /pen       { token_ratelimit policy=pen; empty_gif; }
        location /dry       { token_ratelimit policy=dry; empty_gif; }
        location /big       { token_ratelimit policy=big; empty_gif; }
        location /subst     { token_ratelimit policy=subst; empty_gif; }
        location /plain_var { token_ratelimit policy=plain_var; empty_gif; }
        location /logs      { token_ratelimit policy=logs; empty_gif; }
        location /trl-api   { token_ratelimit_api; }
        location /two {
            token_ratelimit policy=rate3;
            token_ratelimit policy=by_arg;
            empty_gif;
        }
EOF
        main => 'env TRL_TEST_RATE=6r/m;');
    $t->start_backend('BACKEND');
    {
        local $ENV{TRL_TEST_PLAIN} = '8r/m';
        $t->run;
    }
    my %x = (headers => { 'X-Key' => 'a' });
    my %y = (headers => { 'X-Key' => 'b' });

    # rate (and key from defaults)
    my $r = $t->get('/rate3', %x);
    is(lim($r), 3, 'rate: 3r/m -> X-RateLimit-Limit 3');
    is(statuses($t, '/rate3', 3, %x), '200 200 429', 'rate: the 4th request is rejected');
    is($t->get('/rate3', %y)->{status}, 200, 'key from defaults ($http_x_key): key b apart');
    $r = $t->get('/rate3');
    is(lim($r), 'none', 'key from defaults: no X-Key, empty key, not limited');
    is(st($r), '[]', 'empty key: status empty');

    # key of the policy overrides defaults
    is(statuses($t, '/by_arg?k=1', 3, %x), '200 200 429', 'key $arg_k: 3rd of k=1 rejected');
    is($t->get('/by_arg?k=2', %x)->{status}, 200,
       'key $arg_k: k=2 apart although X-Key is the same');

    # count: failed
    is(statuses($t, '/failed/?status=200', 5, %x), '200 200 200 200 200',
       'count=failed: successes do not count');
    is(rem($t->get('/failed/?status=200', %x)), 1,
       'count=failed: after 6 successes, 1 of 2 left (the request itself holds one)');
    is(statuses($t, '/failed/?status=401', 3, %x), '401 401 429',
       'count=failed: two failures use up the quota');
    is($t->get('/failed/?status=200', %x)->{status}, 429,
       'count=failed: then successes are rejected too');

    # count: succeeded
    is(statuses($t, '/succeeded/?status=401', 4, %x), '401 401 401 401',
       'count=succeeded: failures do not count');
    is(statuses($t, '/succeeded/?status=200', 3, %x), '200 200 429',
       'count=succeeded: two successes use up the quota');

    # warn: 50% of 4 = 2; warn: 3
    my @r = map { $t->get('/warned', %x) } 1 .. 5;
    is(join(' ', map { $_->{status} } @r), '200 200 200 200 429', 'warn 50%: rejection only at N');
    is(join(' ', map { st($_) } @r[0 .. 3]), '[PASSED] [WARNED] [WARNED] [WARNED]',
       'warn 50% of 4: warned from the 2nd place taken');
    is($r[0]{headers}{'x-ratelimit-warning'}, undef, 'warn: none below the threshold');
    is($r[1]{headers}{'x-ratelimit-warning'}, '"warned";used=2;limit=4',
       'warn: X-RateLimit-Warning names the policy');
    @r = map { $t->get('/warn_abs', %x) } 1 .. 4;
    is(join(' ', map { st($_) } @r), '[PASSED] [PASSED] [WARNED] [WARNED]',
       'warn: 3 (absolute)');
    is($r[3]{headers}{'x-ratelimit-warning'}, '"warn_abs";used=4;limit=4',
       'warn 3: used=4 on the 4th');
    like($t->error_log, qr/\[notice\].*warn/i, 'warn: logged at notice');

    # dry_run: true
    @r = map { $t->get('/dry', %x) } 1 .. 3;
    is(join(' ', map { $_->{status} } @r), '200 200 200', 'dry_run: nothing rejected');
    is(join(' ', map { st($_) } @r), '[PASSED] [REJECTED_DRY_RUN] [REJECTED_DRY_RUN]',
       'dry_run: REJECTED_DRY_RUN over the limit');
    is($r[1]{headers}{'retry-after'}, undef, 'dry_run: no Retry-After');

    # ${VAR:-default} in values: the rate from "env TRL_TEST_RATE=6r/m;",
    # the key from the default ($arg_k)
    $r = $t->get('/subst?k=s');
    is(lim($r), 6, 'rate: ${TRL_TEST_RATE:-9r/m} with env TRL_TEST_RATE=6r/m; -> 6');
    is(lim($t->get('/subst')), 'none', 'key: "${TRL_TEST_KEY:-$arg_k}" -> $arg_k (no k: not limited)');
    is(lim($t->get('/plain_var?k=v')), 8,
       "rate: \${TRL_TEST_PLAIN} from nginx's environment (8r/m)");

    # two policies in one location: both apply, the most restrictive shown
    $r = $t->get('/two?k=t', headers => { 'X-Key' => 't' });
    is(lim($r), 2, 'two policies: the most restrictive (by_arg, 2) shown');
    $t->get('/two?k=t', headers => { 'X-Key' => 't' });
    is($t->get('/two?k=t', headers => { 'X-Key' => 't' })->{status}, 429,
       'two policies: by_arg rejects the 3rd');
    is(rem($t->get('/rate3', headers => { 'X-Key' => 't' })), 0,
       'two policies: rate3 counted the two admitted (3rd at /rate3 leaves 0)');

    # penalty: base 1s, factor 3 -> blocks of 1 s, then 3 s
    my $k = { headers => { 'X-Key' => 'pen' } };
    is($t->get('/pen', %$k)->{status}, 200, 'penalty: 1st admitted (1r/s)');
    $r = $t->get('/pen', %$k);
    my $t0 = time;
    is($r->{status}, 429, 'penalty: 2nd rejected: violation 1');
    is($r->{headers}{'retry-after'}, 1, 'penalty: blocked 1 s');
    sleep 1.15 - (time - $t0);
    is($t->get('/pen', %$k)->{status}, 200, 'penalty: admitted after the 1 s block');
    $r = $t->get('/pen', %$k);
    $t0 = time;
    is($r->{status}, 429, 'penalty: rejected again: violation 2');
    is($r->{headers}{'retry-after'}, 3, 'penalty: blocked 3 s (1 s x 3)');
    sleep 1.5;
    $r = $t->get('/pen', %$k);
    is($r->{status}, 429, 'penalty: still blocked after 1.5 s although 1r/s would admit');
    cmp_ok($r->{headers}{'retry-after'} // 0, '>=', 1, 'penalty: Retry-After: the rest of the block');
    cmp_ok($r->{headers}{'retry-after'} // 9, '<=', 2, 'penalty: ... at most 2 s left');
    is($t->get('/pen', headers => { 'X-Key' => 'pen2' })->{status}, 200,
       'penalty: other keys are not blocked');

    # zone_size: the policy's zone is a shared memory mapping of that size
    # (3m) in the worker; the other policies' are 64k (from defaults)
    my ($w) = $t->worker_pids;
    my %sizes;
    no warnings 'portable';
    for (split /\n/, $t->read_file("/proc/$w/maps")) {
        my ($from, $to, $rest) = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/ or next;
        next unless $rest =~ m{^/dev/zero|^/SYSV|zero \(deleted\)|^/memfd};
        $sizes{hex($to) - hex($from)}++;
    }
    ok($sizes{3 * 1024 * 1024}, 'zone_size: 3m -> a 3 MiB shared mapping')
        or diag(join ' ', sort { $a <=> $b } keys %sizes);
    cmp_ok($sizes{64 * 1024} // 0, '>=', 10, 'zone_size: 64k from defaults for the others')
        or diag(join ' ', map { "$_ x$sizes{$_}" } sort { $a <=> $b } keys %sizes);
    is(lim($t->get('/big', %x)), 1, 'zone_size 3m: the policy works');

    # log_rate:, log_key: as the zone's log_rate=, log_key=
    is($t->get('/logs', %x)->{status}, 200, 'logs: admitted');
    is($t->get('/logs', %x)->{status}, 429, 'logs: then rejected');
    my $lz = eval { JSON::PP->new->decode($t->get('/trl-api/zones/logs')
                                            ->{body}) } || {};
    is($lz->{log_key}, 'hash', 'log_key: hash, as the API says');
    ok(exists $lz->{log_rate} && !defined $lz->{log_rate},
       'log_rate: off (API null)');
    my ($line) = grep { /limiting requests by zone "logs"/ }
                 split /\n/, $t->error_log;
    like($line // "", qr/key "[0-9a-f]{32}"/,
         'log_key: hash: the error log shows the key\'s hash')
        or diag($line);

    $t->stop;
    $t->no_alerts;
}

# --- the master switch -----------------------------------------------------------------

my $SWITCH = <<'EOF';
enabled: ${TRL_TEST_SWITCH:-true}
defaults:
  key: $arg_k
  zone_size: 64k
environments:
  only:
    sw:
      rate: 1r/m
EOF
my $OTHER = <<'EOF';
environments:
  only:
    other:
      rate: 1r/m
      key: $arg_k
      zone_size: 64k
EOF
my $SWITCH_HTTP = <<'EOF' . server(<<'EOF2');
    token_ratelimit_policy_file switch.yaml;
    token_ratelimit_policy_file other.yaml;
EOF
        location /sw    { token_ratelimit policy=sw; empty_gif; }
        location /other { token_ratelimit policy=other; empty_gif; }
        location /both  {
            token_ratelimit policy=other;
            token_ratelimit policy=sw;
            empty_gif;
        }
    }

    # the server's limit (other), and a location of its own (sw only)
    server {
        listen 127.0.0.1:%%PORT_B%%;
        add_header X-Status "[$token_ratelimit_status]" always;
        token_ratelimit policy=other;
        location /inherit { empty_gif; }
        location /own_sw  { token_ratelimit policy=sw; empty_gif; }
EOF2

sub switch_start {
    my (%o) = @_;
    return setup(files => { 'switch.yaml' => $o{file} || $SWITCH,
                            'other.yaml' => $OTHER },
                 http => $o{http} || $SWITCH_HTTP, main => $o{main},
                 env => $o{env});
}

# Off: never limited, no header fields, status empty.
sub is_off {
    my ($t, $path, $name, %o) = @_;
    my @r = map { $t->get($path, %o) } 1 .. 3;
    is(join(' ', map { $_->{status} } @r), '200 200 200', "$name: not limited");
    ok(!grep({ my $r = $_; grep { /^(x-ratelimit|ratelimit|retry-after)/ } keys %{$r->{headers}} } @r),
       "$name: no rate-limit header fields");
    is(st($r[0]), '[]', "$name: \$token_ratelimit_status empty");
}

sub is_on {
    my ($t, $path, $name, %o) = @_;
    is(statuses($t, $path, 2, %o), '200 429', "$name: limited (1r/m)");
}

{
    my $t = switch_start();
    my %b = (port => $t->port('B'));
    is_on($t, '/sw?k=a', '${TRL_TEST_SWITCH:-true} unset');
    is_on($t, '/own_sw?k=o', 'a location with policy=sw on its own', %b);
    is(lim($t->get('/own_sw?k=o2', %b)), 1, '... limited by sw only');
    is_on($t, '/inherit?k=i', 'a location inheriting the server\'s policy=other', %b);

    # A reload that turns the file off (env TRL_TEST_SWITCH=off;) and one
    # that turns it on again: the counts of sw are kept meanwhile.
    my ($rc, $out) = $t->reload($SWITCH_HTTP, main => 'env TRL_TEST_SWITCH=off;');
    is($rc, 0, 'reload: TRL_TEST_SWITCH=off') or diag($out);
    is_off($t, '/sw?k=a', 'after the reload with TRL_TEST_SWITCH=off');
    ($rc, $out) = $t->reload($SWITCH_HTTP);
    is($rc, 0, 'reload: TRL_TEST_SWITCH unset again') or diag($out);
    my $r = $t->get('/sw?k=a');
    is($r->{status}, 429, 'on again: key a still at its limit (count kept)');
    is(st($r), '[REJECTED]', 'on again: REJECTED');
    $t->stop;
    $t->no_alerts;
}
{
    my $t = switch_start(env => { TRL_TEST_SWITCH => 'false' });
    is_off($t, '/sw?k=a', "TRL_TEST_SWITCH=false in nginx's environment");
    is_on($t, '/other?k=a', 'TRL_TEST_SWITCH=false: the other file is still on');
    my $r = $t->get('/both?k=b');
    is(lim($r), 1, 'a location with both: the other file\'s policy applies');
    is($t->get('/both?k=b')->{status}, 429, '... and limits');

    # A location whose only token_ratelimit is a policy of the file that is
    # off has a (now empty) list of its own: it does not inherit the
    # server's limit (nginx convention: a level with token_ratelimit
    # directives uses only its own).
    my %b = (port => $t->port('B'));
    is_off($t, '/own_sw?k=o', 'policy=sw (off) alone in a location: nothing applies', %b);
    is_on($t, '/inherit?k=i', 'file off: the server\'s other policy still inherited', %b);
    $t->stop;
    $t->no_alerts;
}
{
    my $t = switch_start(main => 'env TRL_TEST_SWITCH=off;');
    is_off($t, '/sw?k=a', 'env TRL_TEST_SWITCH=off; in nginx.conf');
}
{
    my $t = switch_start(file => $SWITCH =~ s/\$\{TRL_TEST_SWITCH:-true\}/false/r);
    is_off($t, '/sw?k=a', 'enabled: false');
}
{
    my $t = switch_start(file => $SWITCH =~ s/\$\{TRL_TEST_SWITCH:-true\}/no/r);
    is_off($t, '/sw?k=a', 'enabled: no');
}
{
    my $http = <<'EOF' . server(<<'EOF2');
    token_ratelimit_policy_file switch.yaml;
    token_ratelimit_policy_file other.yaml;
    token_ratelimit_enabled off;
EOF
        location /sw    { token_ratelimit policy=sw; empty_gif; }
        location /other { token_ratelimit policy=other; empty_gif; }
        location /on    {
            token_ratelimit_enabled on;
            token_ratelimit policy=other;
            empty_gif;
        }
EOF2
    my $t = switch_start(http => $http);
    is_off($t, '/sw?k=a', 'token_ratelimit_enabled off (http)');
    is_off($t, '/other?k=a', 'token_ratelimit_enabled off: the other file too');
    is_on($t, '/on?k=a', 'token_ratelimit_enabled on in a location');
}

# --- defaults: merged with each policy; penalties across a reload -------------------

# defaults: gives a penalty (blocks of 1 s, factor 5); c_merged gives only
# max: 2s (merged key by key: base and factor from defaults), c_nopen
# cancels it (penalty: off), c_dry is a dry run (which never starts one).
my $PEN = <<'EOF';
environment: x
defaults:
  key: $arg_k
  zone_size: 64k
  rate: 1r/s
  penalty:
    base: 1s
    factor: 5
    max: 1h
environments:
  x:
    c_pen:
    c_merged:
      penalty: { max: 2s }
    c_nopen:
      penalty: off
    c_dry:
      dry_run: yes
      penalty: { base: 5s }
EOF

sub pen_http {
    return "    token_ratelimit_policy_file pen.yaml;\n" . server(<<'EOF');
        location /c_pen    { token_ratelimit policy=c_pen; empty_gif; }
        location /c_merged { token_ratelimit policy=c_merged; empty_gif; }
        location /c_nopen  { token_ratelimit policy=c_nopen; empty_gif; }
        location /c_dry    { token_ratelimit policy=c_dry; empty_gif; }
EOF
}

{
    my $t = setup(files => { 'pen.yaml' => $PEN }, http => pen_http());
    my %r;
    for my $p (qw(c_pen c_merged c_nopen c_dry)) {
        $r{$p} = [map { $t->get("/$p?k=a") } 1 .. 2];
    }
    my $t0 = time;      # every block and admission above is older
    is(lim($r{c_pen}[0]), 1, 'rate from defaults (1r/s)');
    is(join(' ', map { "$_:$r{$_}[1]{status}" } qw(c_pen c_merged c_nopen c_dry)),
       'c_pen:429 c_merged:429 c_nopen:429 c_dry:200', 'the 2nd request of each');
    is($r{c_pen}[1]{headers}{'retry-after'}, 1, 'c_pen: blocked 1 s (penalty of defaults)');
    is($r{c_merged}[1]{headers}{'retry-after'}, 1, 'c_merged: blocked 1 s (base from defaults)');
    is(st($r{c_dry}[1]), '[REJECTED_DRY_RUN]', 'c_dry: REJECTED_DRY_RUN');
    sleep $t0 + 1.2 - time;
    for my $p (qw(c_pen c_merged c_nopen c_dry)) {
        $r{$p} = [map { $t->get("/$p?k=a") } 1 .. 2];
    }
    is(join(' ', map { "$_:$r{$_}[0]{status}" } qw(c_pen c_merged c_nopen c_dry)),
       'c_pen:200 c_merged:200 c_nopen:200 c_dry:200', 'after 1.2 s: admitted again');
    is(st($r{c_dry}[0]), '[PASSED]', 'c_dry: PASSED, no penalty block from the dry run');
    is($r{c_pen}[1]{headers}{'retry-after'}, 5, 'c_pen: 2nd violation blocks 5 s (factor 5)');
    is($r{c_merged}[1]{headers}{'retry-after'}, 2,
       'c_merged: 2nd violation blocks 2 s (factor 5 of defaults, max 2s of its own)');
    is($r{c_nopen}[1]{status}, 429, 'c_nopen: rejected by the window');
    cmp_ok($r{c_nopen}[1]{headers}{'retry-after'} // 9, '<=', 1,
           'c_nopen: penalty: off, Retry-After only the window\'s');

    # The block of c_pen lives in the zone: a reload that raises the rate
    # to 100r/s keeps it.
    my $t1 = time;
    $t->write_file('pen.yaml', $PEN =~ s{rate: 1r/s}{rate: 100r/s}r);
    my ($rc, $out) = $t->reload();
    is($rc, 0, 'reload: rate 1r/s -> 100r/s') or diag($out);
    my $r = $t->get('/c_pen?k=a');
    is(lim($r), 100, 'after the reload: limit 100');
    is($r->{status}, 429, 'after the reload: key a still blocked by its penalty');
    cmp_ok($r->{headers}{'retry-after'} // 0, '>=', 4 - int(time - $t1 + 0.99),
           'after the reload: Retry-After the rest of the 5 s block');
    is($t->get('/c_pen?k=b')->{status}, 200, 'after the reload: another key admitted');

    # A changed key of a kept policy zone fails the reload, as it does for
    # token_ratelimit_zone; the running configuration goes on.
    my $log = length $t->error_log;
    my @old = $t->worker_pids;
    $t->write_file('pen.yaml', $PEN =~ s{key: \$arg_k}{key: \$arg_j}r);
    kill 'HUP', $t->master_pid;
    my $emerg;
    for (1 .. 100) {
        ($emerg) = substr($t->error_log, $log) =~ /^(.*\[emerg\].*)$/m;
        last if $emerg;
        sleep 0.05;
    }
    like($emerg // '', qr/"c_pen" uses the "\$arg_j" key while previously it used the "\$arg_k" key/,
         'changed key in the file: the reload fails, naming both keys');
    sleep 0.2;
    is(join(' ', $t->worker_pids), join(' ', @old), 'changed key: the old workers go on');
    is($t->get('/c_pen?k=a')->{status}, 429, 'changed key: old configuration, key a blocked');
    $t->stop;
    $t->no_alerts(qr/uses the "\$arg_j" key while previously it used/);
}

# --- errors ---------------------------------------------------------------------------------

sub err_setup {
    my ($files, $http, %o) = @_;
    $http //= "    token_ratelimit_policy_file bad.yaml;\n"
              . server('        location / { token_ratelimit policy=p; empty_gif; }');
    return setup(files => $files, http => $http, run => 0, %o);
}

sub bad_file {
    my ($yaml, $needle, $what, $name, %o) = @_;
    my ($t, $rc, $out) = err_setup({ 'bad.yaml' => $yaml }, $o{http},
                                   main => $o{main}, env => $o{env});
    policy_error($t, $rc, $out, 'bad.yaml', pos_of($yaml, $needle, %o),
                 $what, $name);
}

my $GOOD = <<'EOF';
environments:
  prod:
    p:
      rate: 5r/m
      key: $arg_k
      zone_size: 64k
EOF

# bad YAML: libyaml's problem mark
bad_file(<<'EOF', 'key:', qr/bad YAML: mapping values are not allowed in this context/,
environments:
  prod:
    p: key: $arg_k
      rate: 5r/m
EOF
    'bad YAML (a mapping value where not allowed)', offset => 3);

bad_file(<<'EOF', "\t", qr/bad YAML: found character that cannot start any token/,
environments:
  prod:
    p:
	  rate: 5r/m
EOF
    'bad YAML (a tab)');

bad_file(<<'EOF', '- 5r/m', qr/bad YAML: did not find expected key/,
environments:
  prod:
    p:
      rate: 5r/m
      - 5r/m
EOF
    'bad YAML (a sequence item inside a mapping)');

bad_file(<<'EOF', 'rate', qr/duplicate key "rate" \(first at line 4\); expected each key once per mapping/,
environments:
  prod:
    p:
      rate: 5r/m
      key: $arg_k
      rate: 6r/m
EOF
    'duplicate key', nth => 2);

bad_file(<<'EOF', 'count: some', qr/bad count "some" in policy "p" of environment "prod"; expected all, failed or succeeded/,
environment: dev
environments:
  dev:
    p: { rate: 5r/m, key: $arg_k }
  prod:
    p: { rate: 5r/m, key: $arg_k, count: some }
EOF
    'an error in the environment not chosen (every one is validated)', offset => 7);

bad_file(<<'EOF', '&a', qr/anchor &a is not supported/,
environments:
  dev: &a
    p: { rate: 5r/m, key: $arg_k }
  prod: *a
EOF
    'anchors refused');

bad_file(<<'EOF', '---', qr/a second YAML document; expected one document per policy file/,
environments:
  dev:
    p: { rate: 5r/m, key: $arg_k }
---
environments: {}
EOF
    'a second document');

bad_file("# nothing but a comment\n", '#', qr/the policy file is empty; expected a mapping with environments:/,
    'an empty file');

bad_file(<<'EOF', 'rte', qr/unknown key "rte" in policy "p" of environment "prod"; expected one of: rate, key, count, warn, penalty, dry_run, sync, zone_size/,
environments:
  prod:
    p:
      rte: 5r/m
      key: $arg_k
EOF
    'unknown policy key');

bad_file(<<'EOF', 'environmnts', qr/unknown key "environmnts" at the top level/,
environment: prod
environmnts:
  prod:
    p: { rate: 5r/m, key: $arg_k }
EOF
    'unknown top-level key');

bad_file(<<'EOF', 'facter', qr/unknown key "facter" in the penalty of policy "p"/,
environments:
  prod:
    p:
      rate: 5r/m
      key: $arg_k
      penalty:
        base: 1s
        facter: 2
EOF
    'unknown penalty key');

bad_file(<<'EOF', '5x/m', qr/bad rate "5x\/m" in policy "p" of environment "prod"; /,
environments:
  prod:
    p:
      rate: 5x/m
      key: $arg_k
EOF
    'bad rate');

bad_file(<<'EOF', '0r/m', qr/bad rate "0r\/m"/,
environments:
  prod:
    p:
      key: $arg_k
      rate:   0r/m
EOF
    'bad rate (0 requests)');

bad_file(<<'EOF', '${TRL_TEST_RATE}', qr/bad rate "abc" \(from "\$\{TRL_TEST_RATE\}"\)/,
environments:
  prod:
    p:
      key: $arg_k
      rate: ${TRL_TEST_RATE}
EOF
    'bad rate from a variable (env TRL_TEST_RATE=abc;)', main => 'env TRL_TEST_RATE=abc;');

bad_file(<<'EOF', '${TRL_TEST_UNSET}', qr/variable TRL_TEST_UNSET is not set; expected it in the environment \(or an env directive of nginx\.conf\) or a default: \$\{TRL_TEST_UNSET:-value\} \(in rate in policy "p" of environment "prod"\)/,
environments:
  prod:
    p:
      key: $arg_k
      rate: ${TRL_TEST_UNSET}
EOF
    'unset variable without default');

bad_file(<<'EOF', '${TRL_TEST_UNSET}', qr/variable TRL_TEST_UNSET is not set; .* \(in environment\)/,
environment: ${TRL_TEST_UNSET}
environments:
  prod:
    p: { rate: 5r/m, key: $arg_k }
EOF
    'unset variable in environment:');

bad_file(<<'EOF', 'warn: 5', qr/warn "5" is above the rate's 3 requests for policy "p"/,
environments:
  prod:
    p:
      key: $arg_k
      rate: 3r/m
      warn: 5
EOF
    'warn above N', offset => 6);

bad_file(<<'EOF', 'staging', qr/unknown environment "staging"; expected one of: dev, prod/,
environment: staging
environments:
  dev:
    p: { rate: 5r/m, key: $arg_k }
  prod:
    p: { rate: 2r/m, key: $arg_k }
EOF
    'unknown environment in environment:');

bad_file(<<'EOF', '${TRL_TEST_ENV:-prod}', qr/unknown environment "staging"; expected one of: dev, prod in /,
environment: ${TRL_TEST_ENV:-prod}
environments:
  dev:
    p: { rate: 5r/m, key: $arg_k }
  prod:
    p: { rate: 2r/m, key: $arg_k }
EOF
    'unknown environment from env TRL_TEST_ENV=staging;', main => 'env TRL_TEST_ENV=staging;');

bad_file(<<'EOF', 'environments', qr/no environment chosen among dev, prod/,
environments:
  dev:
    p: { rate: 5r/m, key: $arg_k }
  prod:
    p: { rate: 2r/m, key: $arg_k }
EOF
    'two environments and none chosen');

# environment=staging on the directive
{
    my $yaml = <<'EOF';
environment: prod
environments:
  dev:
    p: { rate: 5r/m, key: $arg_k }
  prod:
    p: { rate: 2r/m, key: $arg_k }
EOF
    my ($t, $rc, $out) = err_setup({ 'bad.yaml' => $yaml },
        "    token_ratelimit_policy_file bad.yaml environment=staging;\n"
        . server('        location / { token_ratelimit policy=p; empty_gif; }'));
    isnt($rc, 0, 'environment=staging on the directive: nginx -t fails');
    my $at = pos_of($yaml, 'environments:');
    like($out, qr/"token_ratelimit_policy_file" directive: \Q${\ $t->dir}\E\/bad\.yaml:$at: unknown environment "staging" \(requested by the caller\); expected one of: dev, prod in \Q${\ $t->dir}\E\/nginx\.conf:${\ conf_line($t, 'environment=staging')}$/m,
         "environment=staging: unknown environment at environments: ($at), nginx.conf line");
}

# zone_size too small (the module's check, with the policy's line)
bad_file(<<'EOF', 'zone_size', qr/bad zone_size "16k" in policy "p" of environment "prod"; expected at least 32k/,
environments:
  prod:
    p:
      rate: 5r/m
      key: $arg_k
      zone_size: 16k
EOF
    'zone_size too small', offset => 11);

# a missing file
{
    my ($t, $rc, $out) = err_setup({}, "    token_ratelimit_policy_file nowhere.yaml;\n"
                                       . server('        location / { empty_gif; }'));
    isnt($rc, 0, 'missing policy file: nginx -t fails');
    like($out, qr/"token_ratelimit_policy_file" directive: \Q${\ $t->dir}\E\/nowhere\.yaml: cannot open the policy file: No such file or directory in \Q${\ $t->dir}\E\/nginx\.conf:\d+/,
         'missing policy file: path relative to the conf prefix, reason');
}

# unknown policy; policy= before the file; policy= with another parameter;
# a bad parameter of token_ratelimit_policy_file
{
    my ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD },
        "    token_ratelimit_policy_file bad.yaml;\n"
        . server('        location / { token_ratelimit policy=x; empty_gif; }'));
    isnt($rc, 0, 'unknown policy: nginx -t fails');
    like($out, qr/\[emerg\] unknown policy "x" in "token_ratelimit" directive.* in \Q${\ $t->dir}\E\/nginx\.conf:${\ conf_line($t, 'policy=x')}$/m,
         'unknown policy "x": message and line');

    ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD },
        server('        location / { token_ratelimit policy=p; empty_gif; }')
        . "    token_ratelimit_policy_file bad.yaml;\n");
    isnt($rc, 0, 'policy= before the policy file: nginx -t fails');
    like($out, qr/unknown policy "p" in "token_ratelimit" directive, no "token_ratelimit_policy_file" is read before it/,
         'policy= before the file: says so');

    ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD },
        "    token_ratelimit_policy_file bad.yaml;\n"
        . server('        location / { token_ratelimit policy=p count=failed; empty_gif; }'));
    isnt($rc, 0, 'policy= with count=: nginx -t fails');
    like($out, qr/invalid parameter "count=failed" in "token_ratelimit" directive, "policy=" takes no other parameter/,
         'policy= takes no other parameter');

    ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD },
        "    token_ratelimit_policy_file bad.yaml env=prod;\n"
        . server('        location / { token_ratelimit policy=p; empty_gif; }'));
    isnt($rc, 0, 'token_ratelimit_policy_file env=prod: nginx -t fails');
    like($out, qr/invalid parameter "env=prod" in "token_ratelimit_policy_file" directive, expected "environment=name"/,
         'token_ratelimit_policy_file: bad parameter');
}

# name clashes: a token_ratelimit_zone of the policy's name (before or after
# the file), and two files with one policy name
{
    my $loc = server('        location / { token_ratelimit policy=p; empty_gif; }');
    my ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD },
        "    token_ratelimit_zone \$arg_k zone=p:64k rate=5r/m;\n"
        . "    token_ratelimit_policy_file bad.yaml;\n" . $loc);
    isnt($rc, 0, 'zone "p" then a policy "p": nginx -t fails');
    my $d = quotemeta $t->dir;
    like($out, qr/\[emerg\] zone "p" in "token_ratelimit_policy_file" directive is already defined in $d\/nginx\.conf:${\ conf_line($t, 'zone=p')} in $d\/nginx\.conf:${\ conf_line($t, 'token_ratelimit_policy_file')}$/m,
         'zone then policy: "already defined" at the zone\'s line, in the policy file\'s')
        or diag($out);

    ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD },
        "    token_ratelimit_policy_file bad.yaml;\n"
        . "    token_ratelimit_zone \$arg_k zone=p:64k rate=5r/m;\n" . $loc);
    isnt($rc, 0, 'policy "p" then zone "p": nginx -t fails');
    $d = quotemeta $t->dir;
    like($out, qr/\[emerg\] zone "p" in "token_ratelimit_zone" directive is already defined in $d\/nginx\.conf:${\ conf_line($t, 'token_ratelimit_policy_file')} in $d\/nginx\.conf:${\ conf_line($t, 'zone=p')}$/m,
         'policy then zone: "already defined" at the policy file\'s line, in the zone\'s')
        or diag($out);

    ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD, 'bad2.yaml' => $GOOD },
        "    token_ratelimit_policy_file bad.yaml;\n"
        . "    token_ratelimit_policy_file bad2.yaml;\n" . $loc);
    isnt($rc, 0, 'two files with a policy "p": nginx -t fails');
    $d = quotemeta $t->dir;
    like($out, qr/\[emerg\] zone "p" in "token_ratelimit_policy_file" directive is already defined in $d\/nginx\.conf:${\ conf_line($t, 'bad.yaml')} in $d\/nginx\.conf:${\ conf_line($t, 'bad2.yaml')}$/m,
         'two files: "already defined" at the first file\'s line, in the second\'s')
        or diag($out);

    # a limit_req_zone of the policy's name: nginx's own shared memory clash
    ($t, $rc, $out) = err_setup({ 'bad.yaml' => $GOOD },
        "    limit_req_zone \$arg_k zone=p:64k rate=5r/m;\n"
        . "    token_ratelimit_policy_file bad.yaml;\n" . $loc);
    isnt($rc, 0, 'limit_req_zone "p" and a policy "p": nginx -t fails');
    like($out, qr/shared memory zone "p" is already declared/,
         'limit_req_zone "p": nginx\'s own clash of shared memory zones');
}

# --- several policy files; reload -----------------------------------------------------------

my $A = <<'EOF';
environment: ${TRL_TEST_ENV:-dev}
defaults: { key: $arg_k, zone_size: 64k }
environments:
  dev:
    a_login: { rate: 4r/m }
    a_reg:   { rate: 6r/m }
  prod:
    a_login: { rate: 2r/m }
    a_reg:   { rate: 3r/m }
EOF
my $B = <<'EOF';
environments:
  dev:
    b_api: { rate: 8r/m, key: $arg_k, zone_size: 64k }
  prod:
    b_api: { rate: 5r/m, key: $arg_k, zone_size: 64k }
EOF

sub multi_http {
    my ($bdir) = @_;
    return <<"EOF" . server(<<'EOF2');
    token_ratelimit_policy_file pol/a.yaml;
    token_ratelimit_policy_file %%DIR%%/pol/b.yaml environment=$bdir;
    token_ratelimit_zone \$arg_k zone=plain:64k rate=7r/m;
EOF
        location /login { token_ratelimit policy=a_login; empty_gif; }
        location /reg   { token_ratelimit policy=a_reg; empty_gif; }
        location /api   { token_ratelimit policy=b_api; empty_gif; }
        location /plain { token_ratelimit zone=plain; empty_gif; }
        location /mixed {
            token_ratelimit policy=b_api;
            token_ratelimit zone=plain;
            token_ratelimit policy=a_reg;
            empty_gif;
        }
EOF2
}

{
    my $t = TRL->new;
    mkdir $t->dir . '/pol';
    $t->write_file('pol/a.yaml', $A);
    $t->write_file('pol/b.yaml', $B);
    $t->write_config(multi_http('prod'));
    {
        local $ENV{TRL_TEST_ENV} = 'prod';
        $t->run;
    }
    is(lim($t->get('/login?k=a')), 2, 'several files: a.yaml in prod (process environment)');
    is(lim($t->get('/reg?k=a')), 3, 'several files: a_reg prod 3r/m');
    is(lim($t->get('/api?k=a')), 5, 'several files: b.yaml prod (directive)');
    is(lim($t->get('/plain?k=a')), 7, 'several files: token_ratelimit_zone beside them');
    my $r = $t->get('/mixed?k=m');
    is(lim($r), 3, 'policies and a zone in one location: the most restrictive');
    is(statuses($t, '/mixed?k=m', 3), '200 200 429', 'mixed: a_reg (3r/m) rejects the 4th');
    is(rem($t->get('/api?k=m')), 1, 'mixed: b_api counted the 3 admitted');

    # the key "c" takes 2 of 2 at /login (prod), 3 of 5 at /api
    is(statuses($t, '/login?k=c', 3), '200 200 429', 'before reload: a_login 2r/m');
    is(statuses($t, '/api?k=c', 3), '200 200 200', 'before reload: 3 at b_api');

    # Reload: a.yaml raises a_login to 3r/m, b.yaml lowers b_api to 3r/m.
    # The process environment still says prod (the master's environment).
    my $A2 = $A =~ s/a_login: \{ rate: 2r\/m \}/a_login: { rate: 3r\/m }/r;
    my $B2 = $B =~ s/rate: 5r\/m/rate: 3r\/m/r;
    $t->write_file('pol/a.yaml', $A2);
    $t->write_file('pol/b.yaml', $B2);
    my @old = $t->worker_pids;
    my @cmd = ($TRL::NGINX, $t->nginx_args, '-s', 'reload');
    my $out = qx{@cmd 2>&1};
    is($? >> 8, 0, 'nginx -s reload with changed rates') or diag($out);
    my %old = map { $_ => 1 } @old;
    for (1 .. 200) {
        my @now = $t->worker_pids;
        last if @now && !grep({ $old{$_} } @now) && !grep({ kill 0, $_ } @old);
        sleep 0.05;
    }
    $r = $t->get('/login?k=c');
    is(lim($r), 3, 'after reload: a_login 3r/m (still prod: the master kept its environment)');
    is($r->{status}, 200, 'after reload: key c admitted once more (2 kept + 1)');
    is(rem($r), 0, 'after reload: a_login count kept, 0 left');
    is($t->get('/login?k=c')->{status}, 429, 'after reload: a_login rejects the 4th');
    $r = $t->get('/api?k=c');
    is($r->{status}, 429, 'after reload: b_api 3 kept >= 3r/m: rejected at once');
    is(lim($r), 3, 'after reload: b_api limit 3');
    is(lim($t->get('/plain?k=a')), 7, 'after reload: zone plain unchanged');

    # Reload with env TRL_TEST_ENV=dev; in nginx.conf: a.yaml switches to dev
    my ($rc, $o) = $t->reload(multi_http('prod'), main => 'env TRL_TEST_ENV=dev;');
    is($rc, 0, 'reload with env TRL_TEST_ENV=dev;') or diag($o);
    $r = $t->get('/login?k=c');
    is(lim($r), 4, 'after reload: a.yaml now dev, a_login 4r/m');
    is(rem($r), 0, 'a_login: the 3 kept + 1');

    # Reload with a changed zone_size: a fresh zone
    $t->write_file('pol/b.yaml',
                   $B2 =~ s/(rate: 3r\/m, key: \$arg_k, zone_size:) 64k/$1 128k/r);
    ($rc, $o) = $t->reload();
    is($rc, 0, 'reload with b_api zone_size 128k') or diag($o);
    $r = $t->get('/api?k=c');
    is($r->{status}, 200, 'changed zone_size: a fresh zone, key c admitted');
    is(rem($r), 2, 'changed zone_size: full quota (3) again');
    is($t->get('/login?k=c')->{status}, 429, 'a_login: count still kept');

    # A reload with a broken file fails; the running configuration goes on.
    my $log = length $t->error_log;
    $t->write_file('pol/a.yaml', "environments:\n  dev:\n    a_login: [\n");
    kill 'HUP', $t->master_pid;
    my $emerg;
    for (1 .. 100) {
        ($emerg) = substr($t->error_log, $log) =~ /^(.*\[emerg\].*)$/m;
        last if $emerg;
        sleep 0.05;
    }
    like($emerg // '', qr/"token_ratelimit_policy_file" directive: \Q${\ $t->dir}\E\/pol\/a\.yaml:\d+:\d+: bad YAML/,
         'reload with bad YAML: the master logs the position');
    sleep 0.2;
    is($t->get('/login?k=c')->{status}, 429, 'bad reload: the old configuration goes on');
    is(lim($t->get('/reg?k=new')), 6, 'bad reload: a_reg still dev 6r/m');

    $t->stop;
    $t->no_alerts(qr/a\.yaml:\d+:\d+: bad YAML/);
}

done_testing;
