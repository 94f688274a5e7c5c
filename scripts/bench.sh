#!/usr/bin/env bash
# scripts/bench.sh - the benchmark behind "make bench" (not a test).
#
# What it measures, all against Debian's /usr/sbin/nginx with the built
# module loaded, on 127.0.0.1 only:
#
# 1. Throughput.  One nginx (bench/nginx.conf.in) whose locations are the
#    columns, all serving empty_gif (a content handler; "return" would
#    answer before any limiter runs):
#      stock             no limiter
#      limit_req         limit_req keyed on ONE_KEY, 1000000r/s burst=1000
#                        nodelay: nothing rejected
#      trl-1key          token_ratelimit keyed on ONE_KEY, 65535r/s: all
#                        admitted.  ONE_KEY is by default
#                        $binary_remote_addr$remote_port, one key per wrk
#                        connection: 65535 (the largest N) per second is
#                        far below what one worker serves on loopback, so
#                        a single key would be rejected most of the time
#                        (ONE_KEY='$binary_remote_addr' shows it)
#      trl-1key-api      trl-1key (the same location, zone and load) while
#                        bench/apiclient.pl, on wrk's CPUs, scrapes the
#                        API once every API_SCRAPE_EVERY seconds of the run:
#                        GET API_LOC/ (JSON) and API_LOC/metrics
#                        (Prometheus), each response timed and its status
#                        counted (scrape.tsv).  Every column's nginx has the
#                        token_ratelimit_api location API_LOC; only this
#                        column's runs call it.  Reported against trl-1key
#                        of the same rounds: req/s and CPU us/req ratios,
#                        per round too, next to trl-1key's own spread
#                        between rounds, (max - min) / median (the run's
#                        noise), and what one scrape costs this nginx's
#                        worker in CPU time, measured idle after the rounds
#                        (/proc/PID/schedstat, 10 GETs of each): the req/s
#                        a saturated worker is expected to give up
#      limit_req-100k    limit_req, $http_x_key, 100k distinct keys, 64m zone
#      trl-100k          token_ratelimit, the same keys, 64m zone
#      limit_req-reject  limit_req 1r/m: all but the first get 503 and one
#                        error-log line each (default level, error)
#      trl-reject        token_ratelimit 1r/d: all but the first get the 429
#                        JSON; only a key's first rejection is logged
#      (trl-1key-noheaders, not run unless named in COLUMNS: trl-1key with
#      token_ratelimit_headers off)
#    The cluster-sync columns (NO_SYNC=1 leaves them out) run against a
#    redis-server that the bench starts on a free 127.0.0.1 port
#    (persistence off), with "token_ratelimit_redis ... interval=SYNC_INTERVAL
#    timeout=SYNC_TIMEOUT" in the same nginx: the same keys and rate as their
#    node-local references trl-1key and trl-100k,
#      trl-async-1key    zone "sync" (async), ONE_KEY: decided in the zone,
#                        the keys' admissions published and their cluster
#                        totals read back every interval (EVALSHA, up to 64
#                        keys per call)
#      trl-async-100k    zone "sync", $http_x_key, the 100k keys, 64m zone
#      trl-strict-1key   zone "sync=strict", ONE_KEY: one EVALSHA per
#                        request, which waits for it
#    Their "vs local" ratio is against trl-1key / trl-100k of the same run
#    (target for async: >= 0.90).  The machine has 2 CPUs: nginx gets one,
#    wrk and redis-server share the other (REDIS_CPUS, default WRK_CPUS), so
#    Redis's work takes CPU from the client: compare nginx CPU us/req as
#    well as req/s.
#    wrk (bench/keys.lua: every request carries X-Key, cycling through 100k
#    values for the -100k columns) runs DURATION seconds per column, in
#    ROUNDS rounds that go round-robin over the columns (round r starts at
#    the r-th column), after a short warm-up of each column.  nginx is
#    pinned to NGINX_CPUS and wrk to WRK_CPUS.  Per column: median req/s,
#    min-max, the ratio to stock and to limit_req of the same key kind
#    (trl-1key : limit_req, trl-100k : limit_req-100k, trl-reject :
#    limit_req-reject), nginx worker CPU time per request (utime+stime from
#    /proc/PID/stat over all runs / requests completed), how busy the worker
#    was (CPU time / run time: below ~95% the client, or other load on the
#    machine, was the bottleneck), how busy nginx's CPU was beyond that
#    ("oth": other load, and loopback softirq work), non-2xx responses,
#    error-log lines per request.
#
#    Redis load of the sync columns: INFO (commandstats, stats, cpu) of the
#    bench's redis-server before and after every wrk run (after a sync
#    column, the bench waits two intervals first, so that its last publish
#    is counted with it): script calls (cmdstat_evalsha, and cmdstat_eval)
#    per second and their usec, total_commands_processed per second (the
#    commands a script runs count there too), keys published per second
#    (HINCRBY calls: one per key with admissions to add) and keys read per
#    second (HGETALL calls: one per key in a publish script, or per strict
#    decision), Redis CPU (used_cpu_user+sys), and how often the link went
#    down ("is unreachable" in nginx's error log: a missed deadline takes
#    it down, and fail=open decides locally until it is back).
#    nginx's error log at start-up is kept in wrk/startup.errlog.
#
# 1b. Strict latency (needs trl-strict-1key in COLUMNS; NO_LATENCY=1 skips):
#    the p99 that sync=strict adds, on loopback, at half of strict's
#    saturation rate (its median req/s from part 1).  wrk with bench/paced.lua
#    sends at a fixed rate, LAT_RATE req/s (default: that half), from
#    LAT_CONNECTIONS connections (each waits for its response, then for the
#    next free send slot of a per-thread schedule, through wrk's delay()
#    hook; slots are whole milliseconds, so requests leave in small bursts,
#    the same for both columns), LAT_ROUNDS rounds of LAT_DURATION seconds
#    alternating trl-1key and trl-strict-1key.  wrk's own latency record
#    (from the write of a request to its response; the wait for a slot is
#    not in it) gives p50/p90/p99/p99.9; "late" counts slots sent more than
#    1 ms after their time (no connection free: the rate was not held).
#    Reported: p50 ... p99.9 of each, and strict minus local per round
#    (target: <= 1 ms at p99).  LAT_REDIS_CPUS="1 0" measures it with
#    redis-server on wrk's CPU, then on nginx's (taskset -p moves it).
#
# 1c. API render time (NO_API_TIMING=1 skips): an nginx of its own
#    (bench/api.conf.in) with one zone "api" of API_ZONE_SIZE, rate 1r/m,
#    penalty=10m, filled with API_KEYS distinct keys (bench/hclient.pl,
#    pipelined: each key once, admitted; then the first API_OVER percent of
#    them again: rejected, each starting a 10-minute penalty and entering
#    the top offenders table).  Then bench/apiclient.pl times, on one
#    keepalive connection, API_REPEAT GETs of each of
#      API_LOC/zones/api                   the zone: top offenders, and the
#                                          penalties (a scan of every entry)
#      API_LOC/                            everything (JSON)
#      API_LOC/metrics                     Prometheus text
#      API_LOC/zones/api/keys?key=key-000000   one key
#    one call at a time ("idle"; the nginx worker's CPU time per call from
#    /proc/PID/schedstat), then all four in turn, 25 ms between rounds,
#    while wrk loads /limited with the same keys (all rejected: the
#    penalties' path) from one second before to the end of the timings
#    ("load").  Reported: median,
#    p90 and max ms per call, the zone's keys and active penalties from its
#    JSON (keys must be >= API_KEYS), and PASS/FAIL of the top-offenders
#    render (API_LOC/zones/api) against 50 ms at its median and its max.
#
# 2. Instructions per request (NO_CALLGRIND=1 skips), for every column and
#    CG_EXTRA (but trl-1key-api: its requests are trl-1key's): valgrind --tool=callgrind on a single-process nginx
#    (master_process off; daemon off; the same config) serving CG_K1 and
#    then, in a fresh run, CG_K2 requests sent one at a time over keepalive
#    (bench/hclient.pl): (Ir(K2) - Ir(K1)) / (K2 - K1), which cancels
#    start-up.  The -100k columns cycle through CG_KEYS keys (default
#    CG_K1), so the measured requests find their key in the zone, as in the
#    wrk runs.  Function by function, against stock and against limit_req
#    of the same key kind: build/bench/callgrind/COLUMN.vs-BASE.diff.txt.
#    The sync columns run with the bench's redis-server up (timeout
#    CG_SYNC_TIMEOUT: under valgrind nginx is ~50x slower, and a missed
#    deadline would take the link down and fall back to local counting),
#    and are diffed against their node-local reference (trl-async-1key :
#    trl-1key, ...).  The async columns' publish work comes once per
#    interval, not per request: the K2 - K1 difference carries the
#    intervals that the K2 - K1 requests took under valgrind (the script
#    calls Redis saw in each run are in callgrind.tsv and in the table).
#
# 3. Memory (NO_MEMORY=1 skips): keys a 1m zone holds, token_ratelimit
#    against limit_req, for 48-byte and 112-byte keys (bench/memory.conf.in):
#      trl  first-evict  keys inserted (100r/d, so all live) before the
#                        first [warn] "token_ratelimit zone ... is full"
#      trl  held@2x      of 2x that many keys inserted, how many are still
#                        held (each re-requested, newest first: Remaining
#                        99 -> 98 shows the earlier request was kept)
#      both first-key    largest K such that, on a fresh nginx, after K
#                        distinct keys the first one is still there (binary
#                        search; limit_req: 1r/m, its second request is 503)
#      lr   held@2x      as for trl, after 2x limit_req's first-key figure
#
# Output: a table on stdout; build/bench/results.txt ("name value" lines);
# raw wrk outputs, configs, logs and callgrind files under build/bench/;
# redis.tsv (Redis INFO deltas per wrk run), latency.tsv (part 1b),
# scrape.tsv (the API scrapes of trl-1key-api), api.tsv and api/ (part 1c).
#
# Knobs (environment):
#   ROUNDS=5            interleaved rounds
#   DURATION=5          seconds per wrk run (the whole bench takes about
#                       ROUNDS * 11 * (DURATION + 1) s + about 4 min:
#                       about 10 min by default; NO_SYNC=1: 8 columns,
#                       ~6.5 min)
#   WARMUP=1            seconds of wrk per column before round 1 (0: none)
#   CONNECTIONS=32      wrk connections
#   THREADS             wrk threads (default: 1, or the number of WRK_CPUS)
#   COLUMNS="stock limit_req ..."   a subset of the columns, run in that
#                       order (a purely numeric COLUMNS, a terminal width,
#                       is ignored)
#   WORKERS=1           worker_processes; the workers are bound with
#                       "worker_cpu_affinity auto <NGINX_CPUS>"
#   NGINX_CPUS          CPUs for nginx (default: 0 .. WORKERS-1)
#   WRK_CPUS            CPUs for wrk (default: the rest; none left: unpinned)
#   KEYS100K=100000     distinct keys of the -100k columns
#   ONE_KEY='$binary_remote_addr$remote_port'  key of limit_req and trl-1key
#   NO_CALLGRIND=1      skip part 2;  CG_K1=2000 CG_K2=4000 CG_KEYS=CG_K1
#   CG_EXTRA="stock-nomodule trl-1key-noheaders trl-1key-noapi trl-1key-listed"
#                       callgrind-only columns (stock-nomodule: stock with
#                       the module not loaded; trl-1key-noapi: trl-1key in
#                       an nginx whose API location lacks
#                       token_ratelimit_api, which costs every request the
#                       runtime lists' check and, with
#                       token_ratelimit_redis, adds their reconcile with
#                       Redis about once a second; trl-1key-listed:
#                       trl-1key with one runtime deny entry, for another
#                       address (192.0.2.1), added through the API first)
#   NO_MEMORY=1         skip part 3
#   NGINX_BIN=/usr/sbin/nginx
#   MODULE_SO=build/ngx_http_token_ratelimit_module.so   the module measured
#                       (copied to build/bench/ when the bench starts)
#   NO_SYNC=1           no redis-server, no sync columns, no part 1b (the
#                       sync columns are dropped from COLUMNS).  Without a
#                       sync column in COLUMNS or CG_EXTRA, no redis-server
#                       is started and nginx has no token_ratelimit_redis
#   SYNC_INTERVAL=100ms SYNC_TIMEOUT=100ms   token_ratelimit_redis interval=
#                       and timeout= (whole ms or s, e.g. 100ms, 1s)
#   CG_SYNC_TIMEOUT=2s  its timeout= in the callgrind runs
#   REDIS_CPUS          CPUs for redis-server (default: WRK_CPUS)
#   REDIS_SERVER=/usr/bin/redis-server  REDIS_CLI=/usr/bin/redis-cli
#   NO_LATENCY=1        skip part 1b
#   IDLE_WAIT=0         seconds to wait, at most, for the machine to be idle
#                       (all CPUs < 10% busy over 2 s) before part 1: on a
#                       shared machine, other load makes every figure noisy
#                       (the "oth" column and the warnings show it)
#   LAT_RATE            part 1b's rate, req/s (default: half of
#                       trl-strict-1key's median req/s of part 1)
#   LAT_ROUNDS=3 LAT_DURATION=8   part 1b's rounds and seconds per run
#   LAT_CONNECTIONS=64  part 1b's connections (enough that a free one is
#                       there for every slot: see "late")
#   LAT_REDIS_CPUS      where redis-server runs in part 1b, one or more CPU
#                       lists, each measured in turn (default REDIS_CPUS;
#                       "1 0": with wrk, then with nginx)
#   API_LOC=/trl-api    the token_ratelimit_api location of both nginx
#   API_SCRAPE_EVERY=1  seconds between the scrapes of trl-1key-api
#   NO_API_TIMING=1     skip part 1c
#   API_KEYS=100000     keys in part 1c's zone;  API_OVER=50: the percent
#                       of them sent twice (rejected, serving a penalty)
#   API_ZONE_SIZE=16m   its size (16m: about 198,000 keys)
#   API_REPEAT=30       timed calls per API call and phase
#   API_LOAD=1          also time the calls under wrk load (0: idle only)
#   API_MAX_MS=50       the top-offenders render's target, ms
#   BENCH_OUT=build/bench   where everything goes (emptied first)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
BUILT_MODULE=${MODULE_SO:-$ROOT/build/ngx_http_token_ratelimit_module.so}
OUT=${BENCH_OUT:-$ROOT/build/bench}
case $OUT in
    /*) ;;
    *) OUT=$ROOT/$OUT ;;
esac
# the module as it was when the bench started (a copy: a rebuild meanwhile
# does not mix two builds in one run)
MODULE=$OUT/ngx_http_token_ratelimit_module.so

SYNC_COLUMNS="trl-async-1key trl-async-100k trl-strict-1key"
DEFAULT_COLUMNS="stock limit_req trl-1key trl-1key-api limit_req-100k trl-100k limit_req-reject trl-reject $SYNC_COLUMNS"
ALL_COLUMNS="$DEFAULT_COLUMNS trl-1key-noheaders"
if [[ -z "${COLUMNS:-}" || "${COLUMNS}" =~ ^[0-9]+$ ]]; then
    COLUMNS=$DEFAULT_COLUMNS
fi
CG_EXTRA=${CG_EXTRA-stock-nomodule trl-1key-noheaders trl-1key-noapi trl-1key-listed}
NO_SYNC=${NO_SYNC:-}
SYNC_INTERVAL=${SYNC_INTERVAL:-100ms}
SYNC_TIMEOUT=${SYNC_TIMEOUT:-100ms}
CG_SYNC_TIMEOUT=${CG_SYNC_TIMEOUT:-2s}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
REDIS_CLI=${REDIS_CLI:-/usr/bin/redis-cli}
NO_LATENCY=${NO_LATENCY:-}
IDLE_WAIT=${IDLE_WAIT:-0}
LAT_RATE=${LAT_RATE:-}
LAT_ROUNDS=${LAT_ROUNDS:-3}
LAT_DURATION=${LAT_DURATION:-8}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
WORKERS=${WORKERS:-1}
KEYS100K=${KEYS100K:-100000}
ONE_KEY=${ONE_KEY:-'$binary_remote_addr$remote_port'}
CG_K1=${CG_K1:-2000}
CG_K2=${CG_K2:-4000}
CG_KEYS=${CG_KEYS:-$CG_K1}
NO_CALLGRIND=${NO_CALLGRIND:-}
NO_MEMORY=${NO_MEMORY:-}
API_LOC=${API_LOC:-/trl-api}
API_SCRAPE_EVERY=${API_SCRAPE_EVERY:-1}
NO_API_TIMING=${NO_API_TIMING:-}
API_KEYS=${API_KEYS:-100000}
API_OVER=${API_OVER:-50}
API_ZONE_SIZE=${API_ZONE_SIZE:-16m}
API_REPEAT=${API_REPEAT:-30}
API_LOAD=${API_LOAD:-1}
API_MAX_MS=${API_MAX_MS:-50}

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

for c in $COLUMNS; do
    [[ " $ALL_COLUMNS " == *" $c "* ]] \
        || die "unknown column \"$c\" in COLUMNS (known: $ALL_COLUMNS)"
done
for c in $CG_EXTRA; do
    [[ " $ALL_COLUMNS stock-nomodule trl-1key-noapi trl-1key-listed " == *" $c "* ]] \
        || die "unknown column \"$c\" in CG_EXTRA"
done
is_sync() {         # is_sync COLUMN: a cluster-sync column?
    [[ " $SYNC_COLUMNS " == *" $1 "* ]]
}

if [ -n "$NO_SYNC" ]; then
    kept=""
    for c in $COLUMNS; do
        is_sync "$c" && continue
        kept="$kept $c"
    done
    [ "$kept" = " $(echo $COLUMNS)" ] \
        || note "NO_SYNC: the sync columns are left out"
    COLUMNS=${kept# }
    [ -n "$COLUMNS" ] || die "NO_SYNC=1 leaves no column to run"
    kept=""
    for c in $CG_EXTRA; do
        is_sync "$c" || kept="$kept $c"
    done
    CG_EXTRA=${kept# }
fi
# SYNC_ON: a redis-server and token_ratelimit_redis, for the sync columns
SYNC_ON=""
for c in $COLUMNS $CG_EXTRA; do
    is_sync "$c" && SYNC_ON=1
done

for v in ROUNDS DURATION WARMUP CONNECTIONS WORKERS KEYS100K CG_K1 CG_K2 \
         CG_KEYS LAT_ROUNDS LAT_DURATION IDLE_WAIT API_KEYS API_OVER \
         API_REPEAT API_LOAD API_MAX_MS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
LAT_CONNECTIONS=${LAT_CONNECTIONS:-64}
[[ "$LAT_CONNECTIONS" =~ ^[0-9]+$ ]] || die "LAT_CONNECTIONS must be a whole number"
[ -z "$LAT_RATE" ] || [[ "$LAT_RATE" =~ ^[1-9][0-9]*$ ]] \
    || die "LAT_RATE must be a whole number of requests per second"
(( LAT_ROUNDS >= 1 && LAT_DURATION >= 1 )) \
    || die "need LAT_ROUNDS >= 1, LAT_DURATION >= 1"
[[ "$API_LOC" =~ ^/[A-Za-z0-9_./-]*[A-Za-z0-9_-]$ ]] \
    || die "API_LOC must be a location path such as /trl-api"
[[ "$API_SCRAPE_EVERY" =~ ^[0-9]+(\.[0-9]+)?$ ]] \
    && perl -e 'exit !($ARGV[0] >= 0.1)' "$API_SCRAPE_EVERY" \
    || die "API_SCRAPE_EVERY must be a number of seconds, at least 0.1"
[[ "$API_ZONE_SIZE" =~ ^[1-9][0-9]*[km]$ ]] \
    || die "API_ZONE_SIZE must be a size such as 16m"
(( API_KEYS >= 1 && API_OVER <= 100 && API_REPEAT >= 1 )) \
    || die "need API_KEYS >= 1, API_OVER <= 100, API_REPEAT >= 1"
(( API_KEYS <= 1000000 )) \
    || die "API_KEYS: at most 1000000 (bench/keys.lua's key-NNNNNN)"

to_ms() {           # to_ms 100ms|2s: milliseconds
    case $1 in
        *ms) echo "${1%ms}" ;;
        *s) echo $(( ${1%s} * 1000 )) ;;
        *) echo "$1" ;;
    esac
}
for v in SYNC_INTERVAL SYNC_TIMEOUT CG_SYNC_TIMEOUT; do
    [[ "${!v}" =~ ^[1-9][0-9]*(ms|s)$ ]] \
        || die "$v must be a whole number of ms or s, such as 100ms or 1s"
done
SYNC_INTERVAL_MS=$(to_ms "$SYNC_INTERVAL")
(( ROUNDS >= 1 && DURATION >= 1 && WORKERS >= 1 && CG_K2 > CG_K1 )) \
    || die "need ROUNDS >= 1, DURATION >= 1, WORKERS >= 1, CG_K2 > CG_K1"

[ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN"
[ -f "$BUILT_MODULE" ] || die "module not built: $BUILT_MODULE (run make)"
for tool in wrk perl taskset timeout; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh)"
done
if [ -n "$SYNC_ON" ]; then
    [ -x "$REDIS_SERVER" ] || die "no redis-server at $REDIS_SERVER (scripts/install-deps.sh, or NO_SYNC=1)"
    [ -x "$REDIS_CLI" ] || die "no redis-cli at $REDIS_CLI (scripts/install-deps.sh, or NO_SYNC=1)"
fi
if [ -z "$NO_CALLGRIND" ]; then
    for tool in valgrind callgrind_annotate; do
        command -v "$tool" >/dev/null \
            || die "$tool is missing (scripts/install-deps.sh, or NO_CALLGRIND=1)"
    done
fi

# --- CPUs -------------------------------------------------------------------

NCPU=$(getconf _NPROCESSORS_ONLN)
CLK_TCK=$(getconf CLK_TCK)

# "0-2,5" -> the CPU numbers, one a line
cpu_list() {
    perl -e 'for (split /,/, shift) { /^(\d+)(?:-(\d+))?$/ or die "bad CPU list\n";
             print "$_\n" for $1 .. ($2 // $1) }' "$1"
}

if [ -z "${NGINX_CPUS:-}" ]; then
    if (( NCPU > 1 )); then
        NGINX_CPUS="0-$(( (WORKERS < NCPU ? WORKERS : NCPU - 1) - 1 ))"
        [ "$NGINX_CPUS" = "0-0" ] && NGINX_CPUS=0
    else
        NGINX_CPUS=""
    fi
fi
if [ -z "${WRK_CPUS+set}" ]; then
    WRK_CPUS=""
    if [ -n "$NGINX_CPUS" ]; then
        rest=$(comm -23 <(seq 0 $((NCPU - 1)) | sort) \
                        <(cpu_list "$NGINX_CPUS" | sort) | sort -n \
               | paste -sd, -)
        WRK_CPUS=$rest
    fi
fi
if [ -z "${THREADS:-}" ]; then
    THREADS=1
    [ -n "$WRK_CPUS" ] && THREADS=$(cpu_list "$WRK_CPUS" | wc -l)
fi
(( CONNECTIONS >= THREADS )) || die "CONNECTIONS must be >= THREADS"
(( LAT_CONNECTIONS >= THREADS )) || die "LAT_CONNECTIONS must be >= THREADS"
# redis-server shares the client's CPU(s): nginx keeps its own
REDIS_CPUS=${REDIS_CPUS-$WRK_CPUS}

# A bitmask string for worker_cpu_affinity ("0,2" -> "101").
affinity_mask() {
    perl -e 'my %on = map { $_ => 1 } @ARGV; my $max = (sort { $b <=> $a } @ARGV)[0];
             print join "", map { $on{$_} ? 1 : 0 } reverse 0 .. $max' \
        $(cpu_list "$1")
}

on_cpus() {         # on_cpus CPULIST command...: pinned if CPULIST is set
    local cpus=$1
    shift
    if [ -n "$cpus" ]; then
        taskset -c "$cpus" "$@"
    else
        "$@"
    fi
}

# start_bg CPULIST OUTFILE command...: a client in the background, pinned if
# CPULIST is set, stdout and stderr to OUTFILE; sets BG_PID to the command
# itself (taskset execs it), which cleanup stops with SIGTERM.  (Not in
# $(...): BG_PID would be lost.)
start_bg() {
    local cpus=$1 out=$2
    shift 2
    if [ -n "$cpus" ]; then
        taskset -c "$cpus" "$@" > "$out" 2>&1 &
    else
        "$@" > "$out" 2>&1 &
    fi
    BG_PID=$!
    track_client "$BG_PID"
}

# --- processes ----------------------------------------------------------------

# The nginx masters and valgrind processes started here, one pid a line
# ("term:PID": a client, stopped with SIGTERM): a file, so that functions
# run in subshells ($(...)) can add to it.
PIDS_FILE=$(mktemp "${TMPDIR:-/tmp}/trl-bench-pids.XXXXXX")

track_pid() {
    echo "$1" >> "$PIDS_FILE"
}

track_client() {
    echo "term:$1" >> "$PIDS_FILE"
}

REDIS_PID=""

stop_redis() {      # SIGTERM (redis-server exits at once: nothing to save)
    local i
    [ -n "$REDIS_PID" ] || return 0
    if kill -0 "$REDIS_PID" 2>/dev/null; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        for i in $(seq 50); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$REDIS_PID" 2>/dev/null || true
    fi
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
}

cleanup() {
    local pid i sig
    stop_redis
    [ -f "$PIDS_FILE" ] || return 0
    for pid in $(cat "$PIDS_FILE"); do
        sig=QUIT
        if [[ "$pid" == term:* ]]; then
            # a client (wrk, the API scraper): background commands of a
            # script ignore SIGQUIT
            pid=${pid#term:}
            sig=TERM
        fi
        kill -0 "$pid" 2>/dev/null || continue
        kill -"$sig" "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$PIDS_FILE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
                                      Proto => "tcp", Listen => 1) or die $!;
        print $s->sockport, "\n"'
}

wait_port() {       # wait_port PORT SECONDS
    perl -MIO::Socket::INET -MTime::HiRes=sleep,time -e '
        my ($port, $secs) = @ARGV;
        my $end = time + $secs;
        while (time < $end) {
            my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                          Proto => "tcp");
            exit 0 if $s;
            sleep 0.05;
        }
        exit 1' "$1" "$2"
}

# write_conf TEMPLATE PREFIX PORT MAIN NOMODULE [SYNC_TIMEOUT] > nginx.conf
# (the sync lines are in when SYNC_ON, with the bench's redis-server; the
# API location unless CONF_API is "#")
write_conf() {
    TPL_MODULE=$MODULE TPL_PREFIX=$2 TPL_PORT=$3 TPL_MAIN=$4 TPL_NOMODULE=$5 \
    TPL_WORKERS=$WORKERS TPL_ONE_KEY=$ONE_KEY \
    TPL_SYNC=$([ -n "$SYNC_ON" ] || echo "#") TPL_REDIS_PORT=${REDIS_PORT:-0} \
    TPL_SYNC_INTERVAL=$SYNC_INTERVAL TPL_SYNC_TIMEOUT=${6:-$SYNC_TIMEOUT} \
    TPL_API_LOC=$API_LOC TPL_API_ZONE_SIZE=$API_ZONE_SIZE TPL_API=${CONF_API-} \
    perl -pe '
        s/\@(MODULE|PREFIX|PORT|MAIN|NOMODULE|WORKERS|ONE_KEY|SYNC|REDIS_PORT|SYNC_INTERVAL|SYNC_TIMEOUT|API_LOC|API_ZONE_SIZE|API)\@/$ENV{"TPL_$1"}/g unless /^\s*#/
    ' "$1"
}

# --- redis ----------------------------------------------------------------------

REDIS_PORT=""

rcli() {            # rcli ARGS...: redis-cli against the bench's redis-server
    timeout -k 2 10 "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

start_redis() {     # a redis-server on a free 127.0.0.1 port, no persistence
    local dir=$OUT/redis i cmd
    mkdir -p "$dir"
    REDIS_PORT=$(free_port)
    cmd=("$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --save ''
         --appendonly no --daemonize no --protected-mode yes --dir "$dir"
         --logfile "$dir/redis.log")
    [ -n "$REDIS_CPUS" ] && cmd=(taskset -c "$REDIS_CPUS" "${cmd[@]}")
    # taskset execs redis-server: $! is it
    "${cmd[@]}" > /dev/null 2>&1 &
    REDIS_PID=$!
    for i in $(seq 100); do
        [ "$(rcli PING 2>/dev/null)" = PONG ] && return 0
        kill -0 "$REDIS_PID" 2>/dev/null \
            || die "redis-server did not start: $(tail -5 "$dir/redis.log")"
        sleep 0.05
    done
    die "redis-server is not answering on port $REDIS_PORT"
}

# redis_info FILE: the counters of INFO all, as "name value" lines
# (cmdstat_X:calls=..,usec=.. as cmdstat_X.calls and cmdstat_X.usec)
redis_info() {
    rcli INFO all | perl -ne '
        s/\r?\n$//;
        if (/^(cmdstat_[^:]+):(.*)$/) {
            my $c = $1;
            for (split /,/, $2) {
                print "$c.$1 $2\n" if /^(\w+)=([\d.]+)$/;
            }
        } elsif (/^(\w+):([\d.]+)$/) {
            print "$1 $2\n";
        }' > "$1" || die "redis-cli INFO failed (port $REDIS_PORT)"
}

REDIS_FIELDS="scripts script_usec evalsha total_cmds keys_pub keys_read pexpire hdel net_in net_out cpu_us"

# redis_delta BEFORE AFTER: the REDIS_FIELDS, after - before, tab-separated
redis_delta() {
    perl -e '
        sub rd {
            my %v;
            open my $fh, "<", shift or die;
            while (<$fh>) { $v{$1} = $2 if /^(\S+) (\S+)$/ }
            return \%v;
        }
        my ($a, $b) = (rd($ARGV[0]), rd($ARGV[1]));
        my $d = sub { my $s = 0; $s += ($b->{$_} // 0) - ($a->{$_} // 0) for @_; $s };
        my @out = (
            $d->(qw(cmdstat_evalsha.calls cmdstat_eval.calls)),
            $d->(qw(cmdstat_evalsha.usec cmdstat_eval.usec)),
            $d->("cmdstat_evalsha.calls"),
            $d->("total_commands_processed"),
            $d->("cmdstat_hincrby.calls"),
            $d->("cmdstat_hgetall.calls"),
            $d->("cmdstat_pexpire.calls"),
            $d->("cmdstat_hdel.calls"),
            $d->("total_net_input_bytes"),
            $d->("total_net_output_bytes"),
            sprintf("%.0f", 1e6 * $d->(qw(used_cpu_user used_cpu_sys))),
        );
        print join("\t", @out), "\n"' "$1" "$2"
}

new_prefix() {      # new_prefix DIR: an empty nginx prefix
    rm -rf "$1"
    mkdir -p "$1/logs"
}

# start_nginx PREFIX PORT: master and workers, waits until PORT answers
start_nginx() {
    local prefix=$1 port=$2 out pid i
    if ! out=$("$NGINX_BIN" -t -p "$prefix/" -c "$prefix/nginx.conf" \
                    -e "$prefix/logs/error.log" 2>&1); then
        echo "$out" >&2
        die "nginx -t failed for $prefix/nginx.conf"
    fi
    on_cpus "$NGINX_CPUS" "$NGINX_BIN" -p "$prefix/" -c "$prefix/nginx.conf" \
        -e "$prefix/logs/error.log" \
        || die "nginx did not start: $(tail -5 "$prefix/logs/error.log")"
    for i in $(seq 100); do
        [ -s "$prefix/nginx.pid" ] && break
        sleep 0.05
    done
    pid=$(cat "$prefix/nginx.pid" 2>/dev/null) || die "no nginx.pid in $prefix"
    track_pid "$pid"
    wait_port "$port" 10 || die "nginx is not answering on port $port"
}

stop_nginx() {      # stop_nginx PREFIX
    local pid i
    pid=$(cat "$1/nginx.pid" 2>/dev/null) || return 0
    kill -QUIT "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

worker_pids() {     # worker_pids MASTER_PID: its children
    local f stat fields
    for f in /proc/[0-9]*/stat; do
        read -r stat < "$f" 2>/dev/null || continue
        read -r -a fields <<< "${stat##*) }"
        # after "pid (comm) ": state ppid ...
        [ "${fields[1]}" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
    return 0
}

