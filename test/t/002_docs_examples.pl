# Every ```sql block of README.md and docs/*.md runs without error.
#
# Each page runs in a fresh database with the extension created (unless the
# page creates it itself), its blocks
# in order, so a page can build on its own earlier examples.  A page that
# starts from the demo data set says so with <!-- docs-test: datagen -->;
# a page whose SQL is not meant to run (benchmark listings) says
# <!-- docs-test: skip -->.  Blocks marked ```text or ```psql are not run.
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
	my @blocks = $text =~ /^```sql[ \t]*\n(.*?)^```/msg;
	next unless @blocks;

	my $db = 'docs_' . $n++;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	# a page that shows CREATE EXTENSION itself runs it
	$node->safe_psql($db, 'CREATE EXTENSION salesmgmt')
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
		my ($rc, $out, $err) = $node->psql($db, $sql, on_error_stop => 1);
		is($rc, 0, "$name: sql block $i runs") or diag("$sql\n--\n$err");
	}
}
ok($n > 0, 'found documentation pages with SQL');
$node->stop;
done_testing();
