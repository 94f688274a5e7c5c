#!/usr/bin/perl
# conf.d/crowdsec: the real crowdsec (1.4.x) with our parsers and
# scenarios on event log lines the module wrote (t/lib/TRLAbuse.pm), both
# formats, in a configuration of the test's own (its own sqlite database
# and local API on a free loopback port, the offline hub's
# dateparse-enrich; nothing of /etc/crowdsec but its grok patterns):
#
# - replay (crowdsec -dsn file://... -type token-ratelimit -dump-data):
#   every line parsed at s01 by token-ratelimit/token-ratelimit-logs, with
#   evt.Meta.source_ip = the line's client, log_type, token_ratelimit_event,
#   zone, http_path, http_verb, http_status, dry_run, and the line's time
#   (evt.StrTime)
# - a key holding '","client":"6.6.6.6' does not make 6.6.6.6 the source
# - the alerts in the local API (cscli alerts list): token-ratelimit/abuse
#   and token-ratelimit/penalty for the abusive client only, with a ban
#   decision; none for the other rejected client (2 lines), the admitted
#   one or the dry run's
# - syslog: the datagrams nginx sent (tag=token_ratelimit) as rsyslog
#   writes them, replayed as type syslog through the hub's syslog-logs:
#   every line parsed the same
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use TRL;
use TRLAbuse;

my $CROWDSEC = '/usr/bin/crowdsec';
my $CSCLI = '/usr/bin/cscli';
my $HUB = '/usr/share/crowdsec/hub';
my $PATTERNS = '/etc/crowdsec/patterns';

plan skip_all => "crowdsec not installed ($CROWDSEC, $CSCLI, its offline "
                 . "hub $HUB and $PATTERNS: apt install crowdsec)"
    unless -x $CROWDSEC && -x $CSCLI && -f "$HUB/.index.json"
           && -d $PATTERNS;

my $OURS = "$TRL::ROOT/conf.d/crowdsec";

# the crowdsec services started here, stopped however the test ends
my %crowdsec;
END {
    for my $pid (keys %crowdsec) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}
my $json = JSON::PP->new;

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

# A crowdsec configuration in $dir: ours parsers and scenarios copied as
# local items (crowdsec ignores links out of its hub), the offline hub.
sub crowdsec_config {
    my ($dir, $port) = @_;
    make_path(map { "$dir/$_" } qw(parsers/s00-raw parsers/s01-parse
                                   parsers/s02-enrich scenarios data hub
                                   dump));
    copy("$OURS/parsers/$_", "$dir/parsers/$_") or die "copy $_: $!"
        for 's00-raw/token-ratelimit-raw.yaml',
            's01-parse/token-ratelimit-logs.yaml';
    copy("$OURS/scenarios/token-ratelimit-abuse.yaml", "$dir/scenarios/")
        or die "copy scenarios: $!";
    copy("$HUB/parsers/s02-enrich/crowdsecurity/dateparse-enrich.yaml",
         "$dir/parsers/s02-enrich/") or die "copy dateparse-enrich: $!";
    copy("$HUB/parsers/s00-raw/crowdsecurity/syslog-logs.yaml",
         "$dir/parsers/s00-raw/") or die "copy syslog-logs: $!";
    symlink "$HUB/$_", "$dir/hub/$_" or die "symlink $_: $!"
        for qw(.index.json blockers collections parsers postoverflows
               scenarios);
    symlink $PATTERNS, "$dir/patterns" or die "symlink patterns: $!";

    write_file("$dir/simulation.yaml", "simulation: off\n");
    write_file("$dir/acquis.yaml", '');
    write_file("$dir/profiles.yaml", <<'EOF');
name: default_ip_remediation
filters:
 - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
 - type: ban
   duration: 4h
on_success: break
EOF
    write_file("$dir/config.yaml", <<"EOF");
common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: $dir
config_paths:
  config_dir: $dir/
  data_dir: $dir/data/
  simulation_path: $dir/simulation.yaml
  hub_dir: $dir/hub/
  index_path: $dir/hub/.index.json
  notification_dir: $dir/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: $dir/acquis.yaml
  parser_routines: 1
  buckets_routines: 1
  output_routines: 1
cscli:
  output: json
db_config:
  type: sqlite
  db_path: $dir/data/crowdsec.db
  use_wal: false
api:
  client:
    credentials_path: $dir/local_api_credentials.yaml
  server:
    listen_uri: 127.0.0.1:$port
    profiles_path: $dir/profiles.yaml
prometheus:
  enabled: false
EOF
    return "$dir/config.yaml";
}

