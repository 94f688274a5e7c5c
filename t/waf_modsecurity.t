#!/usr/bin/perl
# The limiter and ModSecurity v3 (ModSecurity-nginx, the real
# ngx_http_modsecurity_module.so) in one nginx, both ways (issue 14):
# - (a) into the WAF: token_ratelimit_waf_header sets X-Token-Ratelimit
#   before ModSecurity reads the request, in BOTH load_module orders; a
#   phase:1 rule logs what it sees (status ok, near at warn= or with one
#   place left, limit once full) and denies (406) on status=limit;
# - (b) a client's header of that name never reaches ModSecurity (a rule
#   matching its value never fires), also when sent twice or after more
#   header fields than one part of nginx's list holds; the upstream (an
#   nginx server of the same config) sees none of them, and sees the
#   other fields; where the directive is off the client's header is left
#   alone;
# - (c) from the WAF: three ModSecurity 403s (?attack=1) fill the signal
#   zone of the client: its next clean request gets 429 with Retry-After,
#   another client is unaffected;
# - (d) conf.d/waf-modsecurity.conf with the real CRS 3.3.4 and
#   conf.d/modsecurity/token-ratelimit.conf: nginx -t in both orders; a
#   near request is scored as a warning and passes, one at the limit is
#   scored critical (9525011) and CRS's 949110 blocks it (Total Score: 5);
# - (e) penalized=1 once a penalty started, the reputation score, and the
#   verdicts of a distinct= zone.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $MODSEC = $ENV{TRL_MODSECURITY_MODULE}
    || '/usr/lib/nginx/modules/ngx_http_modsecurity_module.so';
my $CRS = '/usr/share/modsecurity-crs/rules';
my $CRS_SETUP = '/etc/modsecurity/crs/crs-setup.conf';

plan skip_all => "ModSecurity-nginx not installed ($MODSEC)" unless -f $MODSEC;

my $ROOT = $TRL::ROOT;

# Writes nginx.conf with both modules, ours first ('ours') or ModSecurity
# first ('modsec').
sub config {
    my ($t, $order, $http) = @_;
    my $conf = $t->write_config($http);
    my $ms = "load_module $MODSEC;\n";
    $conf =~ s/^(load_module [^\n]+\n)/$order eq 'ours' ? "$1$ms" : "$ms$1"/e
        or die 'no load_module line';
    $t->write_file('nginx.conf', $conf);
}

# ModSecurity's lines in the error log about rule $id: their msg.
sub seen {
    my ($t, $id) = @_;
    return [ $t->error_log =~ /\[id "$id"\].*?\[msg "([^"]*)"\]/g ];
}

my $RULES = <<'EOF';
SecRuleEngine On
SecRequestBodyAccess Off
SecRule REQUEST_HEADERS:X-Token-Ratelimit "@rx ^(.*)$" \
    "id:100,phase:1,pass,log,capture,msg:'seen [%{TX.1}]'"
SecRule REQUEST_HEADERS:X-Token-Ratelimit "@rx \bstatus=(?:limit|penalized)\b" \
    "id:101,phase:1,deny,status:406,log,msg:'the limiter says no'"
SecRule REQUEST_HEADERS:X-Token-Ratelimit "@rx spoof" \
    "id:102,phase:1,deny,status:418,log,msg:'spoofed'"
SecRule ARGS:attack "@streq 1" \
    "id:103,phase:1,deny,status:403,log,msg:'attack'"
EOF

my $HTTP = <<'EOF';
    map $status $waf_blocked {
        403      1;
        default  "";
    }

    token_ratelimit_zone $arg_k zone=login:1m rate=3r/m;
    token_ratelimit_zone $http_x_client zone=waf:1m rate=3r/10m
                         signal=$waf_blocked;

    server {
        listen 127.0.0.1:%%PORT%%;

        modsecurity on;
        modsecurity_rules_file %%DIR%%/rules.conf;
        token_ratelimit_waf_header X-Token-Ratelimit;

        location /login {
            token_ratelimit zone=login warn=1;
            proxy_pass http://127.0.0.1:%%PORT_UP%%;
        }

        location /app {
            token_ratelimit_waf_header off;
            token_ratelimit zone=waf penalty=1m;
            proxy_pass http://127.0.0.1:%%PORT_UP%%;
        }

        location /disabled {
            token_ratelimit_enabled off;
            token_ratelimit zone=login;
            proxy_pass http://127.0.0.1:%%PORT_UP%%;
        }

        location /off {
            token_ratelimit_waf_header off;
            proxy_pass http://127.0.0.1:%%PORT_UP%%;
        }
    }

    # the upstream: what it received
    server {
        listen 127.0.0.1:%%PORT_UP%%;
        location / {
            return 200 "up saw [$http_x_token_ratelimit] f2=$http_x_filler_2 f24=$http_x_filler_24\n";
        }
    }
