#!/usr/bin/perl
# $token_ratelimit_client and token_ratelimit_ipv6_prefix N (1..128,
# default 64): IPv4 clients as a dotted quad, IPv6 clients masked to the
# prefix and written "2001:db8:1:2::/64" (no suffix for 128), IPv4-mapped
# IPv6 as IPv4.  As a zone key it makes one count of a whole IPv6 network,
# so that a host cannot rotate addresses within its /64.  Tested over
# [::1] when the sandbox has IPv6 loopback, and with arbitrary addresses
# through the realip module (X-Forwarded-For from 127.0.0.1).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::IP;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;

# Can we listen on and connect to [::1]?
my $HAVE_V6 = do {
    my $l = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                Listen => 1, Proto => 'tcp');
    my $ok = 0;
    if ($l) {
        my $c = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $l->sockport,
                                    Proto => 'tcp', Timeout => 2);
        $ok = 1 if $c;
        close $c if $c;
        close $l;
    }
    $ok;
};
diag('no IPv6 loopback: the [::1] tests are skipped') unless $HAVE_V6;

my $v6_listen = $HAVE_V6 ? 'listen [::1]:%%PORT_V6%%;' : '';
my $v6_any = $HAVE_V6 ? 'listen [::]:%%PORT_ANY%% ipv6only=off;' : '';

$t->write_config(<<"EOF");
    token_ratelimit_zone \$token_ratelimit_client zone=c64:1m rate=2r/m;
    token_ratelimit_zone \$token_ratelimit_client zone=c128:1m rate=2r/m;
    token_ratelimit_zone \$token_ratelimit_client zone=c48:1m rate=2r/m;
    token_ratelimit_zone \$token_ratelimit_client zone=cl:1m rate=2r/m;

    # the http level: inherited below
    token_ratelimit_ipv6_prefix 56;

    # direct connections
    server {
        listen 127.0.0.1:%%PORT%%;
        $v6_listen
        $v6_any
        add_header X-Client "[\$token_ratelimit_client]" always;
        token_ratelimit_ipv6_prefix 64;

        location /      { token_ratelimit zone=c64; empty_gif; }
        location /p128  { token_ratelimit zone=c128;
                          token_ratelimit_ipv6_prefix 128; empty_gif; }
        location /p1    { token_ratelimit_ipv6_prefix 1; empty_gif; }
        location /p127  { token_ratelimit_ipv6_prefix 127; empty_gif; }
        location /none  { empty_gif; }

        # realip configured in the location itself (as limit_req allows)
        location /loc_realip {
            set_real_ip_from 127.0.0.1;
            real_ip_header X-Forwarded-For;
            token_ratelimit zone=cl;
            token_ratelimit_ipv6_prefix 128;
            empty_gif;
        }
    }

    # client addresses from X-Forwarded-For
    server {
        listen 127.0.0.1:%%PORT_RIP%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        add_header X-Client "[\$token_ratelimit_client]" always;
        add_header X-Addr "[\$remote_addr]" always;

        location /inherit { empty_gif; }
        location /p64     { token_ratelimit zone=c64;
                            token_ratelimit_ipv6_prefix 64; empty_gif; }
        location /p128    { token_ratelimit zone=c128;
                            token_ratelimit_ipv6_prefix 128; empty_gif; }
        location /p48     { token_ratelimit zone=c48;
                            token_ratelimit_ipv6_prefix 48; empty_gif; }
        location /p60     { token_ratelimit_ipv6_prefix 60; empty_gif; }
        location /p1      { token_ratelimit_ipv6_prefix 1; empty_gif; }
        location /p127    { token_ratelimit_ipv6_prefix 127; empty_gif; }
        location /p65     { token_ratelimit_ipv6_prefix 65; empty_gif; }
    }

EOF

$t->run;

if ($HAVE_V6) {
    # the harness waits for 127.0.0.1 ports only
    for my $name ('V6', 'ANY') {
        my $host = $name eq 'V6' ? '::1' : '127.0.0.1';
        for (1 .. 100) {
            my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $t->port($name),
                                        Proto => 'tcp');
            if ($s) { close $s; last }
            sleep 0.05;
        }
    }
}

my $RIP = $t->port('RIP');

