# A short sqlsmith run (the long one is scripts/fuzz): random SQL as an
# unprivileged rep and manager against the extension and a small data set,
# then the server must answer, be the same postmaster, and its log must
# show no crash.  scripts/test installs sqlsmith: without it this test
# fails rather than passing with no checks.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

if (system('sqlsmith --version >/dev/null 2>&1') != 0)
{
	fail('sqlsmith is installed (scripts/test installs it from Debian)');
	done_testing();
	exit;
}

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $queries = $ENV{SM_FUZZ_QUERIES} // 1500;
my $node = SmCluster::node_with_db('fuzz', 'fuzz');
SmCluster::psql_file_ok($node, 'fuzz', "$root/scripts/datagen.sql", 'demo data loaded',
	'scale=300', 'seed=5');
$node->safe_psql('fuzz', q{
	CREATE ROLE fuzz_rep LOGIN;
	CREATE ROLE fuzz_manager LOGIN;
	GRANT salesmgmt_rep TO fuzz_rep;
	GRANT salesmgmt_manager TO fuzz_manager;
	ALTER ROLE fuzz_rep SET statement_timeout = '2s';
	ALTER ROLE fuzz_manager SET statement_timeout = '2s';
	UPDATE salesmgmt.rep SET db_role = 'fuzz_rep' WHERE rep_id = 7;
	UPDATE salesmgmt.rep SET db_role = 'fuzz_manager' WHERE rep_id = 2;
});
my $started = $node->safe_psql('fuzz', 'SELECT pg_postmaster_start_time()');

foreach my $role ('fuzz_rep', 'fuzz_manager')
{
	my ($out, $err) = ('', '');
	my $target = sprintf('host=%s port=%s dbname=fuzz user=%s', $node->host, $node->port, $role);
	IPC::Run::run([ 'sqlsmith', "--target=$target", '--seed=1', "--max-queries=$queries",
			'--exclude-catalog', '--verbose' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300));
	# the verbose report counts the queries run so far; the last count is
	# the total, and a run that stopped early (lost connection, no
	# grammar to draw from) must not pass
	my @counts = $err =~ /queries: (\d+)/g;
	my $ran = @counts ? $counts[-1] : 0;
	cmp_ok($ran, '>=', $queries, "sqlsmith ran $queries queries as $role");
	my @refusals = $err =~ /^\d+\s+ERROR:\s+(permission denied|new row violates row-level security).*$/mg;
	note("$role: " . scalar(@refusals) . ' permission or row-level security refusals among the listed errors');
}

is($node->safe_psql('fuzz', 'SELECT 1'), '1', 'server answers after the fuzz run');
is($node->safe_psql('fuzz', 'SELECT pg_postmaster_start_time()'), $started, 'and was not restarted');
unlike(slurp_file($node->logfile), qr/terminated by signal|was terminated|PANIC|exited with exit code|TRAP:/,
	'server log shows no crash');

$node->stop;
done_testing();
