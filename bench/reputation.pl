#!/usr/bin/perl
# reputation.pl - make bench-reputation: what an IP reputation lookup costs
# per request with lists of 1k, 100k and 1M IPv4 ranges (bench/replists.pl,
# a fixed seed), the client's address unlisted and listed, against the same
# location without reputation (trl), stock nginx, limit_req, and nginx's geo
# with the same 1M ranges; what a range takes in memory and how long 1M of
# them take to load, against geo.  bench/README.md describes the parts;
# the output goes to BENCH_OUT (default build/bench-reputation).
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use lib dirname(__FILE__) . '/lib';
use Bench;

my $c = Bench::cfg();
my $out = Bench::out();
my $N = $ENV{REP_N} || 1000000;
my $LOAD_RUNS = $ENV{LOAD_RUNS} || 3;
Bench::die_('REP_N must be a multiple of 2000') if $N !~ /^\d+$/ || $N % 2000;
Bench::die_('LOAD_RUNS must be a whole number') if $LOAD_RUNS !~ /^\d+$/;
for (qw(wrk taskset timeout)) {
    system("command -v $_ >/dev/null 2>&1") == 0
        or Bench::die_("$_ is missing (scripts/install-deps.sh)");
}
-f $c->{BUILT_MODULE}
    or Bench::die_("module not built: $c->{BUILT_MODULE} (run make)");
my $T0 = time;

remove_tree($out);
make_path("$out/wrk", "$out/callgrind", "$out/lists");
copy($c->{BUILT_MODULE}, $c->{MODULE}) or Bench::die_("copy module: $!");
my $lists = "$out/lists";
Bench::run_to("$out/lists.log", 'perl', 'bench/replists.pl', $lists, $N)
    or Bench::die_('bench/replists.pl failed: ' . Bench::slurp("$out/lists.log"));
my %addr = Bench::slurp("$lists/addrs.txt") =~ /^(\w+) (\S+)$/mg;
my $kn = $N >= 1000000 ? ($N / 1000000) . 'm' : ($N / 1000) . 'k';
Bench::meta('date ' . `date -u +%Y-%m-%dT%H:%M:%SZ` =~ s/\n//r,
    "host.cpus $c->{NCPU}", "cfg.rounds $c->{ROUNDS}",
    "cfg.duration_s $c->{DURATION}", "cfg.connections $c->{CONNECTIONS}",
    "cfg.ranges $N", "lists.listed $addr{listed}",
    "lists.unlisted $addr{unlisted}");

# Does this module have reputation lists?  Without them, the rep columns
# are left out and the rest is measured.
my $REP = rep_supported();
Bench::note('this module has no token_ratelimit_reputation: only the'
            . ' stock, limit_req, trl and geo columns are measured') unless $REP;

my @COLS = (
    [stock => '/stock', 'unlisted'], [limit_req => '/limit_req', 'unlisted'],
    [trl => '/trl', 'unlisted'],
    ($REP ? map { (["rep-$_" => "/rep-$_", 'unlisted'],
                   ["rep-$_-listed" => "/rep-$_", 'listed']) } qw(1k 100k 1m)
          : ()),
    ['geo-1m' => '/geo-1m', 'unlisted'], ['geo-1m-listed' => '/geo-1m', 'listed'],
);
my %COL = map { $_->[0] => $_ } @COLS;
my @names = map { $_->[0] } @COLS;

my %res;        # name => value, results.txt
load_part();
throughput_part();
callgrind_part() unless $c->{NO_CALLGRIND};
Bench::meta('time.total_s ' . int(time - $T0));
report();


# --- 1. load time and memory of the ranges ------------------------------------

