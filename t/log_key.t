#!/usr/bin/perl
# Logs that do not leak secrets: token_ratelimit_zone log_key=on|off|hash|mask.
#
# A zone keyed on a secret ($http_x_api_key) shows its keys, in the error
# log, the event log and the API (top offenders, penalties, keys lookups,
# runtime list entries):
# - on (default): as they are
# - off: "-" in the error log, "key":null,"key_hidden":true in the event
#   log, "key":null,"hidden":true in the API
# - hash: the 32 hex digits of the key's hash in the zone, the API's
#   "hash" (keys?hash=H finds the key), "key_hash" in the event log
# - mask: the first 4 bytes and "..." ("masked":true in the API,
#   "key_masked":true in the event log)
# For every mode but on, none of them holds the secret beyond the 4 bytes
# mask keeps (the same check finds it with on).  nginx -t refuses bad
# values and names them.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use TRL;

my $t = TRL->new;
my @MODES = qw(on off hash mask);

my $CONF = "    token_ratelimit_event_log logs/events.log;\n";
for my $m (@MODES) {
    my $opt = $m eq 'on' ? '' : " log_key=$m";
    $CONF .= "    token_ratelimit_zone \$http_x_api_key zone=k_$m:1m "
             . "rate=1r/m$opt;\n";
}
$CONF .= <<'EOF';
    server {
        listen 127.0.0.1:%%PORT%%;
        location /api { token_ratelimit_api; }
EOF
for my $m (@MODES) {
    $CONF .= "        location /$m { token_ratelimit zone=k_$m warn=1 "
             . "penalty=30s; empty_gif; }\n";
}
$CONF .= "    }\n";

$t->write_config($CONF);
$t->run;

my $json = JSON::PP->new;

sub api {
    my ($method, $path) = @_;
    my $r = $t->request(TRL::build_request($method, $path,
        $method eq 'POST' ? (body => '') : ()));
    $r->{json} = eval { $json->decode($r->{body}) };
    return $r;
}

sub secret { "Zq9x-$_[0]-7f3c1e88d2b44a0f" }        # per mode
sub denied_secret { "Dk4w-$_[0]-c0ffee5ecret99" }   # a deny list entry

sub zone_lines {
    my ($file, $m) = @_;
    return grep { /"k_$m"/ } split /\n/, $t->read_file("logs/$file");
}

for my $m (@MODES) {
    my $s = secret($m);
    my @st = map { $t->get("/$m", headers => { 'X-Api-Key' => $s })->{status} }
             1 .. 3;
    is("@st", '200 429 429', "$m: admitted (warned), rejected, penalized");

    my $r = api('POST', "/api/lists/deny?key=" . denied_secret($m)
                        . "&zone=k_$m");
    is($r->{status}, 201, "$m: a deny entry for a second secret");
    is($t->get("/$m", headers => { 'X-Api-Key' => denied_secret($m) })
          ->{status}, 403, "$m: the second secret denied");
}

my %lookup;
for my $m (@MODES) {
    $lookup{$m} = api('GET', "/api/zones/k_$m/keys?key=" . secret($m));
    is($lookup{$m}{status}, 200, "$m: keys?key= 200");
}
my $lists = api('GET', '/api/lists');

# Everything a mode's zone printed, as text.
my %out;
for my $m (@MODES) {
    my @err = zone_lines('error.log', $m);
    my @ev = zone_lines('events.log', $m);
    my @entries = grep { ($_->{zone} // '') eq "k_$m" }
                  @{$lists->{json} || []};
    $out{$m} = {
        error => \@err, events => [map { $json->decode($_) } @ev],
        text => join("\n", @err, @ev, api('GET', "/api/zones/k_$m")->{body},
                     $lookup{$m}{body}, map { $json->encode($_) } @entries),
        zone => api('GET', "/api/zones/k_$m")->{json} || {},
        entries => \@entries,
    };
    ok(scalar(grep { /reached the warning threshold/ } @err)
       && scalar(grep { /limiting requests/ } @err),
       "$m: error log: a warning and a limiting line");
    is(join(' ', sort map { $_->{event} } @{$out{$m}{events}}),
       'denied penalty rejected rejected', "$m: event log lines");
}

# the secrets, beyond the 4 bytes mask keeps
for my $m (@MODES) {
    for my $secret (secret($m), denied_secret($m)) {
        my $hidden = substr($secret, 4);
        my $found = index($out{$m}{text}, $hidden) >= 0;
        if ($m eq 'on') {
            ok($found, "on: the key $secret is shown (the check works)");
        } else {
            ok(!$found, "$m: \"$hidden\" is nowhere: error log, event "
                        . "log, API zone, keys lookup, lists")
                or diag($out{$m}{text});
        }
    }
}

# --- on ----------------------------------------------------------------------------

{
    my $o = $out{on};
    my $s = secret('on');
    ok(scalar(grep { /key "\Q$s\E"/ } @{$o->{error}}) == 2,
       'on: the error log lines show the key');
    is($o->{zone}{top_offenders}[0]{key}, $s, 'on: API top offender key');
    is($o->{zone}{log_key}, 'on', 'on: API log_key "on"');
}

# --- off ---------------------------------------------------------------------------

{
    my $o = $out{off};
    is(scalar(grep { /key "-"/ } @{$o->{error}}), scalar @{$o->{error}},
       'off: every error log line shows key "-"');
    ok(!grep({ !(exists $_->{key} && !defined $_->{key} && $_->{key_hidden}) }
             @{$o->{events}}),
       'off: every event line: "key":null,"key_hidden":true');
    my $top = $o->{zone}{top_offenders}[0] || {};
    ok(exists $top->{key} && !defined $top->{key} && $top->{hidden}
       && !exists $top->{hash},
       'off: API top offender: "key":null,"hidden":true');
    my $pen = $o->{zone}{penalties}[0] || {};
    ok($pen->{hidden} && !defined $pen->{key}, 'off: API penalty: hidden');
    ok($lookup{off}{json}{hidden} && $lookup{off}{json}{known},
       'off: keys?key= finds the key and does not echo it');
    ok($o->{entries}[0]{hidden}, 'off: list entry hidden');
    is($o->{zone}{log_key}, 'off', 'off: API log_key "off"');
}

# --- hash --------------------------------------------------------------------------

{
    my $o = $out{hash};
    my $h = $lookup{hash}{json}{hash} // '';
    like($h, qr/^[0-9a-f]{32}$/, 'hash: keys?key= gives the hash');
    ok(!defined $lookup{hash}{json}{key}, 'hash: and "key":null');
    is(scalar(grep { /key "$h"/ } @{$o->{error}}), scalar @{$o->{error}},
       'hash: every error log line shows the hash');
    is(scalar(grep { ($_->{key_hash} // '') eq $h }
              grep { $_->{event} ne 'denied' } @{$o->{events}}), 3,
       'hash: the event lines of the key: key_hash');
    ok(!grep({ exists $_->{key} } @{$o->{events}}), 'hash: no "key" field');
    is($o->{zone}{top_offenders}[0]{hash}, $h, 'hash: API top offender hash');
    is($o->{zone}{penalties}[0]{hash}, $h, 'hash: API penalty hash');
    my $k = api('GET', "/api/zones/k_hash/keys?hash=$h")->{json} || {};
    ok($k->{known} && $k->{blocked} && $k->{hash} eq $h,
       'hash: keys?hash= with the hash the logs show finds the key');
    my ($denied) = grep { $_->{event} eq 'denied' } @{$o->{events}};
    my $dh = api('GET', '/api/zones/k_hash/keys?key='
                        . denied_secret('hash'))->{json}{hash};
    is($denied->{key_hash}, $dh, 'hash: the denied line: its key\'s hash');
    is($o->{entries}[0]{hash}, $dh, 'hash: list entry: the same hash');
}

# --- mask --------------------------------------------------------------------------

{
    my $o = $out{mask};
    is(scalar(grep { /key "Zq9x\.\.\."/ } @{$o->{error}}),
       scalar @{$o->{error}}, 'mask: every error log line: key "Zq9x..."');
    is(scalar(grep { ($_->{key} // '') eq 'Zq9x...' && $_->{key_masked} }
              @{$o->{events}}), 3,
       'mask: event lines of the key: "key":"Zq9x...","key_masked":true');
    my $top = $o->{zone}{top_offenders}[0] || {};
    ok($top->{key} eq 'Zq9x...' && $top->{masked},
       'mask: API top offender "Zq9x...", masked');
    is($lookup{mask}{json}{key}, 'Zq9x...', 'mask: keys?key= echo masked');
    is($o->{entries}[0]{key}, 'Dk4w...', 'mask: list entry masked');
}

# a short key keeps a third of its bytes: "abcdef" -> "ab..."
$t->get('/mask', headers => { 'X-Api-Key' => 'abcdef' }) for 1 .. 2;
ok(grep({ /key "ab\.\.\."/ } split /\n/, $t->error_log),
   'mask: a key of 6 bytes shows 2');

$t->stop;
$t->no_alerts;

# --- nginx -t ------------------------------------------------------------------------

# keywords in any case, as count= and sync= (log_key=ON is on)
for my $bad ('log_key=', 'log_key=yes', 'log_key=o', 'log_key=hashed') {
    $t->config_fails(
        "token_ratelimit_zone \$http_x_key zone=bad:1m rate=1r/m $bad;\n"
        . TRL::server_block('token_ratelimit zone=bad;'),
        [qr/invalid value "\Q$bad\E" in "token_ratelimit_zone" directive, "log_key=": expected on, off, hash or mask/],
        "nginx -t: $bad");
}

done_testing;