# The s01 results of our parser in crowdsec's parser-dump.yaml: for each
# line, { raw, success, meta => {...}, strtime }.  (A reader for the few
# shapes that dump has: go-yaml's output, two spaces an indent.)
sub s01_results {
    my ($file) = @_;
    my $text = TRL::read_file_once($file) // '';
    my ($s01) = $text =~ /^s01-parse:\n(.*?)(?=^\S|\z)/ms;
    my ($ours) = ($s01 // '')
        =~ /^  token-ratelimit\/token-ratelimit-logs:\n(.*?)(?=^  [^\s-]|\z)/ms;
    my @out;
    for my $entry (split /^  - evt:\n/m, $ours // '') {
        next unless $entry =~ /\S/;
        my %r;
        if ($entry =~ /^        Raw: '((?:[^']|'')*)'$/m) {
            ($r{raw} = $1) =~ s/''/'/g;
        }
        ($r{strtime}) = $entry =~ /^      StrTime: "?([^"\n]*)"?$/m;
        $r{success} = $entry =~ /^    success: true$/m ? 1 : 0;
        my ($meta) = $entry =~ /^      Meta:\n((?:^        .*\n)*)/m;
        for (split /\n/, $meta // '') {
            my ($k, $v) = /^        (\w+): (.*)$/ or next;
            $v =~ s/^"(.*)"$/$1/;
            $r{meta}{$k} = $v;
        }
        push @out, \%r;
    }
    return @out;
}

