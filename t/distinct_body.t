#!/usr/bin/perl
# Subjects of the request body and of the upstream's response
# (token_ratelimit_subject from=form:, from=json:, from=upstream:), through
# the real nginx and a real backend:
# - form fields (%-encoding, '+') and JSON string fields (escapes, nested
#   values skipped) are extracted and normalised; a body of another type
#   gives no subject;
# - over-size (Content-Length over body=, or in a temporary file),
#   malformed and duplicated-field bodies are counted as ONE value;
# - the body still reaches the backend intact (in memory, in a temporary
#   file, chunked);
# - a body that arrives slowly does not hold up other requests;
# - a subject of the body can be a zone's key;
# - from=upstream: is counted in the log phase (count=failed: failures
#   only): the attempt after N values is rejected, attempts in flight
#   together all pass; the header is hidden by proxy_hide_header;
# - nginx -t errors.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use TRL;

my $t = TRL->new;

$t->write_config(<<'EOF');
    token_ratelimit_subject $form_user from=form:username case=lower;
    token_ratelimit_subject $json_user from=json:username case=lower
                            body=256;
    token_ratelimit_subject $auth_user from=upstream:X-Auth-User
                            case=lower;

    token_ratelimit_zone $http_x_client zone=form_acc:1m rate=3r/10m
                         distinct=$form_user;
    token_ratelimit_zone $http_x_client zone=json_acc:1m rate=3r/10m
                         distinct=$json_user;
    token_ratelimit_zone $http_x_client zone=up_acc:1m rate=3r/10m
                         distinct=$auth_user;
    token_ratelimit_zone $form_user zone=per_user:1m rate=2r/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Form-User $form_user always;
        add_header X-Json-User $json_user always;
        add_header X-Distinct $token_ratelimit_distinct always;

        client_body_buffer_size 1k;

        location /form {
            token_ratelimit zone=form_acc;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%;
        }
        location /json {
            token_ratelimit zone=json_acc;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%;
        }
        location /key {
            token_ratelimit zone=per_user;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%;
        }
        location /auth {
            token_ratelimit zone=up_acc count=failed;
            proxy_hide_header X-Auth-User;
            proxy_pass http://127.0.0.1:%%PORT_BACKEND%%;
        }
        location /plain { return 204; }
    }
EOF
$t->start_backend('BACKEND');
$t->run;

my $FORM = 'application/x-www-form-urlencoded';
my $JSON = 'application/json';

sub post_as {
    my ($path, $client, $type, $body) = @_;
    return $t->post("$path?echo=1", $body,
                    headers => { 'X-Client' => $client,
                                 defined $type ? ('Content-Type' => $type)
                                               : () });
}

