#!/usr/bin/env bash
# on-cpus.sh CPUS CMD...    runs CMD pinned to CPUS (a taskset list such as
#                           "1" or "0,2"); unpinned when CPUS is empty
# on-cpus.sh -p CPUS PID    moves a running process, all its threads
set -euo pipefail
if [ "${1:-}" = -p ]; then
    exec taskset -a -p -c "$2" "$3" > /dev/null
fi
cpus=$1
shift
if [ -n "$cpus" ]; then
    exec taskset -c "$cpus" "$@"
fi
exec "$@"
