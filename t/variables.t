#!/usr/bin/perl
# $token_ratelimit_status, $token_ratelimit_limit, $token_ratelimit_remaining
# and $token_ratelimit_reset, through add_header and the access log
# (log_format), for admitted, rejected, dry-run, proxied, static, error_page
# and unlimited requests.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
$t->start_backend;
mkdir $t->dir . '/html/static';
$t->write_file('html/static/file.txt', "static\n");
$t->write_file('html/busy.html', "busy\n");

$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=v:1m rate=2r/m;
    token_ratelimit_zone $arg_k zone=v5:1m rate=5r/m;

    log_format trl '$request_uri|$status|$token_ratelimit_status|$token_ratelimit_limit|$token_ratelimit_remaining|$token_ratelimit_reset';

    map $token_ratelimit_status $trl_rejected {
        REJECTED  yes;
        default   no;
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%DIR%%/html;
        access_log %%DIR%%/logs/trl.log trl;

        add_header X-S "[$token_ratelimit_status]" always;
        add_header X-L "[$token_ratelimit_limit]" always;
        add_header X-R "[$token_ratelimit_remaining]" always;
        add_header X-T "[$token_ratelimit_reset]" always;
        add_header X-Rejected "$trl_rejected" always;

        location /v       { token_ratelimit zone=v; empty_gif; }
        location /multi   { token_ratelimit zone=v5; token_ratelimit zone=v; empty_gif; }
        location /dry     { token_ratelimit zone=v; token_ratelimit_dry_run on; empty_gif; }
        location /hidden  { token_ratelimit zone=v; token_ratelimit_headers off; empty_gif; }
        location /proxy   { token_ratelimit zone=v;
                            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%; }
        location /static/ { token_ratelimit zone=v; }
        location /ep      { token_ratelimit zone=v; error_page 429 /busy.html; empty_gif; }
        location /free    { empty_gif; }
    }
EOF
$t->run;

