package BenchConn;
# BenchConn.pm - one keepalive HTTP/1.1 connection to 127.0.0.1, shared by
# the bench's own clients (hclient.pl, apiclient.pl): connect with retries,
# write a request (or a pipelined batch), read one response at a time.
# Everything gives up at the deadline given (a Unix time).
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);

sub new {
    my ($class, %a) = @_;
    my $self = bless { port => $a{port}, deadline => $a{deadline},
                       timeout => $a{timeout}, buf => '' }, $class;
    $self->reconnect;
    return $self;
}

# A new connection (the server closed the old one, or none yet).
sub reconnect {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    $self->{buf} = '';
    my ($port, $sock) = ($self->{port});
    for (1 .. 50) {
        $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5);
        last if $sock;
        die "connect 127.0.0.1:$port: $!\n" if time > $self->{deadline};
        sleep 0.1;
    }
    die "connect 127.0.0.1:$port: $!\n" unless $sock;
    binmode $sock;
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    $self->{sock} = $sock;
}

sub write_all {
    my ($self, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $w = syswrite($self->{sock}, $data, length($data) - $off, $off);
        die "write: $!\n" unless defined $w;
        $off += $w;
    }
}

# Reads more bytes into the buffer; false on EOF.
sub fill {
    my ($self) = @_;
    my $left = $self->{deadline} - time;
    die "timed out after $self->{timeout}s\n" if $left <= 0;
    IO::Select->new($self->{sock})->can_read($left)
        or die "timed out after $self->{timeout}s\n";
    my $n = sysread($self->{sock}, $self->{buf}, 1 << 20,
                    length $self->{buf});
    die "read: $!\n" unless defined $n;
    return $n > 0;
}

# Takes len bytes off the buffer (reading as needed).
sub take {
    my ($self, $len, $what) = @_;
    while (length $self->{buf} < $len) {
        $self->fill or die "connection closed in a $what\n";
    }
    return substr($self->{buf}, 0, $len, '');
}

# One response: (status, headers hashref (lowercase names), body,
# keepalive flag).
sub read_response {
    my ($self) = @_;
    my $end;
    while (($end = index($self->{buf}, "\r\n\r\n")) < 0) {
        $self->fill or die "connection closed before a response\n";
    }
    my @lines = split /\r\n/, $self->take($end + 4, 'header');
    my ($ver, $status) = (shift @lines) =~ m{^HTTP/(\d\.\d) (\d{3})}
        or die "bad status line\n";
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    my $body = '';
    if (defined $h{'content-length'}) {
        $body = $self->take($h{'content-length'}, 'body');
    } elsif (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            my $e;
            while (($e = index($self->{buf}, "\r\n")) < 0) {
                $self->fill or die "connection closed in a chunk\n";
            }
            my $size = hex $self->take($e + 2, 'chunk');
            $body .= $self->take($size + 2, 'chunk');
            substr($body, -2) = '';
            last if $size == 0;
        }
    } else {
        1 while $self->fill;
        $body = $self->{buf};
        $self->{buf} = '';
        return ($status, \%h, $body, 0);
    }
    my $keep = ($h{connection} // '') !~ /close/i && $ver eq '1.1';
    return ($status, \%h, $body, $keep);
}

1;