# nginx -t's wall time (median of LOAD_RUNS), then one started nginx: its
# master's resident memory (VmRSS) and, for reputation, the API's figures
sub load_part {
    my $t0 = time;
    my %variants = (
        base => '',
        geo => "geo \$g { ranges; default \"\"; include $lists/geo1m.conf; }",
        ($REP ? (rep => "token_ratelimit_reputation size=64m;\n"
                 . "    token_ratelimit_reputation_list r1m"
                 . " file=$lists/r1m.txt;") : ()),
    );
    for my $v (sort keys %variants) {
        my $t = Bench::nginx('bench/reputation-load.conf.in', "load-$v",
                             LOAD => $variants{$v});
        my (@test, @bin);
        for (1 .. $LOAD_RUNS) {
            # geo: parsing the text (nginx then writes geo1m.conf.bin
            # beside it), then loading that binary base
            unlink "$lists/geo1m.conf.bin";
            push @test, timed_test($t);
            # (nginx writes a binary base for large geo includes only)
            push @bin, timed_test($t)
                if $v eq 'geo' && -f "$lists/geo1m.conf.bin";
        }
        $res{"load.$v.nginx_t_ms"} = sprintf '%.0f', Bench::median(@test);
        $res{"load.$v.nginx_t_bin_ms"} = sprintf '%.0f', Bench::median(@bin)
            if @bin;
        Bench::start($t);
        $res{"load.$v.master_rss_kb"} = rss($t->master_pid);
        $res{"load.$v.worker_rss_kb"} = rss(($t->worker_pids)[0]);
        if ($v eq 'rep') {
            my $l = api_list($t, 'r1m');
            $res{"load.rep.$_"} = $l->{$_} // '-'
                for qw(ranges4 bytes load_ms entries);
            $res{'load.rep.zone_used'} = api_zone($t)->{used} // '-';
        }
        $t->stop;
    }
    for my $v (grep { $_ ne 'base' } keys %variants) {
        $res{"load.$v.rss_delta_kb"} = $res{"load.$v.master_rss_kb"}
                                       - $res{'load.base.master_rss_kb'};
        $res{"load.$v.test_delta_ms"} = $res{"load.$v.nginx_t_ms"}
                                        - $res{'load.base.nginx_t_ms'};
    }
    $res{'load.geo.test_bin_delta_ms'} = $res{'load.geo.nginx_t_bin_ms'}
        - $res{'load.base.nginx_t_ms'} if defined $res{'load.geo.nginx_t_bin_ms'};
    Bench::meta('time.load_s ' . int(time - $t0));
}

sub timed_test {
    my ($t) = @_;
    my $t0 = time;
    my ($rc, $o) = $t->test_config;
    Bench::die_("nginx -t failed for " . $t->dir . ":\n$o") if $rc;
    return 1000 * (time - $t0);
}

sub rss {
    my ($pid) = @_;
    return Bench::slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+)/m ? $1 : 0;
}

