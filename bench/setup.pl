#!/usr/bin/perl
# setup.pl - the first step of make bench: checks the knobs and the tools,
# empties the output directory, copies the module measured (a rebuild
# meanwhile does not mix two builds in one run) and writes meta.txt.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use lib dirname(__FILE__) . '/lib';
use Bench;

my $c = Bench::cfg();
my $out = $c->{OUT};

-x $c->{NGINX_BIN} or Bench::die_("no nginx at $c->{NGINX_BIN}");
-f $c->{BUILT_MODULE}
    or Bench::die_("module not built: $c->{BUILT_MODULE} (run make)");
sub have { system("command -v $_[0] >/dev/null 2>&1") == 0 }
for (qw(wrk taskset timeout)) {
    have($_) or Bench::die_("$_ is missing (scripts/install-deps.sh)");
}
if ($c->{REDIS_ON}) {
    -x $TRLRedis::SERVER or Bench::die_("no redis-server at $TRLRedis::SERVER"
        . ' (scripts/install-deps.sh, or NO_SYNC=1)');
}
unless ($c->{NO_CALLGRIND}) {
    for (qw(valgrind callgrind_annotate)) {
        have($_) or Bench::die_("$_ is missing (scripts/install-deps.sh,"
                                . ' or NO_CALLGRIND=1)');
    }
}

remove_tree($out);
make_path("$out/wrk", "$out/callgrind", "$out/memory");
copy($c->{BUILT_MODULE}, $c->{MODULE}) or Bench::die_("copy module: $!");

sub cmd { my $v = `@_ 2>&1`; chomp $v; $v }
my ($model) = Bench::slurp('/proc/cpuinfo') =~ /^model name\s*: (.*)$/m;
my $head = cmd("git -C $Bench::ROOT rev-parse --short HEAD");
$head .= '+uncommitted-src'
    if system("git -C $Bench::ROOT diff --quiet HEAD -- src 2>/dev/null");
my $ver = cmd("$c->{NGINX_BIN} -v") =~ s/.*nginx\///r;
my @m = (
    'date ' . cmd('date -u +%Y-%m-%dT%H:%M:%SZ'),
    "host.cpus $c->{NCPU}",
    'host.cpu_model ' . ($model // 'unknown'),
    'host.kernel ' . cmd('uname -r'),
    "nginx.version $ver",
    "git.head $head",
    "cfg.rounds $c->{ROUNDS}", "cfg.duration_s $c->{DURATION}",
    "cfg.warmup_s $c->{WARMUP}", "cfg.connections $c->{CONNECTIONS}",
    "cfg.threads $c->{THREADS}", "cfg.workers $c->{WORKERS}",
    'cfg.nginx_cpus ' . Bench::shown($c->{NGINX_CPUS}, 'unpinned'),
    'cfg.wrk_cpus ' . Bench::shown($c->{WRK_CPUS}, 'unpinned'),
    'cfg.columns ' . join(',', @{$c->{COLUMNS}}),
    "cfg.keys100k $c->{KEYS100K}", "cfg.one_key $c->{ONE_KEY}",
    "cfg.api_loc $c->{API_LOC}",
    'cfg.clk_tck ' . POSIX::sysconf(POSIX::_SC_CLK_TCK()),
    "cfg.sync $c->{SYNC_ON}", "cfg.redis $c->{REDIS_ON}",
);
if ($c->{REDIS_ON}) {
    push @m, 'cfg.redis_cpus ' . Bench::shown($c->{REDIS_CPUS}, 'unpinned'),
        "cfg.sync_interval $c->{SYNC_INTERVAL}",
        "cfg.sync_timeout $c->{SYNC_TIMEOUT}",
        "cfg.cg_sync_timeout $c->{CG_SYNC_TIMEOUT}",
        "cfg.incr_limit $c->{INCR_LIMIT}",
        'redis.version '
            . (cmd("$TRLRedis::SERVER --version") =~ /v=(\S+)/ ? $1 : '?');
}
push @m, "module.path $c->{BUILT_MODULE}",
    'module.sha1 ' . substr(cmd("sha1sum $c->{MODULE}"), 0, 12),
    'src.sha1 ' . substr(cmd("cd $Bench::ROOT && find src -type f"
                             . " | LC_ALL=C sort | xargs cat | sha1sum"), 0, 12);
Bench::meta(@m);

Bench::note('only one CPU: nginx and wrk share it; figures are rough')
    if $c->{NCPU} < 2;
Bench::note("nginx $ver, $c->{NCPU} CPUs; nginx on CPUs "
    . Bench::shown($c->{NGINX_CPUS}) . ', wrk on ' . Bench::shown($c->{WRK_CPUS})
    . " (-t$c->{THREADS} -c$c->{CONNECTIONS})"
    . ($c->{REDIS_ON} ? '; redis-server on ' . Bench::shown($c->{REDIS_CPUS})
                        . ($c->{REDIS_CPUS} ne '' && $c->{REDIS_CPUS} ne $c->{WRK_CPUS}
                           ? ' (its own)' : ' (shared with wrk)')
                      : ''));
