package TRLCrowdSec;

# The real CrowdSec pieces for the t/crowdsec_*.t tests, each with its own
# configuration in the test's prefix and loopback ports from
# TRL::free_port(), never the system's services or /etc/crowdsec state:
#
#   bouncer($t, %opt)   crowdsec-custom-bouncer (Debian's 0.0.15) pulling
#                       api_url with api_key, running bin_path per decision
#   lapi($t)            a CrowdSec local API (crowdsec -no-cs, sqlite in the
#                       prefix, no central API), a machine for cscli and a
#                       bouncer key; ->{cscli}->(@args) runs cscli on it
#   wait_for($secs, $sub)  polls $sub every 0.1 s until it is true
#
# The processes started are killed with the harness's own children.

use strict;
use warnings;

use File::Path qw(make_path);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

our $BOUNCER = $ENV{CROWDSEC_CUSTOM_BOUNCER}
    || '/usr/bin/crowdsec-custom-bouncer';
our $CROWDSEC = $ENV{CROWDSEC_BIN} || '/usr/bin/crowdsec';
our $CSCLI = $ENV{CSCLI_BIN} || '/usr/bin/cscli';
our $HUB = '/usr/share/crowdsec/hub';

sub wait_for {
    my ($secs, $sub) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my $v = $sub->();
        return $v if $v;
        sleep 0.1;
    }
    return $sub->();
}

# Starts a program with its output to $log; its pid joins the harness's
# children (killed when the test ends).
sub spawn {
    my ($t, $log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        delete @ENV{qw(LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS)};  # make test-asan
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    push @{$t->{children}}, $pid;
    return $pid;
}

sub write_text {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh;
    return $path;
}

# crowdsec-custom-bouncer: api_url, api_key, bin_path (the script it runs
# as "bin_path add|del VALUE SECONDS SCENARIO JSON"), name (file names).
sub bouncer {
    my ($t, %opt) = @_;
    my $name = $opt{name} || 'bouncer';
    my $dir = $t->dir;
    my $yaml = write_text("$dir/$name.yaml", join '', map { "$_\n" }
        "bin_path: $opt{bin_path}",
        'feed_via_stdin: false',
        'total_retries: 0',
        'scenarios_containing: []',
        'scenarios_not_containing: []',
        'origins: []',
        "piddir: $dir/",
        'update_frequency: 1s',
        'cache_retention_duration: 10s',
        'daemonize: false',
        'log_mode: stdout',
        'log_level: debug',
        "api_url: $opt{api_url}",
        "api_key: $opt{api_key}",
        'prometheus:',
        '  enabled: false');
    return spawn($t, "$dir/$name.log", $BOUNCER, '-c', $yaml);
}

# A CrowdSec local API of the test's own; returns { url, key, port, dir,
# cscli => sub (list context: exit code and output) }.
sub lapi {
    my ($t) = @_;
    my $dir = $t->dir . '/crowdsec';
    make_path("$dir/data", "$dir/notifications");
    my $port = TRL::free_port();

    write_text("$dir/config.yaml", join '', map { "$_\n" }
        'common:',
        '  daemonize: false',
        '  log_media: stdout',
        '  log_level: info',
        "  working_dir: $dir",
        'config_paths:',
        "  config_dir: $dir/",
        "  data_dir: $dir/data/",
        "  simulation_path: $dir/simulation.yaml",
        "  hub_dir: $HUB/",
        "  index_path: $HUB/.index.json",
        "  notification_dir: $dir/notifications/",
        '  plugin_dir: /usr/lib/crowdsec/plugins/',
        'cscli:',
        '  output: human',
        'db_config:',
        '  log_level: info',
        '  type: sqlite',
        '  use_wal: false',
        "  db_path: $dir/data/crowdsec.db",
        'api:',
        '  client:',
        "    credentials_path: $dir/local_api_credentials.yaml",
        '  server:',
        '    log_level: info',
        "    listen_uri: 127.0.0.1:$port",
        "    profiles_path: $dir/profiles.yaml",
        '    trusted_ips: [127.0.0.1]',
        'prometheus:',
        '  enabled: false');
    write_text("$dir/simulation.yaml", "simulation: off\n");
    write_text("$dir/profiles.yaml", join '', map { "$_\n" }
        'name: default_ip_remediation',
        'filters:',
        ' - Alert.Remediation == true && Alert.GetScope() == "Ip"',
        'decisions:',
        ' - type: ban',
        '   duration: 4h',
        'on_success: break');

    my $cfg = "$dir/config.yaml";
    my $cscli = sub {
        my @cmd = ($CSCLI, '-c', $cfg, @_);
        local %ENV = %ENV;
        delete @ENV{qw(LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS)};
        my $out = qx{@cmd 2>&1};
        return wantarray ? ($? >> 8, $out) : $out;
    };

    my ($rc, $out) = $cscli->('machines', 'add', 'trltest', '--auto', '-f',
                              "$dir/local_api_credentials.yaml");
    die "cscli machines add: $out" if $rc;

    my $key = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
    ($rc, $out) = $cscli->('bouncers', 'add', 'trl', '-k', $key);
    die "cscli bouncers add: $out" if $rc;

    spawn($t, "$dir/crowdsec.log", $CROWDSEC, '-c', $cfg, '-no-cs');

    wait_for(20, sub {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1)
    }) or die "the CrowdSec local API did not listen on $port:\n"
              . (TRL::read_file_once("$dir/crowdsec.log") // '');

    return { url => "http://127.0.0.1:$port/", key => $key, port => $port,
             cscli => $cscli, dir => $dir };
}

1;