# GET {API_LOC}/reputation/NAME, the JSON's scalar fields (a small
# extraction: the bench needs numbers only)
sub api_list {
    my ($t, $name) = @_;
    my $r = $t->get("$c->{API_LOC}/reputation/$name");
    Bench::die_("GET $c->{API_LOC}/reputation/$name: $r->{status}")
        unless $r->{status} == 200;
    # the list's own fields come first ("version" is also Redis's)
    my %f;
    while ($r->{body} =~ /"(\w+)":(-?\d+)/g) { $f{$1} //= $2 }
    return \%f;
}

sub api_zone {
    my ($t) = @_;
    my $r = $t->get("$c->{API_LOC}/reputation");
    my ($z) = $r->{body} =~ /"zone":\{([^}]*)\}/;
    return { ($z // '') =~ /"(\w+)":(\d+)/g };
}

sub rep_supported {
    my $t = Bench::nginx('bench/reputation-load.conf.in', 'probe',
        LOAD => "token_ratelimit_reputation size=1m;\n"
                . "    token_ratelimit_reputation_list r1k"
                . " file=$lists/r1k.txt;");
    my ($rc, $o) = $t->test_config;
    return 1 if $rc == 0;
    return 0 if $o =~ /unknown directive "token_ratelimit_reputation/;
    Bench::die_("nginx -t failed on a reputation list:\n$o");
}


# --- 2. throughput: wrk, interleaved rounds ------------------------------------

my ($T, @workers);

sub throughput_part {
    my $t0 = time;
    $T = Bench::nginx('bench/reputation.conf.in', 'tput',
                      MAIN => Bench::affinity(), LISTS => $lists,
                      REP => $REP ? '' : '#', NOREP => $REP ? '#' : '');
    @workers = Bench::start($T);
    check_columns($T);
    reload_time($T) if $REP;

    if ($c->{WARMUP} > 0) {
        run_wrk($_, $c->{WARMUP}, "$out/wrk/warmup-$_.txt") for @names;
    }
    open my $runs, '>', "$out/runs.tsv" or die;
    $runs->autoflush(1);
    print $runs join("\t", qw(round column requests seconds rps non2xx
                              cpu_ns)), "\n";
    my $est = $c->{ROUNDS} * @names * ($c->{DURATION} + 1);
    Bench::note("throughput: $c->{ROUNDS} rounds x " . scalar(@names)
                . " columns x $c->{DURATION}s (about ${est}s)");
    my %acc;
    for my $round (1 .. $c->{ROUNDS}) {
        for my $i (0 .. $#names) {
            my $col = $names[($i + $round - 1) % @names];
            my $f = "$out/wrk/round$round-$col.txt";
            my $ns = run_wrk($col, $c->{DURATION}, $f);
            my $w = Bench::parse_wrk($f);
            print $runs join("\t", $round, $col, $w->{requests},
                sprintf('%.3f', $w->{seconds}), sprintf('%.2f', $w->{rps}),
                $w->{non2xx}, $ns), "\n";
            push @{$acc{$col}{rps}}, $w->{rps};
            $acc{$col}{ns} += $ns;
            $acc{$col}{req} += $w->{requests};
            $acc{$col}{non2xx} += $w->{non2xx};
            Bench::note(sprintf('  round %d %-16s %8.0f req/s  %.2f us/req'
                . '  non-2xx %d', $round, $col, $w->{rps},
                $w->{requests} ? $ns / 1e3 / $w->{requests} : 0,
                $w->{non2xx}));
        }
    }
    for my $col (@names) {
        my $x = $acc{$col};
        $res{"tput.$col.rps"} = sprintf '%.0f', Bench::median(@{$x->{rps}});
        my @s = sort { $a <=> $b } @{$x->{rps}};
        $res{"tput.$col.spread_pct"} = sprintf '%.1f',
            100 * ($s[-1] - $s[0]) / Bench::median(@s);
        $res{"tput.$col.cpu_us"} = sprintf '%.3f',
            $x->{req} ? $x->{ns} / 1e3 / $x->{req} : 0;
        $res{"tput.$col.non2xx"} = $x->{non2xx};
    }
    if (grep { /\[(alert|crit|emerg)\]/ } split /\n/, $T->error_log) {
        Bench::note('WARNING: nginx logged alerts (' . $T->dir . '/logs)');
    }
    $T->stop;
    Bench::meta('time.throughput_s ' . int(time - $t0));
}

# Every column answers 200, with the limit its address calls for (a listed
# address: 65535 x 0.5), and geo sees the addresses as it should
sub check_columns {
    my ($t) = @_;
    for my $col (@COLS) {
        my ($name, $path, $who) = @$col;
        my $r = $t->get($path, headers => { 'X-Real-IP' => $addr{$who} });
        Bench::die_("$name: GET $path answered $r->{status}")
            unless $r->{status} == 200;
        next unless $name =~ /^(trl|rep-)/;
        my $want = $who eq 'listed' ? 32767 : 65535;
        my $got = $r->{headers}{'x-ratelimit-limit'} // 'none';
        Bench::die_("$name: X-RateLimit-Limit $got, not $want: the lists are"
                    . " not what the bench expects") unless $got eq $want;
    }
    for my $who (qw(listed unlisted)) {
        my $r = $t->get('/geo-check', headers => { 'X-Real-IP' => $addr{$who} });
        my $want = $who eq 'listed' ? '[1]' : '[]';
        Bench::die_("geo: $who address $addr{$who} gives $r->{body}")
            unless $r->{body} eq $want;
    }
    return unless $REP;
    my %want = (r1k => $N / 1000, r100k => $N / 10, r1m => $N);
    for my $l (sort keys %want) {
        my $i = api_list($t, $l);
        Bench::die_("list $l: $i->{ranges4} ranges, not $want{$l}")
            unless ($i->{ranges4} // -1) == $want{$l};
        $res{"mem.$l.ranges4"} = $i->{ranges4};
        $res{"mem.$l.bytes"} = $i->{bytes};
        $res{"mem.$l.bytes_per_range"} = sprintf '%.2f',
            $i->{bytes} / $i->{ranges4};
        $res{"mem.$l.load_ms"} = $i->{load_ms};
    }
    $res{'mem.zone_used'} = api_zone($t)->{used} // '-';
}

# The 1M list's file replaced (a new inode, as trl-feed does): how long
# its load in a worker's thread takes (the API's load_ms), and how long
# until the new version is in use
sub reload_time {
    my ($t) = @_;
    my $v0 = api_list($t, 'r1m')->{version};
    my $f = "$lists/r1m.txt";
    copy($f, "$f.new") && rename("$f.new", $f)
        or Bench::die_("cannot replace $f: $!");
    my $t0 = time;
    my $i;
    TRLRedis::wait_for(60, sub {
        $i = api_list($t, 'r1m');
        ($i->{version} // 0) != $v0 });
    Bench::die_('the 1M list was not reloaded within 60 s')
        unless ($i->{version} // 0) != $v0;
    $res{'reload.r1m.load_ms'} = $i->{load_ms};
    $res{'reload.r1m.seen_after_ms'} = sprintf '%.0f', 1000 * (time - $t0);
}

# one wrk run; the workers' CPU time over it, ns
sub run_wrk {
    my ($col, $secs, $file) = @_;
    my (undef, $path, $who) = @{$COL{$col}};
    my $ns0 = Bench::cpu_ns(@workers);
    local $ENV{THREADS} = $c->{THREADS};
    Bench::run_to($file, 'bench/wrk.sh', $c->{WRK_CPUS}, $secs,
                  "http://127.0.0.1:" . $T->port . $path,
                  "-c$c->{CONNECTIONS}", '-s', 'bench/realip.lua', '--',
                  $addr{$who})
        or do { print STDERR Bench::slurp($file);
                Bench::die_("wrk failed on $col") };
    return Bench::cpu_ns(@workers) - $ns0;
}


# --- 3. instructions per request (callgrind) ----------------------------------

# One single-process nginx under callgrind with every list loaded (loading
# 1M ranges under valgrind takes a while: once); per column, the counters
# dumped (callgrind_control -d) after CG_K1, then after CG_K2 requests:
# (Ir(K2) - Ir(K1)) / (K2 - K1), which cancels the dump's own work.
sub callgrind_part {
    my $t0 = time;
    for (qw(valgrind callgrind_control)) {
        system("command -v $_ >/dev/null 2>&1") == 0
            or Bench::die_("$_ is missing (or NO_CALLGRIND=1)");
    }
    my $t = Bench::nginx('bench/reputation.conf.in', 'callgrind/nginx',
        MAIN => 'master_process off; daemon off;', LISTS => $lists,
        REP => $REP ? '' : '#', NOREP => $REP ? '#' : '');
    my ($rc, $o) = $t->test_config;
    Bench::die_("nginx -t failed (callgrind):\n$o") if $rc;
    my $cgout = "$out/callgrind/callgrind.out";
    my $pid = Bench::spawn($t->dir . '/valgrind.log',
        Bench::on_cpus($c->{NGINX_CPUS}, 'valgrind', '--tool=callgrind',
            "--callgrind-out-file=$cgout", $c->{NGINX_BIN}, $t->nginx_args));
    my $port = $t->port;
    my $up = TRLRedis::wait_for(900, sub {
        return 0 unless kill 0, $pid;
        return IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") ? 1 : 0;
    });
    Bench::die_('nginx under callgrind did not answer: '
                . Bench::slurp($t->dir . '/valgrind.log')) unless $up;
    Bench::note('callgrind: nginx up after ' . int(time - $t0) . ' s; '
                . scalar(@names) . " columns x ($c->{CG_K1}, $c->{CG_K2})");
    my $dumps = 0;
    my $dump = sub {
        system("callgrind_control -d $pid >/dev/null 2>&1") == 0
            or Bench::die_('callgrind_control -d failed');
        $dumps++;
        my $f = "$cgout.$dumps";
        TRLRedis::wait_for(60, sub { Bench::slurp($f) =~ /^totals:/m })
            or Bench::die_("no dump $f");
        my ($ir) = Bench::slurp($f) =~ /^totals:\s*(\d+)/m;
        return $ir;
    };
    open my $tsv, '>', "$out/callgrind.tsv" or die;
    print $tsv join("\t", qw(column k1 ir1 k2 ir2 ir_per_req)), "\n";
    for my $col (@names) {
        my (undef, $path, $who) = @{$COL{$col}};
        my @ir;
        for my $k ($c->{CG_K1}, $c->{CG_K2}) {
            $dump->();
            Bench::run_to("$out/callgrind/$col.$k.client.txt",
                Bench::on_cpus($c->{WRK_CPUS}, 'perl', 'bench/hclient.pl',
                    '--port', $port, '--path', $path, '--count', $k,
                    '--header', "X-Real-IP: $addr{$who}", '--timeout', 600))
                or Bench::die_("the client failed against callgrind ($col)");
            push @ir, $dump->();
        }
        my $per = ($ir[1] - $ir[0]) / ($c->{CG_K2} - $c->{CG_K1});
        $res{"cg.$col.ir"} = sprintf '%.1f', $per;
        print $tsv join("\t", $col, $c->{CG_K1}, $ir[0], $c->{CG_K2},
                        $ir[1], $res{"cg.$col.ir"}), "\n";
        Bench::note(sprintf '  %-16s %.1f Ir/request', $col, $per);
    }
    kill 'QUIT', $pid;
    TRLRedis::wait_for(120, sub { waitpid($pid, POSIX::WNOHANG()) == $pid })
        or do { kill 'KILL', $pid; Bench::die_('nginx under callgrind did'
                                                . ' not exit') };
    Bench::reap($pid);
    Bench::meta('time.callgrind_s ' . int(time - $t0));
}


# --- the report -----------------------------------------------------------------

sub report {
    my @l;
    my $m = Bench::read_meta();
    push @l, "make bench-reputation: $N IPv4 ranges (bench/replists.pl, seed"
        . " 13); listed $addr{listed}, unlisted $addr{unlisted}",
        "$c->{ROUNDS} rounds x $c->{DURATION}s, wrk -c$c->{CONNECTIONS}; nginx"
        . ' on CPUs ' . Bench::shown($c->{NGINX_CPUS}) . ', wrk on '
        . Bench::shown($c->{WRK_CPUS}) . "; $c->{NCPU} CPUs",
        '';
    my $r = \%res;
    my $ratio = sub {
        my ($x, $y) = @_;
        return '-' unless $r->{"tput.$y.rps"};
        return sprintf '%.3f', $r->{"tput.$x.rps"} / $r->{"tput.$y.rps"};
    };
    # the difference of two results: k.x - k.y
    my $d = sub {
        my ($k, $x, $y) = @_;
        return '-' unless defined $r->{"$k.$x"} && defined $r->{"$k.$y"};
        return sprintf($x =~ /cpu/ ? '%+.3f' : '%+.1f',
                       $r->{"$k.$x"} - $r->{"$k.$y"});
    };
    push @l, sprintf('%-16s %9s %6s %7s %7s %7s %8s %9s %10s %9s',
        'column', 'req/s', 'spread', 'v stock', 'v lreq', 'v trl',
        'us/req', 'us vs trl', 'Ir/req', 'Ir vs trl');
    for my $col (@names) {
        my $us = $r->{"tput.$col.cpu_us"};
        my $ir = $r->{"cg.$col.ir"};
        $r->{"cost.$col.us"} = $d->('tput', "$col.cpu_us", 'trl.cpu_us')
            if $col =~ /^(rep|geo)/;
        $r->{"cost.$col.ir"} = $d->('cg', "$col.ir", 'trl.ir')
            if $col =~ /^(rep|geo)/ && defined $ir;
        push @l, sprintf('%-16s %9s %5s%% %7s %7s %7s %8s %9s %10s %9s',
            $col, $r->{"tput.$col.rps"}, $r->{"tput.$col.spread_pct"},
            $ratio->($col, 'stock'), $ratio->($col, 'limit_req'),
            $ratio->($col, 'trl'), $us,
            $col eq 'trl' ? '' : $d->('tput', "$col.cpu_us", 'trl.cpu_us'),
            $ir // '-',
            $col eq 'trl' || !defined $ir ? '' : $d->('cg', "$col.ir", 'trl.ir'));
    }
    push @l, '', '(us/req: the nginx worker\'s CPU time per request;'
        . ' "vs trl": the same limit without reputation; Ir: callgrind'
        . ' instructions per request)', '';
    if ($REP) {
        push @l, 'memory of the reputation lists (GET API/reputation/NAME):';
        push @l, sprintf('  %-6s %8s ranges %10s bytes  %6s bytes/range'
            . '  loaded at start in %s ms', $_, $r->{"mem.$_.ranges4"},
            $r->{"mem.$_.bytes"}, $r->{"mem.$_.bytes_per_range"},
            $r->{"mem.$_.load_ms"}) for qw(r1k r100k r1m);
        push @l, "  zone used (all three): $r->{'mem.zone_used'} bytes";
        push @l, "  1M list replaced on disk: loaded in a worker thread in"
            . " $r->{'reload.r1m.load_ms'} ms, the new version in use after"
            . " $r->{'reload.r1m.seen_after_ms'} ms (check=1s)", '';
    }
    push @l, "loading $N ranges (nginx -t, median of $LOAD_RUNS; memory:"
        . ' the started master\'s VmRSS beyond an nginx without them):';
    push @l, sprintf('  geo ranges, text       nginx -t %5s ms (+%s ms)'
        . '  master RSS +%s kB', $r->{'load.geo.nginx_t_ms'},
        $r->{'load.geo.test_delta_ms'}, $r->{'load.geo.rss_delta_kb'});
    push @l, sprintf('  geo ranges, binary base nginx -t %4s ms (+%s ms)'
        . '  (geo1m.conf.bin, which nginx writes at the first load)',
        $r->{'load.geo.nginx_t_bin_ms'}, $r->{'load.geo.test_bin_delta_ms'})
        if defined $r->{'load.geo.nginx_t_bin_ms'};
    if ($REP) {
        push @l, sprintf('  reputation list        nginx -t %5s ms (+%s ms)'
            . '  master RSS +%s kB; the API: load_ms %s, %s bytes in the zone'
            . ' (%.2f bytes/range)', $r->{'load.rep.nginx_t_ms'},
            $r->{'load.rep.test_delta_ms'}, $r->{'load.rep.rss_delta_kb'},
            $r->{'load.rep.load_ms'}, $r->{'load.rep.bytes'},
            $r->{'load.rep.ranges4'} ? $r->{'load.rep.bytes'}
                                       / $r->{'load.rep.ranges4'} : 0);
    }
    push @l, sprintf('  (nginx -t without either: %s ms; master RSS %s kB)',
        $r->{'load.base.nginx_t_ms'}, $r->{'load.base.master_rss_kb'});
    my $text = join("\n", @l) . "\n";
    print $text;
    open my $fh, '>', "$out/table.txt" or die;
    print $fh $text;
    close $fh;
    open $fh, '>', "$out/results.txt" or die;
    print $fh "$_ $res{$_}\n" for sort keys %res;
    close $fh;
}
