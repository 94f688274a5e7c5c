#!/usr/bin/perl
# A dry run of one limit (token_ratelimit zone=NAME dry_run) next to an
# enforced limit: its rejections pass (REJECTED_DRY_RUN, no Retry-After, a
# ", dry run," log line) and change nothing a client sees (the header
# fields and warning are the enforced limits') and do not undo the admissions of the enforced limits, which
# keep counting as usual.  "token_ratelimit_dry_run on" for the whole
# location keeps the old rule: a dry-run rejection is counted by no zone.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=e:1m rate=5r/m;
    token_ratelimit_zone $arg_k zone=d:1m rate=2r/m;
    token_ratelimit_zone $arg_k zone=e2:1m rate=5r/m;
    token_ratelimit_zone $arg_k zone=d2:1m rate=2r/m;
    token_ratelimit_zone $arg_k zone=e3:1m rate=1r/m;
    token_ratelimit_zone $arg_k zone=ds:1m rate=2r/2s;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[$token_ratelimit_status]" always;

        location /both {
            token_ratelimit zone=e;
            token_ratelimit zone=d dry_run;
            empty_gif;
        }
        location /both_warn {
            token_ratelimit zone=e warn=3;
            token_ratelimit zone=d dry_run;
            empty_gif;
        }
        location /both_503 {
            token_ratelimit zone=e3;
            token_ratelimit zone=d dry_run;
            token_ratelimit_status 503;
            token_ratelimit_headers both;
            empty_gif;
        }
        location /e  { token_ratelimit zone=e; empty_gif; }
        location /d  { token_ratelimit zone=d; empty_gif; }
        location /e2 { token_ratelimit zone=e2; empty_gif; }

        location /loc_dry {
            token_ratelimit zone=e2;
            token_ratelimit zone=d2;
            token_ratelimit_dry_run on;
            empty_gif;
        }
        location /loc_dry_and_limit_dry {
            token_ratelimit zone=e2;
            token_ratelimit zone=d2 dry_run;
            token_ratelimit_dry_run on;
            empty_gif;
        }
        location /only_dry {
            token_ratelimit zone=ds dry_run;
            empty_gif;
        }
        location /ds { token_ratelimit zone=ds; empty_gif; }
    }
EOF
$t->run;