EOF

# --- (a) the rule sees the header, in both load orders ---------------------

for my $order (qw(ours modsec)) {
    my $t = TRL->new;
    $t->write_file('rules.conf', $RULES);
    config($t, $order, $HTTP);
    $t->run;

    my @st = map { $t->get("/login?k=a")->{status} } 1 .. 4;
    is("@st", '200 200 200 406',
       "$order first: 3 admitted, the 4th denied by ModSecurity on "
       . 'status=limit');

    my $l = 'zone=login; remaining=%d; limit=3; penalized=0';
    is_deeply(seen($t, 100), [
        sprintf("seen [status=ok; $l]", 3),
        sprintf("seen [status=near; $l]", 2),       # warn=1 reached
        sprintf("seen [status=near; $l]", 1),
        sprintf("seen [status=limit; $l]", 0),
    ], "$order first: phase 1 saw the limiter's view of each request");

    # a key given by nothing: no zone applies
    $t->get('/login');
    like(seen($t, 100)->[-1], qr/^seen \[status=none\]$/,
         "$order first: no key, status=none");

    # token_ratelimit_enabled off: the module does nothing there
    my $n = @{seen($t, 100)};
    is($t->get('/disabled?k=a')->{status}, 200,
       "$order first: token_ratelimit_enabled off");
    is(scalar @{seen($t, 100)}, $n, "$order first: ... no header there");

    $t->stop;
}

# --- (b) no spoofing, nothing for the upstream -----------------------------

{
    my $t = TRL->new;
    $t->write_file('rules.conf', $RULES);
    config($t, 'ours', $HTTP);
    $t->run;

    my $r = $t->get('/login?k=s',
                    headers => { 'X-Token-Ratelimit' => 'status=limit spoof' });
    is($r->{status}, 200, 'a spoofed header: neither 418 nor 406');
    like($r->{body}, qr/^up saw \[\] /, 'the upstream saw no header');

    # twice, and beyond the 20 fields of the list's first part
    my $raw = "GET /login?k=s HTTP/1.0\r\nHost: localhost\r\n"
        . "X-Token-Ratelimit: spoof one\r\n"
        . join('', map { "X-Filler-$_: v$_\r\n" } 1 .. 30)
        . "x-token-ratelimit: spoof two\r\n"
        . "X-Filler-31: v31\r\n\r\n";
    $r = $t->request($raw);
    is($r->{status}, 200, 'spoofed twice, in both parts: not seen');
    like($r->{body}, qr/^up saw \[\] f2=v2 f24=v24$/m,
         'the upstream saw none of them, and the other fields');

    # where nginx's list of fields is cut: the first field of its 2nd part
    # (20 fields a part), the last field of all, the only field
    my %cases = (
        'first of the 2nd part' => [ 19, 2 ],
        'the last field'        => [ 25, 0 ],
    );
    for my $case (sort keys %cases) {
        my ($before, $after) = @{$cases{$case}};
        $raw = "GET /login?k=$before HTTP/1.0\r\nHost: localhost\r\n"
            . join('', map { "X-Filler-$_: v$_\r\n" } 1 .. $before)
            . "X-Token-Ratelimit: spoof\r\n"
            . join('', map { "X-Filler-$_: w$_\r\n" } 24 .. 23 + $after)
            . "\r\n";
        $r = $t->request($raw);
        is($r->{status}, 200, "spoofed as $case: not seen");
        like($r->{body}, qr/^up saw \[\] f2=v2 f24=[vw]?\d*$/m,
             "spoofed as $case: the upstream saw none");
    }
    $r = $t->request("GET /login?k=only HTTP/1.0\r\n"
                     . "X-Token-Ratelimit: spoof\r\n\r\n");
    is($r->{status}, 200, 'spoofed as the only field: not seen');
    like($r->{body}, qr/^up saw \[\] /, '... nor by the upstream');

    ok(!grep(/spoof/, @{seen($t, 100)}), 'ModSecurity never saw a spoof');
    is(scalar @{seen($t, 102)}, 0, 'the spoof rule never fired');

    # where the directive is off the field is the client's
    $r = $t->get('/off', headers => { 'X-Token-Ratelimit' => 'spoof' });
    is($r->{status}, 418, 'token_ratelimit_waf_header off: left alone');

    # --- (c) three WAF blocks penalise the source -------------------------

    my @st = map {
        $t->get('/app?attack=1', headers => { 'X-Client' => 'evil' })->{status}
    } 1 .. 3;
    is("@st", '403 403 403', 'three requests blocked by ModSecurity');

    $r = $t->get('/app', headers => { 'X-Client' => 'evil' });
    is($r->{status}, 429, 'the next clean request of that client: 429');
    ok(($r->{headers}{'retry-after'} // 0) >= 1,
       "with Retry-After ($r->{headers}{'retry-after'})");
    is($t->get('/app', headers => { 'X-Client' => 'good' })->{status}, 200,
       'another client is unaffected');

    $t->stop;
}

# --- (e) the other fields: penalized, score, distinct ----------------------

{
    my $t = TRL->new;
    $t->write_file('rules.conf', join "\n", (split /\n/, $RULES)[0 .. 3]);
    $t->write_file('bad.txt', "192.0.2.0/24\n");
    config($t, 'modsec', <<'EOF');
    token_ratelimit_reputation size=1m;
    token_ratelimit_reputation_list bad file=%%DIR%%/bad.txt score=80;

    token_ratelimit_zone $arg_k zone=p:1m rate=1r/m;
    token_ratelimit_zone $arg_k zone=d:1m rate=2r/m distinct=$arg_u;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;     # loopback is a trusted range
        real_ip_header X-Real-IP;
        modsecurity on;
        modsecurity_rules_file %%DIR%%/rules.conf;
        token_ratelimit_waf_header X-Token-Ratelimit;

        location /pen { token_ratelimit zone=p penalty=1m; empty_gif; }
        location /dist { token_ratelimit zone=d; empty_gif; }
    }
EOF
    $t->run;

    my %bad = (headers => { 'X-Real-IP' => '192.0.2.7' });
    my @st = map { $t->get('/pen?k=p', %bad)->{status} } 1 .. 3;
    is("@st", '200 429 429', 'penalty: the 2nd request starts it');
    my $seen = seen($t, 100);
    is($seen->[2], 'seen [status=penalized; zone=p; remaining=0; limit=1; '
       . 'penalized=1; score=80]', 'status=penalized, penalized=1, score=80');

    @st = map { $t->get("/dist?k=d&u=$_", %bad)->{status} } qw(a b c);
    is("@st", '200 200 429', 'distinct: the 3rd value is over the limit');
    $seen = seen($t, 100);
    is_deeply([ @$seen[-3 .. -1] ], [
        'seen [status=none; score=80; distinct=ok]',
        'seen [status=none; score=80; distinct=near]',
        'seen [status=none; score=80; distinct=over]',
    ], 'distinct= verdicts: ok, near (one value left), over');

    $t->stop;
}

