#!/usr/bin/perl
# report.pl DIR - the table of make bench and DIR/results.txt, from
# DIR/meta.txt, DIR/runs.tsv (wrk runs), DIR/callgrind.tsv and
# DIR/memory.txt (each optional).
use strict;
use warnings;

my $dir = shift or die "usage: $0 DIR\n";

my @order = qw(stock limit_req trl-1key trl-1key-api limit_req-100k trl-100k
               trl-distinct-100k
               limit_req-reject trl-reject stock-nomodule trl-1key-noheaders
               trl-1key-noapi trl-1key-listed
               trl-async-1key trl-async-100k trl-strict-1key
               redis-incr redis-incr-100k);
my %pair = ('trl-1key' => 'limit_req', 'trl-100k' => 'limit_req-100k',
            'trl-reject' => 'limit_req-reject',
            'trl-1key-noheaders' => 'limit_req',
            'trl-1key-api' => 'limit_req', 'trl-1key-noapi' => 'limit_req',
            'trl-1key-listed' => 'limit_req');
# the cluster-sync columns and their node-local references
my @sync = qw(trl-async-1key trl-async-100k trl-strict-1key);
my %local = ('trl-async-1key' => 'trl-1key', 'trl-async-100k' => 'trl-100k',
             'trl-strict-1key' => 'trl-1key');
# the per-request Redis INCR+EXPIRE limiter of the same key kind, and the
# targets against it (issue 10 section 4)
my @incr = qw(redis-incr redis-incr-100k);
my %incr = ('trl-async-1key' => 'redis-incr',
            'trl-async-100k' => 'redis-incr-100k',
            'trl-strict-1key' => 'redis-incr');
# the async targets are against node-local (trl-1key, trl-100k), strict's
# against the per-request limiter
my %target = ('trl-async-1key' => 0.95, 'trl-async-100k' => 0.75,
              'trl-strict-1key' => 1.5);
my %target_vs = ('trl-async-1key' => 'local', 'trl-async-100k' => 'local',
                 'trl-strict-1key' => 'incr');

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