sub client { $_[0]{headers}{'x-client'} }
sub rem { $_[0]{headers}{'x-ratelimit-remaining'} }

sub xff {
    my ($path, $addr, $port) = @_;
    return $t->get($path, port => $port || $RIP,
                   headers => { 'X-Forwarded-For' => $addr });
}

# A request to host:port (IPv6 capable).
sub get_at {
    my ($host, $port, $path) = @_;
    return $t->request(TRL::build_request('GET', $path), host => $host,
                       port => $port);
}

# --- IPv4 ------------------------------------------------------------------------

{
    my $r = $t->get('/');
    is(client($r), '[127.0.0.1]', 'IPv4 client: dotted quad');
    is(client($t->get('/p128')), '[127.0.0.1]', 'IPv4 client: the prefix does not apply');
    is(client($t->get('/none')), '[127.0.0.1]', 'the variable works where no zone applies');
    is(client(xff('/p64', '192.0.2.7')), '[192.0.2.7]', 'realip IPv4: dotted quad');
    is(client(xff('/p1', '198.51.100.255')), '[198.51.100.255]', 'realip IPv4 with prefix 1: unchanged');
}

# --- IPv6 masked to the prefix (realip) -------------------------------------------

{
    my @cases = (
        ['/p64',  '2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
        ['/p64',  '2001:db8:1:2::1', '2001:db8:1:2::/64'],
        ['/p64',  '2001:DB8:1:2::1', '2001:db8:1:2::/64'],
        ['/p48',  '2001:db8:1:2:aaaa::1', '2001:db8:1::/48'],
        ['/p60',  '2001:db8:1:2f::1', '2001:db8:1:20::/60'],
        ['/p65',  '2001:db8:1:2:ffff::1', '2001:db8:1:2:8000::/65'],
        ['/p127', '2001:db8::3', '2001:db8::2/127'],
        ['/p1',   '2001:db8::1', '::/1'],
        ['/p1',   'fe80::1', '8000::/1'],
        ['/p128', '2001:db8:1:2:aaaa::1', '2001:db8:1:2:aaaa::1'],
        ['/p128', '::1', '::1'],
        ['/inherit', '2001:db8:1:2ff:1::1', '2001:db8:1:200::/56'],
    );
    for my $c (@cases) {
        my ($path, $addr, $want) = @$c;
        my $r = xff($path, $addr);
        is(client($r), "[$want]", "$path, client $addr: $want");
    }
}

# --- IPv4-mapped IPv6 as IPv4 ---------------------------------------------------------

{
    my $r = xff('/p64', '::ffff:192.0.2.8');
    is($r->{headers}{'x-addr'}, '[::ffff:192.0.2.8]', 'realip: an IPv4-mapped address');
    is(client($r), '[192.0.2.8]', 'IPv4-mapped IPv6 written as IPv4');
    is(client(xff('/p1', '::ffff:10.0.0.1')), '[10.0.0.1]', 'IPv4-mapped: no prefix applies');
}

# --- as a zone key: one count per network ----------------------------------------------

{
    # /64: two addresses of one /64 share a count, another /64 has its own
    my @r = (xff('/p64', '2001:db8:a:1::1'), xff('/p64', '2001:db8:a:1::2'),
             xff('/p64', '2001:db8:a:1:ffff:ffff:ffff:ffff'));
    is(join(' ', map { $_->{status} } @r), '200 200 429',
       'prefix 64: rotating addresses within the /64 shares one count');
    is(rem($r[1]), 0, 'prefix 64: the second address took the last place');
    my $r = xff('/p64', '2001:db8:a:2::1');
    is($r->{status}, 200, 'prefix 64: another /64 has a count of its own');
    is(rem($r), 1, 'prefix 64: another /64: 1 left');

    # /128: every address its own count
    @r = (xff('/p128', '2001:db8:b:1::1'), xff('/p128', '2001:db8:b:1::1'),
          xff('/p128', '2001:db8:b:1::2'), xff('/p128', '2001:db8:b:1::1'));
    is(join(' ', map { $_->{status} } @r), '200 200 200 429',
       'prefix 128: each address counted on its own');
    is(rem($r[2]), 1, 'prefix 128: the neighbour has its own count');

    # /48: a whole site
    @r = (xff('/p48', '2001:db8:c:1::1'), xff('/p48', '2001:db8:c:ff::1'),
          xff('/p48', '2001:db8:c:ffff::1'), xff('/p48', '2001:db8:d::1'));
    is(join(' ', map { $_->{status} } @r), '200 200 429 200',
       'prefix 48: one count for the /48, another /48 its own');

    # IPv4: each address its own count
    @r = (xff('/p64', '192.0.2.1'), xff('/p64', '192.0.2.1'), xff('/p64', '192.0.2.2'));
    is(join(' ', map { $_->{status} } @r), '200 200 200', 'IPv4: each address its own count');
    is(xff('/p64', '192.0.2.1')->{status}, 429, 'IPv4: 192.0.2.1 at its limit');

    # an IPv4-mapped address counts as the IPv4 address
    is(xff('/p64', '::ffff:192.0.2.2')->{status}, 200, 'IPv4-mapped: the second of 192.0.2.2');
    is(xff('/p64', '192.0.2.2')->{status}, 429, 'IPv4-mapped and IPv4 share the count');
}

# --- realip in the location --------------------------------------------------------

# limit_req sees the address that a location-level set_real_ip_from sets
# (realip's preaccess handler runs before limit_req's).
# token_ratelimit's handler runs last in the preaccess phase, after realip's
# (as limit_req's does), so it keys each client by its real address.
{
    my @r = (xff('/loc_realip', '2001:db8:e::1', $t->port('PORT')),
             xff('/loc_realip', '2001:db8:e::2', $t->port('PORT')));
    is(client($r[0]), '[2001:db8:e::1]', 'location-level realip: the client address is the real one');
    is(join(' ', map { $_->{status} } @r), '200 200', 'location-level realip: two clients admitted');
    is(join(' ', map { rem($_) // 'none' } @r), '1 1',
       'location-level realip: each client its own count');
}

# --- over IPv6 loopback ------------------------------------------------------------------

SKIP: {
    skip 'no IPv6 loopback in this sandbox', 9 unless $HAVE_V6;
    my $p = $t->port('V6');
    my $r = get_at('::1', $p, '/');
    is($r->{status}, 200, '[::1]: served');
    is(client($r), '[::/64]', '[::1] with prefix 64: ::/64');
    is(rem($r), 1, '[::1]: limited by zone c64');
    $r = get_at('::1', $p, '/p128');
    is(client($r), '[::1]', '[::1] with prefix 128: ::1, no suffix');
    is(client(get_at('::1', $p, '/p1')), '[::/1]', '[::1] with prefix 1: ::/1');
    is(client(get_at('::1', $p, '/p127')), '[::/127]', '[::1] with prefix 127: ::/127');
    # the same /64 as realip's ::2 below: shared count
    is(client(xff('/p64', '::2')), '[::/64]', 'realip ::2 with prefix 64: ::/64');
    is(get_at('::1', $p, '/')->{status}, 429, '[::1] and ::2 (realip) share the /64 count');

    # IPv4 over an IPv6 socket (IPv4-mapped): written as IPv4
    $r = get_at('127.0.0.1', $t->port('ANY'), '/none');
    is(client($r), '[127.0.0.1]', 'IPv4 client of a [::] ipv6only=off socket: 127.0.0.1');
}

# --- the built-in default prefix: 64 -------------------------------------------------------

{
    my $d = TRL->new;
    $d->write_config(<<'EOF');
    token_ratelimit_zone $token_ratelimit_client zone=c:1m rate=1r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        add_header X-Client "[$token_ratelimit_client]" always;
        location / { token_ratelimit zone=c; empty_gif; }
    }
EOF
    $d->run;
    my $r = $d->get('/', headers => { 'X-Forwarded-For' => '2001:db8:1:2:3:4:5:6' });
    is(client($r), '[2001:db8:1:2::/64]', 'no token_ratelimit_ipv6_prefix: 64');
    $r = $d->get('/', headers => { 'X-Forwarded-For' => '2001:db8:1:2:ffff::' });
    is($r->{status}, 429, 'default prefix: the /64 shares one count');
    $d->stop;
    $d->no_alerts;
}

$t->stop;
$t->no_alerts;
done_testing;
