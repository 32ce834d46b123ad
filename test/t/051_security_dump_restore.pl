# pg_dump of a database with data in every table of the extension, restored
# into a NEW cluster where the salesmgmt roles do not exist yet: the same
# rows in every table, the roles, grants and row-level security policies
# come back (made by CREATE EXTENSION, not duplicated by the dump), a rep
# sees the same rows as before, and the extension keeps working.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib "$ENV{SM_ROOT}/test/lib";
use SmWebhookReceiver;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
$old->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
# the old cluster's worker delivers once to a receiver on this machine
$old->append_conf('postgresql.conf', "salesmgmt.webhook_allow_private_networks = on\n");
$old->start;
my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
# (webhooks, when built: the restored delivery goes to a closed local port)
$new->append_conf('postgresql.conf', "salesmgmt.webhook_allow_private_networks = on\n")
  if -e "$root/src/webhook.sql";
$new->start;

$old->safe_psql('postgres', 'CREATE DATABASE src');
$old->safe_psql('src', 'CREATE EXTENSION salesmgmt CASCADE');
$old->command_ok(
	[ 'psql', '-X', '-q', '-v', 'scale=300', '-v', 'seed=11', '-f', "$root/scripts/datagen.sql",
	  '-d', $old->connstr('src') ],
	'demo data loaded');
$old->command_ok(
	[ 'psql', '-X', '-q', '-f', "$root/test/sql/fill_every_table.sql", '-d', $old->connstr('src') ],
	'every table filled');

# The attempts table is written by the worker only: one real delivery to
# a local receiver, while the endpoint fill_every_table.sql made (left
# pending for the restored database's worker) is held.  Then the worker is
# stopped so that nothing changes between the dump and the comparison.
my $rx = SmWebhookReceiver->new;
$rx->start;
$old->safe_psql('src', q{
	UPDATE salesmgmt.webhook_endpoint SET active = false, disabled_reason = 'held during the test delivery'});
my $local = $old->safe_psql('src', "SELECT endpoint_id FROM salesmgmt.create_webhook('" . $rx->url . "')");
$old->safe_psql('src', "SELECT salesmgmt.webhook_ping($local)");
my $worker = $old->safe_psql('src', 'SELECT salesmgmt.webhook_worker_start()');
ok($old->poll_query_until('src', q{SELECT count(*) > 0 FROM salesmgmt.webhook_attempt WHERE status = 200}),
	'the worker delivered the ping and recorded the attempt');
$old->safe_psql('src', "SELECT pg_terminate_backend($worker)");
ok($old->poll_query_until('src', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $worker"),
	'and was stopped');
$rx->stop;
$old->safe_psql('src', qq{
	UPDATE salesmgmt.webhook_endpoint SET active = true WHERE endpoint_id <> $local;
	UPDATE salesmgmt.webhook_endpoint SET active = false, disabled_reason = 'test receiver stopped'
	 WHERE endpoint_id = $local});

# every table of the extension holds data: a table that
# test/sql/fill_every_table.sql leaves empty fails here, by name
my @tables = split /\n/, $old->safe_psql('src', q{
	SELECT c.oid::regclass FROM pg_class c
	 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
	 ORDER BY 1});
foreach my $t (@tables)
{
	cmp_ok($old->safe_psql('src', "SELECT count(*) FROM $t"), '>', 0,
		"$t holds data before the dump (else: add rows for it to test/sql/fill_every_table.sql)");
}

# a login mapped to a rep, to compare what it sees before and after
my $rep_sql = q{
	CREATE ROLE dump_rep LOGIN;
	GRANT salesmgmt_rep TO dump_rep;
	UPDATE salesmgmt.rep SET db_role = 'dump_rep' WHERE rep_id = 7;
};
$old->safe_psql('src', $rep_sql);

my $dump = $PostgreSQL::Test::Utils::tmp_check . '/src.dump';
$old->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('src') ], 'pg_dump');
is($new->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'salesmgmt\_%'}),
	'0', 'the new cluster has no salesmgmt roles yet');
$new->safe_psql('postgres', 'CREATE DATABASE dst');
$new->command_ok([ 'pg_restore', '--exit-on-error', '-d', $new->connstr('dst'), $dump ],
	'pg_restore into the new cluster');

foreach my $t (@tables)
{
	my $q = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM $t t";
	is($new->safe_psql('dst', $q), $old->safe_psql('src', $q), "$t restored with the same rows");
}

