#!/usr/bin/perl
# token_ratelimit_event_log format=json|ecs: the lines the module writes
# checked against the field tables of docs/events.md, read from that file
# so that the docs and the code cannot drift apart.
#
# - the same traffic through a format=json and a format=ecs server: every
#   event the module can provoke here (rejected, rejected_dry_run, penalty,
#   distinct_exceeded, denied (deny, deny entry), unavailable, suppressed)
#   in both formats
# - each line: every field documented, of its documented type, only in the
#   events its row names, and every field marked "always" present
# - ECS: event.action/kind/type/outcome as the classification table says;
#   the ECS line carries the native line's values under ECS names
# - every documented field (but those of extra events only) was written
# - keys: user.hash for subject keys with log_key=on|hash (the key_hash
#   itself with hash), none for mask, off and address keys; a hidden or
#   masked key is nowhere in the ECS file
# - nginx -t: format= takes json or ecs, named in the error
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep);
use TRL;
use TRLEventDoc;

# --- the tables of docs/events.md (t/lib/TRLEventDoc.pm) ---------------------

my %FIELDS = (json => TRLEventDoc::fields('json'),
              ecs => TRLEventDoc::fields('ecs'));
ok(keys %{$FIELDS{json}} >= 30 && keys %{$FIELDS{ecs}} >= 40,
   'docs/events.md: both field tables read')
    or diag(explain \%FIELDS);
my $CLASS = TRLEventDoc::classes();
ok($CLASS->{rejected} && $CLASS->{penalty} && $CLASS->{attack_mode},
   'docs/events.md: classification read');

*flatten = \&TRLEventDoc::flatten;

# --- the module's lines ------------------------------------------------------

my $t = TRL->new;
my $dead = TRL::free_port();        # no Redis there: fail=closed answers 503
my $udp = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Proto => 'udp')
    or die "udp listener: $!";
my $SYSLOG = $udp->sockport;

$t->write_config(<<"EOF");
    token_ratelimit_zone \$http_x_key zone=login:1m rate=2r/m;
    token_ratelimit_zone \$http_x_key zone=pen:1m rate=1r/m;
    token_ratelimit_zone \$http_x_key zone=dry:1m rate=1r/m;
    token_ratelimit_zone \$http_x_key zone=hid:1m rate=1r/m log_key=off;
    token_ratelimit_zone \$http_x_key zone=hsh:1m rate=1r/m log_key=hash;
    token_ratelimit_zone \$http_x_key zone=msk:1m rate=1r/m log_key=mask;
    token_ratelimit_zone \$binary_remote_addr zone=addr:1m rate=1r/m;
    token_ratelimit_zone \$http_x_client zone=stuff:1m rate=2r/10m
                         distinct=\$arg_user;
    token_ratelimit_zone \$http_x_key zone=flood:1m rate=1r/m;
    token_ratelimit_zone \$http_x_key zone=st:1m rate=5r/m sync=strict;
    token_ratelimit_zone \$http_x_key zone=sys:1m rate=1r/m;
    token_ratelimit_redis 127.0.0.1:$dead timeout=200ms fail=closed;

    server {
        listen 127.0.0.1:%%PORT%%;
        token_ratelimit_event_log logs/events.json;
        include locations.conf;
        location /flood { token_ratelimit zone=flood;
                          token_ratelimit_event_log logs/events.json rate=1;
                          empty_gif; }
        location /api { token_ratelimit_api; }
    }

    server {
        listen 127.0.0.1:%%PORT_ECS%%;
        token_ratelimit_event_log logs/events.ecs format=ecs;
        include locations.conf;
        location /flood { token_ratelimit zone=flood;
                          token_ratelimit_event_log logs/events.ecs rate=1
                                                    format=ecs;
                          empty_gif; }
        location /sys { token_ratelimit zone=sys;
                        token_ratelimit_event_log syslog:server=127.0.0.1:$SYSLOG,tag=token_ratelimit
                                                  format=ecs;
                        empty_gif; }
    }
