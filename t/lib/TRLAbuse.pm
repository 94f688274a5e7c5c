package TRLAbuse;

# An event log written by the module under a known traffic, for the tests
# of the tools that read it (t/fail2ban.t, t/crowdsec_parser.t):
#
#   203.0.113.10 (A)  rejected twice by an address zone, one penalty
#                     start, one 403 of token_ratelimit_deny: 4 lines
#   203.0.113.20 (B)  rejected by a subject zone, and again with a key that
#                     tries to name another client (x","client":"6.6.6.6):
#                     2 lines
#   203.0.113.30 (C)  admitted only: no line
#   203.0.113.40 (D)  over a limit in a dry run: 1 rejected_dry_run line
#
# TRLAbuse::write_log(format => 'json'|'ecs', before => sub { ($t) })
# runs nginx with the module (logs/events.log), calls before->($t), sends
# the traffic and returns (TRL instance, the log's path, its text).
# syslog => a UDP socket: the lines go there instead (tag token_ratelimit);
# the text returned is the datagrams, one a line, and the path undef.
use strict;
use warnings;
use IO::Select;
use Test::More;
use TRL;

our %ABUSE = ('203.0.113.10' => 4, '203.0.113.20' => 2);
our $ADMITTED = '203.0.113.30';
our $DRY_RUN = '203.0.113.40';
our $INJECTED = '6.6.6.6';
our $LINES = 7;

sub write_log {
    my (%opt) = @_;
    my $format = $opt{format} || 'json';

    my $udp = $opt{syslog};
    my $target = $udp ? 'syslog:server=127.0.0.1:' . $udp->sockport
                        . ',tag=token_ratelimit'
                      : 'logs/events.log';

    my $t = TRL->new;
    $t->write_config(<<"EOF");
    token_ratelimit_zone \$binary_remote_addr zone=login:1m rate=2r/m;
    token_ratelimit_zone \$http_x_key zone=token:1m rate=1r/m;
    token_ratelimit_zone \$binary_remote_addr zone=dry:1m rate=1r/m;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;
        token_ratelimit_event_log $target format=$format;

        location /login { token_ratelimit zone=login penalty=1m; empty_gif; }
        location /token { token_ratelimit zone=token; empty_gif; }
        location /dry   { token_ratelimit zone=dry dry_run; empty_gif; }
        location /admin { token_ratelimit zone=login;
                          token_ratelimit_deny 1; empty_gif; }
    }
EOF
    $t->run;
    $opt{before}->($t) if $opt{before};     # e.g. a reader of the log

    my @st;
    my $get = sub {
        my ($ip, $path, %h) = @_;
        push @st, $t->get($path, headers => { 'X-Real-IP' => $ip, %h })
                    ->{status};
    };

    $get->('203.0.113.10', '/login') for 1 .. 4;
    $get->('203.0.113.10', '/admin');
    $get->('203.0.113.20', '/token', 'X-Key' => 'bob') for 1 .. 2;
    $get->('203.0.113.20', '/token',
           'X-Key' => qq{x","client":"$INJECTED}) for 1 .. 2;
    $get->('203.0.113.30', '/login');
    $get->('203.0.113.30', '/token', 'X-Key' => 'carol');
    $get->('203.0.113.40', '/dry') for 1 .. 2;

    is("@st", '200 200 429 429 403 200 429 200 429 200 200 200 200',
       "$format: the traffic answered as planned");

    my $text = '';
    if ($udp) {                     # the datagrams, one a line
        my $sel = IO::Select->new($udp);
        while (($text =~ tr/\n//) < $LINES && $sel->can_read(3)) {
            $udp->recv(my $msg, 65536);
            $text .= "$msg\n";
        }
        is($text =~ tr/\n//, $LINES, "$format: $LINES datagrams sent");
        return ($t, undef, $text);
    }
    for (1 .. 20) {
        $text = $t->read_file('logs/events.log');
        last if ($text =~ tr/\n//) >= $LINES;
        select undef, undef, undef, 0.05;
    }
    is($text =~ tr/\n//, $LINES, "$format: $LINES lines written");

    return ($t, $t->dir . '/logs/events.log', $text);
}

1;
