#!/usr/bin/perl
# apiclient.pl - the token_ratelimit_api client of make bench: GETs
# a few paths of 127.0.0.1 over one keepalive connection and times each
# response (from the write of the request to the last byte of its body).
#
#   apiclient.pl --port P [options] PATH...
#
# Two ways to send:
#   --count N           N rounds back to back, each round GETs every PATH
#                       once, in order (the render-time measurements);
#                       --pause S: S seconds between rounds
#   --every S --duration D [--offset O]
#                       a scraper: a round at O, O + S, O + 2S, ... seconds
#                       after the start, while that is below D (default
#                       offset S/2: the rounds fall inside a run of D
#                       seconds that starts with this client)
# Other options:
#   --method M          M instead of GET (POST and DELETE send no body)
#   --save DIR          write the last body of each PATH to DIR/N.body
#                       (N: the PATH's place, 1, 2, ...)
#   --times FILE        every response: "path status bytes ms", a line each
#   --timeout S         give up after S seconds in all (default 120)
#
# Prints one line per PATH:
#   path=P n=N status_200=N ... bytes=B min_ms= med_ms= p90_ms= max_ms= mean_ms=
# (bytes: of the last body; p90: nearest rank).  Exits 0 when every
# response was read (whatever its status: the caller checks the counts).
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use BenchConn;
use Getopt::Long qw(GetOptions);
use POSIX qw(ceil);
use Time::HiRes qw(time sleep);

my %o = (timeout => 120);
GetOptions(\%o, 'port=i', 'count=i', 'pause=f', 'every=f', 'duration=f',
           'offset=f', 'method=s',
           'save=s', 'times=s', 'timeout=f')
    or die "usage: see the header of $0\n";
die "--port is required\n" unless $o{port};
my @paths = @ARGV or die "no PATH given\n";
die "give --count N or --every S --duration D\n"
    unless $o{count} || ($o{every} && $o{duration});

my $t0 = time;
my $deadline = $t0 + $o{timeout};
my $conn;

# One request: (status, body, keepalive)
sub get {
    my ($path) = @_;
    my $m = $o{method} // 'GET';
    $conn->write_all("$m $path HTTP/1.1\r\nHost: localhost\r\n"
        . ($m eq 'GET' || $m eq 'HEAD' ? '' : "Content-Length: 0\r\n")
        . "\r\n");
    my ($status, undef, $body, $keep) = $conn->read_response;
    return ($status, $body, $keep);
}

my (%ms, %status, %bytes, %last);
my $tf;
if ($o{times}) {
    open $tf, '>', $o{times} or die "$o{times}: $!\n";
}

sub round {
    for my $p (@paths) {
        my $s = time;
        my ($st, $body, $keep) = get($p);
        my $d = (time - $s) * 1000;
        push @{$ms{$p}}, $d;
        $status{$p}{$st}++;
        $bytes{$p} = length $body;
        $last{$p} = $body;
        printf $tf "%s %s %d %.3f\n", $p, $st, length $body, $d if $tf;
        $conn->reconnect unless $keep;
    }
}

$conn = BenchConn->new(port => $o{port}, deadline => $deadline,
                       timeout => $o{timeout});

if ($o{count}) {
    for my $k (1 .. $o{count}) {
        sleep $o{pause} if $o{pause} && $k > 1;
        round();
    }
} else {
    my $offset = $o{offset} // $o{every} / 2;
    for (my $k = 0; ; $k++) {
        my $at = $t0 + $offset + $k * $o{every};
        last if $at - $t0 >= $o{duration};
        my $wait = $at - time;
        sleep $wait if $wait > 0;
        round();
    }
}
close $tf if $tf;

if ($o{save}) {
    for my $i (0 .. $#paths) {
        open my $fh, '>', "$o{save}/" . ($i + 1) . ".body"
            or die "$o{save}: $!\n";
        print $fh $last{$paths[$i]} // '';
        close $fh;
    }
}

for my $p (@paths) {
    my @v = sort { $a <=> $b } @{$ms{$p} || []};
    my $n = @v;
    my $sum = 0;
    $sum += $_ for @v;
    my $med = !$n ? 0 : $n % 2 ? $v[$#v / 2] : ($v[$n / 2 - 1] + $v[$n / 2]) / 2;
    my @out = ("path=$p", "n=$n");
    push @out, "status_$_=$status{$p}{$_}" for sort keys %{$status{$p} || {}};
    push @out, "bytes=" . ($bytes{$p} // 0),
        sprintf("min_ms=%.3f", $n ? $v[0] : 0),
        sprintf("med_ms=%.3f", $med),
        sprintf("p90_ms=%.3f", $n ? $v[ceil(0.9 * $n) - 1] : 0),
        sprintf("max_ms=%.3f", $n ? $v[-1] : 0),
        sprintf("mean_ms=%.3f", $n ? $sum / $n : 0);
    print join(' ', @out), "\n";
}
