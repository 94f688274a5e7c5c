#!/usr/bin/env bash
# Starts nginx in the foreground with the demo config conf.d/run.conf:
# 127.0.0.1:8080 protects a sample token endpoint with token_ratelimit,
# counters in shared memory only.  Ctrl-C stops it.  "make run" builds the
# module first and then runs this.
#
# Environment:
#   NGINX_BIN             nginx binary (default /usr/sbin/nginx)
#   TRL_RUN_PORT          port of the protected API (default 8080)
#   TRL_RUN_BACKEND_PORT  port of the stand-in auth service (default 8081)
#   TRL_RUN_PREFIX        nginx prefix: config, pid, temp files
#                         (default build/run)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nginx=${NGINX_BIN:-/usr/sbin/nginx}
module=$root/build/ngx_http_token_ratelimit_module.so
template=$root/conf.d/run.conf
port=${TRL_RUN_PORT:-8080}
backend_port=${TRL_RUN_BACKEND_PORT:-8081}
prefix=${TRL_RUN_PREFIX:-$root/build/run}

if [ ! -x "$nginx" ]; then
    echo "run.sh: no nginx binary at $nginx (run scripts/install-deps.sh" \
         "or set NGINX_BIN)" >&2
    exit 1
fi
if [ ! -f "$module" ]; then
    echo "run.sh: $module is not built; run make" >&2
    exit 1
fi

mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

user=
if [ "$(id -u)" -eq 0 ]; then
    # Workers drop to nobody; they must be able to reach the prefix, where
    # the master creates their temp directories.  Where a parent directory
    # is closed to others, use a prefix under /tmp instead.
    user="user nobody nogroup;"
    chmod 755 "$prefix"
    if command -v runuser >/dev/null 2>&1 \
            && ! runuser -u nobody -- test -x "$prefix" 2>/dev/null; then
        prefix=$(mktemp -d /tmp/trl-run.XXXXXX)
        chmod 755 "$prefix"
    fi
fi

conf=$prefix/nginx.conf
sed -e "s|@MODULE@|$module|g" \
    -e "s|@PREFIX@|$prefix|g" \
    -e "s|@USER@|$user|g" \
    -e "s|@BACKEND_PORT@|$backend_port|g" \
    -e "s|@PORT@|$port|g" \
    "$template" > "$conf"

"$nginx" -t -q -p "$prefix/" -c "$conf" -e stderr

echo "token_ratelimit demo on http://127.0.0.1:$port (Ctrl-C stops it): try" \
     "for i in \$(seq 12); do curl -si -X POST" \
     "http://127.0.0.1:$port/oauth/token | head -1; done" \
     "  or  curl -i -X POST 'http://127.0.0.1:$port/login?user=demo&password=wrong';" \
     "dashboard: http://127.0.0.1:$port/trl-api/dashboard;" \
     "events: tail -f $prefix/events.json"

# nginx stays in the foreground (daemon off): Ctrl-C sends SIGINT, which
# nginx treats as a fast shutdown.
exec "$nginx" -p "$prefix/" -c "$conf" -e stderr
