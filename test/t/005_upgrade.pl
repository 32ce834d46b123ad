# The upgrade from the previous release: install it, fill every table,
# ALTER EXTENSION salesmgmt UPDATE, and the database must equal a fresh
# install of the current version, catalog object for catalog object
# (test/sql/extension_catalog.sql, run in both, compared line by line),
# with every row still there.  Then the regression and pgTAP suites run on
# the upgrade path: each script's CREATE EXTENSION becomes "CREATE the
# previous release, then UPDATE".
use strict;
use warnings;
use File::Basename;
use File::Copy;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $prev = '0.1.0';
my ($cur) = slurp_file("$root/salesmgmt.control") =~ /^default_version\s*=\s*'([^']+)'/m
  or die "no default_version in salesmgmt.control";
my $tmp = $PostgreSQL::Test::Utils::tmp_check;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
$node->start;

# ------------------------------------------------ the previous release, filled
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('upgraded', "CREATE EXTENSION salesmgmt VERSION '$prev'");
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'salesmgmt'}),
	$prev, "installed the previous release $prev");
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'scale=200', '-v', 'seed=5', '-f', "$root/scripts/datagen.sql",
	  '-d', $node->connstr('upgraded') ],
	"demo data loaded into $prev");
$node->command_ok(
	[ 'psql', '-X', '-q', '-f', "$root/test/sql/fill_every_table.sql", '-d', $node->connstr('upgraded') ],
	"every table of $prev filled");
# the one table only the webhook worker writes: an attempt, as $prev's
# worker would have recorded it (written against $prev's frozen schema)
$node->safe_psql('upgraded', q{
	INSERT INTO salesmgmt.webhook_attempt (delivery_id, attempt, endpoint_id, started_at, duration, status, error)
	SELECT delivery_id, 1, endpoint_id, now(), interval '20 ms', 503, 'HTTP 503'
	  FROM salesmgmt.webhook_delivery ORDER BY delivery_id LIMIT 1});

my $tables_sql = q{
	SELECT c.oid::regclass FROM pg_class c
	 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
	 ORDER BY 1};
my @old_tables = split /\n/, $node->safe_psql('upgraded', $tables_sql);
my %before;
foreach my $t (@old_tables)
{
	$before{$t} = $node->safe_psql('upgraded', "SELECT count(*) FROM $t");
}
my @empty = grep { $before{$_} == 0 } @old_tables;
is("@empty", '', 'every table of ' . scalar(@old_tables) . " in $prev holds rows before the update");

# ------------------------------------------------------------- the update
my ($rc, $out, $err) = $node->psql('upgraded', 'ALTER EXTENSION salesmgmt UPDATE', on_error_stop => 1);
is($rc, 0, "ALTER EXTENSION salesmgmt UPDATE from $prev") or diag($err);
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'salesmgmt'}),
	$cur, "the database is at $cur");
my %after_counts = map { $_ => $node->safe_psql('upgraded', "SELECT count(*) FROM $_") } @old_tables;
is_deeply(\%after_counts, \%before, 'every row survives the update (row counts per table equal)');
# the tables new in this version get rows too (the file only fills empty tables)
$node->command_ok(
	[ 'psql', '-X', '-q', '-f', "$root/test/sql/fill_every_table.sql", '-d', $node->connstr('upgraded') ],
	"every table of $cur filled after the update");

# ------------------------------------------- the same catalog as a fresh install
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION salesmgmt');
my %catalog;
foreach my $db (qw(upgraded fresh))
{
	my ($crc, $cout, $cerr) = $node->psql($db, slurp_file("$root/test/sql/extension_catalog.sql"),
		on_error_stop => 1);
	is($crc, 0, "catalog query runs in $db") or diag($cerr);
	$catalog{$db} = "$cout\n";
	append_to_file("$tmp/catalog.$db", $catalog{$db});
}
my $lines = () = $catalog{fresh} =~ /\n/g;
cmp_ok($lines, '>', 1000, "the catalog of a fresh install has $lines lines");
if (!ok($catalog{upgraded} eq $catalog{fresh}, 'the upgraded database has the catalog of a fresh install'))
{
	my ($stdout, $stderr);
	IPC::Run::run([ 'diff', '-u', "$tmp/catalog.fresh", "$tmp/catalog.upgraded" ], '>', \$stdout, '2>', \$stderr);
	diag("--- fresh install\n+++ upgraded from $prev\n$stdout");
}

# ----------------------------------- the suites, on the upgrade path each time
# Each script of sql/ and test/pgtap/ creates the extension itself; a copy
# of it (and of its expected output) installs the previous release and
# updates it instead.
my $via_update = "CREATE EXTENSION salesmgmt VERSION '$prev'; ALTER EXTENSION salesmgmt UPDATE;";
sub copy_via_update
{
	my ($from, $to) = @_;
	my $text = slurp_file($from);
	my $n = ($text =~ s/^CREATE EXTENSION salesmgmt;$/$via_update/mg);
	make_path(dirname($to));
	append_to_file($to, $text);
	return $n;
}

my $regress = "$tmp/regress_via_update";
my @regress = map { basename($_, '.sql') } sort glob("$root/sql/*.sql");
my $changed = 0;
foreach my $t (@regress)
{
	# (a script that installs a release by name tests an upgrade itself)
	$changed += copy_via_update("$root/sql/$t.sql", "$regress/sql/$t.sql") > 0
	  || slurp_file("$root/sql/$t.sql") =~ /^CREATE EXTENSION salesmgmt VERSION /m;
	copy_via_update("$root/expected/$t.out", "$regress/expected/$t.out");
}
is($changed, scalar(@regress), "every regression script (" . scalar(@regress) . ") goes through an update");
$node->safe_psql('postgres', 'CREATE DATABASE regress_upgraded');
my $regress_ok = $node->command_ok(
	[ $ENV{PG_REGRESS}, '--bindir=', "--inputdir=$regress", "--outputdir=$regress",
	  '--use-existing', '--host=' . $node->host, '--port=' . $node->port,
	  '--dbname=regress_upgraded', @regress ],
	'the regression suite passes on the upgrade path');
diag(slurp_file("$regress/regression.diffs")) if !$regress_ok && -e "$regress/regression.diffs";

my $pgtap = "$tmp/pgtap_via_update";
# the pgTAP scripts include fixtures from test/sql by relative path
make_path("$pgtap/test");
symlink("$root/test/sql", "$pgtap/test/sql") or die "symlink: $!";
$node->safe_psql('postgres', 'CREATE DATABASE pgtap_upgraded');
$node->safe_psql('pgtap_upgraded', 'CREATE EXTENSION pgtap');
foreach my $f (sort glob("$root/test/pgtap/*.sql"))
{
	my $copy = "$pgtap/test/pgtap/" . basename($f);
	is(copy_via_update($f, $copy), 1, basename($f) . ' creates the extension once, now through the update');
	$node->command_ok([ 'pg_prove', '-d', 'pgtap_upgraded', $copy ],
		'pgTAP ' . basename($f) . ' passes on the upgrade path');
}

$node->stop;
done_testing();
