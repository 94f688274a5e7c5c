#!/usr/bin/perl
# callgrind.pl - part 2 of make bench: instructions per request.  For every
# column and CG_EXTRA (but trl-1key-api, whose requests are trl-1key's, and
# the redis-incr ones: LuaJIT is not measured under valgrind), a
# single-process nginx (master_process off; daemon off; bench/nginx.conf.in)
# under valgrind --tool=callgrind serves CG_K1, then in a fresh run CG_K2
# requests one at a time over keepalive (bench/hclient.pl):
# (Ir(K2) - Ir(K1)) / (K2 - K1) cancels start-up.  The -100k columns cycle
# through CG_KEYS keys.  The sync columns run with a redis-server up
# (timeout CG_SYNC_TIMEOUT: under valgrind nginx is ~50x slower).  Writes
# callgrind.tsv, callgrind/COLUMN.K.annotate.txt and, function by
# function, callgrind/COLUMN.vs-BASE.diff.txt (bench/cgdiff.pl).
use strict;
use warnings;
use File::Basename qw(dirname);
use Time::HiRes qw(sleep time);
use lib dirname(__FILE__) . '/lib';
use Bench;

my $c = Bench::cfg();
my $out = Bench::out();
my $cgd = "$out/callgrind";
my @cols = @{$c->{CG_COLUMNS}};
my $t0 = time;
Bench::note('callgrind: ' . scalar(@cols)
            . " columns x ($c->{CG_K1}, $c->{CG_K2}) requests");
my $redis = (grep { Bench::is_sync($_) } @cols) ? Bench::redis() : undef;

open my $tsv, '>', "$out/callgrind.tsv" or die;
$tsv->autoflush(1);
print $tsv join("\t", qw(column k1 ir1 k2 ir2 ir_per_req client_k2 scripts1
                         scripts2)), "\n";
for my $col (@cols) {
    my ($ir1, $s1) = cg_run($col, $c->{CG_K1});
    my ($ir2, $s2, $client) = cg_run($col, $c->{CG_K2});
    my $per = sprintf '%.1f', ($ir2 - $ir1) / ($c->{CG_K2} - $c->{CG_K1});
    print $tsv join("\t", $col, $c->{CG_K1}, $ir1, $c->{CG_K2}, $ir2, $per,
                    $client, $s1, $s2), "\n";
    Bench::note("  $col: $per Ir/request ($client)"
        . (Bench::is_sync($col) ? "; Redis scripts: $s1, $s2" : ''));
    for my $k ($c->{CG_K1}, $c->{CG_K2}) {
        system("callgrind_annotate --inclusive=no --auto=no --threshold=100"
               . " $cgd/callgrind.out.$col.$k > $cgd/$col.$k.annotate.txt"
               . " 2>/dev/null");
    }
}

# where the instructions per request go, against stock and against
# limit_req of the same key kind (the sync columns: their node-local one)
my %in = map { $_ => 1 } @cols;
for my $col (@cols) {
    my @pair = $col eq 'trl-1key' ? qw(limit_req trl-1key-noapi)
             : $col eq 'trl-1key-listed' ? qw(limit_req trl-1key)
             : $col =~ /^trl-1key/ ? 'limit_req'
             : $col eq 'trl-100k' ? 'limit_req-100k'
             : $col eq 'trl-reject' ? 'limit_req-reject'
             : $col =~ /^trl-(async|strict)-1key$/ ? 'trl-1key'
             : $col =~ /^trl-(async|distinct)-100k$/ ? 'trl-100k' : ();
    for my $base ('stock', @pair) {
        next if $base eq $col || !$in{$base};
        Bench::run_to("$cgd/$col.vs-$base.diff.txt", 'perl', 'bench/cgdiff.pl',
                      $cgd, $base, $col, $c->{CG_K1}, $c->{CG_K2});
    }
}
Bench::meta('time.callgrind_s ' . int(time - $t0));

