#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian 12
# packages.  Idempotent: packages already present are left alone.
#
#   scripts/install-deps.sh           install what is missing
#   scripts/install-deps.sh --check   only report; exit 1 if anything is missing
set -euo pipefail

packages=(
    build-essential pkg-config   # C/C++ toolchain
    nginx nginx-dev              # the nginx binary and its module build tree
    libpcre2-dev libssl-dev zlib1g-dev   # headers nginx's configure probes
    libhiredis-dev libyaml-dev   # Redis client and YAML parser
    check                        # unit test framework
    redis-server                 # integration tests of cluster sync
    perl                         # prove, the integration test runner
    gdb                          # t/sigkill.t stops a worker inside a lock
    wrk valgrind                 # make bench
    libnginx-mod-http-lua        # make bench: the redis-incr columns (Lua)
    prometheus                   # promtool: t/ checks metrics and alert rules
    chromium                     # t/ renders the API dashboard headless
    clang libclang-rt-14-dev     # make fuzz (libFuzzer), run by make test
    binutils                     # make deb (objdump)
    curl                         # scripts/trl-feed (t/reputation_feed.t)
    # the security stack the module works with (issue 14); tests run each
    # with a configuration of its own, never the system's services
    libnginx-mod-http-modsecurity modsecurity-crs   # ModSecurity v3 + CRS
    crowdsec crowdsec-custom-bouncer                # LAPI, cscli, bouncer
    fail2ban                                        # fail2ban-regex
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${1:-}" = "--check" ]; then
    if [ ${#missing[@]} -gt 0 ]; then
        echo "missing packages: ${missing[*]}"
        exit 1
    fi
    exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "all dependencies are installed"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "need root to install: ${missing[*]}" >&2
        exit 1
    fi
fi

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# crowdsec's postinst registers with the online Central API unless its
# credentials file is non-empty (README.Debian): on a machine that cannot
# reach api.crowdsec.net that fails the install.  The tests never use CAPI.
capi=/etc/crowdsec/online_api_credentials.yaml
if [[ " ${missing[*]} " == *" crowdsec "* ]] && [ ! -s "$capi" ]; then
    "${sudo[@]}" mkdir -p /etc/crowdsec
    echo "# CAPI registration disabled by $(basename "$0"): test machine" \
        | "${sudo[@]}" tee "$capi" >/dev/null
fi

# The tests run every server (nginx, redis, crowdsec, fail2ban) with a
# configuration of their own: the packages' services are not started at
# install (where they could fail the install on a machine without systemd,
# or take ports), unless the machine has a policy of its own already.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# %s: no service starts while it installs\nexit 101\n' \
        "$(basename "$0")" | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi

"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

