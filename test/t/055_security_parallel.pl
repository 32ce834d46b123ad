# Row-level security in parallel query: the leader publishes its cached
# view of the role to its parallel workers (src/org_parallel.c), which
# then read nothing; answers equal the serial plan's, and a change
# committed by another session between two statements reaches the
# workers of the next statement.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = PostgreSQL::Test::Cluster->new('parallel');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\nmax_worker_processes = 16\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION salesmgmt CASCADE');
$node->safe_psql('postgres',
	'CREATE TEMP TABLE t (); BEGIN; \i ' . "$root/test/sql/security_world.sql" . "\nCOMMIT;");
# an activity without a deal: seen through its account's owner (r4's tree)
$node->safe_psql('postgres',
	"INSERT INTO salesmgmt.activity (kind, account_id, rep_id) VALUES ('email', 4, 8), ('email', 6, 6)");

# every plan parallel, run by workers (the leader only gathers: the tables
# are small, a participating leader would read them all)
my $force = $node->safe_psql('postgres', 'SHOW server_version_num') >= 160000
  ? 'debug_parallel_query' : 'force_parallel_mode';
my $parallel = "SET $force = regress; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
  . "SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; "
  . "SET parallel_leader_participation = off;";
my $serial = 'SET max_parallel_workers_per_gather = 0;';

my %query = (
	deals => "SELECT string_agg(deal_id::text, ',' ORDER BY deal_id) FROM salesmgmt.deal",
	activities => "SELECT string_agg(rep_id || ':' || coalesce(deal_id::text, '-'), ',' ORDER BY activity_id) FROM salesmgmt.activity",
	accounts => "SELECT string_agg(account_id::text, ',' ORDER BY account_id) FROM salesmgmt.account",
	payments => "SELECT count(*) FROM salesmgmt.payment");

my $taken = qr/parallel worker took its leader's view of role/;
for my $role (qw(sec_m1 sec_m2 sec_m3 sec_r4 sec_r8 sec_m7))
{
	for my $q (sort keys %query)
	{
		my $want = $node->safe_psql('postgres', "SET ROLE $role; $serial $query{$q}");
		my ($out, $err) = ('', '');
		$node->psql('postgres', "SET ROLE $role; $parallel SET client_min_messages = debug1; $query{$q}",
			stdout => \$out, stderr => \$err, on_error_die => 1);
		is($out, $want, "$q as $role: the parallel plan answers as the serial one");
		like($err, $taken, "$q as $role: the workers took the leader's view");
	}
}

# an admin's policies are "true": nothing to publish, nothing taken
my ($out, $err) = ('', '');
$node->psql('postgres', "SET ROLE sec_admin; $parallel SET client_min_messages = debug1; $query{deals}",
	stdout => \$out, stderr => \$err, on_error_die => 1);
is($out, '11,12,21,22,31,32,41,42,51,52,61,62,71,72,81,82', 'the admin sees every deal in parallel');
unlike($err, $taken, 'and no view is published for it');

# a setting forged to another segment is not taken (and needs superuser)
($out, $err) = ('', '');
$node->psql('postgres', "SET ROLE sec_r4; SET salesmgmt.parallel_view = '1:1'",
	stdout => \$out, stderr => \$err);
like($err, qr/permission denied to set parameter/, 'a rep cannot set salesmgmt.parallel_view');

# one session keeps its cache across statements; another session commits
# changes between them: the next statement's workers see them
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_safe("SET ROLE sec_m7; $parallel");
$session->query("SET client_min_messages = debug1");

# the answer of a statement of the session, and whether its workers took
# the leader's view (DEBUG1 on stderr)
sub in_session
{
	my ($sql, $want, $name) = @_;
	$session->{stderr} = '';
	is($session->query($sql), $want, $name);
	like($session->{stderr}, $taken, "$name (the leader's view)");
}

in_session($query{deals}, '42,71,72,81,82', 'm7 in parallel: its tree and the shared deal');
in_session($query{activities}, '7:71,8:81,8:-', "m7's activities in parallel");
$node->safe_psql('postgres', 'UPDATE salesmgmt.rep SET team_id = 4 WHERE rep_id = 6');
in_session($query{deals}, '42,61,62,71,72,81,82',
	"after r6 moved into m7's team, the next statement's workers see its deals");
in_session($query{activities}, '6:61,7:71,8:81,8:-,6:-', 'and its activities');
$node->safe_psql('postgres', "INSERT INTO salesmgmt.deal_split (deal_id, rep_id, share) VALUES (12, 7, 1)");
in_session($query{deals}, '12,42,61,62,71,72,81,82', 'a split added to m7 is seen next');
$node->safe_psql('postgres', 'UPDATE salesmgmt.account SET owner_rep_id = 7 WHERE account_id = 4');
in_session($query{activities}, '6:61,7:71,8:81,8:-,6:-',
	'an account given to m7: its activity without a deal was already seen (rep 8)');
in_session($query{accounts}, '1,4,6,7,8', 'and the accounts it owns or sees through deals');
$node->safe_psql('postgres', 'REVOKE salesmgmt_manager FROM sec_m7; GRANT salesmgmt_rep TO sec_m7');
in_session($query{deals}, '12,71,72', 'manager role revoked: only its own deals and the one shared with it');
$session->query("SET client_min_messages = notice");

# a statement that fails mid-way leaves no segment behind (the resource
# owner detaches it) and the next one publishes again
$session->query("SELECT count(*) FROM salesmgmt.deal WHERE 1 / (deal_id - 71) > -1");
my $stderr = $session->{stderr};
my $next = $session->query($query{deals});	# psql may report the error late
like($stderr . $session->{stderr}, qr/division by zero/, 'a parallel statement failing in the middle');
is($next, '12,71,72', 'the next statement answers as before');
is($session->query($query{activities}), '7:71,8:-',
	'and the one after it (account 4 is m7\'s now: its activity without a deal)');
$session->quit;
unlike(slurp_file($node->logfile), qr/dynamic shared memory leak|leaked/, 'no segment leaked');

$node->stop;
done_testing();
