#!/usr/bin/perl
# Keys: an empty key does not limit; long (8 KB) and binary keys work and are
# told apart by every byte; many keys are independent; $http_, $arg_ and
# $cookie_ keys.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $t = TRL->new(workers => 4);
$t->write_config(<<'EOF');
    token_ratelimit_zone $http_x_key zone=hk:1m rate=2r/m;
    token_ratelimit_zone $arg_key zone=ak:1m rate=2r/m;
    token_ratelimit_zone $cookie_x zone=ck:1m rate=2r/m;
    token_ratelimit_zone $arg_key zone=many:1m rate=1r/m;
    token_ratelimit_zone "$arg_a$arg_b" zone=cat:1m rate=1r/m;
    token_ratelimit_zone global zone=glob:1m rate=2r/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        large_client_header_buffers 4 64k;

        add_header X-Status "[$token_ratelimit_status]" always;

        location /h { token_ratelimit zone=hk; empty_gif; }
        location /a { token_ratelimit zone=ak; empty_gif; }
        location /c { token_ratelimit zone=ck; empty_gif; }
        location /many { token_ratelimit zone=many; empty_gif; }
        location /cat { token_ratelimit zone=cat; empty_gif; }
        location /glob { token_ratelimit zone=glob; empty_gif; }
        location /ha {
            token_ratelimit zone=hk;
            token_ratelimit zone=ak;
            token_ratelimit_headers both;
            empty_gif;
        }
    }
EOF
$t->run;

sub rem { $_[0]{headers}{'x-ratelimit-remaining'} }
sub statuses { [map { $_->{status} } @_] }

sub h { my ($key) = @_; return (headers => { 'X-Key' => $key }) }

# --- empty key ----------------------------------------------------------------

{
    my @r = map { $t->get('/h') } 1 .. 5;
    is_deeply(statuses(@r), [(200) x 5], 'no key: never limited');
    ok(!defined $r[0]{headers}{'x-ratelimit-limit'}
       && !defined $r[0]{headers}{'x-ratelimit-remaining'}
       && !defined $r[0]{headers}{'x-ratelimit-reset'},
       'no key: no X-RateLimit-* headers');
    is($r[4]{headers}{'x-status'}, '[]', 'no key: $token_ratelimit_status empty');

    @r = map { $t->get('/h', h('')) } 1 .. 5;
    is_deeply(statuses(@r), [(200) x 5], 'empty header value: never limited');
    is($r[4]{headers}{'x-ratelimit-limit'}, undef, 'empty header value: no headers');

    @r = map { $t->get('/a?key=') } 1 .. 5;
    is_deeply(statuses(@r), [(200) x 5], 'empty $arg_key: never limited');

    @r = map { $t->get('/c', headers => { Cookie => 'y=1' }) } 1 .. 5;
    is_deeply(statuses(@r), [(200) x 5], 'no such cookie: never limited');

    # two zones, one key empty: only the other applies
    @r = map { $t->get('/ha?key=only_arg') } 1 .. 3;
    is_deeply(statuses(@r), [200, 200, 429], 'one empty key of two: the other zone limits');
    is($r[0]{headers}{'ratelimit-policy'}, '"ak";q=2;w=60',
       'one empty key of two: only the applied zone in RateLimit-Policy');
    like($r[0]{headers}{'ratelimit'} // '', qr/^"ak";r=1;t=\d+$/,
         'one empty key of two: only the applied zone in RateLimit');
    is($r[0]{headers}{'x-status'}, '[PASSED]', 'one empty key of two: PASSED');

    # the $http_x_key zone was not charged by those requests
    is(rem($t->get('/h', h('only_arg'))), 1, 'the zone whose key was empty counted nothing');

    # "$arg_a$arg_b" is empty only when both are
    @r = map { $t->get('/cat') } 1 .. 3;
    is_deeply(statuses(@r), [200, 200, 200], 'concatenated key, all parts empty: not limited');
    @r = map { $t->get('/cat?b=x') } 1 .. 2;
    is_deeply(statuses(@r), [200, 429], 'concatenated key, one part set: limited');
}

# --- 8 KB keys -------------------------------------------------------------------

{
    my $k1 = ('k' x 8191) . '1';
    my $k2 = ('k' x 8191) . '2';
    my $k3 = '3' . ('k' x 8191);
    my @r = map { $t->get('/h', h($k1)) } 1 .. 3;
    is_deeply(statuses(@r), [200, 200, 429], '8 KB key: limited');
    is(rem($r[1]), 0, '8 KB key: counted');
    is(rem($t->get('/h', h($k2))), 1, '8 KB keys differing in the last byte are independent');
    is(rem($t->get('/h', h($k3))), 1, '8 KB keys differing in the first byte are independent');
    is($t->get('/h', h($k1))->{status}, 429, '8 KB key: still limited');

    # an 8 KB key in the query string
    my $q = 'q' x 8192;
    @r = map { $t->get("/a?key=$q") } 1 .. 3;
    is_deeply(statuses(@r), [200, 200, 429], '8 KB $arg_key: limited');
    is(rem($t->get("/a?key=${q}x")), 1, '8 KB $arg_key + 1 byte: another key');

    # a key of 32 KB
    my $big = join '', map { chr(65 + $_ % 26) } 1 .. 32768;
    @r = map { $t->get('/h', h($big)) } 1 .. 3;
    is_deeply(statuses(@r), [200, 200, 429], '32 KB key: limited');
}

