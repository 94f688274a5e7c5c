#!/usr/bin/env bash
# bench/run.sh - make bench: runs the drivers of bench/ in turn, then the
# report.  The knobs (environment) are described in bench/README; each
# driver reads them through bench/lib/Bench.pm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${BENCH_OUT:-build/bench}
perl bench/setup.pl
t0=$SECONDS
perl bench/throughput.pl
[ -n "${NO_LATENCY:-}" ] || perl bench/latency.pl
[ -n "${NO_API_TIMING:-}" ] || perl bench/api_render.pl
[ -n "${NO_CALLGRIND:-}" ] || perl bench/callgrind.pl
[ -n "${NO_MEMORY:-}" ] || perl bench/capacity.pl
echo "time.total_s $((SECONDS - t0))" >> "$OUT/meta.txt"
perl bench/report.pl "$OUT" | tee "$OUT/table.txt"
