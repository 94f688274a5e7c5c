#!/usr/bin/perl
# conf.d/fail2ban: the real fail2ban-regex (fail2ban 1.0.x) with our
# filter on event log lines the module wrote, in both formats:
#
# - every abusive line (rejections, a penalty start, a deny) is matched
#   and names its client: exact counts per address (t/lib/TRLAbuse.pm)
# - a key holding '","client":"6.6.6.6' names no one but its sender
# - admitted traffic writes nothing to match; a dry run is not matched
# - the date of every line is read (UTC), none ignored
# - the jail's filter arguments narrow it to penalties and denies
# - fail2ban-client -t accepts the jail and filter as shipped
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path);
use TRL;
use TRLAbuse;

my $REGEX = '/usr/bin/fail2ban-regex';
plan skip_all => "fail2ban-regex not installed ($REGEX: apt install "
                 . 'fail2ban)' unless -x $REGEX;

my $FILTER = "$TRL::ROOT/conf.d/fail2ban/filter.d/token-ratelimit.conf";
my $JAIL = "$TRL::ROOT/conf.d/fail2ban/jail.d/token-ratelimit.conf";

# fail2ban-regex's report and its matched addresses, one per match.
sub f2b {
    my ($log, $filter) = @_;
    my $report = `$REGEX '$log' '$filter' 2>&1`;
    my @ips = split /\n/, `$REGEX -o ip '$log' '$filter' 2>&1`;
    return ($report, @ips);
}

sub count {
    my %n;
    $n{$_}++ for @_;
    return \%n;
}

for my $format ('json', 'ecs') {
    my ($t, $log, $text) = TRLAbuse::write_log(format => $format);
    $t->stop;

    my ($report, @ips) = f2b($log, $FILTER);
    is_deeply(count(@ips), \%TRLAbuse::ABUSE,
              "$format: matches per address, exactly") or diag($report);
    my $abusive = 0;
    $abusive += $_ for values %TRLAbuse::ABUSE;
    my $missed = $TRLAbuse::LINES - $abusive;
    like($report, qr/^Lines: $TRLAbuse::LINES lines, 0 ignored, $abusive (?#
                     )matched, $missed missed/m,
         "$format: $abusive of $TRLAbuse::LINES lines matched, none ignored")
        or diag($report);
    ok(!grep({ $_ eq $TRLAbuse::INJECTED } @ips),
       "$format: an address inside a key is not taken for the client");
    ok(!grep({ $_ eq $TRLAbuse::ADMITTED || $_ eq $TRLAbuse::DRY_RUN } @ips),
       "$format: admitted and dry-run clients are not matched");
    like($text, qr/\Q$TRLAbuse::DRY_RUN\E/,
         "$format: the dry run's line is there (and missed)");
    like($report, qr/^\|\s+\[$TRLAbuse::LINES\] \^\\\{"\(\?:time/m,
         "$format: every line's date read by the filter's datepattern")
        or diag($report);

    # penalties and denies only, as the stricter example jail has it
    my ($r2, @strict) = f2b($log, $FILTER
        . '[events="penalty|denied", actions="penalty_started|denied"]');
    is_deeply(count(@strict), { '203.0.113.10' => 2 },
              "$format: filter arguments narrow it to penalties and denies")
        or diag($r2);
}

# --- the jail as shipped: fail2ban-client -t in a config dir of our own ------

SKIP: {
    my $client = '/usr/bin/fail2ban-client';
    skip "fail2ban-client not installed", 2 unless -x $client
        && -f '/etc/fail2ban/fail2ban.conf' && -f '/etc/fail2ban/jail.conf';

    my $t = TRL->new;
    my $dir = $t->dir . '/f2b';
    make_path("$dir/filter.d", "$dir/jail.d", "$dir/action.d");
    for my $sub ('.', 'filter.d', 'action.d') {      # not jail.d: ours only
        opendir my $dh, "/etc/fail2ban/$sub" or die "$sub: $!";
        for my $f (readdir $dh) {
            next unless -f "/etc/fail2ban/$sub/$f" && $f =~ /\.conf$/;
            copy("/etc/fail2ban/$sub/$f", "$dir/$sub/$f")
                or die "copy $sub/$f: $!";
        }
    }
    copy($FILTER, "$dir/filter.d/token-ratelimit.conf") or die "copy: $!";

    # the shipped jail, enabled, reading a log of this test
    my $log = $t->dir . '/logs/events.log';
    open my $fh, '>', $log or die "$log: $!";
    close $fh;
    my $jail = TRL::read_file_once($JAIL);
    $jail =~ s/^enabled\s*=\s*false/enabled   = true/mg;
    $jail =~ s{^logpath\s*=.*$}{logpath   = $log}mg;
    open $fh, '>', "$dir/jail.d/token-ratelimit.conf" or die $!;
    print $fh $jail;
    close $fh;

    my $out = `$client -c '$dir' -t 2>&1`;
    is($?, 0, 'fail2ban-client -t: the jail and filter load') or diag($out);
    like($out, qr/OK: configuration test is successful/,
         'fail2ban-client -t: configuration test is successful')
        or diag($out);
}

done_testing;
