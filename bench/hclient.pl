#!/usr/bin/perl
# hclient.pl - the small keepalive HTTP client of make bench: sends a
# fixed number of GET requests to 127.0.0.1 over one keepalive connection
# (reconnecting only if the server closes it), optionally with an X-Key
# header taken from a numbered key set, and prints one summary line:
#
#   sent=N status_200=N status_429=N ... [rem_98=N ...] last=I stopped=0|1
#
# Options:
#   --port P           server port (required)
#   --path PATH        request path (default /)
#   --count N          send N requests (key index j % keys + 1)
#   --keys M           distinct keys cycled through by --count (default 1)
#   --from A --to B    instead of --count: one request per key index A..B
#   --reverse          with --from/--to: from B down to A
#   --key-len L        send "X-Key: <key>" with keys exactly L bytes long
#                      (0: no X-Key header; default 0)
#   --wrk-keys         send "X-Key: key-NNNNNN", bench/keys.lua's keys (key
#                      index I is key-(I-1), zero-padded to 6 digits)
#   --header 'N: V'    an extra request header (repeatable)
#   --index            append "?i=<key index>" to the path (so that the
#                      error log's "request:" names the key)
#   --pipeline B       requests written before reading their responses
#                      (default 1: strictly one at a time)
#   --hist HEADER      also count the values of this response header
#   --stop-file F --stop-re RE [--check-every C]
#                      stop as soon as file F matches RE (checked every C
#                      requests, default = pipeline)
#   --timeout S        give up after S seconds in all (default 120)
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use BenchConn;
use Getopt::Long qw(GetOptions);
use Time::HiRes qw(time);

my %o = (path => '/', keys => 1, key_len => 0, pipeline => 1,
         timeout => 120, header => []);
GetOptions(\%o, 'port=i', 'path=s', 'count=i', 'keys=i', 'from=i', 'to=i',
           'reverse', 'key_len|key-len=i', 'wrk_keys|wrk-keys', 'index',
           'pipeline=i', 'hist=s', 'header=s@',
           'stop_file|stop-file=s', 'stop_re|stop-re=s',
           'check_every|check-every=i', 'timeout=f')
    or die "usage: see the header of $0\n";
die "--port is required\n" unless $o{port};

my $deadline = time + $o{timeout};

# The key indices to send, in order.
my @idx;
if (defined $o{from}) {
    my $to = $o{to} // $o{from};
    @idx = $o{from} <= $to ? ($o{from} .. $to) : ();
    @idx = reverse @idx if $o{reverse};
} else {
    my $n = $o{count} // 1;
    my $m = $o{keys} > 0 ? $o{keys} : 1;
    @idx = map { ($_ % $m) + 1 } 0 .. $n - 1;
}

sub key_of {
    my ($i) = @_;
    return sprintf('key-%06d', $i - 1) if $o{wrk_keys};
    my $k = "k$i-";
    die "key $k is longer than --key-len $o{key_len}\n"
        if length($k) > $o{key_len};
    return $k . ('x' x ($o{key_len} - length $k));
}

sub request_of {
    my ($i) = @_;
    my $path = $o{path};
    $path .= "?i=$i" if $o{index};
    my $r = "GET $path HTTP/1.1\r\nHost: localhost\r\n";
    $r .= "X-Key: " . key_of($i) . "\r\n" if $o{key_len} > 0 || $o{wrk_keys};
    $r .= "$_\r\n" for @{$o{header}};
    return $r . "\r\n";
}

sub stop_now {
    return 0 unless $o{stop_file} && -f $o{stop_file};
    open my $fh, '<', $o{stop_file} or return 0;
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text =~ /$o{stop_re}/ ? 1 : 0;
}

my (%status, %hist);
my ($sent, $last, $stopped) = (0, 0, 0);
my $check_every = $o{check_every} || $o{pipeline};
my $since_check = 0;
my $t0 = time;

my $conn = BenchConn->new(port => $o{port}, deadline => $deadline,
                          timeout => $o{timeout});

my $pos = 0;
while ($pos < @idx) {
    my $n = $o{pipeline};
    $n = @idx - $pos if $n > @idx - $pos;
    my $out = join '', map { request_of($idx[$_]) } $pos .. $pos + $n - 1;
    $conn->write_all($out);
    my $done = 0;
    while ($done < $n) {
        my ($st, $h, undef, $keep) = $conn->read_response;
        $status{$st}++;
        $hist{$h->{lc $o{hist}} // '-'}++ if $o{hist};
        $last = $idx[$pos + $done];
        $done++;
        $sent++;
        if (!$keep && $done < $n) {
            # the rest of this batch is lost with the connection: resend it
            $n = $done;
        }
        $conn->reconnect unless $keep;
    }
    $pos += $n;
    $since_check += $n;
    if ($o{stop_file} && $since_check >= $check_every) {
        $since_check = 0;
        if (stop_now()) {
            $stopped = 1;
            last;
        }
    }
}
$stopped = 1 if !$stopped && $o{stop_file} && stop_now();

my @out = ("sent=$sent");
push @out, "status_$_=$status{$_}" for sort keys %status;
if ($o{hist}) {
    my $name = lc $o{hist};
    $name =~ s/^x-ratelimit-//;
    $name =~ s/\W/_/g;
    push @out, "${name}_$_=$hist{$_}" for sort keys %hist;
}
push @out, "last=$last", "stopped=$stopped",
    sprintf("secs=%.3f", time - $t0);
print join(' ', @out), "\n";
