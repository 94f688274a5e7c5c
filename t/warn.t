#!/usr/bin/perl
# Gradual enforcement: token_ratelimit zone=NAME warn=N|P%.  An admitted
# request that leaves at least the threshold of places taken is WARNED
# ($token_ratelimit_status, X-RateLimit-Warning: "ZONE";used=U;limit=N),
# the first such request of a key since it was last below the threshold is
# logged once at [notice], and rejection still happens only at N.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
$t->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=w:1m rate=10r/m;
    token_ratelimit_zone $arg_k zone=short:1m rate=3r/2s;
    token_ratelimit_zone $arg_k zone=a:1m rate=5r/m;
    token_ratelimit_zone $arg_k zone=b:1m rate=10r/m;
    token_ratelimit_zone $arg_k zone=one:1m rate=1r/m;
    token_ratelimit_zone $arg_k zone=d:1m rate=2r/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[$token_ratelimit_status]" always;

        location /w     { token_ratelimit zone=w warn=8; empty_gif; }
        location /p75   { token_ratelimit zone=w warn=75%; empty_gif; }
        location /p33   { token_ratelimit zone=w warn=33%; empty_gif; }
        location /p1    { token_ratelimit zone=w warn=1%; empty_gif; }
        location /p100  { token_ratelimit zone=w warn=100%; empty_gif; }
        location /n10   { token_ratelimit zone=w warn=10; empty_gif; }
        location /plain { token_ratelimit zone=w; empty_gif; }
        location /short { token_ratelimit zone=short warn=2; empty_gif; }

        location /two {
            token_ratelimit zone=a warn=3;
            token_ratelimit zone=b warn=2;
            empty_gif;
        }
        location /mix {
            token_ratelimit zone=a warn=1;
            token_ratelimit zone=one;
            empty_gif;
        }
        location /a { token_ratelimit zone=a; empty_gif; }

        location /dry {
            token_ratelimit zone=d warn=1;
            token_ratelimit_dry_run on;
            empty_gif;
        }
        location /ietf {
            token_ratelimit zone=w warn=1;
            token_ratelimit_headers ietf;
            empty_gif;
        }
    }
EOF
$t->run;

