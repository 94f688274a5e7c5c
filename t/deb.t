#!/usr/bin/perl
# The Debian package (make deb, scripts/mkdeb.sh): built from this tree,
# laid out as Debian's own libnginx-mod-* packages, depending on the exact
# nginx ABI it was built for; unpacked into a scratch root (dpkg -x), its
# .so loads into Debian's nginx with its modules-available line, and the
# example configuration it ships limits as documented.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $ROOT = $TRL::ROOT;
my $PKG = 'libnginx-mod-http-token-ratelimit';

for my $tool ('dpkg-deb', 'objdump') {
    plan skip_all => "$tool is missing" unless grep { -x "$_/$tool" }
                                               split /:/, $ENV{PATH};
}

my $t0 = TRL->new;
my $dir = $t0->dir;

my $deb = `$ROOT/scripts/mkdeb.sh $dir/out 2>&1`;
is($?, 0, 'scripts/mkdeb.sh builds the package') or diag($deb);
chomp $deb;
like($deb, qr{/${PKG}_[0-9][^_]*_[a-z0-9]+\.deb\z}, "named $PKG\_VERSION_ARCH.deb");
ok(-s $deb, 'the .deb exists');

# --- control ---------------------------------------------------------------

my %control = map { /^(\S+): (.*)$/ ? ($1, $2) : () }
              split /\n/, `dpkg-deb -f $deb`;
is($control{Package}, $PKG, 'Package');
my ($abi) = `dpkg-query -W -f='\${Provides}' nginx` =~ /(nginx-abi-[\w.\-]+)/;
ok($abi, "the installed nginx provides $abi");
my @deps = split /,\s*/, $control{Depends} // '';
is($deps[0], $abi, 'Depends: first the exact nginx ABI it was built for');
ok((grep { /^libhiredis0\.14\b/ } @deps), 'Depends: libhiredis0.14');
ok((grep { /^libyaml-0-2\b/ } @deps), 'Depends: libyaml-0-2');
ok(!(grep { /i386|lib32/ } @deps), 'no foreign-architecture dependency');
is($control{Architecture}, `dpkg --print-architecture` =~ s/\s+//r,
   'Architecture');

# --- layout ---------------------------------------------------------------

my $root = "$dir/root";
system('dpkg-deb', '-x', $deb, $root) == 0 or BAIL_OUT('dpkg-deb -x failed');
my $so = "$root/usr/lib/nginx/modules/ngx_http_token_ratelimit_module.so";
ok(-f $so, 'the module in /usr/lib/nginx/modules');
my $avail = "$root/usr/share/nginx/modules-available/mod-http-token-ratelimit.conf";
is($t0->read_file($avail),
   "load_module modules/ngx_http_token_ratelimit_module.so;\n",
   'modules-available: the load_module line, relative to nginx\'s prefix');
my $doc = "$root/usr/share/doc/$PKG";
ok(-f "$doc/README.md.gz", 'the README under /usr/share/doc');
ok(-f "$doc/copyright", 'a copyright file');
ok(-f "$doc/examples/$_", "example $_")
    for qw(auth-service.conf token-issuance.conf login-failed-only.conf
           policies/auth.yaml monitoring/token-ratelimit.rules.yml);

my $ctl = "$dir/ctl";
system('dpkg-deb', '-e', $deb, $ctl) == 0 or BAIL_OUT('dpkg-deb -e failed');
for my $script (qw(postinst prerm postrm)) {
    ok(-x "$ctl/$script", "$script is executable");
    is(system('sh', '-n', "$ctl/$script"), 0, "$script parses");
}
like($t0->read_file("$ctl/postinst"),
     qr{ln -sf /usr/share/nginx/modules-available/mod-http-token-ratelimit\.conf "\$to"},
     'postinst enables the module (modules-enabled symlink)');
like($t0->read_file("$ctl/postinst"),
     qr{modules-enabled/50-mod-http-token-ratelimit\.conf},
     'as 50-mod-http-token-ratelimit.conf, like Debian\'s modules');

# --- the installed module works ------------------------------------------

{
    # modules-available's line, nginx's prefix being the scratch root's
    my $t = TRL->new(module => $so);
    $t->write_config(<<'EOF');
    token_ratelimit_zone $binary_remote_addr zone=z:1m rate=2r/m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { token_ratelimit zone=z; empty_gif; }
    }
EOF
    my $conf = $t->read_file('nginx.conf');
    $conf =~ s{^load_module \S+;}{include $avail;}m;
    $t->write_file('nginx.conf', $conf);
    # "modules/x.so" is relative to nginx's prefix: the scratch root's
    # /usr/lib/nginx, as Debian's nginx is built --prefix=/usr/share/nginx
    # with /usr/share/nginx/modules -> /usr/lib/nginx/modules
    symlink "$root/usr/lib/nginx/modules", "$root/usr/share/nginx/modules";
    my $out = `$TRL::NGINX -t -p $root/usr/share/nginx/ -c ${\$t->dir}/nginx.conf 2>&1`;
    is($?, 0, 'nginx -t loads the module through modules-available')
        or diag($out);
}

{
    my $t = TRL->new(module => $so);
    my ($up, $ls) = $t->run_snippet("$doc/examples/login-failed-only.conf");
    ok($up >= 1 && $ls == 1, 'the installed example runs (upstream, listen)');
    # conf.d/login-failed-only.conf: 3 failed attempts per 5 minutes per IP
    # (the harness backend answers the status asked for)
    my @codes = map { $t->post('/login?status=200', '')->{status} } 1 .. 2;
    push @codes, map { $t->post('/login?status=401', '')->{status} } 1 .. 4;
    is("@codes", '200 200 401 401 401 429',
       'the installed module limits: successes free, 3 failed logins');
    $t->stop;
    $t->no_alerts;
}

done_testing;
