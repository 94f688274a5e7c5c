package TRLEventDoc;

# The event log's contract as docs/events.md writes it, read from that
# file: the field tables of both formats and the ECS classification, and
# a check of one line against them.  Any test that makes the module write
# events (t/event_log_ecs.t; auto-ban, attack mode...) can check its lines
# with TRLEventDoc::problems($format, $line) so that the docs cannot drift
# from the code.
#
#   fields($format)    { name => { type, events => {..}, always } }
#   classes()          { native event => [action, kind, type, outcome] }
#   problems($format, $decoded_line)   the line's faults, as text
#   flatten($hash)     { "a.b.c" => value }
#   event_of($format, $line)           the native event name
use strict;
use warnings;
use B ();
use JSON::PP ();
use TRL;

# the events of zone decisions; any other name is an "extra" one
our %DECIDED = map { $_ => 1 } qw(rejected rejected_dry_run penalty
    distinct_exceeded denied unavailable suppressed);

my $doc;

sub doc {
    $doc //= TRL::read_file_once("$TRL::ROOT/docs/events.md")
        // die "docs/events.md missing";
    return $doc;
}

# The rows of the first table under the "## $title..." heading.
sub table_after {
    my ($title) = @_;
    my ($section) = doc() =~ /^## \Q$title\E[^\n]*\n(.*?)(?=^## |\z)/ms
        or die "docs/events.md: no section \"$title\"";
    my @rows;
    for my $line (split /\n/, $section) {
        if ($line !~ /^\|/) {
            last if @rows;
            next;
        }
        my @cells = map { s/^\s+|\s+$//gr } split /\|/, $line;
        shift @cells;                       # before the first |
        next if $cells[0] =~ /^-+$/;
        push @rows, \@cells;
    }
    shift @rows;                            # the header
    return @rows;
}

my %fields;

sub fields {
    my ($format) = @_;
    return $fields{$format} if $fields{$format};
    my %f;
    for my $row (table_after($format eq 'ecs' ? 'ECS fields'
                                              : 'Native fields'))
    {
        my ($name, $type, $events, $always) = @$row;
        $name =~ s/`//g;
        $f{$name} = {
            type => $type,
            events => { map { $_ => 1 } split /,\s*/, $events },
            always => $always eq 'yes',
        };
    }
    return $fields{$format} = \%f;
}

my %classes;

sub classes {
    return \%classes if %classes;
    for my $row (table_after('ECS classification')) {
        my @c = map { s/`//gr } @$row;
        $classes{$c[0]} = [@c[1 .. 4]];
    }
    return \%classes;
}

# Is a field of this row allowed in this event's line?
sub applies {
    my ($f, $event) = @_;
    my $ev = $f->{events};
    return 1 if $ev->{'*'} || $ev->{$event};
    return 1 if $ev->{request} && $event ne 'suppressed';
    return 1 if $ev->{extra} && !$DECIDED{$event};
    return 0;
}

# A JSON number, not a string of digits.
sub is_number {
    my ($v) = @_;
    my $flags = B::svref_2object(\$v)->FLAGS;
    return ($flags & (B::SVp_IOK() | B::SVp_NOK()))
           && !($flags & B::SVp_POK());
}

sub type_ok {
    my ($type, $v) = @_;
    return !defined $v || type_ok('keyword', $v) if $type eq 'keyword or null';
    return 0 unless defined $v;
    return ref $v eq 'ARRAY' && !grep { ref $_ || !defined } @$v
        if $type eq 'keyword array';
    return JSON::PP::is_bool($v) if $type eq 'boolean';
    return 0 if ref $v;
    return $v =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ if $type eq 'date';
    return is_number($v) && $v =~ /^-?\d+$/ if $type eq 'long';
    return is_number($v) && $v =~ /^-?\d+(\.\d+)?$/ if $type eq 'float';
    return $v =~ /^[\d.]+$|:/ if $type eq 'ip';
    return !is_number($v) if $type eq 'keyword';
    return 0;
}

sub flatten {
    my ($h, $prefix, $out) = @_;
    $out //= {};
    for my $k (keys %$h) {
        my $name = defined $prefix ? "$prefix.$k" : $k;
        if (ref $h->{$k} eq 'HASH') {
            flatten($h->{$k}, $name, $out);
        } else {
            $out->{$name} = $h->{$k};
        }
    }
    return $out;
}

sub event_of {
    my ($format, $line) = @_;
    return $format eq 'ecs' ? ($line->{token_ratelimit} || {})->{event}
                            : $line->{event};
}

# The ECS event.* a native event should read as (docs: classification).
sub expected_class {
    my ($event, $line) = @_;
    my $c = classes()->{$event} || [$event, 'event', 'info', 'unknown'];
    my ($action, $kind, $type, $outcome) = @$c;
    my $ours = $line->{token_ratelimit} || {};
    if ($type =~ /^start \(.*\), end/) {            # by the state
        $type = ($ours->{state} // '') eq 'on' ? 'start' : 'end';
    }
    ($type, $outcome) = ('info', 'success') if $ours->{dry_run};
    return ($action, $kind, $type, $outcome);
}

# What is wrong with one decoded line of the format, as text.
sub problems {
    my ($format, $line) = @_;
    my $fields = fields($format);
    my $flat = flatten($line);
    my $event = event_of($format, $line) // '?';
    my @bad;

    for my $name (sort keys %$flat) {
        my $f = $fields->{$name};
        if (!$f) {
            push @bad, "$event: $name: not documented";
        } elsif (!applies($f, $event)) {
            push @bad, "$event: $name: not documented for this event";
        } elsif (!type_ok($f->{type}, $flat->{$name})) {
            push @bad, "$event: $name: not a $f->{type}: "
                       . ($flat->{$name} // 'null');
        }
    }
    for my $name (sort keys %$fields) {
        my $f = $fields->{$name};
        next unless $f->{always} && applies($f, $event);
        push @bad, "$event: $name: missing" unless exists $flat->{$name};
    }

    return @bad unless $format eq 'ecs';

    my ($action, $kind, $type, $outcome) = expected_class($event, $line);
    my $e = $line->{event} || {};
    push @bad, "$event: event.action " . ($e->{action} // 'none')
        if ($e->{action} // '') ne $action;
    push @bad, "$event: event.kind " . ($e->{kind} // 'none')
        if ($e->{kind} // '') ne $kind;
    push @bad, "$event: event.type @{$e->{type} || []}"
        if "@{$e->{type} || []}" ne $type;
    push @bad, "$event: event.outcome " . ($e->{outcome} // 'none')
        if ($e->{outcome} // '') ne $outcome;
    push @bad, "$event: event.category"
        if "@{$e->{category} || []}" ne 'authentication network';
    push @bad, "$event: rule.name is not token_ratelimit.zone"
        if ($line->{rule}{name} // '') ne ($line->{token_ratelimit}{zone}
                                           // '');
    return @bad;
}

1;