sub vars {
    my ($r) = @_;
    return [map { my $v = $r->{headers}{$_} // 'undef'; $v =~ s/^\[(.*)\]$/$1/; $v }
            qw(x-s x-l x-r x-t)];
}

# The access log line of request ?id=$id: [status, trl status, limit,
# remaining, reset]; the log is written after the response, so wait a bit.
sub logged {
    my ($id) = @_;
    for (1 .. 40) {
        for my $line (split /\n/, $t->read_file('logs/trl.log')) {
            my ($uri, @f) = split /\|/, $line, -1;
            # the original request's id (error_page redirects drop the args)
            return \@f if $uri =~ /[?&]id=\Q$id\E(&|$)/;
        }
        sleep 0.05;
    }
    return [];
}

# --- admitted and rejected ----------------------------------------------------------

{
    my $before = time;
    my $r1 = $t->get('/v?k=a&id=a1');
    my $r2 = $t->get('/v?k=a&id=a2');
    my $r3 = $t->get('/v?k=a&id=a3');
    my $reset = $r1->{headers}{'x-ratelimit-reset'} // 'none';

    is_deeply(vars($r1), ['PASSED', 2, 1, $reset], 'first: PASSED 2 1 reset');
    ok($reset =~ /^\d+$/ && $reset >= int($before) + 59 && $reset <= int(time) + 61,
       "\$token_ratelimit_reset ~ now + 60 ($reset)");
    is_deeply(vars($r2), ['PASSED', 2, 0, $r2->{headers}{'x-ratelimit-reset'}],
              'second: PASSED 2 0');
    is($r3->{status}, 429, 'third rejected');
    is_deeply(vars($r3), ['REJECTED', 2, 0, $r3->{headers}{'x-ratelimit-reset'}],
              'third: REJECTED 2 0 reset');
    like($r3->{body}, qr/"reset_at":\Q@{[ vars($r3)->[3] ]}\E,/,
         '$token_ratelimit_reset = reset_at of the JSON');
    is($r1->{headers}{'x-rejected'}, 'no', 'map on the variable: admitted');
    is($r3->{headers}{'x-rejected'}, 'yes', 'map on the variable: rejected');

    is_deeply(logged('a1'), [200, 'PASSED', 2, 1, $reset], 'access log: first');
    is_deeply(logged('a2'), [200, 'PASSED', 2, 0, vars($r2)->[3]], 'access log: second');
    is_deeply(logged('a3'), [429, 'REJECTED', 2, 0, vars($r3)->[3]], 'access log: rejected');
}

# --- no zone applied: empty -----------------------------------------------------------

{
    my $r = $t->get('/free?id=f1');
    is_deeply(vars($r), ['', '', '', ''], 'no zone in the location: all empty');
    is($r->{headers}{'x-rejected'}, 'no', 'no zone: map default');
    my $l = logged('f1');
    is($l->[0], 200, 'access log: unlimited request logged');
    like(join('|', @$l[1 .. 4]), qr/^-?\|-?\|-?\|-?$/,
         'access log: empty ("-" as nginx writes a missing value) where no zone applied');

    $r = $t->get('/v?id=f2');        # no key: the zone does not apply
    is_deeply(vars($r), ['', '', '', ''], 'empty key: all empty');
    $l = logged('f2');
    like(join('|', @$l[1 .. 4]), qr/^-?\|-?\|-?\|-?$/, 'access log: empty key');
}

# --- dry run ----------------------------------------------------------------------------

{
    my @r = map { $t->get("/dry?k=d&id=d$_") } 1 .. 3;
    is($r[2]{status}, 200, 'dry run: passed');
    is_deeply(vars($r[2]), ['REJECTED_DRY_RUN', 2, 0, $r[2]{headers}{'x-ratelimit-reset'}],
              'dry run: REJECTED_DRY_RUN 2 0');
    is(logged('d3')->[1], 'REJECTED_DRY_RUN', 'access log: REJECTED_DRY_RUN');
    is($r[2]{headers}{'x-rejected'}, 'no', 'map: dry run is not REJECTED');
}

# --- most restrictive of several zones ---------------------------------------------------

{
    my $r = $t->get('/multi?k=m&id=m1');
    is_deeply(vars($r), ['PASSED', 2, 1, $r->{headers}{'x-ratelimit-reset'}],
              'two zones: the variables describe the most restrictive (v)');
    $t->get('/multi?k=m&id=m2');
    $r = $t->get('/multi?k=m&id=m3');
    is_deeply(vars($r), ['REJECTED', 2, 0, $r->{headers}{'x-ratelimit-reset'}],
              'two zones: rejected by v');
    is_deeply([@{logged('m3')}[0 .. 3]], [429, 'REJECTED', 2, 0], 'access log: two zones');
}

# --- with the headers off the variables are still set ----------------------------------

{
    my $r = $t->get('/hidden?k=h&id=h1');
    is($r->{headers}{'x-ratelimit-limit'}, undef, 'headers off: no X-RateLimit-Limit');
    my $v = vars($r);
    is_deeply([@$v[0 .. 2]], ['PASSED', 2, 1], 'headers off: variables set');
    like($v->[3], qr/^\d{10,}$/, 'headers off: $token_ratelimit_reset set');
    is_deeply([@{logged('h1')}[1 .. 3]], ['PASSED', 2, 1], 'access log: headers off');
}

# --- proxied, upstream error, static, 404, error_page ---------------------------------

{
    my $r = $t->get('/proxy?k=p&id=p1');
    is($r->{status}, 200, 'proxied: 200');
    is_deeply([@{vars($r)}[0 .. 2]], ['PASSED', 2, 1], 'proxied: variables');
    $r = $t->get('/proxy?k=p&status=500&id=p2');
    is($r->{status}, 500, 'proxied: backend 500');
    is_deeply([@{vars($r)}[0 .. 2]], ['PASSED', 2, 0], 'proxied 500: variables');
    is_deeply([@{logged('p2')}[0 .. 3]], [500, 'PASSED', 2, 0], 'access log: proxied 500');
    $r = $t->get('/proxy?k=p&id=p3');
    is_deeply([@{vars($r)}[0 .. 2]], ['REJECTED', 2, 0], 'proxied location: rejected');

    $r = $t->get('/static/file.txt?k=s&id=s1');
    is($r->{body}, "static\n", 'static: served');
    is_deeply([@{vars($r)}[0 .. 2]], ['PASSED', 2, 1], 'static: variables');
    $r = $t->get('/static/nope?k=s&id=s2');
    is($r->{status}, 404, 'static: 404');
    is_deeply([@{vars($r)}[0 .. 2]], ['PASSED', 2, 0], '404: variables');
    is_deeply([@{logged('s2')}[0 .. 3]], [404, 'PASSED', 2, 0], 'access log: 404');

    $t->get("/ep?k=e&id=e$_") for 1 .. 2;
    $r = $t->get('/ep?k=e&id=e3');
    is($r->{body}, "busy\n", 'error_page: its page');
    is_deeply([@{vars($r)}[0 .. 2]], ['REJECTED', 2, 0], 'error_page: variables');
    is_deeply([@{logged('e3')}[0 .. 3]], [429, 'REJECTED', 2, 0], 'access log: error_page');
}

$t->stop;
$t->no_alerts;
done_testing;