sub st { $_[0]{headers}{'x-status'} // '' }
sub rem { $_[0]{headers}{'x-ratelimit-remaining'} }
sub lim { $_[0]{headers}{'x-ratelimit-limit'} }
sub seq { my ($p, $n) = @_; return map { $t->get($p) } 1 .. $n }

# --- the dry-run limit rejects, the enforced one keeps counting ---------------------

{
    my @r = seq('/both?k=k1', 6);
    is(join(' ', map { $_->{status} } @r), '200 200 200 200 200 429',
       'e (5r/m) enforced, d (2r/m) dry run: five pass, the sixth is rejected by e');
    is(join(' ', map { st($_) } @r),
       '[PASSED] [PASSED] [REJECTED_DRY_RUN] [REJECTED_DRY_RUN] [REJECTED_DRY_RUN] [REJECTED]',
       'PASSED twice, REJECTED_DRY_RUN by d, then REJECTED by e');
    # a limit in a dry run of its own changes nothing a client sees: the
    # enforced zone's fields, although d has fewer left
    is(join(' ', map { lim($_) } @r[0 .. 4]), '5 5 5 5 5',
       'the enforced zone shown (e), never the dry-run one (d)');
    is(join(' ', map { rem($_) } @r[0 .. 4]), '4 3 2 1 0',
       "X-RateLimit-Remaining counts e's places down, d's rejections hidden");
    ok(!grep({ defined $_->{headers}{'retry-after'} } @r[0 .. 4]),
       'dry-run rejections: no Retry-After');
    is($r[2]{headers}{'content-type'}, 'image/gif', 'dry-run rejection: the content');
    is($r[5]{headers}{'content-type'}, 'application/json', 'e rejects: JSON');
    is(lim($r[5]), 5, 'e rejects: its headers');
    is(rem($r[5]), 0, 'e rejects: remaining 0');
    like($r[5]{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, 'e rejects: Retry-After');

    is($t->get('/e?k=k1')->{status}, 429,
       'zone e counted all five (the dry-run rejections were not undone)');
    is($t->get('/d?k=k1')->{status}, 429, 'zone d holds its two');

    my @log = split /\n/, $t->error_log;
    my @d = grep { /key "k1"/ && /zone "d"/ } @log;
    my @e = grep { /key "k1"/ && /zone "e"/ } @log;
    like($d[0] // '', qr/\[error\] .*limiting requests, dry run, by zone "d", key "k1", limit 2r\/m/,
         'log: the dry-run rejection, with ", dry run,"');
    is(scalar(grep { /limiting requests, dry run, by zone "d", key "k1"/ } @d), 1,
       'log: one dry-run line for three dry-run rejections');
    like($e[0] // '', qr/\[error\] .*limiting requests by zone "e", key "k1", limit 5r\/m/,
         'log: the enforced rejection, without "dry run"');
}

# --- the enforced limit rejects first: counted by none (the usual rule) ------------------

{
    # e3: 1r/m enforced, d: 2r/m dry run
    my @r = seq('/both_503?k=k2', 2);
    is(join(' ', map { $_->{status} } @r), '200 503', 'e3 rejects the second (status 503)');
    is(st($r[1]), '[REJECTED]', 'REJECTED');
    is(lim($r[1]), 1, 'the rejecting zone shown');
    like($r[1]{headers}{'ratelimit'} // '', qr/^"e3";r=0;t=\d+$/, 'IETF fields of the rejecting zone');
    my $r = $t->get('/d?k=k2');
    is(rem($r), 0, 'd counted the admitted request only (1 + this one)');
}

# --- REJECTED_DRY_RUN outranks WARNED --------------------------------------------------

{
    my @r = seq('/both_warn?k=k3', 3);
    is(join(' ', map { st($_) } @r), '[PASSED] [PASSED] [REJECTED_DRY_RUN]',
       'e warns at 3 while d rejects in a dry run: REJECTED_DRY_RUN');
    is($r[2]{headers}{'x-ratelimit-warning'}, '"e";used=3;limit=5',
       "the client still gets e's X-RateLimit-Warning (d is a dry run)");
    is(lim($r[2]), 5, "and e's fields");
    is(rem($t->get('/e?k=k3')), 1, 'e counted the three (3 + this one of 5)');
}

# --- token_ratelimit_dry_run on (whole location): counted by no zone -----------------

{
    my @r = seq('/loc_dry?k=k4', 5);
    is(join(' ', map { $_->{status} } @r), '200 200 200 200 200', 'location dry run: all pass');
    is(join(' ', map { st($_) } @r),
       '[PASSED] [PASSED] [REJECTED_DRY_RUN] [REJECTED_DRY_RUN] [REJECTED_DRY_RUN]',
       'location dry run: REJECTED_DRY_RUN past d2');
    is(rem($t->get('/e2?k=k4')), 2,
       'location dry run: e2 did not count the dry-run rejections (5 - 2 - 1)');

    # the per-limit flag changes nothing under a location dry run
    @r = seq('/loc_dry_and_limit_dry?k=k5', 4);
    is(join(' ', map { st($_) } @r),
       '[PASSED] [PASSED] [REJECTED_DRY_RUN] [REJECTED_DRY_RUN]',
       'location and limit dry run: REJECTED_DRY_RUN');
    is(rem($t->get('/e2?k=k5')), 2, 'location and limit dry run: the old rule (5 - 2 - 1)');
}

# --- a dry-run limit alone: its rejections are not counted by itself --------------------

{
    # 2r/2s: two admitted at t0, three dry-run rejections at t0 + 1; at
    # t0 + 2.3 the two have left the window; had the rejections been
    # counted, they would still fill it.
    my $t0 = time;
    my @a = seq('/only_dry?k=k6', 2);
    sleep(1 - (time - $t0)) if time - $t0 < 1;
    my @d = seq('/only_dry?k=k6', 3);
    is(join(' ', map { $_->{status} } @a, @d), '200 200 200 200 200', 'dry-run limit alone: all pass');
    is(join(' ', map { st($_) } @d), join(' ', ('[REJECTED_DRY_RUN]') x 3),
       'dry-run limit alone: REJECTED_DRY_RUN');
    my $late = time - $t0;
    sleep(2.3 - $late) if $late < 2.3;
    SKIP: {
        skip "too slow (${late}s)", 2 if $late > 2.1;
        my @e = seq('/ds?k=k6', 3);
        is(join(' ', map { $_->{status} } @e), '200 200 429',
           'after the window, the enforcing location admits two');
        is(rem($e[0]), 1, 'the dry-run rejections took no place');
    }
}

# --- per-limit dry run with count=failed (several parameters in one directive) -----------

# (The configuration is checked first, so that a refusal of several
# parameters in one directive fails one test and skips the rest.)
{
    my $c = TRL->new;
    $c->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=e:1m rate=5r/m;
    token_ratelimit_zone $arg_k zone=f:1m rate=1r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[$token_ratelimit_status]" always;
        location /x/ {
            token_ratelimit zone=e;
            token_ratelimit zone=f count=failed dry_run;
            root %%DIR%%/html;
        }
        location /e { token_ratelimit zone=e; empty_gif; }
    }
EOF
    my ($rc, $out) = $c->test_config;
    is($rc, 0, 'count=failed dry_run: nginx -t passes') or diag($out);
    SKIP: {
        skip 'the configuration is refused', 3 if $rc != 0;
        $c->run;
        my @r = map { $c->get('/x/missing?k=c') } 1 .. 3;
        is(join(' ', map { $_->{status} } @r), '404 404 404', 'count=failed dry run: all pass');
        is(join(' ', map { $_->{headers}{'x-status'} } @r),
           '[PASSED] [REJECTED_DRY_RUN] [REJECTED_DRY_RUN]',
           'count=failed dry run: the failure is counted, then dry-run rejections');
        is($c->get('/e?k=c')->{headers}{'x-ratelimit-remaining'}, 1,
           'count=failed dry run: e counted all three');
        $c->stop;
        $c->no_alerts;
    }
}

$t->stop;
$t->no_alerts;
done_testing;