EOF
$t->write_file('locations.conf', <<'EOF');
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    location /login { token_ratelimit zone=login; empty_gif; }
    location /pen   { token_ratelimit zone=pen penalty=30s; empty_gif; }
    location /dry   { token_ratelimit zone=dry dry_run; empty_gif; }
    location /hid   { token_ratelimit zone=hid; empty_gif; }
    location /hsh   { token_ratelimit zone=hsh; empty_gif; }
    location /msk   { token_ratelimit zone=msk; empty_gif; }
    location /addr/ { token_ratelimit zone=addr; empty_gif; }
    location /stuff { token_ratelimit zone=stuff; empty_gif; }
    location /st    { token_ratelimit zone=st; empty_gif; }
    location /deny  { token_ratelimit zone=login;
                      token_ratelimit_deny $http_x_deny; empty_gif; }
EOF
$t->run;

my %PORT = (json => $t->port, ecs => $t->port('ECS'));
my %FILE = (json => 'logs/events.json', ecs => 'logs/events.ecs');

# The same traffic into one format's server; keys and addresses carry the
# format's name (the zones are shared).
sub traffic {
    my ($fmt) = @_;
    my $port = $PORT{$fmt};
    my $n = $fmt eq 'json' ? 1 : 2;
    my $get = sub {
        my ($path, %h) = @_;
        $h{'X-Real-IP'} //= "192.0.2.$n";
        return $t->get($path, port => $port, headers => \%h)->{status};
    };
    my @st;
    push @st, $get->('/login', 'X-Key' => "alice-$fmt") for 1 .. 3;
    push @st, $get->('/pen', 'X-Key' => "pete-$fmt") for 1 .. 3;
    push @st, $get->('/dry', 'X-Key' => "dora-$fmt") for 1 .. 2;
    push @st, $get->('/hid', 'X-Key' => "topsecret-$fmt") for 1 .. 2;
    push @st, $get->('/hsh', 'X-Key' => "hashme-$fmt") for 1 .. 2;
    push @st, $get->('/msk', 'X-Key' => "maskedsecret-$fmt") for 1 .. 2;
    push @st, $get->('/addr/' . ('u' x 600), 'X-Real-IP' => "198.51.100.$n")
        for 1 .. 2;
    push @st, $get->('/login', 'X-Key' => "bin\x01\x7f-$fmt") for 1 .. 3;
    push @st, $get->('/login', 'X-Key' => ('k' x 300) . $fmt) for 1 .. 3;
    push @st, $get->("/stuff?user=u$_", 'X-Client' => "stuffer-$fmt")
        for 1 .. 3;
    push @st, $get->('/deny', 'X-Key' => "dan-$fmt", 'X-Deny' => 1);
    push @st, $get->('/st', 'X-Key' => "sam-$fmt");
    # three rejections within a second at rate=1: two are suppressed, and
    # reported before the next line of the zone
    my $now = Time::HiRes::time();
    sleep(int($now) + 1.05 - $now);
    push @st, $get->('/flood', 'X-Key' => "fred-$fmt") for 1 .. 4;
    sleep 1.1;
    push @st, $get->('/flood', 'X-Key' => "fred-$fmt");
    return join ' ', @st;
}

my $want = '200 200 429 200 429 429 200 200 200 429 200 429 200 429 200 429 '
         . '200 200 429 200 200 429 200 200 429 403 503 200 429 429 429 429';
is(traffic('json'), $want, 'json: the traffic answered as planned');
is($t->post("/api/lists/deny?address=192.0.2.66", '')->{status}, 201,
   'API: deny an address');
is($t->get('/login', port => $PORT{json},
           headers => { 'X-Real-IP' => '192.0.2.66' })->{status}, 403,
   'json: a deny entry');
is(traffic('ecs'), $want, 'ecs: the traffic answered as planned');
is($t->get('/login', port => $PORT{ecs},
           headers => { 'X-Real-IP' => '192.0.2.66' })->{status}, 403,
   'ecs: a deny entry');
sleep 0.2;

my $json = JSON::PP->new->utf8;
my (%lines, %raw);
for my $fmt ('json', 'ecs') {
    $raw{$fmt} = $t->read_file($FILE{$fmt});
    $lines{$fmt} = [map { $json->decode($_) } split /\n/, $raw{$fmt}];
}

# --- every line against its table ---------------------------------------------

