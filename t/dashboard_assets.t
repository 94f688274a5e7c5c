#!/usr/bin/perl
# The dashboard's files (share/dashboard.{html,css,js}) and the header the
# module is built with agree: the committed header is what
# scripts/embed-assets.pl makes of the files, and the module serves the
# files byte for byte (the page with its two "@ROOT@" marks filled).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $ROOT = $TRL::ROOT;
my $h = "$ROOT/src/nginx/ngx_http_token_ratelimit_dashboard_assets.h";

my $made = `perl $ROOT/scripts/embed-assets.pl $ROOT/share`;
is($?, 0, 'scripts/embed-assets.pl runs');
my $t = TRL->new;
ok($made eq $t->read_file($h),
   'the committed header is the one the files make (run make)');

$t->write_config(<<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location /trl-api/ { token_ratelimit_api; }
    }
EOF
$t->run;

for my $f ('dashboard.css', 'dashboard.js') {
    my $r = $t->get("/trl-api/$f");
    is($r->{status}, 200, "$f served");
    ok($r->{body} eq $t->read_file("$ROOT/share/$f"),
       "$f: share/$f byte for byte");
}
my $page = $t->read_file("$ROOT/share/dashboard.html");
(my $want = $page) =~ s/\@ROOT\@//g;
ok($t->get('/trl-api/dashboard')->{body} eq $want,
   'dashboard: share/dashboard.html with the marks filled (no slash)');
($want = $page) =~ s/\@ROOT\@/..\//g;
ok($t->get('/trl-api/dashboard/')->{body} eq $want,
   'dashboard/: the asset URLs climb one level');

$t->stop;
$t->no_alerts;
done_testing;
