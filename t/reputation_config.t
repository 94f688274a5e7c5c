#!/usr/bin/perl
# Configuration of IP reputation: token_ratelimit_reputation,
# token_ratelimit_reputation_list and the options of token_ratelimit
# (scale=, penalty_level=, deny_score=).  "nginx -t" fails with a message
# that names the directive, the bad value and what is accepted; list names
# used by a limit must be declared (anywhere in the http block), and the
# error names where the limit is.  The trusted ranges: trusted= and the
# set_real_ip_from ranges of the http and server levels drop the entries
# that overlap them.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $bad = TRL->new;

sub srv { TRL::server_block(@_) }
sub fails { $bad->config_fails(@_) }

my $zone = 'token_ratelimit_zone $arg_k zone=z:1m rate=10r/m;';
my $table = 'token_ratelimit_reputation size=1m;';
my $list = 'token_ratelimit_reputation_list tor;';

# --- token_ratelimit_reputation ------------------------------------------

fails('token_ratelimit_reputation check=5s;',
      [qr/"token_ratelimit_reputation" directive must have a "size=" parameter/],
      'no size=');
fails('token_ratelimit_reputation size=1k;',
      [qr/invalid value "size=1k" in "token_ratelimit_reputation" directive, it must be a size of at least 64k/],
      'size too small');
fails('token_ratelimit_reputation size=1m trusted=192.0.2.0/24,bogus;',
      [qr/invalid value "bogus" in "trusted=192\.0\.2\.0\/24,bogus" of "token_ratelimit_reputation" directive: .*expected an address or a CIDR/],
      'trusted= with a bad range');
fails('token_ratelimit_reputation size=1m widest=/40;',
      [qr/invalid value "widest=\/40" in "token_ratelimit_reputation" directive, it must be a prefix length from \/0 to \/32/],
      'widest=/40');
fails('token_ratelimit_reputation size=1m widest6=/129;',
      [qr/invalid value "widest6=\/129" .* from \/0 to \/128/],
      'widest6=/129');
fails('token_ratelimit_reputation size=1m check=10ms;',
      [qr/invalid value "check=10ms" in "token_ratelimit_reputation" directive, it must be a time from 100ms to 1d/],
      'check=10ms');