my %seen_field;
for my $fmt ('json', 'ecs') {
    my $fields = $FIELDS{$fmt};
    my (@bad, %events);
    for my $line (@{$lines{$fmt}}) {
        $events{TRLEventDoc::event_of($fmt, $line) // '?'}++;
        $seen_field{$fmt}{$_}++ for keys %{flatten($line)};
        push @bad, TRLEventDoc::problems($fmt, $line);
    }
    ok(!@bad, "$fmt: every line matches docs/events.md")
        or diag(join "\n", @bad);
    is_deeply([sort keys %events], [sort keys %TRLEventDoc::DECIDED],
              "$fmt: every event the test provokes was written")
        or diag(explain \%events);

    my @unseen = grep {
        my $ev = $fields->{$_}{events};
        !$seen_field{$fmt}{$_} && !(keys %$ev == 1 && $ev->{extra});
    } sort keys %$fields;
    ok(!@unseen, "$fmt: every documented field was written")
        or diag("never written: @unseen");
}

# --- ECS: classification, and the native values under ECS names ---------------

my @ecs = @{$lines{ecs}};
my @native = @{$lines{json}};
is(scalar @ecs, scalar @native, 'as many ECS lines as native ones');
is(join(' ', map { $_->{token_ratelimit}{event} } @ecs),
   join(' ', map { $_->{event} } @native), 'the same events, in order');

my @bad;
for my $i (0 .. $#ecs) {
    my ($e, $n) = ($ecs[$i], $native[$i]);
    my $ev = $n->{event};
    push @bad, "$ev: host.name" if $e->{host}{name} ne $n->{node};

    my %same = (
        'http.response.status_code' => 'status', 'event.reason' => 'reason',
        'http.request.method' => 'method', 'url.path' => 'uri',
        'url.domain' => 'host',
        map { ("token_ratelimit.$_" => $_) } qw(zone limit window_ms count
            penalty_s violations penalized dry_run of key_hidden key_masked
            key_truncated uri_truncated),
    );
    my $flat = flatten($e);
    for my $name (sort keys %same) {
        my ($a, $b) = ($flat->{$name}, $n->{$same{$name}});
        next if !defined $a && !defined $b;
        push @bad, "$ev: $name: " . ($a // 'none') . ' vs native '
                   . ($b // 'none')
            if !defined $a || !defined $b || "$a" ne "$b";
    }
    if ($ev ne 'suppressed') {        # the ECS server's clients end in .2
        my $want = $n->{client} =~ s/^(192\.0\.2|198\.51\.100)\.1$/$1.2/r;
        push @bad, "$ev: source.ip " . ($flat->{'source.ip'} // 'none')
                   . " for $n->{client}"
            unless ($flat->{'source.ip'} // '') eq $want
                   && $flat->{'source.address'} eq $want;
    }
}
ok(!@bad, 'ECS lines: the native values under ECS names')
    or diag(join "\n", @bad);

# --- keys: user.hash and what must not leak ----------------------------------

sub ecs_of {
    my ($zone, $event) = @_;
    return grep { $_->{rule}{name} eq $zone
                  && $_->{token_ratelimit}{event} eq $event } @ecs;
}

{
    my ($rej) = ecs_of('pen', 'rejected');
    my ($pen) = ecs_of('pen', 'penalty');
    like($rej->{user}{hash} // '', qr/^[0-9a-f]{32}$/,
         'log_key=on: user.hash, 32 hex digits');
    is($pen->{user}{hash}, $rej->{user}{hash},
       'log_key=on: the same key, the same user.hash');
    is($rej->{token_ratelimit}{key}, 'pete-ecs', 'log_key=on: the key shown');
    my ($other) = grep { ($_->{token_ratelimit}{key} // '') eq 'alice-ecs' }
                  @ecs;
    isnt($other->{user}{hash}, $rej->{user}{hash},
         'another key, another user.hash');

    my ($h) = ecs_of('hsh', 'rejected');
    like($h->{token_ratelimit}{key_hash} // '', qr/^[0-9a-f]{32}$/,
         'log_key=hash: key_hash');
    is($h->{user}{hash}, $h->{token_ratelimit}{key_hash},
       'log_key=hash: user.hash is the key_hash');
    ok(!exists $h->{token_ratelimit}{key}, 'log_key=hash: no key');

    my ($off) = ecs_of('hid', 'rejected');
    ok($off && !exists $off->{user}, 'log_key=off: no user.hash');
    ok($off->{token_ratelimit}{key_hidden}, 'log_key=off: key_hidden');
    unlike($raw{ecs}, qr/topsecret/, 'log_key=off: the key is nowhere');

    my ($m) = ecs_of('msk', 'rejected');
    ok($m && !exists $m->{user}, 'log_key=mask: no user.hash');
    is($m->{token_ratelimit}{key}, 'mask...', 'log_key=mask: the masked key');
    unlike($raw{ecs}, qr/maskedsecret/, 'log_key=mask: the key is nowhere');

    my ($a) = ecs_of('addr', 'rejected');
    is($a->{source}{ip}, '198.51.100.2', 'address key: source.ip');
    is($a->{token_ratelimit}{key}, '198.51.100.2', 'address key: the key');
    ok(!exists $a->{user}, 'address key: no user.hash');
    ok($a->{token_ratelimit}{uri_truncated}, 'a long path: uri_truncated');
    is(length $a->{url}{path}, 512, 'a long path: url.path cut at 512');

    my ($d) = grep { ($_->{event}{reason} // '') eq 'deny_list' } @ecs;
    is($d && $d->{source}{ip}, '192.0.2.66', 'deny entry: source.ip');
    is($d && $d->{http}{response}{status_code}, 403, 'deny entry: 403');

    my ($s) = ecs_of('flood', 'suppressed');
    is($s && $s->{token_ratelimit}{count}, 2, 'suppressed: the count');
    ok($s && !exists $s->{source}, 'suppressed: no request fields');

    my ($u) = ecs_of('st', 'unavailable');
    is($u && $u->{http}{response}{status_code}, 503, 'unavailable: 503');

    unlike($raw{ecs}, qr/"url":\{[^}]*"original"/, 'no url.original');
}

# --- syslog: the ECS document as the message --------------------------------

{
    $t->get('/sys', port => $PORT{ecs}, headers => { 'X-Key' => 'sy' })
        for 1 .. 2;
    my $msg = '';
    $udp->recv($msg, 65536) if IO::Select->new($udp)->can_read(3);
    like($msg, qr/^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ token_ratelimit: \{/,
         'syslog: the header, then the document') or diag($msg);
    my ($body) = $msg =~ /token_ratelimit: (\{.*\})\z/s;
    my $e = eval { JSON::PP->new->utf8->decode($body // '') } || {};
    is($e->{event}{action}, 'rate_limited', 'syslog: an ECS document');
    my @bad = TRLEventDoc::problems('ecs', $e);
    ok(!@bad, 'syslog: it matches docs/events.md') or diag(join "\n", @bad);
}

$t->stop;

# --- nginx -t ----------------------------------------------------------------

my $bad = TRL->new;
for my $case (['format=xml', 'format=xml'], ['format=', 'format='],
              ['format=ECS', 'format=ECS'], ['formats=ecs', 'formats=ecs'])
{
    my ($param, $token) = @$case;
    $bad->write_config(<<"EOF");
    token_ratelimit_zone \$binary_remote_addr zone=z:1m rate=5r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { token_ratelimit zone=z;
                     token_ratelimit_event_log logs/e.log $param;
                     empty_gif; }
    }
EOF
    my ($rc, $out) = $bad->test_config;
    isnt($rc, 0, "nginx -t: $param: fails");
    my $directive = '"token_ratelimit_event_log" directive';
    like($out, qr/\[emerg\].*invalid parameter "\Q$token\E" in (?#
                  )\Q$directive\E, .*json.*ecs/,
         "nginx -t: $param: names the directive, the token, json|ecs")
        or diag($out);
}
{
    $bad->write_config(<<'EOF');
    token_ratelimit_zone $binary_remote_addr zone=z:1m rate=5r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { token_ratelimit zone=z;
                     token_ratelimit_event_log format=ecs; empty_gif; }
    }
EOF
    my ($rc, $out) = $bad->test_config;
    isnt($rc, 0, 'nginx -t: format= without a target: fails');
    like($out, qr/invalid parameter "format=ecs" in "token_ratelimit_event_log" (?#
                  )directive, expected a file/,
         'nginx -t: format= without a target: expected a file first')
        or diag($out);
}
for my $param ('format=json', 'format=ecs rate=5',
               'syslog:server=127.0.0.1:514 format=ecs')
{
    my $target = $param =~ /^syslog/ ? '' : 'logs/e.log ';
    $bad->write_config(<<"EOF");
    token_ratelimit_zone \$binary_remote_addr zone=z:1m rate=5r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { token_ratelimit zone=z;
                     token_ratelimit_event_log $target$param;
                     empty_gif; }
    }
EOF
    my ($rc, $out) = $bad->test_config;
    is($rc, 0, "nginx -t: $param: accepted") or diag($out);
}

done_testing;
