# pg_dump of a database with salesmgmt data, restored into a new database,
# gives the same rows in every table of the extension, and the restored
# extension keeps working (identities continue, triggers and checks apply).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = SmCluster::node_with_db('dump', 'src');
SmCluster::psql_file_ok($node, 'src', "$root/scripts/datagen.sql", 'demo data loaded', 'scale=400', 'seed=7');
# a user-added currency must survive too
$node->safe_psql('src', q{INSERT INTO salesmgmt.currency (code, name) VALUES ('XTS', 'Testing code')});

SmCluster::dump_restore($node, 'src.dump');

# every table of the extension, found from the catalog
my @tables = split /\n/, $node->safe_psql('src', q{
	SELECT c.relname FROM pg_class c
	 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
	 ORDER BY 1});
ok(scalar(@tables) >= 14, 'found the extension tables (' . scalar(@tables) . ')');
foreach my $t (@tables)
{
	my $q = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
	  . " FROM salesmgmt.$t t";
	is($node->safe_psql('dst', $q), $node->safe_psql('src', $q), "table $t restored with the same rows");
}

# the restored database works: identities continue after the loaded rows
my $before = $node->safe_psql('dst', 'SELECT max(deal_id) FROM salesmgmt.deal');
my $new = $node->safe_psql('dst', q{
	INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
	VALUES ('after restore', 1, 6, 1, 1, 10) RETURNING deal_id});
cmp_ok($new, '>', $before, 'deal identity continues after restore');
my ($rc, $out, $err) = $node->psql('dst',
	q{INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount) VALUES ('bad', 1, 6, 1, 1, -1)});
isnt($rc, 0, 'constraints hold after restore');
like($err, qr/deal_amount_nonnegative/, 'with the named constraint');
is($node->safe_psql('dst', q{SELECT count(*) FROM salesmgmt.currency WHERE builtin}),
	$node->safe_psql('src', q{SELECT count(*) FROM salesmgmt.currency WHERE builtin}),
	'built-in currencies not duplicated');

$node->stop;
done_testing();
