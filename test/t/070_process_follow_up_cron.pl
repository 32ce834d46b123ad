# Follow-up rules under pg_cron, for real: salesmgmt.run_follow_up_rules()
# is scheduled with cron.schedule in a server that preloads salesmgmt and
# pg_cron, and the test waits for the scheduled run's effect (the reminder
# task, the followup action) and for a second run to add nothing.  pg_cron
# 1.4 (Debian 12) schedules by the minute at best ('* * * * *'); a version
# that knows seconds gets '2 seconds'.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# pg_cron comes from Debian's postgresql-15-cron (scripts/lib.sh); a server
# built from source for another major has none
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
plan skip_all => 'pg_cron is not installed for this server'
  unless -e "$sharedir/extension/pg_cron.control";

my $node = PostgreSQL::Test::Cluster->new('follow_up_cron');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'salesmgmt,pg_cron'\ncron.database_name = 'postgres'\n"
	  # jobs in background workers: the test cluster listens on a socket only
	  . "cron.use_background_workers = on\nmax_worker_processes = 16\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION salesmgmt CASCADE;
	CREATE EXTENSION pg_cron;
	INSERT INTO salesmgmt.team (team_id, name) VALUES (1, 'Sales');
	INSERT INTO salesmgmt.rep (rep_id, name, team_id) VALUES (1, 'Mia', 1), (2, 'Ada', 1);
	UPDATE salesmgmt.team SET manager_rep_id = 1 WHERE team_id = 1;
	INSERT INTO salesmgmt.account (account_id, name, owner_rep_id, created_at) VALUES (1, 'Acme', 2, now() - interval '60 days');
	SELECT salesmgmt.create_pipeline('P', '[{"name": "Open", "probability": 0.5}, {"name": "Won", "outcome": "won"}]');
	INSERT INTO salesmgmt.deal (deal_id, name, account_id, owner_rep_id, pipeline_id, stage_id, amount, created_at)
	VALUES (1, 'Quiet deal', 1, 2, 1, 1, 5000, now() - interval '20 days'),
	       (2, 'Busy deal', 1, 2, 1, 1, 5000, now() - interval '20 days');
	INSERT INTO salesmgmt.activity (kind, account_id, deal_id, rep_id, occurred_at)
	VALUES ('call', 1, 2, 2, now() - interval '1 day');
	INSERT INTO salesmgmt.follow_up_rule (name, subject, remind_after_days, escalate_after_days)
	VALUES ('Deals quiet for a week', 'deal', 7, 3);
});

# the shortest schedule this pg_cron accepts
my $seconds = $node->psql('postgres',
	q{SELECT cron.schedule('follow-up-probe', '2 seconds', 'SELECT 1')});
my $schedule;
if ($seconds == 0)
{
	$node->safe_psql('postgres', q{SELECT cron.unschedule('follow-up-probe')});
	$schedule = '2 seconds';
}
else
{
	$schedule = '* * * * *';
}
note "pg_cron schedule: $schedule";
$node->safe_psql('postgres',
	"SELECT cron.schedule('salesmgmt-follow-up', '$schedule', 'SELECT count(*) FROM salesmgmt.run_follow_up_rules()')");

ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM salesmgmt.follow_up_action WHERE action = 'remind'}, 't'),
	'a scheduled run reminded the owner of the quiet deal');
is($node->safe_psql('postgres',
		q{SELECT string_agg(t.deal_id || ':' || t.rep_id || ':' || t.title, ',') FROM salesmgmt.sales_task t}),
	'1:2:Follow up: Quiet deal', 'one reminder task, for the quiet deal, to its owner');
is($node->safe_psql('postgres',
		q{SELECT status FROM cron.job_run_details WHERE command LIKE '%run_follow_up_rules%' ORDER BY start_time LIMIT 1}),
	'succeeded', 'pg_cron records the run as succeeded');

# the next scheduled run finds nothing new to do
my $runs = $node->safe_psql('postgres',
	q{SELECT count(*) FROM cron.job_run_details WHERE command LIKE '%run_follow_up_rules%' AND status = 'succeeded'});
ok($node->poll_query_until('postgres',
		"SELECT count(*) > $runs FROM cron.job_run_details WHERE command LIKE '%run_follow_up_rules%' AND status = 'succeeded'",
		't'),
	'a second scheduled run happened');
is($node->safe_psql('postgres', q{SELECT count(*) FROM salesmgmt.sales_task}), '1',
	'running again created nothing (idempotent)');

$node->stop;
done_testing();