# --- (d) the shipped example and rule file with the real CRS ---------------

SKIP: {
    skip "CRS not installed ($CRS, $CRS_SETUP)", 9
        unless -d $CRS && -f $CRS_SETUP;

    my $text = TRL->new->read_file("$ROOT/conf.d/waf-modsecurity.conf");
    ok($text =~ s{/etc/nginx/conf\.d/}{$ROOT/conf.d/}g,
       'the example includes conf.d/modsecurity/token-ratelimit.conf');

    for my $order (qw(ours modsec)) {
        my $t = TRL->new;
        config($t, $order, $text);
        my ($rc, $out) = $t->test_config;
        is($rc, 0, "$order first: nginx -t with conf.d/waf-modsecurity.conf")
            or diag($out);
    }

    my $t = TRL->new;
    my $backend = $t->start_backend;
    (my $run = $text) =~ s/127\.0\.0\.1:9000\b/127.0.0.1:$backend/g;
    $run =~ s/^(\s*)listen\s+[^;]+;/${1}listen 127.0.0.1:%%PORT%%;/mg;
    config($t, 'ours', $run);
    $t->run;

    # waf_login: 5r/m; the 5th takes the last place (near), the 6th none
    my @st = map { $t->get('/login')->{status} } 1 .. 6;
    is("@st", '200 200 200 200 200 403',
       'CRS blocks the request at the limit (before the limiter\'s 429)');

    my $log = $t->error_log;
    like($log, qr/\[id "9525012"\][^\n]*status=near/,
         'near: scored as a warning (9525012)');
    like($log, qr/\[id "9525011"\][^\n]*status=limit/,
         'at the limit: scored critical (9525011)');
    like($log, qr/\[id "949110"\][^\n]*Total Score: 5/,
         'CRS 949110: the total reached the threshold with our score');
    unlike($log, qr/\[id "949110"\][^\n]*Total Score: 3/,
           'the warning alone blocked nothing');

    # its 403s signal: the 3rd blocks the address at the limiter
    $t->get('/login') for 1 .. 2;
    like($t->get('/')->{raw}, qr{^HTTP/1\.\d (?:403|429)},
         'after three WAF blocks the address is blocked everywhere');

    $t->stop;
}

done_testing;