# --- binary keys ---------------------------------------------------------------

{
    my $b1 = "\x01\x02\x7f\x80\xff\xfe\"\\\x1b[0m\tend";
    my $b2 = "\x01\x02\x7f\x80\xff\xfd\"\\\x1b[0m\tend";    # one byte differs
    my @r = map { $t->get('/h', h($b1)) } 1 .. 3;
    is_deeply(statuses(@r), [200, 200, 429], 'binary key: limited');
    is(rem($r[0]), 1, 'binary key: counted');
    my $o = $t->get('/h', h($b2));
    is($o->{status}, 200, 'binary key differing in one high byte: admitted');
    is(rem($o), 1, 'binary key differing in one high byte: its own count');

    # keys that differ only in case, or by a trailing byte, are different
    is(rem($t->get('/h', h('CaseKey'))), 1, 'CaseKey');
    is(rem($t->get('/h', h('casekey'))), 1, 'casekey is another key');
    is(rem($t->get('/h', h('CaseKey'))), 0, 'CaseKey again: its own count');
    is(rem($t->get('/h', h('CaseKey!'))), 1, 'CaseKey! is another key');

    # high bytes in the query string
    my @q = map { $t->get("/a?key=\xc3\xa9\xff") } 1 .. 3;
    is_deeply(statuses(@q), [200, 200, 429], 'high bytes in $arg_key: limited');
    is(rem($t->get("/a?key=\xc3\xa9\xfe")), 1, 'high bytes in $arg_key: one byte differs');
}

# --- many distinct keys ---------------------------------------------------------

{
    my $n = 300;
    my (@first, @second);
    for my $i (1 .. $n) {
        my $r = $t->get("/many?key=user$i");
        push @first, $r->{status} == 200 && rem($r) eq '0' ? 1 : 0;
    }
    is(scalar(grep { $_ } @first), $n, "$n distinct keys: each admitted once with remaining 0");
    for my $i (1 .. $n) {
        push @second, $t->get("/many?key=user$i")->{status};
    }
    is(scalar(grep { $_ == 429 } @second), $n, "$n distinct keys: each rejected the second time");
    is($t->get('/many?key=user' . ($n + 1))->{status}, 200, 'a new key is still admitted');

    # in parallel
    my @p = $t->parallel(50, '/many?key=parallel');
    is(scalar(grep { $_->{status} == 200 } @p), 1, '50 parallel requests of one key: one admitted');
    is(scalar(grep { $_->{status} == 429 } @p), 49, '50 parallel requests of one key: 49 rejected');
}

# --- $http_, $arg_ and $cookie_ keys ---------------------------------------------

{
    my @c1 = map { $t->get('/c', headers => { Cookie => 'a=1; x=alice; b=2' }) } 1 .. 3;
    is_deeply(statuses(@c1), [200, 200, 429], '$cookie_x: limited');
    my $bob = $t->get('/c', headers => { Cookie => 'x=bob' });
    is($bob->{status}, 200, '$cookie_x: another cookie value is another key');
    is(rem($bob), 1, '$cookie_x: its own count');
    is($t->get('/c', headers => { Cookie => 'x=alice' })->{status}, 429,
       '$cookie_x: same value in another cookie header: same key');

    my @a = map { $t->get('/a?key=carol&other=1') } 1 .. 3;
    is_deeply(statuses(@a), [200, 200, 429], '$arg_key: limited');
    is(rem($t->get('/a?other=2&key=dave')), 1, '$arg_key: another value, another key');
    is($t->get('/a?x=1&key=carol')->{status}, 429, '$arg_key: position in the query does not matter');

    my @h = map { $t->get('/h', h('erin')) } 1 .. 3;
    is_deeply(statuses(@h), [200, 200, 429], '$http_x_key: limited');
    is(rem($t->get('/h', h('frank'))), 1, '$http_x_key: another value, another key');

    # the same string in different zones is counted per zone
    is(rem($t->get('/a?key=erin')), 1, 'same string, another zone: independent');
    is(rem($t->get('/c', headers => { Cookie => 'x=erin' })), 1,
       'same string, a third zone: independent');
}

# --- a constant key: one counter for every client -----------------------------------

{
    my @r = ($t->get('/glob?key=1'), $t->get('/glob', h('x')), $t->get('/glob'));
    is_deeply(statuses(@r), [200, 200, 429], 'constant key: one counter for all requests');
}

$t->stop;
$t->no_alerts;
done_testing;
