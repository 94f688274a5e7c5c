#!/usr/bin/perl
# Signal zones (issue 14, "from the WAF"): token_ratelimit_zone KEY
# zone=NAME:SIZE rate=N/W signal=$var.  In the log phase every main request
# whose signal value is neither empty nor "0" takes a place of its key in
# the zone (a request the limiter itself rejected does not signal); once the
# key has none, a signal is a violation (counted as a rejection, able to
# start the location's penalty).  "token_ratelimit zone=NAME" on a signal
# zone only checks: requests pass uncounted while the key has a place, and
# are rejected the usual way (429, Retry-After, penalty) once it has none.
# Here the "WAF" is a backend answering 403 (the idiom: map $status).
# - three 403s in the window: the next clean request of that key gets 429
#   with Retry-After (until a place is free), a penalty starts, other keys
#   are unaffected;
# - clean requests never count; two 403s leave a place;
# - signals count in locations without a limit on the zone (not where
#   token_ratelimit_enabled is off), and only
#   values other than "" and "0" signal; the limiter's own rejections never;
# - the zone's statistics count the signals and the violation; the API
#   shows signal=;
# - nginx -t refuses signal= with sync=strict, with distinct=, and a value
#   without variables;
# - sync=async: two nginx nodes on one real Redis: the signals of node A
#   block the key on node B.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;
use TRLEventDoc;

my $t = TRL->new;
my $backend = $t->start_backend;

$t->write_config(<<"EOF");
    map \$status \$waf_blocked {
        403      1;
        default  "";
    }

    token_ratelimit_zone \$arg_k zone=waf:1m rate=3r/10m signal=\$waf_blocked;
    token_ratelimit_zone \$arg_k zone=sig:1m rate=2r/10m signal=\$arg_sig;

    server {
        listen 127.0.0.1:%%PORT%%;
        token_ratelimit_event_log events.log;

        location /app {
            token_ratelimit zone=waf penalty=30s;
            proxy_pass http://127.0.0.1:$backend;
        }

        # no limit here: its 403s signal all the same
        location /other {
            proxy_pass http://127.0.0.1:$backend;
        }

        # the master switch: nothing of the module, signals included
        location /disabled {
            token_ratelimit_enabled off;
            proxy_pass http://127.0.0.1:$backend;
        }

        location /sig {
            token_ratelimit zone=sig;
            empty_gif;
        }

        location /api { token_ratelimit_api; }
    }
EOF
$t->run;

sub app { $t->get("/app?k=$_[0]" . ($_[1] ? "&status=$_[1]" : '')) }
sub statuses { join ' ', map { $_->{status} } @_ }

# --- three WAF blocks penalise the key --------------------------------------

is(statuses(map { app('a', 403) } 1 .. 3), '403 403 403',
   'three 403s pass the check-only limit (the key had a place each time)');

my $r = app('a');
is($r->{status}, 429, 'the next clean request of the key: 429');
my $ra = $r->{headers}{'retry-after'} // 0;
# the 30 s penalty ends before the window frees a place: the wait is that
ok($ra >= 590 && $ra <= 601,
   "Retry-After: until the first signal leaves the 10 min window ($ra)");
like($r->{body}, qr/"error":"rate_limit_exceeded"/, 'the usual JSON body');
is(app('a')->{status}, 429, 'still blocked');

is(app('b')->{status}, 200, 'another key is unaffected');

# --- clean requests never count; two signals leave a place ------------------

is(statuses(map { app('c') } 1 .. 10), join(' ', ('200') x 10),
   'clean requests: never counted by a signal zone');
is(statuses(map { app('d', 403) } 1 .. 2), '403 403', 'two 403s');
is(app('d')->{status}, 200, 'two signals of three: the key has a place');
is(app('d', 403)->{status}, 403, 'the third 403 passes (a place left)');
is(app('d')->{status}, 429, '... and fills the key: 429');

# --- signals from a location without the limit ------------------------------

is(statuses(map { $t->get("/other?k=e&status=403") } 1 .. 3),
   '403 403 403', 'three 403s in a location without a limit');
is(app('e')->{status}, 429, 'they signal too: the key is blocked in /app');
is($t->get("/other?k=e&status=403")->{status}, 403,
   'a 4th 403 where no limit checks: a signal over the full key');

sleep 0.3;    # the log phase of the last request may follow its answer
# every signal is an event-log line ("signal"), as docs/events.md says
my @sig = grep { $_->{event} eq 'signal' }
    map { decode_json($_) } split /\n/, $t->read_file('events.log');
is(scalar(grep { $_->{key} eq 'a' && $_->{reason} eq 'counted' } @sig), 3,
   'event log: three "signal" lines of k=a, reason counted');
my ($v) = grep { $_->{key} eq 'e' && $_->{reason} eq 'violation' } @sig;
ok($v && $v->{zone} eq 'waf' && $v->{uri} eq '/other',
   'event log: the 4th signal of k=e is a violation, in zone waf');
is(join('; ', map { TRLEventDoc::problems('json', $_) } @sig), '',
   'the signal lines have the documented fields');