# the backend's answer ends with the body it received
sub echoed {
    my ($r) = @_;
    return ($r->{body} // '') =~ /\Abackend \d+\n(.*)\z/s ? $1 : undef;
}

# --- forms ----------------------------------------------------------------

my @forms = ('username=Alice&password=p%26w',
             'password=x&username=%61lice',
             'username=+ALICE+',
             "username=al%69ce&x=" . ('y' x 100));
for my $body (@forms) {
    my $r = post_as('/form', 'f1', $FORM, $body);
    is($r->{status}, 200, "form \"$body\": passed");
    is($r->{headers}{'x-form-user'}, 'alice', "form \"$body\": alice");
    is(echoed($r), $body, "form \"$body\": the backend got the body");
}
is(post_as('/form', 'f1', "$FORM; charset=utf-8", 'username=alice')
       ->{headers}{'x-distinct'}, 1,
   'form: alice, %61lice, +ALICE+ and al%69ce are one value');

is(post_as('/form', 'f1', $FORM, 'username=bob')->{headers}{'x-distinct'},
   2, 'form: bob is a second value');
is(post_as('/form', 'f1', $FORM, 'username=carol')->{status}, 200,
   'form: carol, the third value, passes');
my $r = post_as('/form', 'f1', $FORM, 'username=dave');
is($r->{status}, 429, 'form: dave, the fourth value, is rejected');
is($r->{headers}{'x-form-user'}, 'dave', 'form: the rejected subject');
is(post_as('/form', 'f1', $FORM, 'username=Bob')->{status}, 200,
   'form: a value already counted passes');

# another type, or no body: no subject, the zone does not apply
$r = post_as('/form', 'f1', $JSON, 'username=erin');
is($r->{status}, 200, 'form: a JSON body gives no form subject');
ok(!defined $r->{headers}{'x-distinct'}, 'form: ... and no distinct count');
is(echoed($r), 'username=erin', 'form: ... and the backend got the body');
is($t->get('/form?username=frank', headers => { 'X-Client' => 'f1' })
       ->{status}, 200, 'form: a GET without a body has no subject');

# --- JSON -----------------------------------------------------------------

my @json = ('{"username":"Alice","password":"x"}',
            '{"password":"a\"b","username":"\u0061lice"}',
            '{"user":{"username":"mallory"},"username":" ALICE "}',
            "{ \"list\": [1, {\"username\": \"x\"}],\n \"username\": \"alice\" }");
for my $body (@json) {
    my $r = post_as('/json', 'j1', $JSON, $body);
    is($r->{status}, 200, "json $body: passed");
    is($r->{headers}{'x-json-user'}, 'alice', "json $body: alice");
    is(echoed($r), $body, "json $body: the backend got the body");
}
is(post_as('/json', 'j1', "$JSON; charset=utf-8", '{"username":"alice"}')
       ->{headers}{'x-distinct'}, 1, 'json: escapes and nesting: one value');

$r = post_as('/json', 'j1', $JSON, '{"username":"b\\"o\\u00e9b"}');
is($r->{headers}{'x-json-user'}, "b\"o\xc3\xa9b",
   'json: escapes decoded as UTF-8');
is($r->{headers}{'x-distinct'}, 2, 'json: a second value');
is(post_as('/json', 'j1', $JSON, '{"username":"%61lice"}')
       ->{headers}{'x-json-user'}, '%61lice',
   'json: strings are not percent-decoded');
is(post_as('/json', 'j1', $JSON, '{"username":"eve"}')->{status}, 429,
   'json: the fourth value is rejected');
is(post_as('/json', 'j1', $FORM, '{"username":"eve"}')->{status}, 200,
   'json: a form body gives no JSON subject');

# --- bodies the extractor does not trust: one value for all -------------

my @odd = (
    [ json => '{"username":"a1","pad":"' . ('x' x 300) . '"}',
      'over body=256 (Content-Length)' ],
    [ json => '{"username":"a2"', 'malformed JSON' ],
    [ json => '{"username":"a3","username":"a4"}', 'a JSON field twice' ],
    [ json => '{"username":42}', 'a JSON number' ],
    [ json => '["username","a5"]', 'not a JSON object' ],
);
for my $case (@odd) {
    my ($kind, $body, $what) = @$case;
    my $r = post_as('/json', 'odd', $JSON, $body);
    is($r->{status}, 200, "$what: passed");
    is($r->{headers}{'x-distinct'}, 1, "$what: counted as the one value");
    is($r->{headers}{'x-json-user'}, "\0invalid", "$what: \\0invalid");
    is(echoed($r), $body, "$what: the backend got the body");
}
is(post_as('/json', 'odd', $JSON, '{"username":"real"}')
       ->{headers}{'x-distinct'}, 2, 'odd bodies: a real value is the 2nd');

my $big = 'username=z1&pad=' . ('p' x 3000);    # > client_body_buffer_size
my @fodd = ([ $big, 'a form in a temporary file' ],
            [ 'username=z2&username=z3', 'a form field twice' ],
            [ 'username=z4&' . ('q' x 5000) . '&username=z5',
              'a long form with the field twice' ]);
for my $case (@fodd) {
    my ($body, $what) = @$case;
    my $r = post_as('/form', 'fodd', $FORM, $body);
    is($r->{status}, 200, "$what: passed");
    is($r->{headers}{'x-distinct'}, 1, "$what: counted as the one value");
    is(echoed($r), $body, "$what: the backend got the body intact");
}

# chunked: read, extracted, sent on
{
    my $body = 'username=Chunky&pw=1';
    my $raw = "POST /form?echo=1 HTTP/1.1\r\nHost: localhost\r\n"
        . "X-Client: chunked\r\nContent-Type: $FORM\r\n"
        . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        . sprintf("%x\r\n%s\r\n", 9, substr($body, 0, 9))
        . sprintf("%x\r\n%s\r\n0\r\n\r\n", length($body) - 9,
                  substr($body, 9));
    my $r = $t->request($raw);
    is($r->{status}, 200, 'chunked form: passed');
    is($r->{headers}{'x-form-user'}, 'chunky', 'chunked form: the subject');
    like($r->{body} // '', qr/\Q$body\E/, 'chunked form: the backend got it');
}

# --- a slow body holds up nobody ----------------------------------------

{
    my $body = 'username=slowpoke';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->port('PORT'))
        or die "connect: $!";
    $s->autoflush(1);
    print $s "POST /form?echo=1 HTTP/1.0\r\nHost: localhost\r\n"
        . "X-Client: slow\r\nContent-Type: $FORM\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n";
    sleep 0.3;                                  # nginx waits for the body

    my $t0 = time;
    my $other = post_as('/form', 'quick', $FORM, 'username=quick');
    my $took = time - $t0;
    is($other->{status}, 200, 'slow body: another request is answered');
    ok($took < 1, sprintf('slow body: ... at once (%.3f s)', $took));
    is($t->get('/plain')->{status}, 204, 'slow body: and a plain one too');

    sleep 0.5;
    print $s $body;
    my ($slow) = TRL::collect_responses(5, $s);
    is($slow->{status}, 200, 'slow body: answered once the body is in');
    is($slow->{headers}{'x-form-user'}, 'slowpoke', 'slow body: its subject');
    is(echoed($slow), $body, 'slow body: the backend got it');
}

# a client that leaves mid-body, a body over client_max_body_size
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->port('PORT'))
        or die "connect: $!";
    print $s "POST /form HTTP/1.0\r\nHost: localhost\r\n"
        . "Content-Type: $FORM\r\nContent-Length: 100\r\n\r\nusername=";
    sleep 0.2;
    close $s;
    is(post_as('/form', 'gone', $FORM, 'username=next')->{status}, 200,
       'a client gone mid-body: the next request is served');
    is(post_as('/form', 'huge', $FORM, 'username=h&p=' . ('x' x 1100000))
           ->{status}, 413, 'a body over client_max_body_size: 413');
}

