#!/usr/bin/env bash
# Builds the Debian package of the module from a built tree (make deb):
#
#   scripts/mkdeb.sh OUTDIR
#
# writes OUTDIR/libnginx-mod-http-token-ratelimit_<version>_<arch>.deb laid
# out as Debian's own libnginx-mod-* packages: the .so in
# /usr/lib/nginx/modules, its load_module line in
# /usr/share/nginx/modules-available/mod-http-token-ratelimit.conf, enabled
# on install by a modules-enabled symlink (50-...), docs and the conf.d
# examples under /usr/share/doc.  Depends on the exact nginx ABI the module
# was built for (the nginx-abi-* that the installed nginx provides) and on
# the libraries it links, as their shlibs files name them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/mkdeb.sh OUTDIR}
so="$root/build/ngx_http_token_ratelimit_module.so"
pkg=libnginx-mod-http-token-ratelimit
conf=mod-http-token-ratelimit.conf
version=${TRL_VERSION:-$(sed -n 's/^VERSION *:= *//p' "$root/Makefile")}
arch=$(dpkg --print-architecture)

[ -f "$so" ] || { echo "no $so: run make first" >&2; exit 1; }

abi=$(dpkg-query -W -f='${Provides}' nginx 2>/dev/null \
      | tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p')
[ -n "$abi" ] || { echo "the installed nginx provides no nginx-abi-*" >&2
                   exit 1; }

# the packages of the libraries the module needs: the package that owns
# each library it loads here, with the dependency that package's shlibs
# file declares for it
deps=("$abi")
for lib in $(objdump -p "$so" | awk '/NEEDED/ { print $2 }'); do
    path=$(ldd "$so" | awk -v l="$lib" '$1 == l { print $3 }')
    [ -n "$path" ] || { echo "$lib is not found by ldd" >&2; exit 1; }
    owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null \
            || dpkg -S "$path" 2>/dev/null) || true
    owner=${owner%%: *}
    [ -n "$owner" ] || { echo "no package owns $path" >&2; exit 1; }
    name=${lib%%.so*}
    soversion=${lib#*.so.}
    dep=$(awk -v n="$name" -v v="$soversion" \
              '$1 == n && $2 == v && !done { $1 = ""; $2 = "";
                                              sub(/^ +/, ""); print;
                                              done = 1 }' \
              "/var/lib/dpkg/info/$owner.shlibs" 2>/dev/null || true)
    deps+=("${dep:-${owner%%:*}}")
done
depends=$(printf '%s\n' "${deps[@]}" | awk '!seen[$0]++' | paste -sd, \
          | sed 's/,/, /g')

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
doc="$stage/usr/share/doc/$pkg"

install -D -m 0644 "$so" "$stage/usr/lib/nginx/modules/$(basename "$so")"
strip --strip-unneeded "$stage/usr/lib/nginx/modules/$(basename "$so")"
install -d "$stage/usr/share/nginx/modules-available"
echo "load_module modules/$(basename "$so");" \
    > "$stage/usr/share/nginx/modules-available/$conf"
install -D -m 0644 "$root/README.md" "$doc/README.md"
gzip -9n "$doc/README.md"
(cd "$root/conf.d" && find . -type f) | while read -r f; do
    install -D -m 0644 "$root/conf.d/$f" "$doc/examples/$f"
done
cat > "$doc/copyright" <<EOC
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ngx_http_token_ratelimit_module
Comment: built from the project's source tree by scripts/mkdeb.sh; the
 terms of use are those of the project's README.
EOC

install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<EOC
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: ngx_http_token_ratelimit_module developers <root@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Recommends: nginx
Section: httpd
Priority: optional
Description: token and login rate limiting module for nginx
 Exact sliding-window limits for authentication and token endpoints in
 an nginx shared-memory zone, shared across nodes through Redis, with
 progressive penalties, warnings, YAML policies and an API.
EOC

# as dh_nginx does for Debian's modules: enabled on install, kept disabled
# after an admin's removal of the link, gone on purge
cat > "$stage/DEBIAN/postinst" <<'EOC'
#!/bin/sh
set -e
to=/etc/nginx/modules-enabled/50-mod-http-token-ratelimit.conf
if [ -L "$to.removed" ]; then
    rm "$to.removed"
    removed_link=true
else
    removed_link=false
fi
if [ -z "$2" ] || [ "$removed_link" = "true" ]; then
    mkdir -p /etc/nginx/modules-enabled
    ln -sf /usr/share/nginx/modules-available/mod-http-token-ratelimit.conf "$to"
fi
if [ "$1" = "configure" ] && which dpkg-trigger >/dev/null 2>&1; then
    dpkg-trigger --no-await nginx-reload
fi
EOC
cat > "$stage/DEBIAN/prerm" <<'EOC'
#!/bin/sh
set -e
to=/etc/nginx/modules-enabled/50-mod-http-token-ratelimit.conf
if [ "$1" = "remove" ] || [ "$1" = "deconfigure" ]; then
    if [ -L "$to" ]; then
        mv "$to" "$to.removed"
    fi
fi
EOC
cat > "$stage/DEBIAN/postrm" <<'EOC'
#!/bin/sh
set -e
to=/etc/nginx/modules-enabled/50-mod-http-token-ratelimit.conf
if [ "$1" = "purge" ]; then
    rm -f "$to" "$to.removed"
fi
if [ "$1" = "remove" ] && which dpkg-trigger >/dev/null 2>&1; then
    dpkg-trigger --no-await nginx-reload
fi
EOC
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" \
    "$stage/DEBIAN/postrm"
(cd "$stage" && find usr -type f -exec md5sum {} +) > "$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/${pkg}_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
