# Every ```sql block of README.md and docs/*.md runs without error.
#
# Each page runs in a fresh database with the extension created (unless the
# page creates it itself), its blocks
# in order, so a page can build on its own earlier examples.  A page that
# starts from the demo data set says so with <!-- docs-test: datagen -->;
# a page whose SQL is not meant to run (benchmark listings) says
# <!-- docs-test: skip -->.  Blocks marked ```text or ```psql are not run.
#
# A ```text block that directly follows a ```sql block (nothing but blank
# lines between) is that block's output as psql prints it: every line of it
# must appear in what psql prints for the block, in the same order (stdout,
# then the notices and errors of stderr without psql's location prefix),
# so the pages cannot drift from the code.  Text that illustrates rather
# than shows the output is written as ```console.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = PostgreSQL::Test::Cluster->new('docs');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
$node->start;

my @pages = ("$root/README.md", sort glob("$root/docs/*.md"));
my $n = 0;
foreach my $page (@pages)
{
	my $text = slurp_file($page);
	(my $name = $page) =~ s{^\Q$root\E/}{};
	next if $text =~ /<!--\s*docs-test:\s*skip\s*-->/;
	my @blocks;
	my %output;	# index of an sql block => the text block printed after it
	while ($text =~ /^```(sql|text)[ \t]*\n(.*?)^```[ \t]*\n/msg)
	{
		my ($kind, $body, $end) = ($1, $2, pos($text));
		if ($kind eq 'sql')
		{
			push @blocks, $body;
			# the block right after it, if it is text
			my $rest = substr($text, $end);
			$output{$#blocks} = $1 if $rest =~ /\A\s*^```text[ \t]*\n(.*?)^```/ms;
		}
	}
	next unless @blocks;

	my $db = 'docs_' . $n++;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	# a page that shows CREATE EXTENSION itself runs it
	$node->safe_psql($db, 'CREATE EXTENSION salesmgmt CASCADE')
	  unless join('', @blocks) =~ /CREATE EXTENSION salesmgmt/i;
	if ($text =~ /<!--\s*docs-test:\s*datagen\s*-->/)
	{
		$node->command_ok(
			[ 'psql', '-X', '-q', '-v', 'scale=300', '-f', "$root/scripts/datagen.sql",
			  '-d', $node->connstr($db) ],
			"$name: demo data loaded");
	}
	my $i = 0;
	foreach my $sql (@blocks)
	{
		$i++;
		my ($out, $err) = ('', '');
		# aligned output with headers and row counts, as the pages show it
		my $ok = IPC::Run::run(
			[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-P', 'pager=off', '-d', $node->connstr($db) ],
			'<', \$sql, '>', \$out, '2>', \$err);
		ok($ok, "$name: sql block $i runs") or diag("$sql\n--\n$err");
		next unless defined $output{ $i - 1 };
		(my $printed = "$out\n$err") =~ s/^psql:[^:]*:\d+: //mg;
		my @want = grep { /\S/ } map { s/\s+$//r } split /\n/, $output{ $i - 1 };
		my @have = map { s/\s+$//r } split /\n/, $printed;
		my ($k, $missing) = (0, undef);
		foreach my $line (@want)
		{
			$k++ while $k < @have && $have[$k] ne $line;
			if ($k == @have) { $missing = $line; last; }
			$k++;
		}
		ok(!defined $missing, "$name: sql block $i prints the output shown after it")
		  or diag("not printed (in this order): $missing\n-- psql printed:\n$printed");
	}
}
ok($n > 0, 'found documentation pages with SQL');
$node->stop;
done_testing();