cpu_ns() {          # cpu_ns PID...: the CPU time they have run, ns (schedstat)
    local pid ns rest sum=0
    for pid in "$@"; do
        read -r ns rest < "/proc/$pid/schedstat" || die "process $pid is gone"
        sum=$((sum + ns))
    done
    echo "$sum"
}

kv() {              # kv NAME FILE: the value of NAME=value in FILE, or 0
    perl -ne 'BEGIN { $n = shift } if (/(?:^|\s)\Q$n\E=(\S+)/) { print "$1\n"; $f = 1; exit }
              END { print "0\n" unless $f }' "$1" "$2"
}

cpu_ticks() {       # cpu_ticks PID...: utime + stime of all of them, in ticks
    local pid stat fields sum=0
    for pid in "$@"; do
        read -r stat < "/proc/$pid/stat" \
            || die "nginx worker $pid is gone (see the error log)"
        read -r -a fields <<< "${stat##*) }"
        # stat fields 14 (utime) and 15 (stime): 11 and 12 after "(comm) "
        sum=$(( sum + fields[11] + fields[12] ))
    done
    echo "$sum"
}

# --- setup --------------------------------------------------------------------

rm -rf "$OUT"
mkdir -p "$OUT/wrk" "$OUT/callgrind" "$OUT/memory"
cp "$BUILT_MODULE" "$MODULE"

NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///')
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host.cpus $NCPU"
    echo "host.cpu_model ${CPU_MODEL:-unknown}"
    echo "host.kernel $(uname -r)"
    echo "nginx.version $NGINX_VERSION"
    if head=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
        git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || head="$head+uncommitted-src"
        echo "git.head $head"
    fi
    echo "cfg.rounds $ROUNDS"
    echo "cfg.duration_s $DURATION"
    echo "cfg.warmup_s $WARMUP"
    echo "cfg.connections $CONNECTIONS"
    echo "cfg.threads $THREADS"
    echo "cfg.workers $WORKERS"
    echo "cfg.nginx_cpus ${NGINX_CPUS:-unpinned}"
    echo "cfg.wrk_cpus ${WRK_CPUS:-unpinned}"
    echo "cfg.columns ${COLUMNS// /,}"
    echo "cfg.keys100k $KEYS100K"
    echo "cfg.one_key $ONE_KEY"
    echo "cfg.api_loc $API_LOC"
    echo "cfg.clk_tck $CLK_TCK"
    echo "cfg.sync ${SYNC_ON:-0}"
    if [ -n "$SYNC_ON" ]; then
        echo "cfg.redis_cpus ${REDIS_CPUS:-unpinned}"
        echo "cfg.sync_interval $SYNC_INTERVAL"
        echo "cfg.sync_timeout $SYNC_TIMEOUT"
        echo "cfg.cg_sync_timeout $CG_SYNC_TIMEOUT"
        echo "redis.version $("$REDIS_SERVER" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
    fi
    echo "module.path $BUILT_MODULE"
    echo "module.sha1 $(sha1sum "$MODULE" | cut -c1-12)"
    echo "src.sha1 $(find src -type f | LC_ALL=C sort | xargs cat | sha1sum | cut -c1-12)"
} > "$OUT/meta.txt"

