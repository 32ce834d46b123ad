# Row-level security on a hot standby: the per-row predicates and their
# cached organisation (src/org.c) only read, so reps and managers query a
# streaming standby as they query the primary, and a change of the team
# tree made on the primary reaches the standby's caches by WAL replay (the
# invalidation messages travel with the commit record).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION salesmgmt CASCADE');
$primary->safe_psql('postgres',
	'CREATE TEMP TABLE t (); BEGIN; \i ' . "$root/test/sql/security_world.sql" . "\nCOMMIT;");

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

sub as_role
{
	my ($node, $role, $sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE $role; $sql");
}

my $deals = 'SELECT string_agg(deal_id::text, \',\' ORDER BY deal_id) FROM salesmgmt.deal';
is(as_role($standby, 'sec_r4', $deals), '41,42', 'a rep reads its own deals on the standby');
is(as_role($standby, 'sec_r8', $deals), '42,81,82', 'a split partner reads the shared deal there');
is(as_role($standby, 'sec_m2', 'SELECT count(*) FROM salesmgmt.payment'), '4',
	'a manager reads the payments of its tree (deal owners looked up on the standby)');
is(as_role($standby, 'sec_r8', 'SELECT count(*) FROM salesmgmt.contact WHERE account_id = 4'), '1',
	"and the contacts of the shared deal's account");

# the cache of a standby session follows the primary's changes
my $session = $standby->background_psql('postgres');
$session->query_safe('SET ROLE sec_m7');
is($session->query_safe($deals), '42,71,72,81,82', 'm7 on the standby: its tree and the shared deal');
$primary->safe_psql('postgres', 'UPDATE salesmgmt.rep SET team_id = 4 WHERE rep_id = 6');
$primary->wait_for_catchup($standby);
is($session->query_safe($deals), '42,61,62,71,72,81,82',
	"after r6 joined m7's team on the primary, the same standby session sees its deals");
$session->quit;

$standby->stop;
$primary->stop;
done_testing();