# cg_run(COLUMN, K): Ir total of a single-process nginx under callgrind that
# served K requests of COLUMN; the script calls Redis saw (or "-") and the
# client's summary
sub cg_run {
    my ($col, $k) = @_;
    my $path = "/$col";
    my %sub = (MAIN => 'master_process off; daemon off;',
               SYNC_TIMEOUT => $c->{CG_SYNC_TIMEOUT}, LUA => '#',
               REDIS_PORT => $redis ? $redis->port : 0);
    if ($col eq 'stock-nomodule') {
        ($path, $sub{NOMODULE}) = ('/stock', '#');
    } elsif ($col eq 'trl-1key-noapi') {
        ($path, $sub{API}) = ('/trl-1key', '#');
    } elsif ($col eq 'trl-1key-listed') {
        $path = '/trl-1key';
    }
    my $keys = $col =~ /-100k$/ ? $c->{CG_KEYS} : 1;
    my $t = Bench::nginx('bench/nginx.conf.in', "callgrind/$col-$k", %sub);
    my $dir = $t->dir;
    my $port = $t->port;
    my $cgout = "$cgd/callgrind.out.$col.$k";
    my ($rc, $tout) = $t->test_config;
    Bench::die_("nginx -t failed ($col):\n$tout") if $rc;
    my $pid = Bench::spawn("$dir/valgrind.log",
        Bench::on_cpus($c->{NGINX_CPUS}, 'valgrind', '--tool=callgrind',
            "--callgrind-out-file=$cgout", $c->{NGINX_BIN}, $t->nginx_args));
    my $up = TRLRedis::wait_for(120, sub {
        return 0 unless kill 0, $pid;
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        return $s ? 1 : 0;
    });
    unless ($up) {
        print STDERR Bench::slurp("$dir/valgrind.log");
        Bench::die_("nginx under callgrind did not answer ($col)");
    }
    my ($before, $down0) = (undef, 0);
    if ($redis && !$sub{NOMODULE}) {
        # its link to Redis is set up (this nginx is Redis's only other
        # client; its last command is a SCRIPT LOAD or a script), then a
        # moment for nginx to take the replies: requests sent before that
        # are decided by fail=open, and the set-up's work would land in one
        # run and not the other
        TRLRedis::wait_for(60, sub {
            grep { /cmd=(script\|load|evalsha)/ } $redis->clients });
        sleep 0.5;
        $before = Bench::info($redis);
        # a worker's link reports a false outage at start-up (seen under
        # valgrind): only what happens from here on counts
        $down0 = () = $t->error_log =~ /is unreachable/g;
    }
    my @client = Bench::on_cpus($c->{WRK_CPUS}, 'perl');
    if ($col eq 'trl-1key-listed') {
        # one runtime deny entry, for an address that never comes
        Bench::run_to("$dir/listed.txt", @client, 'bench/apiclient.pl',
            '--port', $port, '--method', 'POST', '--count', 1, '--timeout',
            300, "$c->{API_LOC}/lists/deny?address=192.0.2.1")
            or Bench::die_("the API client failed against callgrind ($col, $k)");
        Bench::slurp("$dir/listed.txt") =~ /status_201=1\b/
            or Bench::die_("POST $c->{API_LOC}/lists/deny did not answer 201: "
                           . Bench::slurp("$dir/listed.txt"));
    }
    Bench::run_to("$dir/client.txt", @client, 'bench/hclient.pl', '--port',
        $port, '--path', $path, '--count', $k, '--keys', $keys, '--key-len',
        10, '--timeout', 300)
        or Bench::die_("the client failed against callgrind ($col, $k)");
    kill 'QUIT', $pid;
    my $gone = TRLRedis::wait_for(120, sub {
        waitpid($pid, POSIX::WNOHANG()) == $pid });
    unless ($gone) {
        kill 'KILL', $pid;
        Bench::die_("nginx under callgrind did not exit ($col)");
    }
    Bench::reap($pid);
    my $scripts = '-';
    if ($before) {
        # script calls Redis saw from this run, its exit's publish included
        $scripts = (Bench::redis_delta($before, Bench::info($redis)))[0];
        my $down = () = $t->error_log =~ /is unreachable/g;
        Bench::note("WARNING: the link to Redis went down while callgrind's"
                    . " nginx served ($col, $k)") if $down > $down0;
    }
    my $text = Bench::slurp($cgout);
    my ($ir) = $text =~ /^summary: *(\d+)/m;
    ($ir) = $text =~ /^totals: *(\d+)/m unless defined $ir;
    Bench::die_("no summary/totals line in $cgout") unless defined $ir;
    chomp(my $client = Bench::slurp("$dir/client.txt"));
    return ($ir, $scripts, $client);
}
