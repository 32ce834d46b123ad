# SmCluster: how the TAP tests on a generated data set begin and end: a
# cluster with the library preloaded, a database with the extension, SQL
# files (the data set) run into it with psql, and a copy of database "src"
# through pg_dump/pg_restore.
package SmCluster;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# node(NAME): a new cluster NAME with shared_preload_libraries =
# 'salesmgmt', started
sub node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
	$node->start;
	return $node;
}

# node_with_db(NAME, DB): node(NAME) and a new database DB in it with the
# extension
sub node_with_db
{
	my ($name, $db) = @_;
	my $node = node($name);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION salesmgmt CASCADE');
	return $node;
}

# psql_file_ok(NODE, DB, FILE, TEST_NAME, VAR...): FILE run by psql -X -q
# in database DB with "-v VAR" for each VAR (name=value), passing when
# psql exits with 0
sub psql_file_ok
{
	my ($node, $db, $file, $test_name, @vars) = @_;
	return $node->command_ok(
		[ 'psql', '-X', '-q', (map { ('-v', $_) } @vars), '-f', $file, '-d', $node->connstr($db) ],
		$test_name);
}

# dump_restore(NODE, DUMP_NAME): database "src" dumped (pg_dump -Fc into
# the test's tmp_check/DUMP_NAME) and restored into a new database "dst",
# both as tests
sub dump_restore
{
	my ($node, $dump_name) = @_;
	my $dump = $PostgreSQL::Test::Utils::tmp_check . "/$dump_name";
	$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
	$node->safe_psql('postgres', 'CREATE DATABASE dst');
	$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ], 'pg_restore');
	return;
}

1;
