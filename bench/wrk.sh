#!/usr/bin/env bash
# wrk.sh CPUS SECONDS URL [WRK ARGS...] [-- SCRIPT ARGS...]
# One wrk run of the bench: -t THREADS (environment, default 1), pinned to
# CPUS (unpinned when empty), -d SECONDS, killed 30 s after it should have
# ended.  Its output goes to stdout.
set -euo pipefail
cpus=$1 secs=$2 url=$3
shift 3
args=() script=()
while (( $# )); do
    if [ "$1" = -- ]; then
        shift
        script=("$@")
        break
    fi
    args+=("$1")
    shift
done
dir=$(dirname "${BASH_SOURCE[0]}")
exec "$dir/on-cpus.sh" "$cpus" timeout -k 5 $((secs + 30)) \
    wrk -t"${THREADS:-1}" -d"${secs}s" --timeout 10s "${args[@]}" "$url" \
    ${script[@]+-- "${script[@]}"}