(( NCPU > 1 )) || note "only one CPU: nginx and wrk share it; figures are rough"
note "nginx $NGINX_VERSION, $NCPU CPUs; nginx on CPUs ${NGINX_CPUS:-any}," \
     "wrk on ${WRK_CPUS:-any} (-t$THREADS -c$CONNECTIONS)" \
     "$([ -n "$SYNC_ON" ] && echo "; redis-server on ${REDIS_CPUS:-any}")"

if [ -n "$SYNC_ON" ]; then
    start_redis
    echo "redis.port $REDIS_PORT" >> "$OUT/meta.txt"
    note "redis-server $REDIS_PORT (pid $REDIS_PID), interval=$SYNC_INTERVAL timeout=$SYNC_TIMEOUT"
fi

keys_of() {         # keys_of COLUMN: distinct X-Key values wrk cycles through
    case $1 in
        *-100k) echo "$KEYS100K" ;;
        *) echo 1 ;;
    esac
}

path_of() {         # path_of COLUMN: the location its requests go to
    case $1 in
        trl-1key-api) echo /trl-1key ;;     # trl-1key, while scraped
        *) echo "/$1" ;;
    esac
}

# --- 1. throughput --------------------------------------------------------------

if [ -n "$NGINX_CPUS" ]; then
    AFFINITY="worker_cpu_affinity auto $(affinity_mask "$NGINX_CPUS");"
else
    AFFINITY=""
fi

TP=$OUT/tput
new_prefix "$TP"
TP_PORT=$(free_port)
write_conf bench/nginx.conf.in "$TP" "$TP_PORT" "$AFFINITY" "" > "$TP/nginx.conf"
start_nginx "$TP" "$TP_PORT"
if [ -n "$SYNC_ON" ]; then
    # the workers' links to Redis are up (or the log says why not)
    for i in $(seq 100); do
        (( $(rcli CLIENT LIST TYPE normal | wc -l) > WORKERS )) && break
        sleep 0.05
    done
    cp "$TP/logs/error.log" "$OUT/wrk/startup.errlog"