my (%rps, %sum, %by_round);
for my $r (read_tsv("$dir/runs.tsv")) {
    my $c = $r->{column};
    push @{$rps{$c}}, $r->{rps};
    $by_round{$r->{round}}{$c} = $r->{rps};
    $sum{$c}{$_} += $r->{$_}
        for qw(requests seconds non2xx socket_errors cpu_ticks errlog_lines);
    if (($r->{wrk_cpu_pct} // '-') =~ /^\d+$/) {
        $sum{$c}{wrk_cpu} += $r->{wrk_cpu_pct};
        $sum{$c}{wrk_cpu_n}++;
    }
    if (($r->{nginx_cpu_pct} // '-') =~ /^\d+$/) {
        $sum{$c}{ngx_cpu} += $r->{nginx_cpu_pct};
        $sum{$c}{ngx_cpu_n}++;
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
        ngx_cpu => $s->{ngx_cpu_n} ? $s->{ngx_cpu} / $s->{ngx_cpu_n} : undef,
    };
    # nginx's CPU(s) busy beyond the worker's own time (one worker per
    # nginx CPU, the default): other load there
    $row{$c}{other} = defined $row{$c}{ngx_cpu}
        ? $row{$c}{ngx_cpu} - $row{$c}{busy} : undef;
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
         'CPU us/req', 'busy', 'oth', 'wrk', 'non-2xx', 'log/req', 'Ir/req',
         'Ir-stock', 'Ir vs lr');
my $fmt = "%-18s %9s %17s %8s %6s %10s %4s %4s %4s %8s %7s %7s %8s %8s\n";
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
        $r && defined $r->{other} ? sprintf('%.0f%%', $r->{other}) : '-',
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
            "tput.$c.nginx_cpu_other_pct " . fmt('%.1f', $r->{other}),
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
    . "oth: how busy nginx's CPU was beyond the worker's own time: other"
    . " load on the machine (noise), and softirq\n"
    . "work of the loopback traffic that is not charged to the worker"
    . " (about 0 on a quiet machine).\n"
    . "wrk: how busy wrk's CPU(s) were, all processes on them counted"
    . " (redis-server too, with sync columns).\n";
print "log/req: error-log lines per request.  Ir/req: callgrind instructions"
    . " per request, (Ir(K2)-Ir(K1))/(K2-K1),\n"
    . "user space only (the error log's write() is not counted).\n"
    if %cg;

# a distinct zone (10 values per key, N=10) against the plain request count
# of the same 100k keys (issue 12: target <= +1 us/req)
if ($row{'trl-distinct-100k'} && $row{'trl-100k'}) {
    my $d = $row{'trl-distinct-100k'}{cpu_us} - $row{'trl-100k'}{cpu_us};
    printf "trl-distinct-100k: %+.2f CPU us/req against trl-100k"
        . " (distinct zone, 10 values per key, N=10; target <= +1).\n", $d;
    push @results, sprintf('tput.trl-distinct-100k.cpu_us_minus_trl-100k %.3f',
                           $d);
}

my @warn;
for my $c (qw(stock limit_req trl-1key trl-1key-api limit_req-100k trl-100k
              trl-distinct-100k), @sync) {
    push @warn, "$c: $row{$c}{non2xx} non-2xx responses (expected none)"
        if $row{$c} && $row{$c}{non2xx} > 0;
}
for my $c (keys %row) {
    push @warn, "$c: $row{$c}{socket_errors} socket errors"
        if $row{$c}{socket_errors} > 0;
    push @warn, sprintf("%s: nginx's CPU was %.0f%% busy with other work"
        . " (other load on the machine: noisy figures)", $c, $row{$c}{other})
        if defined $row{$c}{other} && $row{$c}{other} > 20;
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

# --- API scraping under load (trl-1key-api against trl-1key) ---

# spread(LIST): (max - min) / median, the round-to-round spread
sub spread {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v > 1 && median(@v) > 0;
    return ($v[-1] - $v[0]) / median(@v);
}

my @scrapes = read_tsv("$dir/scrape.tsv");
if ($row{'trl-1key-api'} && $row{'trl-1key'}) {
    my ($ca, $cb) = ('trl-1key-api', 'trl-1key');
    # per round: req/s and CPU us/req of each, and their ratios
    my (%cpu_round, @rr, @cr);
    for my $r (read_tsv("$dir/runs.tsv")) {
        $cpu_round{$r->{round}}{$r->{column}} = $r->{requests}
            ? $r->{cpu_ticks} / $tck * 1e6 / $r->{requests} : undef;
    }
    for my $round (sort { $a <=> $b } keys %by_round) {
        my $x = $by_round{$round};
        push @rr, $x->{$ca} / $x->{$cb} if $x->{$ca} && $x->{$cb};
        my $c = $cpu_round{$round};
        push @cr, $c->{$ca} / $c->{$cb} if $c->{$ca} && $c->{$cb};
    }
    @rr = sort { $a <=> $b } @rr;
    @cr = sort { $a <=> $b } @cr;
    my $noise = spread(@{$rps{$cb}});
    my $cnoise = spread(map { $cpu_round{$_}{$cb} } keys %cpu_round);
    my $rmed = ratio($row{$ca}{median}, $row{$cb}{median});
    my $cmed = ratio($row{$ca}{cpu_us}, $row{$cb}{cpu_us});
    my $every = $meta{'api.scrape_every_s'} // '?';

    printf "\nAPI scraping under load: %s is %s (same location, zone and load)"
        . " while GET %s/ (JSON)\nand GET %s/metrics are fetched every %s s"
        . " (%s times each per %ss run), in the same interleaved rounds\n",
        $ca, $cb, $meta{'cfg.api_loc'} // '/trl-api',
        $meta{'cfg.api_loc'} // '/trl-api', $every,
        $meta{'api.scrapes_per_run'} // '?', $meta{'cfg.duration_s'} // '?';
    my @ah = ('column', 'req/s med', 'min - max', 'spread', 'CPU us/req',
              'CPU spread', 'busy');
    my $af = "%-14s %9s %17s %7s %10s %10s %5s\n";
    printf $af, @ah;
    printf $af, map { '-' x length } @ah;
    for my $c ($cb, $ca) {
        my $r = $row{$c};
        printf $af, $c, sprintf('%.0f', $r->{median}),
            sprintf('%.0f - %.0f', $r->{min}, $r->{max}),
            fmt('%.1f%%', defined spread(@{$rps{$c}})
                ? 100 * spread(@{$rps{$c}}) : undef),
            sprintf('%.3f', $r->{cpu_us}),
            fmt('%.1f%%', defined spread(map { $cpu_round{$_}{$c} } keys %cpu_round)
                ? 100 * spread(map { $cpu_round{$_}{$c} } keys %cpu_round) : undef),
            sprintf('%.0f%%', $r->{busy});
    }
    printf "%s / %s: req/s %s (medians), per round %s (%s - %s);"
        . " CPU us/req %s, per round %s (%s - %s)\n",
        $ca, $cb, fmt('%.3f', $rmed),
        @rr ? (fmt('%.3f', median(@rr)), fmt('%.3f', $rr[0]), fmt('%.3f', $rr[-1]))
            : ('-', '-', '-'),
        fmt('%.3f', $cmed),
        @cr ? (fmt('%.3f', median(@cr)), fmt('%.3f', $cr[0]), fmt('%.3f', $cr[-1]))
            : ('-', '-', '-');

    # the scrapes: every one 200?
    my %sc;
    for my $s (grep { $_->{column} eq $ca } @scrapes) {
        my $p = $s->{path};
        $sc{$p}{expected} += $s->{expected};
        $sc{$p}{n} += $s->{n};
        $sc{$p}{ok} += $s->{status_200};
        $sc{$p}{bytes} = $s->{bytes};
        push @{$sc{$p}{med}}, $s->{med_ms};
        $sc{$p}{max} = $s->{max_ms}
            if !defined $sc{$p}{max} || $s->{max_ms} > $sc{$p}{max};
        $sc{$p}{sum_ms} += $s->{mean_ms} * $s->{n};
    }
    my $scrape_ms = 0;
    for my $p (sort keys %sc) {
        my $s = $sc{$p};
        printf "  scrapes of %-18s %d of %d answered 200 (expected %d);"
            . " median %.2f ms (of the runs' medians), max %.2f ms; %d bytes\n",
            $p, $s->{ok}, $s->{n}, $s->{expected}, median(@{$s->{med}}),
            $s->{max}, $s->{bytes};
        push @warn, "$ca: only $s->{ok} of $s->{expected} scrapes of $p"
            . " answered 200" if $s->{ok} != $s->{expected} || $s->{n} != $s->{expected};
        (my $k = $p) =~ s{.*/}{}; $k = 'json' if $k eq '';
        push @results, "api.scrape.$k.expected $s->{expected}",
            "api.scrape.$k.ok $s->{ok}",
            sprintf("api.scrape.$k.med_ms %.3f", median(@{$s->{med}})),
            sprintf("api.scrape.$k.max_ms %.3f", $s->{max}),
            "api.scrape.$k.bytes $s->{bytes}";
        $scrape_ms += $s->{sum_ms} / ($s->{n} || 1) if $every =~ /^[\d.]+$/;
    }
    if ($scrape_ms && $every =~ /^[\d.]+$/ && $every > 0) {
        printf "  the scrapes took %.1f ms per %s s: %.2f%% of the run (their"
            . " time includes waiting behind wrk's requests)\n", $scrape_ms,
            $every, $scrape_ms / $every / 10;
        push @results, sprintf("api.scrape.share_pct %.3f",
                               $scrape_ms / $every / 10);
    }
    my ($cj, $cm) = map { $meta{"api.scrape_cpu_ms.$_"} } qw(json metrics);
    my $expect;
    if (defined $cj && defined $cm && $every =~ /^[\d.]+$/ && $every > 0) {
        $expect = ($cj + $cm) / $every / 1000;
        printf "  one scrape costs the idle nginx %.2f ms of CPU (JSON) + %.2f ms"
            . " (metrics): %.2f%% of one worker at one\n  scrape round per %s s,"
            . " the req/s a saturated worker gives up (expected ratio %.3f)\n",
            $cj, $cm, 100 * $expect, $every, 1 / (1 + $expect);
        push @results, sprintf("api.scrape.expected_cost_pct %.3f", 100 * $expect);
    }

    # within the noise?  The difference against trl-1key's own spread
    # between rounds
    my $d = @rr ? 1 - median(@rr) : undef;
    my $dc = @cr ? median(@cr) - 1 : undef;
    if (defined $d && defined $noise) {
        my $within = abs($d) <= $noise;
        my $cwithin = defined $dc && defined $cnoise ? abs($dc) <= $cnoise : undef;
        printf "verdict: req/s %+.1f%% against trl-1key (median of the per-round"
            . " ratios; %s expected from the scrapes' CPU);\ntrl-1key's own"
            . " spread between rounds (max - min) / median is %.1f%%: %s."
            . "\nCPU us/req %+.1f%%, trl-1key's spread %s: %s.\n",
            -100 * $d,
            defined $expect ? sprintf('%+.1f%%', -100 * $expect / (1 + $expect)) : '-',
            100 * $noise,
            $within ? 'WITHIN the noise' : 'BEYOND the noise (measurable)',
            100 * ($dc // 0), fmt('%.1f%%', defined $cnoise ? 100 * $cnoise : undef),
            !defined $cwithin ? '-' : $cwithin ? 'WITHIN the noise'
                                               : 'BEYOND the noise (measurable)';
        push @results, sprintf("api.tput.ratio_median %.4f", $rmed),
            sprintf("api.tput.ratio_per_round_median %.4f", median(@rr)),
            sprintf("api.tput.ratio_per_round_min %.4f", $rr[0]),
            sprintf("api.tput.ratio_per_round_max %.4f", $rr[-1]),
            sprintf("api.tput.cpu_ratio %.4f", $cmed // 0),
            sprintf("api.tput.noise_spread %.4f", $noise),
            sprintf("api.tput.within_noise %d", $within ? 1 : 0);
        push @results, sprintf("api.tput.cpu_within_noise %d", $cwithin ? 1 : 0)
            if defined $cwithin;
    } else {
        print "verdict: needs at least 2 rounds (ROUNDS) to tell the noise\n";
    }
}

# what the API location itself costs a request (callgrind): the runtime
# lists' check, and their reconcile with Redis once a second
if ($cg{'trl-1key'} && $cg{'trl-1key-noapi'}) {
    my ($w, $wo) = ($cg{'trl-1key'}{ir_per_req}, $cg{'trl-1key-noapi'}{ir_per_req});
    printf "%sthe API location itself, callgrind: trl-1key %.0f Ir/request,"
        . " without the location (trl-1key-noapi) %.0f: %+.0f (%+.2f%%)\n",
        ($row{'trl-1key-api'} ? '  ' : "\n"), $w, $wo, $w - $wo,
        $wo ? 100 * ($w - $wo) / $wo : 0;
    push @results, sprintf("api.cg.ir_with_location_minus_without %.1f", $w - $wo);
}
if ($cg{'trl-1key'} && $cg{'trl-1key-listed'}) {
    my ($w, $l) = ($cg{'trl-1key'}{ir_per_req}, $cg{'trl-1key-listed'}{ir_per_req});
    printf "  one runtime list entry (a deny for another address, added through"
        . " the API): trl-1key-listed %.0f Ir/request, %+.0f (x%.2f)\n",
        $l, $l - $w, $w ? $l / $w : 0;
    push @results, sprintf("api.cg.ir_one_list_entry_minus_none %.1f", $l - $w);
    push @warn, sprintf("trl-1key-listed: one runtime list entry costs every"
        . " request %+.0f instructions (x%.2f): the lists are scanned per"
        . " request", $l - $w, $w ? $l / $w : 0) if $w && $l > 1.10 * $w;
}

# --- API render time (part 1c) ---

my @api = read_tsv("$dir/api.tsv");
if (@api) {
    my $loc = $meta{'cfg.api_loc'} // '/trl-api';
    my $max_ms = $meta{'api.max_ms'} // 50;
    printf "\nAPI render time: zone \"api\" of %s (%s entries), %s keys sent"
        . " once (admitted), %s of them again (rejected:\npenalty 10m);"
        . " filled in %.1f s; %s calls of each, one keepalive connection;"
        . " times in ms, request write to\nlast byte; CPU: the nginx worker's"
        . " per call (schedstat)\n",
        $meta{'api.zone_size'} // '?', $meta{'api.idle.zone_capacity'} // '?',
        $meta{'api.keys_sent'} // '?', $meta{'api.over_sent'} // '?',
        ($meta{'api.fill_ms'} // 0) / 1000, $meta{'api.repeat'} // '?';
    for my $ph (qw(idle load)) {
        next unless defined $meta{"api.$ph.zone_keys"};
        printf "  %s: the zone's JSON says %d keys, %d penalties active (%d"
            . " listed, %d of them with their key), %d top offenders\n",
            $ph, map { $meta{"api.$ph.$_"} }
            qw(zone_keys penalties_active penalties_listed penalties_with_key
               top_offenders);
    }
    if (defined $meta{'api.load.wrk_rps'}) {
        printf "  load: wrk -c%s on /limited, the same keys: %s req/s"
            . " (%s of %s non-2xx: rejected), the calls interleaved\n",
            $meta{'cfg.connections'} // '?', $meta{'api.load.wrk_rps'},
            $meta{'api.load.wrk_non2xx'}, $meta{'api.load.wrk_requests'};
    }
    my @ph = ('phase', 'call', 'path', 'ok', 'median', 'p90', 'max',
              'CPU/call', 'bytes');
    my $pf = "%-5s %-8s %-40s %7s %7s %7s %7s %8s %7s\n";
    printf $pf, @ph;
    printf $pf, map { '-' x length } @ph;
    for my $r (@api) {
        printf $pf, $r->{phase}, $r->{call}, $r->{path},
            "$r->{status_200}/$r->{n}", sprintf('%.2f', $r->{med_ms}),
            sprintf('%.2f', $r->{p90_ms}), sprintf('%.2f', $r->{max_ms}),
            $r->{cpu_ms} =~ /^[\d.]+$/ ? sprintf('%.2f', $r->{cpu_ms}) : '-',
            $r->{bytes};
        push @results, map { "api.$r->{phase}.$r->{call}.$_ $r->{$_}" }
            qw(n status_200 bytes med_ms p90_ms max_ms mean_ms cpu_ms);
        push @warn, "API render time ($r->{phase}): only $r->{status_200}"
            . " of $r->{n} GET $r->{path} answered 200"
            if $r->{status_200} != $r->{n};
    }
    my $keys_ok = ($meta{'api.idle.zone_keys'} // 0) >= ($meta{'api.keys_sent'} // 1);
    printf "  keys in the zone: %s (>= %s: %s)\n",
        $meta{'api.idle.zone_keys'} // '?', $meta{'api.keys_sent'} // '?',
        $keys_ok ? 'ok' : 'FAIL';
    push @results, "api.keys_ok " . ($keys_ok ? 1 : 0);
    push @warn, "API render time: the zone holds $meta{'api.idle.zone_keys'}"
        . " keys, fewer than the $meta{'api.keys_sent'} sent" unless $keys_ok;
    for my $r (grep { $_->{call} eq 'zone' } @api) {
        my $pass = $r->{med_ms} < $max_ms && $r->{max_ms} < $max_ms;
        printf "  top offenders + penalties (GET %s), %s: median %.2f ms,"
            . " max %.2f ms: %s\n", $r->{path}, $r->{phase}, $r->{med_ms},
            $r->{max_ms}, $pass ? "PASS < $max_ms ms" : "FAIL (>= $max_ms ms)";
        push @results, "api.$r->{phase}.zone.pass " . ($pass ? 1 : 0);
        push @warn, "API render time ($r->{phase}): GET $r->{path} took"
            . " median $r->{med_ms} ms, max $r->{max_ms} ms: not under"
            . " $max_ms ms" unless $pass;
    }
}

# --- cluster sync ---

my %redis;          # column -> summed INFO deltas over its runs
for my $r (read_tsv("$dir/redis.tsv")) {
    my $c = $r->{column};
    for my $k (keys %$r) {
        next if $k eq 'round' || $k eq 'column';
        $redis{$c}{$k} += $r->{$k} if ($r->{$k} // '') =~ /^-?\d+$/;
    }
}

my @srows = grep { $row{$_} || $cg{$_} } @sync;
if (@srows) {
    printf "\nCluster sync: redis-server %s on CPU %s (wrk on %s), interval=%s"
        . " timeout=%s; each against its node-local\n"
        . "column of the same run (trl-async-1key, trl-strict-1key :"
        . " trl-1key; trl-async-100k : trl-100k)\n",
        $meta{'redis.version'} // '?', $meta{'cfg.redis_cpus'} // '?',
        $meta{'cfg.wrk_cpus'} // '?',
        $meta{'cfg.sync_interval'} // '?', $meta{'cfg.sync_timeout'} // '?';
    my @sh = ('column', 'req/s med', 'local req/s', 'vs local', 'per round',
              'CPU us/req', 'CPU vs local', 'busy', 'wrk', 'non-2xx',
              'log/req', 'Ir/req', 'Ir vs local');
    my $sf = "%-16s %9s %11s %8s %19s %10s %12s %4s %4s %7s %7s %7s %11s\n";
    printf $sf, @sh;
    printf $sf, map { '-' x length } @sh;
    for my $c (@srows) {
        my ($r, $l) = ($row{$c}, $row{$local{$c}});
        my $ir = $cg{$c} ? $cg{$c}{ir_per_req} : undef;
        my $lir = $cg{$local{$c}} ? $cg{$local{$c}}{ir_per_req} : undef;
        my $rv = $r && $l ? ratio($r->{median}, $l->{median}) : undef;
        my $cv = $r && $l ? ratio($r->{cpu_us}, $l->{cpu_us}) : undef;
        my $iv = ratio($ir, $lir);
        # the ratio within each round (the two ran minutes apart at most)
        my @pr = sort { $a <=> $b } map {
            my $b = $by_round{$_};
            defined $b->{$c} && $b->{$local{$c}} ? $b->{$c} / $b->{$local{$c}} : ()
        } keys %by_round;
        my $prs = @pr ? sprintf('%.3f (%.2f-%.2f)', median(@pr), $pr[0], $pr[-1])
                      : '-';
        push @results, sprintf("sync.%s.ratio_local_per_round_median %.4f", $c,
            median(@pr)) if @pr;
        printf $sf, $c,
            $r ? fmt('%.0f', $r->{median}) : '-',
            $l ? fmt('%.0f', $l->{median}) : '-',
            fmt('%.3f', $rv), $prs,
            $r ? fmt('%.2f', $r->{cpu_us}) : '-',
            fmt('%.3f', $cv),
            $r ? sprintf('%.0f%%', $r->{busy}) : '-',
            $r && defined $r->{wrk_cpu} ? sprintf('%.0f%%', $r->{wrk_cpu}) : '-',
            $r ? $r->{non2xx} : '-',
            $r ? fmt('%.3f', $r->{log_per_req}) : '-',
            fmt('%.0f', $ir), fmt('%.3f', $iv);
        push @results, sprintf("sync.%s.ratio_local %.4f", $c, $rv) if defined $rv;
        push @results, sprintf("sync.%s.cpu_ratio_local %.4f", $c, $cv) if defined $cv;
        push @results, sprintf("sync.%s.ir_ratio_local %.4f", $c, $iv) if defined $iv;
        push @results, sprintf("sync.%s.ir_minus_local %.1f", $c, $ir - $lir)
            if defined $ir && defined $lir;
    }
    for my $c (qw(trl-async-1key trl-async-100k)) {
        next unless $row{$c} && $row{$local{$c}};
        my $rv = ratio($row{$c}{median}, $row{$local{$c}}{median});
        push @warn, sprintf("%s: %.3f of %s's req/s, below the 0.90 target"
            . " (CPU us/req ratio %.3f)", $c, $rv, $local{$c},
            ratio($row{$c}{cpu_us}, $row{$local{$c}}{cpu_us}) // 0)
            if defined $rv && $rv < 0.90;
    }
    print "vs local: median req/s against the node-local column's; per round:"
        . " the ratio within each round, median (min-max).\n"
        . "CPU vs local: nginx worker CPU us/req against the node-local"
        . " column's (the fairer figure when Redis shares\n"
        . "wrk's CPU and slows the client).\n";

    my @rcols = grep { $redis{$_} && $sum{$_} && $sum{$_}{seconds} }
                @sync, @incr;
    if (@rcols) {
        print "\nRedis load (INFO deltas over each column's wrk runs, per second"
            . " of wrk run): scripts = EVALSHA (+EVAL);\n"
            . "us/script: cmdstat usec per call (wall time in the script: it"
            . " includes waits for the CPU that Redis shares with wrk);\n"
            . "keys pub = HINCRBY calls (keys with admissions to add), keys read"
            . " = HGETALL calls (one per key in a script);\n"
            . "cmds = total_commands_processed (the scripts' own commands"
            . " included); Redis CPU = used_cpu_user+sys, us/req: per request;\n"
            . "(scripts include the runtime lists' reconcile, about one a second:"
            . " the API location turns the lists on);\n"
            . "down: times the link to Redis went down (missed deadlines),"
            . " all runs together.\n";
        my @rh = ('column', 'req/s', 'scripts/s', 'us/script', 'keys/scr',
                  'keys pub/s', 'keys read/s', 'cmds/s', 'cmds/req',
                  'scr/req', 'redis CPU', 'us/req', 'in KB/s', 'down');
        my $rf = "%-16s %8s %9s %9s %8s %10s %11s %8s %8s %7s %9s %6s %7s %5s\n";
        printf $rf, @rh;
        printf $rf, map { '-' x length } @rh;
        for my $c (@rcols) {
            my ($d, $sec, $req) = ($redis{$c}, $sum{$c}{seconds},
                                   $sum{$c}{requests});
            my %v = (
                rps => $req / $sec,
                scripts_s => $d->{scripts} / $sec,
                us_script => $d->{scripts} ? $d->{script_usec} / $d->{scripts} : 0,
                keys_script => $d->{scripts} ? $d->{keys_read} / $d->{scripts} : 0,
                keys_pub_s => $d->{keys_pub} / $sec,
                keys_read_s => $d->{keys_read} / $sec,
                cmds_s => $d->{total_cmds} / $sec,
                cmds_req => $req ? $d->{total_cmds} / $req : 0,
                scripts_req => $req ? $d->{scripts} / $req : 0,
                cpu_pct => $d->{cpu_us} / $sec / 1e4,
                cpu_us_req => $req ? $d->{cpu_us} / $req : 0,
                net_in_kbs => $d->{net_in} / $sec / 1024,
            );
            printf $rf, $c, sprintf('%.0f', $v{rps}),
                sprintf('%.0f', $v{scripts_s}), sprintf('%.1f', $v{us_script}),
                sprintf('%.1f', $v{keys_script}),
                sprintf('%.0f', $v{keys_pub_s}), sprintf('%.0f', $v{keys_read_s}),
                sprintf('%.0f', $v{cmds_s}), sprintf('%.2f', $v{cmds_req}),
                sprintf('%.3f', $v{scripts_req}),
                sprintf('%.0f%%', $v{cpu_pct}), sprintf('%.2f', $v{cpu_us_req}),
                sprintf('%.0f', $v{net_in_kbs}), $d->{link_down} // 0;
            push @results, map { sprintf("redis.%s.%s %.4f", $c, $_, $v{$_}) }
                sort keys %v;
            push @results, sprintf("redis.%s.link_down %d", $c, $d->{link_down} // 0);
            push @warn, sprintf("%s: the link to Redis went down %d times in"
                . " %d runs (\"is unreachable\" in the error log): meanwhile"
                . " fail=open decided locally", $c, $d->{link_down},
                scalar @{$rps{$c} || []}) if $d->{link_down};
        }
        # node-local columns: no script of theirs, but the runtime lists'
        # reconcile (the API location turns the lists on), about one a
        # second, and the tail of a sync column that ran just before
        my @other = grep {
            !is_sync_col($_) && $redis{$_} && $redis{$_}{scripts}
                && $redis{$_}{scripts}
                   > 1.5 * ($sum{$_} ? $sum{$_}{seconds} : 0) + 2 * $rounds
        } keys %redis;
        push @warn, "$_: Redis saw $redis{$_}{scripts} script calls during a"
            . " node-local column's runs (beyond about one a second of the"
            . " runtime lists' reconcile)" for sort @other;
    }
}

# --- against a per-request Redis limiter ---

# sent: what nginx sends Redis per request (script calls, INCR, EXPIRE);
# cmds: total_commands_processed per request (a script's own commands
# included)
sub per_req {
    my ($c, @f) = @_;
    my ($d, $req) = ($redis{$c}, $sum{$c} ? $sum{$c}{requests} : 0);
    return undef unless $d && $req;
    my $n = 0;
    $n += $d->{$_} // 0 for @f;
    return $n / $req;
}
my @icols = grep { $row{$_} } @sync;
if (@icols && grep { $row{$_} } @incr) {
    printf "\nAgainst a per-request Redis limiter: redis-incr (bench/redis_incr.lua:"
        . " INCR, and EXPIRE on a window's\nfirst hit, per request, in the"
        . " same nginx through the Lua module), same run, same Redis on CPU %s\n",
        $meta{'cfg.redis_cpus'} // '?';
    my @ih = ('column', 'req/s', 'vs local', 'vs incr', 'target', 'met',
              'CPU vs incr', 'sent/req', 'cmds/req');
    my $if = "%-16s %8s %8s %8s %7s %4s %11s %8s %8s\n";
    printf $if, @ih;
    printf $if, map { '-' x length } @ih;
    for my $c (@icols, grep { $row{$_} } @incr) {
        my $r = $row{$c};
        my $i = $incr{$c} && $row{$incr{$c}} ? $incr{$c}
              : $incr{$c} && $row{'redis-incr'} ? 'redis-incr' : undef;
        my $l = $local{$c} // ($c eq 'redis-incr' ? 'trl-1key'
                             : $c eq 'redis-incr-100k' ? 'trl-100k' : undef);
        my $vl = $l && $row{$l} ? ratio($r->{median}, $row{$l}{median}) : undef;
        my $vi = $i ? ratio($r->{median}, $row{$i}{median}) : undef;
        my $ci = $i ? ratio($r->{cpu_us}, $row{$i}{cpu_us}) : undef;
        my $sent = per_req($c, qw(scripts incr expire));
        my $cmds = per_req($c, 'total_cmds');
        my $tg = $target{$c};
        my $vt = ($target_vs{$c} // '') eq 'local' ? $vl : $vi;
        my $met = defined $tg && defined $vt ? ($vt >= $tg ? 'yes' : 'NO') : '-';
        printf $if, $c . ($i && $i ne ($incr{$c} // '') ? '*' : ''),
            sprintf('%.0f', $r->{median}), fmt('%.3f', $vl), fmt('%.3f', $vi),
            defined $tg ? ">=$tg" : '-', $met, fmt('%.3f', $ci),
            fmt('%.3f', $sent), fmt('%.3f', $cmds);
        push @results, sprintf("incr.%s.ratio_incr %.4f", $c, $vi) if defined $vi;
        push @results, sprintf("incr.%s.ratio_local %.4f", $c, $vl) if defined $vl;
        push @results, sprintf("incr.%s.cpu_ratio_incr %.4f", $c, $ci) if defined $ci;
        push @results, sprintf("incr.%s.sent_per_req %.4f", $c, $sent) if defined $sent;
        push @results, sprintf("incr.%s.cmds_per_req %.4f", $c, $cmds) if defined $cmds;
        push @results, "incr.$c.target_met " . ($met eq 'yes' ? 1 : 0)
            if $met ne '-';
        push @warn, sprintf("%s: %.3f of %s's req/s, below the %.2f target",
                            $c, $vt, $target_vs{$c} eq 'local' ? $l : $i,
                            $tg) if $met eq 'NO';
    }
    print "vs local: against trl-1key (trl-100k for the -100k columns); vs incr:"
        . " against redis-incr of the same key kind\n"
        . "(redis-incr-100k for trl-async-100k; * when only redis-incr ran);"
        . " target: issue 10's, async on vs local, strict on vs incr.\n"
        . "sent/req: commands nginx sends Redis per request (EVALSHA/EVAL, INCR,"
        . " EXPIRE); cmds/req: Redis's\n"
        . "total_commands_processed per request (a script's own commands"
        . " included); both over the wrk runs.\n";
}

if (open my $sh, '<', "$dir/wrk/startup.errlog") {
    my @down = grep { /is unreachable/ } <$sh>;
    close $sh;
    push @warn, "nginx logged a Redis outage at start-up, with redis-server"
        . " up: " . ($down[0] =~ s/^.*?token_ratelimit: //r =~ s/\s+$//r)
        . " (wrk/startup.errlog)" if @down;
}

sub is_sync_col {
    my ($c) = @_;
    return scalar grep { $_ eq $c } @sync;
}

# --- strict latency ---

my @lat = read_tsv("$dir/latency.tsv");
if (@lat) {
    printf "\nStrict latency: %s req/s fixed rate (%s trl-strict-1key's"
        . " %s req/s), wrk -t%s -c%s with bench/paced.lua,\n"
        . "%s rounds x %ss per column; latency from a request's write to its"
        . " response, in us\n",
        $meta{'lat.rate'} // '?',
        ($meta{'lat.rate_from'} // 'half') eq 'half'
            ? 'half of' : 'LAT_RATE; saturation:',
        $meta{'lat.saturation_rps'} // '?',
        $meta{'cfg.threads'} // '?', $meta{'lat.connections'} // '?',
        $meta{'lat.rounds'} // '?', $meta{'lat.duration_s'} // '?';
    my @lh = ('redis CPUs', 'column', 'req/s', 'p50', 'p90', 'p99', 'p99.9',
              'max', 'late', 'scr/req', 'CPU us/req', 'ngxCPU', 'wrkCPU', 'down');
    my $lf = "%-10s %-24s %7s %6s %6s %6s %7s %7s %6s %7s %10s %6s %6s %4s\n";
    printf $lf, @lh;
    printf $lf, map { '-' x length } @lh;
    my @places;
    for my $r (@lat) {
        push @places, $r->{redis_cpus} unless grep { $_ eq $r->{redis_cpus} } @places;
    }
    for my $place (@places) {
        my %by;         # column -> round -> row
        for my $r (grep { $_->{redis_cpus} eq $place } @lat) {
            $by{$r->{column}}{$r->{round}} = $r;
        }
        for my $c (qw(trl-1key trl-strict-1key)) {
            my @rs = values %{$by{$c} || {}} or next;
            my $req = 0; my $sec = 0; my $late = 0; my $scr = 0; my $ticks = 0;
            my ($nc, $wc, $n, $down) = (0, 0, 0, 0);
            for (@rs) {
                $req += $_->{requests}; $sec += $_->{seconds};
                $late += $_->{late};
                $scr += $_->{scripts} if $_->{scripts} =~ /^\d+$/;
                $ticks += $_->{cpu_ticks};
                $down += $_->{link_down} || 0;
                if (($_->{nginx_cpu_pct} // '-') =~ /^\d+$/
                    && ($_->{wrk_cpu_pct} // '-') =~ /^\d+$/) {
                    $nc += $_->{nginx_cpu_pct}; $wc += $_->{wrk_cpu_pct}; $n++;
                }
            }
            my %m = map { my $k = $_; ($k => median(map { $_->{$k} } @rs)) }
                qw(p50_us p90_us p99_us p999_us max_us);
            printf $lf, $place, "$c (median)", sprintf('%.0f', $req / $sec),
                map({ sprintf('%.0f', $m{$_}) } qw(p50_us p90_us p99_us p999_us max_us)),
                $late, sprintf('%.3f', $req ? $scr / $req : 0),
                sprintf('%.2f', $req ? $ticks / $tck * 1e6 / $req : 0),
                $n ? sprintf('%.0f%%', $nc / $n) : '-',
                $n ? sprintf('%.0f%%', $wc / $n) : '-', $down;
            push @warn, "strict latency (redis on CPU $place): the link to Redis"
                . " went down $down times during the $c runs" if $down;
            push @results, map { sprintf("lat.cpu%s.%s.%s %.0f", $place, $c, $_, $m{$_}) }
                sort keys %m;
        }
        # strict minus local, round by round
        my %d;
        for my $round (sort { $a <=> $b } keys %{$by{'trl-1key'} || {}}) {
            my ($a, $b) = ($by{'trl-1key'}{$round}, $by{'trl-strict-1key'}{$round});
            next unless $a && $b;
            push @{$d{$_}}, $b->{$_} - $a->{$_} for qw(p50_us p90_us p99_us p999_us);
        }
        next unless $d{p99_us};
        my @p99 = sort { $a <=> $b } @{$d{p99_us}};
        printf $lf, $place, 'strict - local (median)', '',
            map({ sprintf('%+.0f', median(@{$d{$_}})) } qw(p50_us p90_us p99_us p999_us)),
            '', '', '', '', '', '', '';
        my $added = median(@p99);
        printf "%-10s strict adds %.0f us at p99 (rounds: %s; target <= 1000 us): %s\n",
            $place, $added, join(', ', map { sprintf('%+.0f', $_) } @{$d{p99_us}}),
            $added <= 1000 ? 'met' : 'MISSED';
        push @results, sprintf("lat.cpu%s.strict_added_p99_us %.0f", $place, $added),
            sprintf("lat.cpu%s.strict_added_p50_us %.0f", $place, median(@{$d{p50_us}}));
        push @warn, sprintf("strict latency (redis on CPU %s): +%.0f us at p99,"
            . " above the 1 ms target", $place, $added) if $added > 1000;
    }
    print "late: send slots sent more than 1 ms after their time.  ngxCPU,"
        . " wrkCPU: how busy nginx's and wrk's CPUs were\n"
        . "(all processes; wrk's: redis-server's time too).\n";
    my $late = 0;
    $late += $_->{late} for @lat;
    push @warn, "strict latency: $late send slots went out more than 1 ms late"
        . " (the rate was not held; more LAT_CONNECTIONS?)"
        if $late > 0.01 * ($meta{'lat.rate'} || 1) * ($meta{'lat.duration_s'} || 1);
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

# where the async column's instructions go, against trl-1key
for my $c (qw(trl-async-1key trl-async-100k trl-strict-1key)) {
    my $base = $local{$c};
    my $f = "$dir/callgrind/$c.vs-$base.diff.txt";
    open my $dh, '<', $f or next;
    my @lines = <$dh>;
    close $dh;
    my ($total) = grep { /^# total:/ } @lines;
    my @top = grep { /^[* ] / && !/^[* ]\s*-/ } @lines;
    print "\n$c against $base, callgrind, instructions per request"
        . " (full list: $f)\n";
    print "  ", $total =~ s/^# //r if $total;
    my $g = $cg{$c};
    if ($g && ($g->{scripts1} // '-') =~ /^\d+$/ && ($g->{scripts2} // '-') =~ /^\d+$/) {
        printf "  Redis scripts during the runs: %d (%d requests), %d (%d requests):"
            . " %.3f per request of the difference\n",
            $g->{scripts1}, $g->{k1}, $g->{scripts2}, $g->{k2},
            ($g->{scripts2} - $g->{scripts1}) / ($g->{k2} - $g->{k1});
        push @results, "cg.$c.scripts_k1 $g->{scripts1}",
            "cg.$c.scripts_k2 $g->{scripts2}";
    }
    print "  largest differences first (* : the module's code):\n";
    print "  $_" for @top[0 .. ($#top < 11 ? $#top : 11)];
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
    qw(throughput latency api callgrind memory total);
print "\ntime: ", join(', ', @t), "\n" if @t;
printf "load average before/after the throughput runs: %s / %s\n",
    $meta{'host.loadavg_before'}, $meta{'host.loadavg_after'} // '?'
    if $meta{'host.loadavg_before'};
print "results: $dir/results.txt; raw wrk outputs: $dir/wrk/;"
    . " callgrind: $dir/callgrind/\n";
