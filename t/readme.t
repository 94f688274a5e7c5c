#!/usr/bin/perl
# Every ```nginx block of the README works when pasted: "nginx -t" passes
# on it with the module loaded, so that the docs cannot drift from the code.
#
# A block is taken as written; the only changes are the placeholder path
# /abs/path (the checkout: the module and conf.d) and what pasting means:
# - a block with main-context directives (load_module, env, http {}) is a
#   whole nginx.conf: the module is loaded first if the block does not,
#   and an empty events {} is added if it has none;
# - any other block is pasted into an http {} block of such a file.
# The file lives in a directory where conf.d/ is the checkout's, so that
# relative paths (conf.d/policies/...) resolve as in the README.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TRL;

my $ROOT = $TRL::ROOT;
my $readme = "$ROOT/README.md";

open my $fh, '<', $readme or die "$readme: $!";
my (@blocks, $cur, $start);
while (my $line = <$fh>) {
    if (!defined $cur && $line =~ /^```nginx\s*$/) {
        ($cur, $start) = ('', $.);
    } elsif (defined $cur && $line =~ /^```\s*$/) {
        push @blocks, [$start, $cur];
        undef $cur;
    } elsif (defined $cur) {
        $cur .= $line;
    }
}
close $fh;

cmp_ok(scalar @blocks, '>=', 10, scalar(@blocks) . ' nginx blocks found');

my $t = TRL->new;
my $dir = $t->dir;
symlink "$ROOT/conf.d", "$dir/conf.d" or die "symlink: $!";

for my $b (@blocks) {
    my ($line, $text) = @$b;
    my $what = "README.md line $line";

    $text =~ s{/abs/path/build/ngx_http_token_ratelimit_module\.so}{$TRL::MODULE}g;
    $text =~ s{/abs/path\b}{$ROOT}g;

    my $main = $text =~ /^\s*(load_module|env|http\s*\{|events\s*\{)/m;
    my $conf;
    if ($main) {
        $conf = $text;
        $conf = "load_module $TRL::MODULE;\n$conf"
            unless $conf =~ /^\s*load_module/m;
        $conf .= "\nevents {}\n" unless $conf =~ /^\s*events\s*\{/m;
    } else {
        $conf = "load_module $TRL::MODULE;\nevents {}\nhttp {\n$text\n}\n";
    }

    my $file = "$dir/readme-$line.conf";
    open my $out, '>', $file or die "$file: $!";
    print $out $conf;
    close $out;

    my $env = $text =~ /TRL_ENVIRONMENT/ ? 'TRL_ENVIRONMENT=production ' : '';
    my $output = `${env}$TRL::NGINX -t -q -p $dir/ -e stderr -c $file 2>&1`;
    my $rc = $? >> 8;
    is($rc, 0, "$what: nginx -t passes") or diag("$output\n--- $file\n$conf");
}

done_testing;