is(statuses(map { $t->get("/disabled?k=h&status=403") } 1 .. 4),
   '403 403 403 403', 'four 403s where token_ratelimit_enabled is off');
is(app('h')->{status}, 200, '... signal nothing');

# --- what signals: neither "" nor "0" ---------------------------------------

is(statuses(map { $t->get("/sig?k=f&sig=0") } 1 .. 5),
   join(' ', ('200') x 5), 'sig=0: no signal');
is(statuses(map { $t->get("/sig?k=f") } 1 .. 3), '200 200 200',
   'no sig: no signal');
is(statuses(map { $t->get("/sig?k=f&sig=yes") } 1 .. 2), '200 200',
   'sig=yes twice: two signals, each checked before its own count');
is($t->get("/sig?k=f")->{status}, 429, 'then the key is full: 429');

# the limiter's own rejections never signal
is(statuses(map { $t->get("/sig?k=g&sig=1") } 1 .. 3), '200 200 429',
   'two signals fill k=g; the 3rd request is rejected');
my $sz = decode_json($t->get('/api/zones/sig')->{body});
is($sz->{requests}{rejected}, 2,
   'one rejection each for k=f and k=g: the rejected request (sig=1) '
   . 'did not signal over the full key');
is($sz->{requests}{passed}, 4, 'four signals counted (k=f, k=g)');

# --- statistics -------------------------------------------------------------

# /app?k=a: 3 signals counted; 429 answers are the limiter's own
# rejections (and never signals); the 4th 403 of k=d filled the key.
my $z = decode_json($t->get('/api/zones/waf')->{body});
is($z->{signal}, '$waf_blocked', 'the API shows what signals');
is($z->{requests}{passed}, 3 + 3 + 3, 'passed: one per signal counted '
   . '(k=a, k=d, k=e)');
ok($z->{requests}{rejected} >= 4, 'rejected: the limiter\'s 429s '
   . "($z->{requests}{rejected})");
ok($z->{penalties_started} >= 1, 'a penalty started');

# a signal over a full key is a violation: counted as a rejection
my $before = $z->{requests}{rejected};
is($t->get("/other?k=d&status=403")->{status}, 403, 'a 4th 403 of k=d');
$z = decode_json($t->get('/api/zones/waf')->{body});
is($z->{requests}{rejected}, $before + 1,
   'the signal over the full key counts as a rejection');
is($z->{requests}{passed}, 9, '... and takes no place');

$t->stop;

# --- nginx -t -------------------------------------------------------------

{
    my $c = TRL->new;
    $c->config_fails(<<'EOF',
    token_ratelimit_redis 127.0.0.1:6379;
    token_ratelimit_zone $binary_remote_addr zone=w:1m rate=3r/m
                         signal=$status sync=strict;
EOF
        [qr/"signal=" cannot be used with "sync=strict"/,
         qr/log phase, which cannot wait for Redis/,
         qr/token_ratelimit_zone/], 'signal= with sync=strict');

    $c->config_fails(<<'EOF',
    token_ratelimit_zone $binary_remote_addr zone=w:1m rate=3r/m
                         distinct=$arg_u signal=$status;
EOF
        [qr/"signal=" cannot be used with "distinct="/], 'with distinct=');

    $c->config_fails(<<'EOF',
    token_ratelimit_zone $binary_remote_addr zone=w:1m rate=3r/m signal=1;
EOF
        [qr/invalid value "signal=1" in "token_ratelimit_zone"/,
         qr/expects a string with variables/], 'signal= without a variable');
}

# --- sync=async: two nodes, one Redis ---------------------------------------

SKIP: {
    skip 'redis-server not installed', 4 unless -x '/usr/bin/redis-server';
    require TRLRedis;

    my @n = map { TRL->new } 1 .. 2;
    my $redis = TRLRedis->new(port => $n[0]->port('REDIS'));
    my $raddr = $redis->address;
    my $be = $n[0]->start_backend;

    for my $n (@n) {
        $n->write_config(<<"EOF");
    map \$status \$waf_blocked { 403 1; default ""; }
    token_ratelimit_zone \$arg_k zone=waf:1m rate=3r/10m sync
                         signal=\$waf_blocked;
    token_ratelimit_redis $raddr interval=50ms timeout=200ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /app {
            token_ratelimit zone=waf penalty=30s;
            proxy_pass http://127.0.0.1:$be;
        }
    }
EOF
        $n->run;
    }

    is(statuses(map { $n[0]->get("/app?k=x&status=403") } 1 .. 3),
       '403 403 403', 'node A: three 403s');
    is($n[0]->get('/app?k=x')->{status}, 429, 'node A blocks the key');

    # node B learns the cluster count within an interval or two of a read
    my $status = 0;
    my $deadline = time + 5;
    while (time < $deadline) {
        $status = $n[1]->get('/app?k=x')->{status};
        last if $status == 429;
        sleep 0.1;
    }
    is($status, 429, 'node B blocks the key too (signals shared by Redis)');
    is($n[1]->get('/app?k=y')->{status}, 200, 'node B: another key passes');

    $_->stop for @n;
}

done_testing;
