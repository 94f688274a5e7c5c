#!/usr/bin/perl
# report.pl DIR - the table of scripts/bench.sh and DIR/results.txt, from
# DIR/meta.txt, DIR/runs.tsv (wrk runs), DIR/callgrind.tsv and
# DIR/memory.txt (each optional).
use strict;
use warnings;

my $dir = shift or die "usage: $0 DIR\n";

my @order = qw(stock limit_req trl-1key limit_req-100k trl-100k
               limit_req-reject trl-reject stock-nomodule trl-1key-noheaders);
my %pair = ('trl-1key' => 'limit_req', 'trl-100k' => 'limit_req-100k',
            'trl-reject' => 'limit_req-reject',
            'trl-1key-noheaders' => 'limit_req');

sub slurp_lines {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    chomp(my @l = <$fh>);
    close $fh;
    return @l;
}

sub read_tsv {
    my ($file) = @_;
    my @lines = slurp_lines($file) or return ();
    my @head = split /\t/, shift @lines;
    return map { my %r; @r{@head} = split /\t/; \%r } @lines;
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

my %meta = map { /^(\S+)\s+(.*)$/ ? ($1, $2) : () }
    slurp_lines("$dir/meta.txt");
my @results = map { "$_ $meta{$_}" } sort keys %meta;

# --- throughput ---

my (%rps, %sum);
for my $r (read_tsv("$dir/runs.tsv")) {
    my $c = $r->{column};
    push @{$rps{$c}}, $r->{rps};
    $sum{$c}{$_} += $r->{$_}
        for qw(requests seconds non2xx socket_errors cpu_ticks errlog_lines);
    if (($r->{wrk_cpu_pct} // '-') =~ /^\d+$/) {
        $sum{$c}{wrk_cpu} += $r->{wrk_cpu_pct};
        $sum{$c}{wrk_cpu_n}++;
    }
}
my %cg = map { $_->{column} => $_ } read_tsv("$dir/callgrind.tsv");

my @cols = grep { $rps{$_} || $cg{$_} } @order;
my $tck = $meta{'cfg.clk_tck'} || 100;
my $workers = $meta{'cfg.workers'} || 1;

my (%med, %row);
for my $c (@cols) {
    next unless $rps{$c};
    my $s = $sum{$c};
    $med{$c} = median(@{$rps{$c}});
    my @sorted = sort { $a <=> $b } @{$rps{$c}};
    $row{$c} = {
        median => $med{$c},
        min => $sorted[0],
        max => $sorted[-1],
        cpu_us => $s->{requests}
            ? $s->{cpu_ticks} / $tck * 1e6 / $s->{requests} : 0,
        busy => $s->{seconds}
            ? 100 * $s->{cpu_ticks} / $tck / $s->{seconds} / $workers : 0,
        non2xx => $s->{non2xx},
        socket_errors => $s->{socket_errors},
        requests => $s->{requests},
        log_per_req => $s->{requests}
            ? $s->{errlog_lines} / $s->{requests} : 0,
        wrk_cpu => $s->{wrk_cpu_n} ? $s->{wrk_cpu} / $s->{wrk_cpu_n} : undef,
    };
}

sub ratio {
    my ($a, $b) = @_;
    return defined $a && defined $b && $b > 0 ? $a / $b : undef;
}

sub fmt {
    my ($f, $v) = @_;
    return defined $v ? sprintf($f, $v) : '-';
}

my $rounds = $meta{'cfg.rounds'} // '?';
print "\n";
if (%row) {
    printf "Throughput: nginx %s, %s worker(s) on CPU %s; wrk -t%s -c%s on CPU %s;"
        . " %s rounds x %ss, interleaved\n",
        $meta{'nginx.version'} // '?', $workers,
        $meta{'cfg.nginx_cpus'} // '?', $meta{'cfg.threads'} // '?',
        $meta{'cfg.connections'} // '?', $meta{'cfg.wrk_cpus'} // '?',
        $rounds, $meta{'cfg.duration_s'} // '?';
}
my @h = ('column', 'req/s med', 'min - max', 'vs stock', 'vs lr',
         'CPU us/req', 'busy', 'wrk', 'non-2xx', 'log/req', 'Ir/req',
         'Ir-stock', 'Ir vs lr');
my $fmt = "%-18s %9s %17s %8s %6s %10s %4s %4s %8s %7s %7s %8s %8s\n";
printf $fmt, @h;
printf $fmt, map { '-' x length } @h;

my $stock_ir = $cg{stock} ? $cg{stock}{ir_per_req} : undef;
for my $c (@cols) {
    my $r = $row{$c};
    my $p = $pair{$c};
    my $ir = $cg{$c} ? $cg{$c}{ir_per_req} : undef;
    my $pir = $p && $cg{$p} ? $cg{$p}{ir_per_req} : undef;
    printf $fmt, $c,
        $r ? fmt('%.0f', $r->{median}) : '-',
        $r ? sprintf('%.0f - %.0f', $r->{min}, $r->{max}) : '-',
        $r ? fmt('%.3f', ratio($r->{median}, $med{stock})) : '-',
        $r && $p ? fmt('%.3f', ratio($r->{median}, $med{$p})) : '-',
        $r ? fmt('%.2f', $r->{cpu_us}) : '-',
        $r ? sprintf('%.0f%%', $r->{busy}) : '-',
        $r && defined $r->{wrk_cpu} ? sprintf('%.0f%%', $r->{wrk_cpu}) : '-',
        $r ? $r->{non2xx} : '-',
        $r ? fmt('%.3f', $r->{log_per_req}) : '-',
        fmt('%.0f', $ir),
        defined $ir && defined $stock_ir ? sprintf('%+.0f', $ir - $stock_ir) : '-',
        fmt('%.3f', ratio($ir, $pir));

    if ($r) {
        push @results,
            "tput.$c.median_rps " . sprintf('%.0f', $r->{median}),
            "tput.$c.min_rps " . sprintf('%.0f', $r->{min}),
            "tput.$c.max_rps " . sprintf('%.0f', $r->{max}),
            "tput.$c.rps_all " . join(',', @{$rps{$c}}),
            "tput.$c.requests $r->{requests}",
            "tput.$c.cpu_us_per_req " . sprintf('%.3f', $r->{cpu_us}),
            "tput.$c.worker_busy_pct " . sprintf('%.1f', $r->{busy}),
            "tput.$c.wrk_cpu_pct " . fmt('%.1f', $r->{wrk_cpu}),
            "tput.$c.non2xx $r->{non2xx}",
            "tput.$c.socket_errors $r->{socket_errors}",
            "tput.$c.errlog_lines_per_req " . sprintf('%.4f', $r->{log_per_req});
        my $rs = ratio($r->{median}, $med{stock});
        push @results, "tput.$c.ratio_stock " . sprintf('%.4f', $rs)
            if defined $rs;
        if ($p) {
            my $rp = ratio($r->{median}, $med{$p});
            push @results, "tput.$c.ratio_limit_req " . sprintf('%.4f', $rp)
                if defined $rp;
            my $cp = ratio($r->{cpu_us}, $row{$p} ? $row{$p}{cpu_us} : undef);
            push @results, "tput.$c.cpu_ratio_limit_req " . sprintf('%.4f', $cp)
                if defined $cp;
        }
    }
    if (defined $ir) {
        push @results, "cg.$c.ir_per_req $ir",
            "cg.$c.ir_k1 $cg{$c}{ir1}", "cg.$c.ir_k2 $cg{$c}{ir2}",
            "cg.$c.k1 $cg{$c}{k1}", "cg.$c.k2 $cg{$c}{k2}";
        push @results, sprintf("cg.%s.ir_minus_stock %.1f", $c, $ir - $stock_ir)
            if defined $stock_ir;
        push @results, sprintf("cg.%s.ir_ratio_limit_req %.4f", $c, $ir / $pir)
            if defined $pir && $pir > 0;
    }
}
print "\n";
print "vs lr: against limit_req of the same key kind (trl-1key : limit_req,"
    . " trl-100k : limit_req-100k, trl-reject : limit_req-reject).\n";
print "CPU us/req: the nginx worker's utime+stime over all rounds / requests."
    . "  busy: worker CPU time / run time\n"
    . "(below ~95%: the client, or other load on the machine, held nginx back;"
    . " compare CPU us/req then).\n"
    . "wrk: how busy wrk's CPU(s) were, all processes on them counted.\n";
print "log/req: error-log lines per request.  Ir/req: callgrind instructions"
    . " per request, (Ir(K2)-Ir(K1))/(K2-K1),\n"
    . "user space only (the error log's write() is not counted).\n"
    if %cg;

my @warn;
for my $c (qw(stock limit_req trl-1key limit_req-100k trl-100k)) {
    push @warn, "$c: $row{$c}{non2xx} non-2xx responses (expected none)"
        if $row{$c} && $row{$c}{non2xx} > 0;
}
for my $c (keys %row) {
    push @warn, "$c: $row{$c}{socket_errors} socket errors"
        if $row{$c}{socket_errors} > 0;
    my ($busy, $wrk) = ($row{$c}{busy}, $row{$c}{wrk_cpu});
    if ($busy < 90) {
        push @warn, sprintf("%s: the nginx worker was only %.0f%% busy: %s"
            . " (compare CPU us/req, not req/s)", $c, $busy,
            defined $wrk && $wrk >= 95
                ? sprintf("wrk's CPU was %.0f%% busy, the client was the"
                          . " bottleneck", $wrk)
                : "the client, or other load on the machine, held it back");
    }
}
print "\n" if @warn;
print "WARNING: $_\n" for sort @warn;

# where trl-1key's instructions go, against limit_req: the module's own
# functions (the full list, nginx's functions included, is in the file)
my $diff = "$dir/callgrind/trl-1key.vs-limit_req.diff.txt";
if (open my $dh, '<', $diff) {
    my @lines = <$dh>;
    close $dh;
    my ($total) = grep { /^# total:/ } @lines;
    my ($own) = grep { /^# in the module/ } @lines;
    my @top = grep { /^\*/ } @lines;
    my @nginx = grep { /^ / && !/^ \s*-/ } @lines;
    print "\ntrl-1key against limit_req, callgrind, instructions per request"
        . " (full list: $diff)\n";
    print "  ", $total =~ s/^# //r if $total;
    print "  ", $own =~ s/^# //r if $own;
    print "  the module's functions, largest first:\n";
    print "  $_" for @top[0 .. ($#top < 9 ? $#top : 9)];
    print "  elsewhere (nginx, libc), largest differences first:\n";
    print "  $_" for @nginx[0 .. ($#nginx < 7 ? $#nginx : 7)];
}

# --- memory ---

my %mem = map { /^(\S+)\s+(.*)$/ ? ($1, $2) : () }
    slurp_lines("$dir/memory.txt");
if (%mem) {
    push @results, map { "$_ $mem{$_}" } sort keys %mem;
    print "\nMemory: keys a 1m zone holds                          48-byte keys"
        . "  112-byte keys\n";
    my @rows = (
        ['limit_req: first key kept up to K keys (rate 1r/m)',
         'limit_req', 'first_key_kept'],
        ['limit_req: held after 2x that many', 'limit_req', 'held_after_2x'],
        ['token_ratelimit: keys before the first "is full" [warn]',
         'trl', 'first_evict'],
        ['token_ratelimit: held after 2x that many', 'trl', 'held_after_2x'],
        ['token_ratelimit: first key kept up to K keys', 'trl',
         'first_key_kept'],
    );
    for my $r (@rows) {
        my ($label, $kind, $what) = @$r;
        printf "%-54s %12s %14s\n", $label,
            $mem{"mem.$kind.48.$what"} // '-',
            $mem{"mem.$kind.112.$what"} // '-';
    }
    print "(limit_req's known figures: 8,095 keys of up to 48 bytes,"
        . " 4,032 of 49-112 bytes)\n";
}

open my $fh, '>', "$dir/results.txt" or die "$dir/results.txt: $!\n";
print $fh "$_\n" for @results;
close $fh;
my @t = map { defined $meta{"time.${_}_s"}
                ? sprintf("%s %ss", $_, $meta{"time.${_}_s"}) : () }
    qw(throughput callgrind memory total);
print "\ntime: ", join(', ', @t), "\n" if @t;
printf "load average before/after the throughput runs: %s / %s\n",
    $meta{'host.loadavg_before'}, $meta{'host.loadavg_after'} // '?'
    if $meta{'host.loadavg_before'};
print "results: $dir/results.txt; raw wrk outputs: $dir/wrk/;"
    . " callgrind: $dir/callgrind/\n";