fi
TP_MASTER=$(cat "$TP/nginx.pid")
for i in $(seq 100); do
    mapfile -t TP_WORKERS < <(worker_pids "$TP_MASTER")
    (( ${#TP_WORKERS[@]} >= WORKERS )) && break
    sleep 0.05
done
(( ${#TP_WORKERS[@]} >= WORKERS )) || die "nginx workers did not start"

# cpu_jiffies CPULIST: "busy total" jiffies of those CPUs from /proc/stat
# (busy: all but idle and iowait; softirq included: the receive work of a
# process's loopback traffic is counted there, and in the process's own
# utime+stime as well)
cpu_jiffies() {
    [ -n "$1" ] || { echo "0 0"; return; }
    perl -e '
        my %want = map { $_ => 1 } split /\n/, shift;
        my ($busy, $total) = (0, 0);
        open my $fh, "<", "/proc/stat" or die;
        while (<$fh>) {
            next unless /^cpu(\d+)\s+(.*)/ && $want{$1};
            my @f = split " ", $2;      # user nice system idle iowait ...
            my $t = 0;
            $t += $_ for @f[0 .. 7];
            $total += $t;
            $busy += $t - $f[3] - $f[4];
        }
        print "$busy $total\n"' "$(cpu_list "$1")"
}

# run_wrk COLUMN SECONDS OUTFILE [WRK ARGS...]: one wrk run (by default
# bench/keys.lua with CONNECTIONS connections; the script's arguments are
# the column's number of keys, then WRK_XARG if set); sets RUN_TICKS (nginx worker
# CPU ticks), RUN_WALL (ms), RUN_LINES (error-log lines written),
# RUN_WRKCPU (how busy wrk's CPUs were, percent; - when wrk is unpinned) and,
# with SYNC_ON, RUN_REDIS (redis_delta over the run; after a sync column,
# two intervals later, so that its last publish is in).  For trl-1key-api,
# the API scraper runs beside wrk: its summary is in OUTFILE.scrape
run_wrk() {
    local col=$1 secs=$2 file=$3 t0 t1 c0 c1 lines b0 n0 b1 n1 args g0 m0 g1 m1
    local spid=""
    shift 3
    args=("$@")
    (( ${#args[@]} )) || args=(-c"$CONNECTIONS" -s bench/keys.lua)
    : > "$TP/logs/error.log"
    [ -n "$SYNC_ON" ] && redis_info "$OUT/redis/info.before"
    c0=$(cpu_ticks "${TP_WORKERS[@]}")
    read -r b0 n0 < <(cpu_jiffies "$WRK_CPUS")
    read -r g0 m0 < <(cpu_jiffies "$NGINX_CPUS")
    if [ "$col" = trl-1key-api ]; then
        # scrapes at 1/2, 3/2, ... API_SCRAPE_EVERY into the run: all of
        # them while wrk runs (it starts a few ms after this)
        start_bg "$WRK_CPUS" "$file.scrape" perl bench/apiclient.pl \
            --port "$TP_PORT" --every "$API_SCRAPE_EVERY" --duration "$secs" \
            --timeout $((secs + 30)) "$API_LOC/" "$API_LOC/metrics"
        spid=$BG_PID
    fi
    t0=$(date +%s%N)
    on_cpus "$WRK_CPUS" timeout -k 5 $((secs + 30)) \
        wrk -t"$THREADS" -d"${secs}s" --timeout 10s "${args[@]}" \
            "http://127.0.0.1:$TP_PORT$(path_of "$col")" \
            -- "$(keys_of "$col")" ${WRK_XARG:+"$WRK_XARG"} > "$file" 2>&1 \
        || { cat "$file" >&2; die "wrk failed on $col"; }
    t1=$(date +%s%N)
    if [ -n "$spid" ] && ! wait "$spid"; then
        cat "$file.scrape" >&2
        die "the API scraper failed during $col"
    fi
    read -r b1 n1 < <(cpu_jiffies "$WRK_CPUS")
    read -r g1 m1 < <(cpu_jiffies "$NGINX_CPUS")
    c1=$(cpu_ticks "${TP_WORKERS[@]}")
    RUN_REDIS=""
    if [ -n "$SYNC_ON" ]; then
        is_sync "$col" && sleep "$(( 2 * SYNC_INTERVAL_MS + 50 ))e-3"
        redis_info "$OUT/redis/info.after"
        RUN_REDIS=$(redis_delta "$OUT/redis/info.before" "$OUT/redis/info.after")
    fi
    lines=$(wc -l < "$TP/logs/error.log")
    # the link to Redis went down (a missed deadline, say): fail=open
    # decides locally until it is back
    RUN_DOWN=$(grep -c 'is unreachable' "$TP/logs/error.log" || true)
    head -c 4096 "$TP/logs/error.log" > "$file.errlog.head"
    : > "$TP/logs/error.log"
    RUN_TICKS=$((c1 - c0))
    RUN_WALL=$(( (t1 - t0) / 1000000 ))
    RUN_LINES=$lines
    RUN_WRKCPU=-
    (( n1 > n0 )) && RUN_WRKCPU=$(( 100 * (b1 - b0) / (n1 - n0) ))
    # how busy nginx's CPUs were, all processes on them: above the worker's
    # own share, something else ran there (other load on the machine)
    RUN_NGXCPU=-
    (( m1 > m0 )) && RUN_NGXCPU=$(( 100 * (g1 - g0) / (m1 - m0) ))
    return 0
}

# Waiting for an idle machine (IDLE_WAIT).

# busy_pct SECONDS: how busy all CPUs were over that time, percent
busy_pct() {
    local b0 n0 b1 n1
    read -r b0 n0 < <(cpu_jiffies "0-$((NCPU - 1))")
    sleep "$1"
    read -r b1 n1 < <(cpu_jiffies "0-$((NCPU - 1))")
    echo $(( n1 > n0 ? 100 * (b1 - b0) / (n1 - n0) : 0 ))
}

if (( IDLE_WAIT > 0 )); then
    t_idle=$SECONDS
    while :; do
        busy=$(busy_pct 2)
        (( busy < 10 )) && break
        if (( SECONDS - t_idle >= IDLE_WAIT )); then
            note "the machine is still ${busy}% busy after ${IDLE_WAIT}s: going on"
            break
        fi
        note "waiting for an idle machine: ${busy}% busy"
    done
    echo "host.idle_wait_s $((SECONDS - t_idle)) busy_pct $busy" >> "$OUT/meta.txt"
fi

ncol=$(echo $COLUMNS | wc -w)
est=$(( ROUNDS * ncol * (DURATION + 1) + ncol * (WARMUP + 1) ))
if [ -n "$SYNC_ON" ]; then
    nsync=0
    for col in $COLUMNS; do
        is_sync "$col" && nsync=$((nsync + 1))
    done
    est=$(( est + (ROUNDS + 1) * nsync * (2 * SYNC_INTERVAL_MS + 50) / 1000 ))
fi
note "throughput: $ROUNDS rounds x $ncol columns x ${DURATION}s (about ${est}s)"

if (( WARMUP > 0 )); then
    for col in $COLUMNS; do
        run_wrk "$col" "$WARMUP" "$OUT/wrk/warmup-$col.txt"
    done
fi

# Round r goes over the columns starting at the r-th, so that no column is
# always first (or always right after a given one).
read -r -a COLS <<< "$COLUMNS"
rotated() {
    local i n=${#COLS[@]}
    for (( i = 0; i < n; i++ )); do
        echo "${COLS[(i + $1 - 1) % n]}"
    done
}

printf 'round\tcolumn\trequests\tseconds\trps\tnon2xx\tsocket_errors\tcpu_ticks\twall_ms\terrlog_lines\twrk_cpu_pct\tnginx_cpu_pct\n' \
    > "$OUT/runs.tsv"
if [ -n "$SYNC_ON" ]; then
    printf 'round\tcolumn\t%s\tlink_down\n' "$(tr ' ' '\t' <<< "$REDIS_FIELDS")" \
        > "$OUT/redis.tsv"
fi
if [[ " $COLUMNS " == *" trl-1key-api "* ]]; then
    printf 'round\tcolumn\tpath\texpected\tn\tstatus_200\tbytes\tmed_ms\tp90_ms\tmax_ms\tmean_ms\n' \
        > "$OUT/scrape.tsv"
    # scrapes per run: the rounds at (k + 1/2) * API_SCRAPE_EVERY < DURATION
    SCRAPES=$(perl -e 'my ($d, $e) = @ARGV; my $n = 0;
                       $n++ while ($n + 0.5) * $e < $d; print $n' \
              "$DURATION" "$API_SCRAPE_EVERY")
    echo "api.scrape_every_s $API_SCRAPE_EVERY" >> "$OUT/meta.txt"
    echo "api.scrapes_per_run $SCRAPES" >> "$OUT/meta.txt"
fi
T_TPUT=$SECONDS
echo "host.loadavg_before $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/meta.txt"
for round in $(seq "$ROUNDS"); do
    for col in $(rotated "$round"); do
        f=$OUT/wrk/round$round-$col.txt
        run_wrk "$col" "$DURATION" "$f"
        perl -ne '
            BEGIN { ($r, $c, $t, $w, $l, $wc, $nc) = splice @ARGV, 0, 7;
                    $n2 = 0; $se = 0 }
            if (/(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b/) {
                $req = $1;
                $sec = $2 * { us => 1e-6, ms => 1e-3, s => 1, m => 60,
                              h => 3600 }->{$3};
            }
            $rps = $1 if /^Requests\/sec:\s+([\d.]+)/;
            $n2 = $1 if /Non-2xx or 3xx responses:\s+(\d+)/;
            if (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/) {
                $se = $1 + $2 + $3 + $4;
            }
            END {
                defined $req && defined $rps or die "bench: cannot read wrk output\n";
                printf "%s\t%s\t%d\t%.3f\t%.2f\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
                    $r, $c, $req, $sec, $rps, $n2, $se, $t, $w, $l, $wc, $nc;
            }' "$round" "$col" "$RUN_TICKS" "$RUN_WALL" "$RUN_LINES" \
              "$RUN_WRKCPU" "$RUN_NGXCPU" "$f" >> "$OUT/runs.tsv"
        tail -1 "$OUT/runs.tsv" | awk -F'\t' -v tck="$CLK_TCK" -v w="$WORKERS" '{
            printf "bench:   round %s %-18s %8.0f req/s  non-2xx %-7d" \
                   "  nginx busy %3.0f%% (its CPU %s%%)  wrk CPU %s%%\n", $1, $2, $5, $6,
                   $8 / tck / $4 / w * 100, $12, $11 }' >&2
        if [ "$col" = trl-1key-api ]; then
            perl -ne '
                BEGIN { ($r, $c, $x) = splice @ARGV, 0, 3 }
                next unless /^path=/;
                my %v = map { /^([^=]+)=(.*)$/ } split " ";
                print join("\t", $r, $c, $v{path}, $x, $v{n},
                    $v{status_200} // 0, @v{qw(bytes med_ms p90_ms max_ms mean_ms)}),
                    "\n";
            ' "$round" "$col" "$SCRAPES" "$f.scrape" >> "$OUT/scrape.tsv"
            tail -2 "$OUT/scrape.tsv" | awk -F'\t' '{
                printf "bench:            scrape %-16s %d of %d 200 OK" \
                       "  median %.2f ms  max %.2f ms  %d bytes\n",
                       $3, $6, $4, $8, $10, $7 }' >&2
        fi
        if [ -n "$SYNC_ON" ]; then
            printf '%s\t%s\t%s\t%s\n' "$round" "$col" "$RUN_REDIS" "$RUN_DOWN" \
                >> "$OUT/redis.tsv"
            if is_sync "$col"; then
                # scripts, their usec, keys published, keys read; per second
                awk -F'\t' -v sec="$(tail -1 "$OUT/runs.tsv" | cut -f4)" \
                        -v down="$RUN_DOWN" '{
                    printf "bench:            redis: %.0f scripts/s (%.0f us each)," \
                           " keys published %.0f/s, read %.0f/s, CPU %.0f%%;" \
                           " link down %d times\n",
                           $1 / sec, $1 ? $2 / $1 : 0, $5 / sec, $6 / sec,
                           $11 / sec / 1e4, down }' <<< "$RUN_REDIS" >&2
            fi
        fi
    done
done

echo "host.loadavg_after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/meta.txt"
echo "time.throughput_s $((SECONDS - T_TPUT))" >> "$OUT/meta.txt"

# What one scrape costs the throughput nginx, now idle: the workers' CPU
# time per GET API_LOC/ and per GET API_LOC/metrics (10 of each)
if [[ " $COLUMNS " == *" trl-1key-api "* ]]; then
    for p in / /metrics; do
        ns0=$(cpu_ns "${TP_WORKERS[@]}")
        on_cpus "$WRK_CPUS" perl bench/apiclient.pl --port "$TP_PORT" \
            --count 10 "$API_LOC$p" > "$OUT/wrk/scrape-cost$(tr / - <<< "$p").txt" \
            || die "the API client failed (scrape cost)"
        ns1=$(cpu_ns "${TP_WORKERS[@]}")
        name=json
        [ "$p" = / ] || name=${p#/}
        perl -e 'printf "api.scrape_cpu_ms.%s %.3f\n", $ARGV[0],
                     ($ARGV[2] - $ARGV[1]) / 1e6 / 10' "$name" "$ns0" "$ns1" \
            >> "$OUT/meta.txt"
    done
    note "one scrape, idle: $(sed -n 's/^api\.scrape_cpu_ms\.json //p' "$OUT/meta.txt") ms" \
         "of nginx CPU for $API_LOC/, $(sed -n 's/^api\.scrape_cpu_ms\.metrics //p' \
         "$OUT/meta.txt") ms for $API_LOC/metrics"
fi

if grep -Eq '\[(alert|crit|emerg)\]|exited on signal' "$TP/logs/error.log" "$OUT"/wrk/*.errlog.head 2>/dev/null; then
    note "WARNING: nginx logged alerts during the throughput runs (see $OUT/wrk/*.errlog.head)"
fi

# --- 1b. strict latency -----------------------------------------------------------

# median_rps COLUMN: its median req/s in runs.tsv (empty if not run)
median_rps() {
    perl -F'\t' -lane '
        BEGIN { $c = shift @ARGV }
        push @v, $F[4] if $. > 1 && $F[1] eq $c;
        END {
            exit unless @v;
            @v = sort { $a <=> $b } @v;
            printf "%.0f\n", @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
        }' "$1" "$OUT/runs.tsv"
}

LAT_REDIS_CPUS=${LAT_REDIS_CPUS-$REDIS_CPUS}
if [ -n "$SYNC_ON" ] && [ -z "$NO_LATENCY" ] \
        && [[ " $COLUMNS " == *" trl-strict-1key "* ]]; then
    T_LAT=$SECONDS
    sat=$(median_rps trl-strict-1key)
    rate=${LAT_RATE:-$(( sat / 2 ))}
    (( rate >= THREADS )) || die "strict latency: rate $rate is below one request per second per thread"
    per_thread=$(( rate / THREADS ))
    rate=$(( per_thread * THREADS ))
    {
        echo "lat.saturation_rps $sat"
        echo "lat.rate $rate"
        echo "lat.rate_from $([ -n "$LAT_RATE" ] && echo LAT_RATE || echo half)"
        echo "lat.connections $LAT_CONNECTIONS"
        echo "lat.rounds $LAT_ROUNDS"
        echo "lat.duration_s $LAT_DURATION"
    } >> "$OUT/meta.txt"
    placements=${LAT_REDIS_CPUS:-any}
    nplace=$(echo $placements | wc -w)
    note "strict latency: trl-strict-1key saturates at $sat req/s; $LAT_ROUNDS rounds" \
         "x 2 columns x ${LAT_DURATION}s at $rate req/s, -c$LAT_CONNECTIONS," \
         "redis-server on CPUs: $placements" \
         "(about $(( nplace * LAT_ROUNDS * 2 * (LAT_DURATION + 1) ))s)"
    printf 'redis_cpus\tround\tcolumn\trate\trequests\tseconds\tp50_us\tp90_us\tp99_us\tp999_us\tmax_us\tmean_us\tlate\tslots\terrors\tstatus_errors\tcpu_ticks\terrlog_lines\tscripts\tnginx_cpu_pct\twrk_cpu_pct\tlink_down\n' \
        > "$OUT/latency.tsv"
    for place in $placements; do
        if [ "$place" != any ]; then
            taskset -a -p -c "$place" "$REDIS_PID" > /dev/null \
                || die "cannot move redis-server to CPUs $place"
        else
            taskset -a -p -c "0-$((NCPU - 1))" "$REDIS_PID" > /dev/null || true
        fi
        for round in $(seq "$LAT_ROUNDS"); do
            cols="trl-1key trl-strict-1key"
            (( round % 2 )) || cols="trl-strict-1key trl-1key"
            for col in $cols; do
                f=$OUT/wrk/latency-cpu$place-round$round-$col.txt
                WRK_XARG=$per_thread run_wrk "$col" "$LAT_DURATION" "$f" \
                    -c"$LAT_CONNECTIONS" --latency -s bench/paced.lua
                line=$(grep '^paced:' "$f") \
                    || { cat "$f" >&2; die "no paced: line in $f"; }
                perl -e '
                    my ($place, $round, $col, $rate, $ticks, $lines, $redis, $ncpu,
                        $wcpu, $down, $line) = @ARGV;
                    my %v = $line =~ /(\w+)=([\d.]+)/g;
                    my $scripts = (split /\t/, $redis)[0] // "-";
                    print join("\t", $place, $round, $col, $rate, $v{requests},
                        sprintf("%.3f", $v{duration_us} / 1e6),
                        @v{qw(p50_us p90_us p99_us p999_us max_us mean_us late slots
                              errors status_errors)}, $ticks, $lines,
                        $scripts eq "" ? "-" : $scripts, $ncpu, $wcpu, $down), "\n";
                ' "$place" "$round" "$col" "$rate" "$RUN_TICKS" "$RUN_LINES" \
                  "$RUN_REDIS" "$RUN_NGXCPU" "$RUN_WRKCPU" "$RUN_DOWN" "$line" \
                  >> "$OUT/latency.tsv"
                tail -1 "$OUT/latency.tsv" | awk -F'\t' '{
                    printf "bench:   redis on %s, round %s %-16s %6.0f req/s" \
                           "  p50 %5d us  p99 %5d us  p99.9 %5d us  late %d" \
                           "  link down %d\n",
                           $1, $2, $3, $5 / $6, $7, $9, $10, $13, $22 }' >&2
            done
        done
    done
    # back where the throughput runs had it
    if [ -n "$REDIS_CPUS" ]; then
        taskset -a -p -c "$REDIS_CPUS" "$REDIS_PID" > /dev/null || true
    else
        taskset -a -p -c "0-$((NCPU - 1))" "$REDIS_PID" > /dev/null || true
    fi
    echo "time.latency_s $((SECONDS - T_LAT))" >> "$OUT/meta.txt"
fi
stop_nginx "$TP"

# --- 1c. API render time ----------------------------------------------------------

# api_zone_json FILE PHASE: meta lines from the zone's JSON (GET
# API_LOC/zones/api) saved in FILE
api_zone_json() {
    perl -MJSON::PP -e '
        my ($file, $phase) = @ARGV;
        open my $fh, "<", $file or die "$file: $!\n";
        local $/;
        my $z = eval { JSON::PP->new->decode(<$fh>) }
            or die "bench: part 1c: the zone JSON does not parse: $@\n";
        my $p = $z->{penalties} || [];
        printf "api.%s.zone_keys %d\napi.%s.zone_capacity %d\n"
             . "api.%s.penalties_active %d\napi.%s.penalties_listed %d\n"
             . "api.%s.penalties_with_key %d\napi.%s.top_offenders %d\n"
             . "api.%s.rejected %d\n",
            $phase, $z->{memory}{keys}, $phase, $z->{memory}{capacity},
            $phase, $z->{penalties_active}, $phase, scalar @$p,
            $phase, scalar(grep { defined $_->{key} || defined $_->{key_hex} } @$p),
            $phase, scalar @{$z->{top_offenders} || []},
            $phase, $z->{requests}{rejected};
    ' "$1" "$2"
}

# api_tsv PHASE LABEL CPU_MS FILE: api.tsv lines from apiclient.pl's output
api_tsv() {
    perl -ne '
        BEGIN { ($ph, $lab, $cpu) = splice @ARGV, 0, 3;
                %lab = map { my ($l, $p) = split /=/, $_, 2; ($p, $l) }
                       split / /, $lab }
        next unless /^path=/;
        my %v = map { /^([^=]+)=(.*)$/ } split " ";
        print join("\t", $ph, $lab{$v{path}} // $lab, $v{path}, $v{n},
            $v{status_200} // 0, @v{qw(bytes med_ms p90_ms max_ms mean_ms)},
            $cpu), "\n";
    ' "$1" "$2" "$3" "$4"
}

if [ -z "$NO_API_TIMING" ]; then
    T_API=$SECONDS
    AP=$OUT/api
    new_prefix "$AP"
    AP_PORT=$(free_port)
    write_conf bench/api.conf.in "$AP" "$AP_PORT" "$AFFINITY" "" > "$AP/nginx.conf"
    start_nginx "$AP" "$AP_PORT"
    AP_MASTER=$(cat "$AP/nginx.pid")
    for i in $(seq 100); do
        mapfile -t AP_WORKERS < <(worker_pids "$AP_MASTER")
        (( ${#AP_WORKERS[@]} >= 1 )) && break
        sleep 0.05
    done
    (( ${#AP_WORKERS[@]} == 1 )) || die "API render time: no nginx worker"
    AP_WORKER=${AP_WORKERS[0]}
    api_over=$(( API_KEYS * API_OVER / 100 ))
    note "API render time: zone \"api\" of $API_ZONE_SIZE, $API_KEYS keys," \
         "$api_over of them over their limit (penalty 10m); $API_REPEAT calls each"
    # the fill: every key once (admitted), then the first API_OVER percent
    # once more (rejected: a penalty each)
    t_fill=$(date +%s%N)
    on_cpus "$WRK_CPUS" perl bench/hclient.pl --port "$AP_PORT" --path /limited \
        --from 1 --to "$API_KEYS" --wrk-keys --pipeline 256 --timeout 60 \
        > "$AP/fill-admit.txt" || die "API render time: the fill failed"
    if (( api_over > 0 )); then
        on_cpus "$WRK_CPUS" perl bench/hclient.pl --port "$AP_PORT" \
            --path /limited --from 1 --to "$api_over" --wrk-keys \
            --pipeline 256 --timeout 60 \
            > "$AP/fill-reject.txt" || die "API render time: the fill failed"
    else
        echo "sent=0" > "$AP/fill-reject.txt"
    fi
    fill_ms=$(( ($(date +%s%N) - t_fill) / 1000000 ))
    {
        echo "api.zone_size $API_ZONE_SIZE"
        echo "api.keys_sent $API_KEYS"
        echo "api.over_sent $api_over"
        echo "api.fill_ms $fill_ms"
        echo "api.fill_admitted $(kv status_200 "$AP/fill-admit.txt")"
        echo "api.fill_rejected $(kv status_429 "$AP/fill-reject.txt")"
        echo "api.repeat $API_REPEAT"
        echo "api.max_ms $API_MAX_MS"
    } >> "$OUT/meta.txt"
    note "  filled in ${fill_ms} ms: $(kv status_200 "$AP/fill-admit.txt") admitted," \
         "$(kv status_429 "$AP/fill-reject.txt") rejected"

    API_CALLS=("zone=$API_LOC/zones/api" "all=$API_LOC/" "metrics=$API_LOC/metrics"
               "key=$API_LOC/zones/api/keys?key=key-000000")
    labels=""
    for c in "${API_CALLS[@]}"; do
        labels="$labels $c"
    done
    labels=${labels# }
    printf 'phase\tcall\tpath\tn\tstatus_200\tbytes\tmed_ms\tp90_ms\tmax_ms\tmean_ms\tcpu_ms\n' \
        > "$OUT/api.tsv"

    # idle: one call at a time, API_REPEAT times, the worker's CPU around it
    for c in "${API_CALLS[@]}"; do
        label=${c%%=*}
        mkdir -p "$AP/idle-$label"
        ns0=$(cpu_ns "$AP_WORKER")
        on_cpus "$WRK_CPUS" perl bench/apiclient.pl --port "$AP_PORT" \
            --count "$API_REPEAT" --save "$AP/idle-$label" \
            --times "$AP/idle-$label.times" "${c#*=}" \
            > "$AP/idle-$label.txt" \
            || die "API render time: the client failed (${c#*=})"
        ns1=$(cpu_ns "$AP_WORKER")
        cpu=$(perl -e 'printf "%.3f", ($ARGV[1] - $ARGV[0]) / 1e6 / $ARGV[2]' \
              "$ns0" "$ns1" "$API_REPEAT")
        api_tsv idle "$labels" "$cpu" "$AP/idle-$label.txt" >> "$OUT/api.tsv"
        tail -1 "$OUT/api.tsv" | awk -F'\t' '{
            printf "bench:   idle %-8s %3d/%d 200 OK  median %7.2f ms  p90 %7.2f ms" \
                   "  max %7.2f ms  CPU %6.2f ms/call  %d bytes\n",
                   $2, $5, $4, $7, $8, $9, $11, $6 }' >&2
    done
    api_zone_json "$AP/idle-zone/1.body" idle >> "$OUT/meta.txt" \
        || die "API render time: no zone JSON"
    note "  zone: $(sed -n 's/^api\.idle\.zone_keys //p' "$OUT/meta.txt") keys," \
         "$(sed -n 's/^api\.idle\.penalties_active //p' "$OUT/meta.txt") penalties active"

    # under load: wrk on /limited with the same keys (all rejected now, or
    # about to be), the four calls interleaved from one second on
    if (( API_LOAD )); then
        mkdir -p "$AP/load"
        # wrk stops at SIGINT (and prints its figures), at the latest
        # after 60 s
        start_bg "$WRK_CPUS" "$AP/load-wrk.txt" wrk -t"$THREADS" \
            -c"$CONNECTIONS" -d60s --timeout 10s -s bench/keys.lua \
            "http://127.0.0.1:$AP_PORT/limited" -- "$API_KEYS"
        wpid=$BG_PID
        sleep 1
        kill -0 "$wpid" 2>/dev/null \
            || { cat "$AP/load-wrk.txt" >&2; die "API render time: wrk failed"; }
        paths=()
        for c in "${API_CALLS[@]}"; do
            paths+=("${c#*=}")
        done
        t_load=$(date +%s%N)
        on_cpus "$WRK_CPUS" perl bench/apiclient.pl --port "$AP_PORT" \
            --count "$API_REPEAT" --pause 0.025 --save "$AP/load" \
            --times "$AP/load.times" \
            "${paths[@]}" > "$AP/load.txt" \
            || die "API render time: the client failed under load"
        load_ms=$(( ($(date +%s%N) - t_load) / 1000000 ))
        kill -0 "$wpid" 2>/dev/null \
            || note "WARNING: API render time: wrk ended before the timings under load did"
        kill -INT "$wpid" 2>/dev/null || true
        wait "$wpid" || { cat "$AP/load-wrk.txt" >&2; die "API render time: wrk failed"; }
        api_tsv load "$labels" - "$AP/load.txt" >> "$OUT/api.tsv"
        tail -n "${#API_CALLS[@]}" "$OUT/api.tsv" | awk -F'\t' '{
            printf "bench:   load %-8s %3d/%d 200 OK  median %7.2f ms  p90 %7.2f ms" \
                   "  max %7.2f ms  %d bytes\n", $2, $5, $4, $7, $8, $9, $6 }' >&2
        api_zone_json "$AP/load/1.body" load >> "$OUT/meta.txt" \
            || die "API render time: no zone JSON"
        perl -ne '
            BEGIN { $ms = shift; $n2 = 0 }
            if (/(\d+) requests in ([\d.]+)(us|ms|s|m)\b/) {
                $req = $1;
                $sec = $2 * { us => 1e-6, ms => 1e-3, s => 1, m => 60 }->{$3};
            }
            $n2 = $1 if /Non-2xx or 3xx responses:\s+(\d+)/;
            END {
                defined $req or die "bench: cannot read wrk output (part 1c)\n";
                printf "api.load.wrk_requests %d\napi.load.wrk_seconds %.3f\n"
                     . "api.load.wrk_rps %.0f\napi.load.wrk_non2xx %d\n"
                     . "api.load.timing_ms %d\n",
                    $req, $sec, $req / $sec, $n2, $ms;
            }' "$load_ms" "$AP/load-wrk.txt" >> "$OUT/meta.txt"
        note "  under load: $(sed -n 's/^api\.load\.wrk_rps //p' "$OUT/meta.txt") req/s" \
             "on /limited ($(sed -n 's/^api\.load\.wrk_non2xx //p' "$OUT/meta.txt") non-2xx)," \
             "$(sed -n 's/^api\.load\.penalties_active //p' "$OUT/meta.txt") penalties active"
    fi
    if grep -Eq '\[(alert|crit|emerg)\]|exited on signal' "$AP/logs/error.log"; then
        note "WARNING: nginx logged alerts during the API timings ($AP/logs/error.log)"
    fi
    stop_nginx "$AP"
    echo "time.api_s $((SECONDS - T_API))" >> "$OUT/meta.txt"
fi

# --- 2. callgrind ---------------------------------------------------------------

# cg_run COLUMN K: a single-process nginx under callgrind serves K requests
# of COLUMN; sets CG_IR (its Ir total) and CG_CLIENT (the client's summary)
# and leaves its callgrind.out under $OUT/callgrind
cg_run() {
    local col=$1 k=$2 path nomod="" prefix port pid out keys i cmd down0=0
    local CONF_API=""
    path=/$col
    if [ "$col" = stock-nomodule ]; then
        path=/stock
        nomod="#"
    fi
    case $col in
        trl-1key-noapi)
            path=/trl-1key
            CONF_API="#"
            ;;
        trl-1key-listed)
            path=/trl-1key
            ;;
    esac
    keys=1
    [[ "$col" == *-100k ]] && keys=$CG_KEYS
    prefix=$OUT/callgrind/$col-$k
    out=$OUT/callgrind/callgrind.out.$col.$k
    new_prefix "$prefix"
    port=$(free_port)
    write_conf bench/nginx.conf.in "$prefix" "$port" \
        "master_process off; daemon off;" "$nomod" "$CG_SYNC_TIMEOUT" \
        > "$prefix/nginx.conf"
    "$NGINX_BIN" -t -p "$prefix/" -c "$prefix/nginx.conf" \
        -e "$prefix/logs/error.log" > "$prefix/nginx-t.log" 2>&1 \
        || { cat "$prefix/nginx-t.log" >&2; die "nginx -t failed ($col)"; }
    cmd=(valgrind --tool=callgrind --callgrind-out-file="$out"
         "$NGINX_BIN" -p "$prefix/" -c "$prefix/nginx.conf"
         -e "$prefix/logs/error.log")
    [ -n "$NGINX_CPUS" ] && cmd=(taskset -c "$NGINX_CPUS" "${cmd[@]}")
    # taskset execs valgrind, which runs nginx in its own process: $! is it
    "${cmd[@]}" > "$prefix/valgrind.log" 2>&1 &
    pid=$!
    track_pid "$pid"
    if ! wait_port "$port" 120; then
        cat "$prefix/valgrind.log" >&2
        die "nginx under callgrind did not answer ($col)"
    fi
    CG_SCRIPTS=-
    if [ -n "$SYNC_ON" ] && [ -z "$nomod" ]; then
        # its link to Redis is set up (this nginx is Redis's only other
        # client; its last command is a SCRIPT LOAD of the set-up, or a
        # script), then a moment for nginx to take the replies: requests
        # sent before that are decided by fail=open, and the set-up's work
        # would land in one run and not the other
        for i in $(seq 600); do
            rcli CLIENT LIST TYPE normal | grep -Eq 'cmd=(script\|load|evalsha)' \
                && break
            sleep 0.1
        done
        sleep 0.5
        redis_info "$prefix/redis.before"
        # a worker's link reports a false outage at start-up (seen under
        # valgrind): only what happens from here on counts
        down0=$(grep -c 'is unreachable' "$prefix/logs/error.log" || true)
    fi
    if [ "$col" = trl-1key-listed ]; then
        # one runtime deny entry, for an address that never comes
        on_cpus "$WRK_CPUS" perl bench/apiclient.pl --port "$port" --method POST \
            --count 1 --timeout 300 "$API_LOC/lists/deny?address=192.0.2.1" \
            > "$prefix/listed.txt" \
            || die "the API client failed against callgrind ($col, $k)"
        [ "$(kv status_201 "$prefix/listed.txt")" = 1 ] \
            || die "POST $API_LOC/lists/deny did not answer 201: $(cat "$prefix/listed.txt")"
    fi
    on_cpus "$WRK_CPUS" perl bench/hclient.pl --port "$port" --path "$path" \
        --count "$k" --keys "$keys" --key-len 10 --timeout 300 \
        > "$prefix/client.txt" \
        || die "the client failed against callgrind ($col, $k)"
    kill -QUIT "$pid"
    for i in $(seq 1200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        die "nginx under callgrind did not exit ($col)"
    fi
    wait "$pid" 2>/dev/null || true
    if [ -f "$prefix/redis.before" ]; then
        # script calls Redis saw from this run, its exit's publish included
        redis_info "$prefix/redis.after"
        CG_SCRIPTS=$(redis_delta "$prefix/redis.before" "$prefix/redis.after" | cut -f1)
        if (( $(grep -c 'is unreachable' "$prefix/logs/error.log" || true) > down0 )); then
            note "WARNING: the link to Redis went down while callgrind's nginx served ($col, $k):"
            grep 'is unreachable' "$prefix/logs/error.log" | tail -3 >&2
        fi
    fi
    CG_IR=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1)
    [ -n "$CG_IR" ] || CG_IR=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out" | head -1)
    [ -n "$CG_IR" ] || die "no summary/totals line in $out"
    CG_CLIENT=$(cat "$prefix/client.txt")
}

if [ -z "$NO_CALLGRIND" ]; then
    T_CG=$SECONDS
    # trl-1key-api's requests are trl-1key's: its scrapes come once a
    # second, not per request
    CG_COLUMNS=$(echo $COLUMNS $CG_EXTRA | tr ' ' '\n' \
                 | awk '$0 != "trl-1key-api" && !seen[$0]++' | paste -sd' ' -)
    note "callgrind: $(echo $CG_COLUMNS | wc -w) columns x ($CG_K1, $CG_K2) requests"
    printf 'column\tk1\tir1\tk2\tir2\tir_per_req\tclient_k2\tscripts1\tscripts2\n' > "$OUT/callgrind.tsv"
    for col in $CG_COLUMNS; do
        cg_run "$col" "$CG_K1"
        ir1=$CG_IR
        scripts1=$CG_SCRIPTS
        cg_run "$col" "$CG_K2"
        ir2=$CG_IR
        scripts2=$CG_SCRIPTS
        client2=$CG_CLIENT
        per=$(perl -e 'printf "%.1f", ($ARGV[1] - $ARGV[0]) / ($ARGV[3] - $ARGV[2])' \
              "$ir1" "$ir2" "$CG_K1" "$CG_K2")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$col" "$CG_K1" "$ir1" "$CG_K2" \
            "$ir2" "$per" "$client2" "$scripts1" "$scripts2" >> "$OUT/callgrind.tsv"
        note "  $col: $per Ir/request ($client2)$(is_sync "$col" \
              && echo "; Redis scripts: $scripts1, $scripts2")"
        for k in "$CG_K1" "$CG_K2"; do
            callgrind_annotate --inclusive=no --auto=no --threshold=100 \
                "$OUT/callgrind/callgrind.out.$col.$k" \
                > "$OUT/callgrind/$col.$k.annotate.txt" 2>/dev/null || true
        done
    done
    # where the instructions per request go, against stock and against
    # limit_req of the same key kind
    for col in $CG_COLUMNS; do
        case $col in
            trl-1key) pair="limit_req trl-1key-noapi" ;;
            trl-1key-listed) pair="limit_req trl-1key" ;;
            trl-1key*) pair=limit_req ;;
            trl-100k) pair=limit_req-100k ;;
            trl-reject) pair=limit_req-reject ;;
            trl-async-1key|trl-strict-1key) pair=trl-1key ;;
            trl-async-100k) pair=trl-100k ;;
            *) pair="" ;;
        esac
        for base in stock $pair; do
            [ "$col" != "$base" ] || continue
            [[ " $CG_COLUMNS " == *" $base "* ]] || continue
            perl bench/cgdiff.pl "$OUT/callgrind" "$base" "$col" "$CG_K1" \
                "$CG_K2" > "$OUT/callgrind/$col.vs-$base.diff.txt" || true
        done
    done
    echo "time.callgrind_s $((SECONDS - T_CG))" >> "$OUT/meta.txt"
fi

stop_redis          # the memory runs do not use it

# --- 3. memory ------------------------------------------------------------------

MEM=$OUT/memory
MEM_PORT=""

mem_start() {       # a fresh nginx with bench/memory.conf.in
    stop_nginx "$MEM/prefix" 2>/dev/null || true
    new_prefix "$MEM/prefix"
    MEM_PORT=$(free_port)
    write_conf bench/memory.conf.in "$MEM/prefix" "$MEM_PORT" "" "" \
        > "$MEM/prefix/nginx.conf"
    start_nginx "$MEM/prefix" "$MEM_PORT"
}

client() {          # client ARGS...: hclient.pl against the memory nginx
    perl bench/hclient.pl --port "$MEM_PORT" --timeout 120 "$@"
}

field() {           # field NAME LINE: the value of NAME=value in LINE, or 0
    local v
    v=$(tr ' ' '\n' <<< "$2" | sed -n "s/^$1=//p" | head -1)
    echo "${v:-0}"
}

# first_key_kept KIND LEN K: true if, on a fresh nginx, the first of K keys
# is still held after inserting all K.  (It runs as a "while" condition,
# where set -e does not apply: failures are caught explicitly.  These
# functions are not run in $(...), so that die stops the bench.)
first_key_kept() {
    local kind=$1 len=$2 k=$3 line
    mem_start
    client --path "/$kind-$len" --from 1 --to "$k" --key-len "$len" \
        --pipeline 256 > /dev/null || die "the memory client failed"
    if [ "$kind" = lr ]; then
        line=$(client --path "/$kind-$len" --from 1 --to 1 --key-len "$len") \
            || die "the memory client failed"
        [ "$(field status_503 "$line")" = 1 ]
    else
        line=$(client --path "/$kind-$len" --from 1 --to 1 --key-len "$len" \
                      --hist X-RateLimit-Remaining) \
            || die "the memory client failed"
        [ "$(field remaining_98 "$line")" = 1 ]
    fi
}

# first_key_search KIND LEN: sets KEPT to first_key_kept's largest K, by
# binary search (bounded: 2^20 keys, then "1048576+")
first_key_search() {
    local kind=$1 len=$2 lo=1 hi=4096 mid
    while first_key_kept "$kind" "$len" "$hi"; do
        lo=$hi
        hi=$((hi * 2))
        (( hi <= 1048576 )) || { KEPT="$lo+"; return 0; }
    done
    while (( hi - lo > 1 )); do
        mid=$(( (lo + hi) / 2 ))
        if first_key_kept "$kind" "$len" "$mid"; then
            lo=$mid
        else
            hi=$mid
        fi
    done
    KEPT=$lo
}

# held_after KIND LEN N [FROM]: insert keys 1..N on a fresh nginx (or, with
# FROM, keys FROM..N on the running one), then re-request N..1; sets HELD to
# how many were still held
held_after() {
    local kind=$1 len=$2 n=$3 from=${4:-} line
    if [ -z "$from" ]; then
        mem_start
        from=1
    fi
    if (( from <= n )); then
        client --path "/$kind-$len" --from "$from" --to "$n" --key-len "$len" \
            --pipeline 256 > /dev/null
    fi
    if [ "$kind" = lr ]; then
        line=$(client --path "/$kind-$len" --from 1 --to "$n" --reverse \
                      --key-len "$len" --pipeline 256)
        HELD=$(field status_503 "$line")
    else
        line=$(client --path "/$kind-$len" --from 1 --to "$n" --reverse \
                      --key-len "$len" --pipeline 256 --hist X-RateLimit-Remaining)
        HELD=$(field remaining_98 "$line")
    fi
}

if [ -z "$NO_MEMORY" ]; then
    note "memory: keys a 1m zone holds (48- and 112-byte keys)"
    T_MEM=$SECONDS
    : > "$OUT/memory.txt"
    for len in 48 112; do
        # token_ratelimit: keys inserted before the first "is full" warning
        mem_start
        line=$(client --path "/trl-$len" --from 1 --to 1000000 --key-len "$len" \
                      --index --pipeline 32 --stop-file "$MEM/prefix/logs/error.log" \
                      --stop-re "zone \"m$len\" is full")
        last=$(field last "$line")
        first=$(perl -ne 'if (/zone "m'"$len"'" is full/ && /request: "GET \S+\?i=(\d+)/) {
                              print $1 - 1, "\n"; exit }' "$MEM/prefix/logs/error.log")
        cp "$MEM/prefix/logs/error.log" "$MEM/trl-$len.error.log"
        if [ -z "$first" ]; then
            note "  trl $len: no \"is full\" warning after $last keys"
            first=none
            held=none
        else
            held_after trl "$len" $((2 * first)) $((last + 1))
            held=$HELD
        fi
        echo "mem.trl.$len.first_evict $first" >> "$OUT/memory.txt"
        echo "mem.trl.$len.held_after_2x $held" >> "$OUT/memory.txt"
        note "  trl $len-byte keys: first eviction after $first keys; held $held of $([ "$first" = none ] && echo - || echo $((2 * first)))"

        first_key_search trl "$len"
        kept=$KEPT
        echo "mem.trl.$len.first_key_kept $kept" >> "$OUT/memory.txt"
        note "  trl $len-byte keys: first key kept up to $kept keys"

        first_key_search lr "$len"
        kept=$KEPT
        echo "mem.limit_req.$len.first_key_kept $kept" >> "$OUT/memory.txt"
        held=none
        if [[ "$kept" =~ ^[0-9]+$ ]]; then
            held_after lr "$len" $((2 * kept))
            held=$HELD
        fi
        echo "mem.limit_req.$len.held_after_2x $held" >> "$OUT/memory.txt"
        note "  limit_req $len-byte keys: first key kept up to $kept keys; held $held of $((2 * ${kept%+}))"
    done
    stop_nginx "$MEM/prefix"
    echo "time.memory_s $((SECONDS - T_MEM))" >> "$OUT/meta.txt"
fi
echo "time.total_s $SECONDS" >> "$OUT/meta.txt"

# --- report ---------------------------------------------------------------------

perl bench/report.pl "$OUT" | tee "$OUT/table.txt"