my $have_webhook = $old->safe_psql('src', q{SELECT to_regclass('salesmgmt.webhook_delivery') IS NOT NULL}) eq 't';
my $pending_sql = q{SELECT count(*) FROM salesmgmt.webhook_delivery WHERE state = 'pending' AND attempts = 0};
my $pending_restored = $have_webhook ? $new->safe_psql('dst', $pending_sql) : 0;
is($pending_restored, $old->safe_psql('src', $pending_sql), 'pending webhook deliveries are the same')
  if $have_webhook;

is($new->safe_psql('postgres',
		q{SELECT string_agg(rolname || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'salesmgmt\_%'}),
	'salesmgmt_admin:false,salesmgmt_analyst:false,salesmgmt_manager:false,salesmgmt_rep:false',
	'CREATE EXTENSION made the roles in the new cluster');
my $security_state = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
	  SELECT format('policy %s.%s %s %s %s %s', tablename, policyname, cmd, roles, qual, with_check) AS x
	    FROM pg_policies WHERE schemaname = 'salesmgmt'
	  UNION ALL
	  SELECT format('rls %s %s', c.relname, c.relrowsecurity)
	    FROM pg_class c WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('r', 'p')
	  UNION ALL
	  SELECT format('acl %s %s', c.relname, c.relacl)
	    FROM pg_class c WHERE c.relnamespace = 'salesmgmt'::regnamespace
	  UNION ALL
	  SELECT format('acl %s %s', p.oid::regprocedure, p.proacl)
	    FROM pg_proc p WHERE p.pronamespace = 'salesmgmt'::regnamespace
	  UNION ALL
	  SELECT format('definer %s %s %s', p.oid::regprocedure, p.prosecdef, p.proconfig)
	    FROM pg_proc p WHERE p.pronamespace = 'salesmgmt'::regnamespace) s};
is($new->safe_psql('dst', $security_state), $old->safe_psql('src', $security_state),
	'policies, row-level security, grants and definer settings are the same after restore');

# the rep sees the same rows after restore (its login is made anew: pg_dump
# does not carry roles, pg_dumpall -g does)
$new->safe_psql('dst', q{CREATE ROLE dump_rep LOGIN; GRANT salesmgmt_rep TO dump_rep;});
my $seen = q{SELECT (SELECT count(*) FROM salesmgmt.deal) || '/' || (SELECT count(*) FROM salesmgmt.account)
	|| '/' || (SELECT count(*) FROM salesmgmt.activity) || '/' || (SELECT count(*) FROM salesmgmt.payment)};
my $seen_old = $old->safe_psql('src', $seen, extra_params => [ '-U', 'dump_rep' ]);
like($seen_old, qr{^[1-9]\d*/[1-9]\d*/[1-9]\d*/\d+$}, "the rep sees some rows ($seen_old)");
is($new->safe_psql('dst', $seen, extra_params => [ '-U', 'dump_rep' ]), $seen_old,
	'the rep sees the same rows after restore');
cmp_ok((split m{/}, $seen_old)[0], '<', $old->safe_psql('src', 'SELECT count(*) FROM salesmgmt.deal'),
	'and fewer deals than there are');

# the restored extension works
my $before = $new->safe_psql('dst', 'SELECT max(deal_id) FROM salesmgmt.deal');
my $id = $new->safe_psql('dst', q{
	INSERT INTO salesmgmt.deal (name, account_id, owner_rep_id, pipeline_id, stage_id, amount)
	VALUES ('after restore', 1, 7, 1, 1, 10) RETURNING deal_id});
cmp_ok($id, '>', $before, 'deal identity continues after restore');
my $other = $new->safe_psql('dst', 'SELECT min(deal_id) FROM salesmgmt.deal WHERE owner_rep_id <> 7');
is($new->safe_psql('dst',
		"WITH u AS (UPDATE salesmgmt.deal SET owner_rep_id = 7 WHERE deal_id = $other RETURNING 1) SELECT count(*) FROM u",
		extra_params => [ '-U', 'dump_rep' ]),
	'0', 'row-level security holds after restore: the rep cannot take a colleague\'s deal');

# the webhook worker picks up the delivery that was pending in the dump
if ($have_webhook)
{
	cmp_ok($pending_restored, '>', 0, "pending webhook deliveries restored as pending ($pending_restored)");
	$new->safe_psql('dst', q{UPDATE salesmgmt.webhook_endpoint SET url = 'http://127.0.0.1:1/hook'});
	$new->safe_psql('dst', 'SELECT salesmgmt.webhook_worker_start()');
	ok($new->poll_query_until('dst',
			q{SELECT count(*) > 0 AND bool_and(attempts > 0) FROM salesmgmt.webhook_delivery}),
		'the restored database\'s webhook worker attempted every pending delivery');
}

$old->stop;
$new->stop;
done_testing();