sub st { $_[0]{headers}{'x-status'} // '' }
sub warning { $_[0]{headers}{'x-ratelimit-warning'} }
sub seq {
    my ($path, $n) = @_;
    return map { $t->get($path) } 1 .. $n;
}
sub log_lines {
    my ($re) = @_;
    return grep { $_ =~ $re } split /\n/, $t->error_log;
}

# --- warn=8 of 10: WARNED from the 8th request, rejected only at the 11th ----

{
    my @r = seq('/w?k=a', 11);
    is(join(' ', map { $_->{status} } @r), join(' ', (200) x 10, 429),
       'warn=8: ten admitted, the eleventh rejected');
    is(join(' ', map { st($_) } @r),
       join(' ', ('[PASSED]') x 7, ('[WARNED]') x 3, '[REJECTED]'),
       'warn=8: PASSED up to 7 taken, WARNED from 8, REJECTED at 11');
    is_deeply([map { warning($_) } @r[0 .. 6]], [(undef) x 7],
              'warn=8: no X-RateLimit-Warning below the threshold');
    is_deeply([map { warning($_) } @r[7 .. 9]],
              ['"w";used=8;limit=10', '"w";used=9;limit=10',
               '"w";used=10;limit=10'],
              'warn=8: X-RateLimit-Warning "w";used=U;limit=10');
    is(warning($r[10]), undef, 'warn=8: no warning on the rejection');
    is_deeply([map { $_->{headers}{'x-ratelimit-remaining'} } @r[7 .. 10]],
              [2, 1, 0, 0], 'warn=8: X-RateLimit-Remaining as usual');
    is($r[9]{headers}{'content-type'}, 'image/gif',
       'warn: the content is served');
    like($r[10]{body}, qr/"error":"rate_limit_exceeded"/, 'the rejection is the usual one');

    my @lines = log_lines(qr/key "a" reached/);
    is(scalar @lines, 1, 'warn: one log line for the three warned requests')
        or diag(join "\n", @lines);
    like($lines[0] // '',
         qr/\[notice\] .*zone "w": key "a" reached the warning threshold, 8 of limit 10r\/m taken/,
         'warn: the line, at [notice]');
}

# --- a key of its own logs its own line ------------------------------------------

{
    my @r = seq('/w?k=b', 9);
    is(join(' ', map { st($_) } @r), join(' ', ('[PASSED]') x 7, ('[WARNED]') x 2),
       'key b: warned from 8');
    is(scalar(log_lines(qr/zone "w": key "b" reached the warning threshold, 8 of limit 10r\/m taken/)),
       1, 'key b: its own line');
}

# --- percentages, rounded up ---------------------------------------------------------

{
    my %cases = (
        p75 => [75, 8],     # 7.5 -> 8
        p33 => [33, 4],     # 3.3 -> 4
        p1 => [1, 1],       # 0.1 -> 1
        p100 => [100, 10],
        n10 => [10, 10],    # warn=N itself
    );
    for my $loc (sort keys %cases) {
        my ($what, $th) = @{$cases{$loc}};
        my @r = seq("/$loc?k=$loc", 10);
        is(join(' ', map { st($_) } @r),
           join(' ', ('[PASSED]') x ($th - 1), ('[WARNED]') x (11 - $th)),
           "/$loc: warned from $th taken");
        is(warning($r[$th - 1]), "\"w\";used=$th;limit=10",
           "/$loc: the first warning says used=$th");
    }
    my @r = seq('/plain?k=plain', 10);
    is(join(' ', map { st($_) } @r), join(' ', ('[PASSED]') x 10),
       'no warn=: never WARNED');
    ok(!grep({ defined warning($_) } @r), 'no warn=: no X-RateLimit-Warning');
}

# --- the threshold counts places taken in the zone, whatever location took them -------

{
    # 7 places taken through a location without warn=, then /w warns at once
    my @r = seq('/plain?k=shared', 7);
    my $r = $t->get('/w?k=shared');
    is(st($r), '[WARNED]', 'places taken elsewhere count toward the threshold');
    is(warning($r), '"w";used=8;limit=10', 'used=8');
}

# --- two zones warn: one list member each; one warns: only its member ---------------

{
    my @r = seq('/two?k=t', 4);
    is(join(' ', map { st($_) } @r), '[PASSED] [WARNED] [WARNED] [WARNED]',
       'two zones: warned once either is past its threshold');
    is(warning($r[1]), '"b";used=2;limit=10', 'two zones: only b warns at 2 taken');
    is(warning($r[2]), '"a";used=3;limit=5, "b";used=3;limit=10',
       'two zones: both warn, comma-separated');
    is($r[3]{headers}{'x-ratelimit-limit'}, 5,
       'two zones: X-RateLimit-* of the most restrictive as usual');
    is($r[3]{headers}{'x-ratelimit-remaining'}, 1, 'two zones: remaining 1');
    my @r2 = seq('/two?k=t', 2);
    is(join(' ', map { $_->{status} } @r2), '200 429',
       'two zones: rejected only at the smaller limit');
    is(warning($r2[1]), undef, 'two zones: no warning on the rejection');
    is(st($r2[1]), '[REJECTED]', 'two zones: REJECTED');
    is(scalar(log_lines(qr/zone "a": key "t" reached the warning threshold, 3 of limit 5r\/m taken/)),
       1, 'two zones: a logged once');
    is(scalar(log_lines(qr/zone "b": key "t" reached the warning threshold, 2 of limit 10r\/m taken/)),
       1, 'two zones: b logged once');
}

# --- a rejection outranks a warning --------------------------------------------------

{
    my @r = seq('/mix?k=m', 2);
    is(st($r[0]), '[WARNED]', 'mix: a warns, one admits: WARNED');
    is(warning($r[0]), '"a";used=1;limit=5', 'mix: only a is listed');
    is($r[1]{status}, 429, 'mix: zone "one" rejects the second');
    is(st($r[1]), '[REJECTED]', 'mix: REJECTED, not WARNED');
    is(warning($r[1]), undef, 'mix: no warning header on the rejection');
    is($t->get('/a?k=m')->{headers}{'x-ratelimit-remaining'}, 3,
       'mix: the rejected request was not counted by zone a');
}

# --- a dry-run rejection outranks a warning ---------------------------------------------

{
    my @r = seq('/dry?k=d', 3);
    is(join(' ', map { $_->{status} } @r), '200 200 200', 'dry run: all pass');
    is(join(' ', map { st($_) } @r), '[WARNED] [WARNED] [REJECTED_DRY_RUN]',
       'dry run: WARNED, then REJECTED_DRY_RUN');
    is(warning($r[1]), '"d";used=2;limit=2', 'dry run: warned at the limit');
    is(warning($r[2]), undef, 'dry run: no warning header when REJECTED_DRY_RUN');
}

# --- other header modes ---------------------------------------------

{
    my $r = $t->get('/ietf?k=i');
    is(st($r), '[WARNED]', 'ietf headers: WARNED');
    is(warning($r), '"w";used=1;limit=10', 'ietf headers: X-RateLimit-Warning sent too');
    like($r->{headers}{'ratelimit'} // '', qr/^"w";r=9;t=\d+$/, 'ietf headers: RateLimit');

}

# --- the log line comes again once the key was below the threshold --------------

{
    # 3r/2s, warn=2
    my $t0 = time;
    my @r = seq('/short?k=s', 4);
    my $took = time - $t0;
    is(join(' ', map { st($_) } @r), '[PASSED] [WARNED] [WARNED] [REJECTED]',
       'short: PASSED, WARNED, WARNED, REJECTED');
    is(scalar(log_lines(qr/zone "short": key "s" reached/)), 1,
       'short: one line in the first window');
    sleep(2.3 - (time - $t0));
    SKIP: {
        skip "too slow ($took s for 4 requests)", 4 if $took > 1.5;
        my @r2 = seq('/short?k=s', 2);
        is(join(' ', map { st($_) } @r2), '[PASSED] [WARNED]',
           'short: next window: below, then past the threshold again');
        is(warning($r2[1]), '"short";used=2;limit=3', 'short: used=2 again');
        my @lines = log_lines(qr/zone "short": key "s" reached/);
        is(scalar @lines, 2, 'short: logged again after being below the threshold');
        like($lines[1] // '', qr/2 of limit 3r\/2s taken/, 'short: 2 of limit 3r/2s');
    }
}

# --- warn= with count=failed (several parameters in one directive) -------------

# (The configuration is checked first, so that a refusal of several
# parameters in one directive fails one test and skips the rest.)
{
    my $c = TRL->new;
    $c->write_config(<<'EOF');
    token_ratelimit_zone $arg_k zone=f:1m rate=3r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Status "[$token_ratelimit_status]" always;
        location /f/ { token_ratelimit zone=f count=failed warn=2; root %%DIR%%/html; }
    }
EOF
    mkdir $c->dir . '/html/f';
    $c->write_file('html/f/ok', "ok\n");
    my ($rc, $out) = $c->test_config;
    is($rc, 0, 'count=failed warn=2: nginx -t passes') or diag($out);
    SKIP: {
        skip 'the configuration is refused', 5 if $rc != 0;
        $c->run;
        my @r = map { $c->get($_) } '/f/missing?k=x', '/f/missing?k=x',
                                    '/f/ok?k=x', '/f/missing?k=x', '/f/ok?k=x';
        is(join(' ', map { $_->{status} } @r), '404 404 200 404 429',
           'count=failed: failures counted, the success given back');
        is(join(' ', map { st($_) } @r),
           '[PASSED] [WARNED] [WARNED] [WARNED] [REJECTED]',
           'count=failed: places held in flight count toward the threshold');
        is(warning($r[1]), '"f";used=2;limit=3', 'count=failed: used=2');
        is(warning($r[2]), '"f";used=3;limit=3', 'count=failed: the success holds a place while in flight');
        is(warning($r[3]), '"f";used=3;limit=3', 'count=failed: used=3 (the success gave its place back)');
        $c->stop;
        $c->no_alerts;
    }
}

$t->stop;
$t->no_alerts;
done_testing;
