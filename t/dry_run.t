#!/usr/bin/perl
# token_ratelimit_dry_run on: requests over the limit pass (200) with
# $token_ratelimit_status REJECTED_DRY_RUN and X-RateLimit-Remaining 0, no
# Retry-After, a "dry run" log line, and they are not counted.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=d:1m rate=2r/2s;
    token_ratelimit_zone $arg_k zone=m:1m rate=2r/m;
    token_ratelimit_zone $arg_k zone=big:1m rate=5r/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        token_ratelimit_dry_run on;

        add_header X-Status "[$token_ratelimit_status]" always;

        location /dry      { token_ratelimit zone=d; empty_gif; }
        location /enforce  { token_ratelimit zone=d; token_ratelimit_dry_run off;
                             empty_gif; }
        location /dry_m    { token_ratelimit zone=m; token_ratelimit_status 503;
                             token_ratelimit_headers both; empty_gif; }
        location /enforce_m { token_ratelimit zone=m; token_ratelimit_dry_run off;
                              empty_gif; }
        location /dry_two  { token_ratelimit zone=big; token_ratelimit zone=m;
                             empty_gif; }
        location /big      { token_ratelimit zone=big; token_ratelimit_dry_run off;
                             empty_gif; }
    }
EOF
$t->run;

sub rem { $_[0]{headers}{'x-ratelimit-remaining'} }

# --- what a dry-run rejection looks like --------------------------------------

{
    my @r = map { $t->get('/dry_m?k=look') } 1 .. 5;
    is_deeply([map { $_->{status} } @r], [(200) x 5],
              'dry run: every request passes (also with token_ratelimit_status 503)');
    is_deeply([map { $_->{headers}{'x-status'} } @r],
              [('[PASSED]') x 2, ('[REJECTED_DRY_RUN]') x 3],
              'dry run: PASSED, then REJECTED_DRY_RUN');
    is_deeply([map { rem($_) } @r], [1, 0, 0, 0, 0], 'dry run: remaining 1, 0, 0 ...');
    is($r[2]{headers}{'x-ratelimit-limit'}, 2, 'dry run: X-RateLimit-Limit');
    like($r[2]{headers}{'x-ratelimit-reset'} // '', qr/^\d+$/, 'dry run: X-RateLimit-Reset');
    like($r[2]{headers}{'ratelimit'} // '', qr/^"m";r=0;t=\d+$/, 'dry run: RateLimit r=0');
    is($r[2]{headers}{'retry-after'}, undef, 'dry run: no Retry-After');
    is($r[2]{headers}{'content-type'}, 'image/gif', 'dry run: the content, not the JSON');
    unlike($r[2]{body}, qr/rate_limit_exceeded/, 'dry run: no JSON body');
    is($r[4]{headers}{'retry-after'}, undef, 'dry run: no Retry-After later either');

    # the zone's state is shared with an enforcing location
    is($t->get('/enforce_m?k=look')->{status}, 429,
       'enforcing location on the same zone and key rejects');

    my $log = $t->error_log;
    my @lines = grep { /key "look"/ } split /\n/, $log;
    is(scalar(grep { /limiting requests, dry run, by zone "m", key "look", limit 2r\/m, client: 127\.0\.0\.1/ } @lines),
       1, 'dry run: one "limiting requests, dry run" line (first rejection only)');
    like($lines[0] // '', qr/\[error\]/, 'dry run: logged at the default level');
}

# --- two zones in dry run: the request passes ---------------------------------

{
    my @r = map { $t->get('/dry_two?k=two') } 1 .. 4;
    is_deeply([map { $_->{status} } @r], [(200) x 4], 'two zones, dry run: all pass');
    is($r[2]{headers}{'x-status'}, '[REJECTED_DRY_RUN]', 'two zones: REJECTED_DRY_RUN');
    is($r[2]{headers}{'x-ratelimit-limit'}, 2, 'two zones: headers of the over-limit zone');
    is(rem($r[2]), 0, 'two zones: remaining 0');
    is($r[2]{headers}{'retry-after'}, undef, 'two zones: no Retry-After');
}

# --- dry-run rejections are not counted ----------------------------------------

{
    # 2 requests per 2 s.  At t0 two are admitted; at t0+1 three more are
    # over the limit (dry run).  At t0+2.4 the first two have left the
    # window; had the dry-run ones been counted they would fill it until
    # t0+3.
    my $t0 = time;
    my @a = map { $t->get('/dry?k=nc') } 1 .. 2;
    is_deeply([map { $_->{headers}{'x-status'} } @a], [('[PASSED]') x 2],
              'not counted: two admitted');
    sleep(1 - (time - $t0)) if time - $t0 < 1;
    my @d = map { $t->get('/dry?k=nc') } 1 .. 3;
    is_deeply([map { $_->{status} } @d], [(200) x 3], 'not counted: over-limit requests pass');
    is_deeply([map { $_->{headers}{'x-status'} } @d], [('[REJECTED_DRY_RUN]') x 3],
              'not counted: they are REJECTED_DRY_RUN');
    my $late = time - $t0;
    sleep(2.4 - $late) if $late < 2.4;
    SKIP: {
        skip "too slow: dry-run requests ended ${late}s after t0", 3 if $late > 2.2;
        my @e = map { $t->get('/enforce?k=nc') } 1 .. 3;
        is_deeply([map { $_->{status} } @e], [200, 200, 429],
                  'not counted: after the window, the enforcing location admits two');
        is(rem($e[0]), 1, 'not counted: remaining 1 (the dry-run requests took no place)');
        is(rem($e[1]), 0, 'not counted: remaining 0');
    }
}

# --- over the limit of one zone in dry run: counted by no zone -------------------

{
    # /dry_two?k=two: requests 3 and 4 were over m's limit (dry run).  Dry
    # run acts out enforcement without rejecting: a request that one zone
    # would reject is counted by none (SPEC 2: "A request rejected by one
    # zone is counted by none"; dry run: "counted as rejected"), so big
    # holds only the first two: 5 - 2 - 1 = 2 left.  (limit_req's dry run
    # does the same: a limit that would reject leaves the others unaccounted.)
    is(rem($t->get('/big?k=two')), 2,
       'dry run: a request over one zone\'s limit is not counted by the other zones');
}

$t->stop;
$t->no_alerts;
done_testing;