# --- a subject of the body as a zone's key ------------------------------

my @k = map { post_as('/key', 'k', $FORM, 'username=Kim')->{status} } 1 .. 3;
is("@k", '200 200 429', 'key: the form subject keys a request zone');
is(post_as('/key', 'k', $FORM, 'username=lee')->{status}, 200,
   'key: another account is its own key');

# --- from=upstream: counted in the log phase ----------------------------

sub auth {
    my ($client, $user, $status, $delay) = @_;
    my $q = "auth_user=$user&status=$status";
    $q .= "&delay=$delay" if $delay;
    return $t->get("/auth?$q", headers => { 'X-Client' => $client });
}

my @a = map { auth('u1', "user$_", 401) } 1 .. 3;
is(join(' ', map { $_->{status} } @a), '401 401 401',
   'upstream: three failed accounts reach the backend');
ok(!defined $a[0]{headers}{'x-auth-user'},
   'upstream: proxy_hide_header keeps the header from the client');
$r = auth('u1', 'user4', 401);
is($r->{status}, 429, 'upstream: the next attempt of the key is rejected');
is(auth('u1', 'user1', 401)->{status}, 429,
   'upstream: ... whatever the account (it is not known before)');

my @ok = map { auth('u2', "user$_", 200)->{status} } 1 .. 6;
is("@ok", '200 200 200 200 200 200',
   'upstream, count=failed: successes are not counted');
my @same = map { auth('u3', 'same', 401)->{status} } 1 .. 6;
is("@same", '401 401 401 401 401 401',
   'upstream: one account failing again and again is one value');

# attempts in flight together all pass: the documented bound
{
    my @jobs = map {
        TRL::build_request('GET', "/auth?auth_user=par$_&status=401"
                                  . "&delay=700",
                           headers => { 'X-Client' => 'u4' })
    } 1 .. 5;
    my @p = $t->parallel_raw(\@jobs);
    is(join(' ', sort map { $_->{status} } @p), '401 401 401 401 401',
       'upstream: 5 attempts in flight at once all reach the backend');
    is(auth('u4', 'par1', 401)->{status}, 429,
       'upstream: ... and the key is at its limit after them');
}

# no header in the response: nothing counted
my @none = map { $t->get('/auth?status=401', headers => { 'X-Client' => 'u5' })
                       ->{status} } 1 .. 5;
is("@none", '401 401 401 401 401',
   'upstream: a response without the header counts nothing');

$t->stop;                       # a request left behind shows at the exit
$t->no_alerts;

# --- nginx -t errors -------------------------------------------------------

my $t2 = TRL->new;
my $srv = 'server { listen 127.0.0.1:%%PORT%%; }';
$t2->config_fails(<<"EOF", [qr/"body=8k" in "token_ratelimit_subject" directive applies to from=form:NAME and from=json:NAME only/], 'body= with arg:');
    token_ratelimit_subject \$u from=arg:u body=8k;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid body size "body=0" in "token_ratelimit_subject" directive, expected a size from 1 to 1m/], 'body=0');
    token_ratelimit_subject \$u from=form:u body=0;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid body size "body=2m" in "token_ratelimit_subject"/], 'body=2m');
    token_ratelimit_subject \$u from=json:u body=2m;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid source "from=form:" in "token_ratelimit_subject" directive, expected a field name/], 'form: without a name');
    token_ratelimit_subject \$u from=form:;
    $srv
EOF
$t2->config_fails(<<"EOF", [qr/invalid name in "from=upstream:X\.User" in "token_ratelimit_subject" directive/], 'upstream: bad name');
    token_ratelimit_subject \$u from=upstream:X.User;
    $srv
EOF

done_testing;