fails('token_ratelimit_reputation size=1m foo=1;',
      [qr/invalid parameter "foo=1" in "token_ratelimit_reputation" directive, expected "size=" and optionally "trusted=CIDR/],
      'unknown parameter');
fails("$table $table",
      [qr/"token_ratelimit_reputation" directive is duplicate/],
      'twice');
fails("token_ratelimit_reputation size=1m thread_pool=nope; $list",
      [qr/unknown thread pool "nope"/],
      'thread_pool= not declared');

# --- token_ratelimit_reputation_list ---------------------------------------

fails("$table token_ratelimit_reputation_list bad!name;",
      [qr/invalid list name "bad!name" in "token_ratelimit_reputation_list" directive: .*1 to 31 letters, digits/],
      'a bad name');
fails("$table token_ratelimit_reputation_list " . ('a' x 32) . ';',
      [qr/invalid list name "a{32}"/], 'a name of 32 bytes');
fails("$table token_ratelimit_reputation_list lookup;",
      [qr/invalid list name "lookup" in "token_ratelimit_reputation_list" directive: the name is reserved for the API's \{location\}\/reputation\/lookup/],
      'the name "lookup"');
fails("$table $list $list",
      [qr/duplicate list "tor" in "token_ratelimit_reputation_list" directive/],
      'a list twice');
fails("$table token_ratelimit_reputation_list tor score=101;",
      [qr/invalid value "score=101" in "token_ratelimit_reputation_list" directive, it must be a score from 0 to 100/],
      'score=101');
fails("$table token_ratelimit_reputation_list tor weight=3;",
      [qr/invalid parameter "weight=3" in "token_ratelimit_reputation_list" directive, expected "file=path", "score=0\.\.100" or "dry_run"/],
      'unknown list parameter');
fails($table . join('', map { "token_ratelimit_reputation_list l$_;" } 1 .. 65),
      [qr/too many lists in "token_ratelimit_reputation_list" directives: at most 64/],
      '65 lists');
fails($list,
      [qr/"token_ratelimit_reputation_list" in \S+nginx\.conf:\d+ needs a "token_ratelimit_reputation size=\.\.\." directive/],
      'a list without the table');

# --- token_ratelimit's options ----------------------------------------------

{
    my ($out, $conf) = fails("$table $list $zone"
                             . srv('token_ratelimit zone=z scale=x:0.5;'),
        [qr/unknown reputation list "x" in "token_ratelimit" directive in \S+nginx\.conf:(\d+), declare it with token_ratelimit_reputation_list/],
        'scale= names an unknown list');
    my ($line) = $out =~ /nginx\.conf:(\d+), declare/;
    my @lines = split /\n/, $conf;
    like($lines[($line // 1) - 1] // '', qr/scale=x:0\.5/,
         '... the line is the directive\'s');
}
fails("$zone" . srv('token_ratelimit zone=z penalty_level=tor:2;'),
      [qr/unknown reputation list "tor" in "token_ratelimit" directive in \S+:\d+, declare it/],
      'penalty_level= without any list');
fails("$zone" . srv('token_ratelimit zone=z deny_score=50;'),
      [qr/"deny_score" in "token_ratelimit" directive in \S+:\d+ needs reputation lists/],
      'deny_score= without any list');
fails("$table $list $zone" . srv('token_ratelimit zone=z scale=tor:abc;'),
      [qr/invalid value "scale=tor:abc" in "token_ratelimit" directive: .*; expected LIST:FACTOR\[,LIST:FACTOR\.\.\.\], FACTOR from 0\.001 to 100/],
      'scale= with a bad factor');
fails("$table $list $zone" . srv('token_ratelimit zone=z scale=tor:0;'),
      [qr/invalid value "scale=tor:0" in "token_ratelimit" directive/],
      'scale= with factor 0');
fails("$table $list $zone" . srv('token_ratelimit zone=z penalty_level=tor:31;'),
      [qr/invalid value "penalty_level=tor:31" in "token_ratelimit" directive: .*expected LIST:LEVEL\[,LIST:LEVEL\.\.\.\], LEVEL from 1 to 30/],
      'penalty_level=tor:31');
for my $s ('0', '101', 'x') {
    fails("$table $list $zone" . srv("token_ratelimit zone=z deny_score=$s;"),
          [qr/invalid value "deny_score=$s" in "token_ratelimit" directive: .*expected a score from 1 to 100/],
          "deny_score=$s");
}
fails("$table $list $zone"
      . srv('token_ratelimit zone=z scale=tor:0.5 scale=tor:0.2;'),
      [qr/duplicate parameter "scale=tor:0\.2" in "token_ratelimit" directive/],
      'scale= twice');
fails("$table $list"
      . 'token_ratelimit_zone $arg_k zone=dz:1m rate=10r/m distinct=$arg_u;'
      . srv('token_ratelimit zone=dz scale=tor:0.5;'),
      [qr/"scale" in "token_ratelimit" directive in \S+:\d+ cannot be used with zone "dz": a distinct= zone/],
      'scale= on a distinct= zone');

# a list declared after the limit that names it is fine
{
    my $t = TRL->new;
    $t->write_config("$zone"
        . srv('token_ratelimit zone=z scale=tor:0.5 penalty_level=tor:2 '
              . 'deny_score=90;')
        . "$list $table");
    my ($rc, $out) = $t->test_config;
    is($rc, 0, 'a list declared after the limit') or diag($out);
}

# --- trusted ranges: trusted=, set_real_ip_from (http and server) --------

{
    my $t = TRL->new;
    $t->write_file('l.txt', <<'EOF');
192.0.2.0/24
198.51.100.0/24
203.0.113.0/24
45.33.32.0/24
EOF
    $t->write_config(<<'EOF');
    token_ratelimit_reputation size=1m trusted=192.0.2.0/26;
    token_ratelimit_reputation_list l file=%%DIR%%/l.txt;
    set_real_ip_from 127.0.0.1;
    set_real_ip_from 203.0.113.128/25;
    real_ip_header X-Forwarded-For;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        set_real_ip_from 198.51.100.16/28;
        add_header X-Rep "[$token_ratelimit_reputation]" always;
        location / { empty_gif; }
    }
EOF
    $t->run;

    my %got;
    for my $a ('192.0.2.200', '198.51.100.200', '203.0.113.7', '45.33.32.9') {
        $got{$a} = $t->get('/', headers => { 'X-Forwarded-For' => $a })
                     ->{headers}{'x-rep'};
    }
    is($got{'192.0.2.200'}, '[]', 'an entry overlapping trusted= is dropped');
    is($got{'198.51.100.200'}, '[]',
       '... one overlapping a server\'s set_real_ip_from');
    is($got{'203.0.113.7'}, '[]', '... one overlapping the http level\'s');
    is($got{'45.33.32.9'}, '[l]', 'the rest of the list applies');
    like($t->error_log,
         qr/list "l": dropped 3 entries overlapping trusted ranges and 0 wider/,
         'the drops are counted and logged');

    $t->stop;
    $t->no_alerts;
}

done_testing;