# Every line of $text (a format's lines) parsed at s01 as it says, from
# crowdsec's parser-dump.yaml.
sub check_parsed {
    my ($name, $format, $text, $dump, $out) = @_;
    my @lines = map { $json->decode(s/^.*?token_ratelimit: //r) }
                split /\n/, $text;
    my @res = s01_results($dump);
    is(scalar @res, scalar @lines, "$name: every line reached s01")
        or diag($out);
    my @bad;
    for my $i (0 .. $#lines) {
        my ($l, $r) = ($lines[$i], $res[$i] || {});
        my $f = $format eq 'json' ? $l
              : { event => $l->{token_ratelimit}{event},
                  zone => $l->{rule}{name}, client => $l->{source}{ip},
                  uri => $l->{url}{path}, method => $l->{http}{request}{method},
                  status => $l->{http}{response}{status_code},
                  time => $l->{'@timestamp'},
                  dry_run => $l->{token_ratelimit}{dry_run} };
        my $m = $r->{meta} || {};
        my %want = (log_type => 'token_ratelimit',
                    token_ratelimit_event => $f->{event},
                    source_ip => $f->{client}, zone => $f->{zone},
                    http_path => $f->{uri}, http_verb => $f->{method},
                    http_status => $f->{status} // '',
                    dry_run => defined $f->{dry_run}
                               ? ($f->{dry_run} ? 'true' : 'false') : '');
        push @bad, "line $i: not parsed" unless $r->{success};
        for my $k (sort keys %want) {
            push @bad, "line $i: $k: " . ($m->{$k} // 'none')
                       . " (want $want{$k})"
                if ($m->{$k} // '') ne $want{$k};
        }
        push @bad, "line $i: StrTime " . ($r->{strtime} // 'none')
            if ($r->{strtime} // '') ne $f->{time};
    }
    ok(!@bad, "$name: each line parsed: source_ip, event, zone, http "
              . 'fields, dry_run, time') or diag(join "\n", @bad);
    ok(!grep({ ($_->{meta}{source_ip} // '') eq $TRLAbuse::INJECTED } @res),
       "$name: an address inside a key is not taken for the source");
}

# A crowdsec of its own (agent and local API) in the background.
sub start_crowdsec {
    my ($t, $dir, $cfg, $port, @args) = @_;
    my $pid = fork // die "fork: $!";
    $crowdsec{$pid} = 1;
    if ($pid == 0) {
        open STDOUT, '>', "$dir/crowdsec.log";
        open STDERR, '>&', \*STDOUT;
        exec($CROWDSEC, '-c', $cfg, @args) or POSIX::_exit(127);
    }
    my $up = 0;
    for (1 .. 6) {
        last if $up = $t->wait_for_port($port);
    }
    ok($up, "crowdsec's local API answers on 127.0.0.1:$port");
    return $pid;
}

sub stop_crowdsec {
    my ($pid) = @_;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    delete $crowdsec{$pid};
}

sub run_cmd {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

for my $format ('json', 'ecs') {
    my ($dir, $cfg, $port, $pid, $rc, $out);

    # crowdsec as a service (agent and local API) tailing the event log
    # through our acquisition example, started before the traffic
    my $start = sub {
        my ($t) = @_;
        $dir = $t->dir . '/crowdsec';
        $port = TRL::free_port();
        $cfg = crowdsec_config($dir, $port);
        my $acquis = TRL::read_file_once(
            "$OURS/acquis.d/token-ratelimit.yaml");
        $acquis =~ s{^  - /\S+$}{  - $dir/../logs/events.log}m
            or die 'acquis.d/token-ratelimit.yaml: no file name';
        write_file("$dir/acquis.yaml", $acquis);

        ($rc, $out) = run_cmd("$CSCLI -c $cfg machines add trl-test --auto "
                              . "--force -f $dir/local_api_credentials.yaml");
        is($rc, 0, "$format: cscli machines add (own sqlite)") or diag($out);

        $pid = start_crowdsec($t, $dir, $cfg, $port);
        # the file is tailed from its end: wait for the reader
        for (1 .. 100) {
            last if (TRL::read_file_once("$dir/crowdsec.log") // '')
                    =~ /Starting processing data/;
            select undef, undef, undef, 0.1;
        }
        select undef, undef, undef, 0.5;
    };

    my ($t, $log, $text) = TRLAbuse::write_log(format => $format,
                                               before => $start);
    $t->stop;

    # --- the scenarios: alerts and decisions in the local API --------------

    my (%by, $alerts);
    for (1 .. 30) {                 # the agent pushes alerts every second
        ($rc, $out) = run_cmd("$CSCLI -c $cfg alerts list -o json");
        $alerts = eval { $json->decode($out) } || [];
        last if @$alerts >= 2;
        select undef, undef, undef, 0.5;
    }
    sleep 1;                        # anything more would come now
    ($rc, $out) = run_cmd("$CSCLI -c $cfg alerts list -o json");
    $alerts = eval { $json->decode($out) } || [];
    is($rc, 0, "$format: cscli alerts list") or diag($out);
    for my $a (@$alerts) {
        $by{$a->{scenario}}{$a->{source}{value} // '?'}++;
    }
    is_deeply(\%by, { 'token-ratelimit/abuse' => { '203.0.113.10' => 1 },
                      'token-ratelimit/penalty' => { '203.0.113.10' => 1 } },
              "$format: alerts for the abusive client only, one per "
              . 'scenario')
        or diag($out, TRL::read_file_once("$dir/crowdsec.log"));

    ($rc, $out) = run_cmd("$CSCLI -c $cfg decisions list -o json");
    my $dec = eval { $json->decode($out) } || [];
    my %banned;
    for my $a (@$dec) {
        $banned{"$_->{type} $_->{value}"}++ for @{$a->{decisions} || []};
    }
    ok($banned{'ban 203.0.113.10'} && keys %banned == 1,
       "$format: a ban decision for 203.0.113.10, nothing else")
        or diag($out);

    # the same file replayed by a second agent (-no-api: it pushes to the
    # service's API) that dumps what each parser made of each line
    ($rc, $out) = run_cmd("timeout 120 $CROWDSEC -c $cfg -no-api "
                          . "-dsn file://$log -type token-ratelimit "
                          . "-dump-data $dir/dump");
    is($rc, 0, "$format: crowdsec replay ran") or diag($out);
    like($out, qr/Loading 1 scenario files.*Adding leaky bucket.*abuse/s,
         "$format: our scenarios loaded") or diag($out);

    check_parsed($format, $format, $text, "$dir/dump/parser-dump.yaml",
                 $out);

    stop_crowdsec($pid);
}

# --- syslog: what nginx sent, as rsyslog writes it, read as type syslog -------

{
    my $udp = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                    Proto => 'udp')
        or die "udp listener: $!";
    my ($t, undef, $text) = TRLAbuse::write_log(format => 'json',
                                                syslog => $udp);
    $t->stop;

    my $dir = $t->dir . '/crowdsec';
    my $port = TRL::free_port();
    my $cfg = crowdsec_config($dir, $port);
    my $log = $t->dir . '/logs/syslog';
    write_file($log, $text =~ s/^<\d+>//mgr);      # rsyslog drops the PRI

    my ($rc, $out) = run_cmd("$CSCLI -c $cfg machines add trl-test --auto "
                             . "--force -f $dir/local_api_credentials.yaml");
    is($rc, 0, 'syslog: cscli machines add') or diag($out);
    my $pid = start_crowdsec($t, $dir, $cfg, $port, '-no-cs');
    ($rc, $out) = run_cmd("timeout 120 $CROWDSEC -c $cfg -no-api "
                          . "-dsn file://$log -type syslog "
                          . "-dump-data $dir/dump");
    is($rc, 0, 'syslog: crowdsec replay ran') or diag($out);
    check_parsed('syslog', 'json', $text, "$dir/dump/parser-dump.yaml",
                 $out);
    stop_crowdsec($pid);
}

done_testing;
