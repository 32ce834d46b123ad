# Subscriptions over the generated data set and under pg_cron:
#   * scripts/datagen.sql with -v subscriptions=N (three years, planted
#     expansion, contraction, churn and reactivation): the identity
#     starting + new + expansion + contraction + churned + reactivation =
#     ending holds to the cent every month, each month starts where the one
#     before ended, and the C movements equal the plain-SQL reference
#     (bench/subscriptions_reference.sql) over the whole history and a range;
#   * salesmgmt.generate_renewals scheduled with cron.schedule opens the
#     renewals of the terms ending within 90 days, and a run after it opens
#     nothing more.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $have_cron = -e "$sharedir/extension/pg_cron.control";

my $node = PostgreSQL::Test::Cluster->new('subscriptions');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'salesmgmt" . ($have_cron ? ",pg_cron" : "") . "'\n"
	  . "cron.database_name = 'postgres'\ncron.use_background_workers = on\nmax_worker_processes = 16\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION salesmgmt CASCADE');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'scale=5000', '-v', 'seed=7', '-v', 'subscriptions=2500',
	  '-f', "$root/scripts/datagen.sql", '-d', $node->connstr('postgres') ],
	'data set with 2,500 subscriptions on 1,000 accounts loaded');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$root/bench/subscriptions_reference.sql",
	  '-d', $node->connstr('postgres') ],
	'the plain-SQL reference loaded');

cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM salesmgmt.mrr_movements'), '>=', 36,
	'three years of months');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM salesmgmt.mrr_movements
	 WHERE starting_mrr + new_mrr + expansion_mrr + contraction_mrr + churned_mrr + reactivation_mrr <> ending_mrr}),
	'0', 'starting + new + expansion + contraction + churned + reactivation = ending, every month');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM salesmgmt.mrr_movements m
	  JOIN salesmgmt.mrr_movements p ON p.month = (m.month - interval '1 month')::date
	 WHERE m.starting_mrr <> p.ending_mrr}),
	'0', 'each month starts where the month before ended');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE expansion_mrr > 0) > 0 AND count(*) FILTER (WHERE contraction_mrr < 0) > 0
	       AND count(*) FILTER (WHERE churned_mrr < 0) > 0 AND count(*) FILTER (WHERE reactivation_mrr > 0) > 0
	  FROM salesmgmt.mrr_movements}),
	't', 'the planted expansion, contraction, churn and reactivation all show');
foreach my $range ('NULL, NULL', q{'2025-02-15', '2026-01-01'})
{
	is($node->safe_psql('postgres', qq{
		SELECT (SELECT md5(string_agg(m::text, '|' ORDER BY month)) FROM salesmgmt.mrr_movements_between($range) m)
		     = (SELECT md5(string_agg(m::text, '|' ORDER BY month)) FROM subs_bench.mrr_movements($range) m)}),
		't', "C and the plain-SQL reference give the same movements ($range)");
}
is($node->safe_psql('postgres', q{
	SELECT sum(mrr) = (SELECT ending_mrr FROM salesmgmt.mrr_movements WHERE month = date_trunc('month', current_date))
	  FROM salesmgmt.account_mrr() WHERE month = date_trunc('month', current_date)}),
	't', 'account_mrr adds up to the ending MRR');

SKIP:
{
	skip 'pg_cron is not installed for this server', 3 unless $have_cron;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
	my $seconds = $node->psql('postgres', q{SELECT cron.schedule('renewals-probe', '2 seconds', 'SELECT 1')});
	my $schedule = '* * * * *';
	if ($seconds == 0)
	{
		$node->safe_psql('postgres', q{SELECT cron.unschedule('renewals-probe')});
		$schedule = '2 seconds';
	}
	note "pg_cron schedule: $schedule";
	$node->safe_psql('postgres',
		"SELECT cron.schedule('salesmgmt-renewals', '$schedule', 'SELECT * FROM salesmgmt.generate_renewals(90)')");
	ok($node->poll_query_until('postgres',
			q{SELECT count(*) > 0 FROM cron.job_run_details WHERE command LIKE '%generate_renewals%' AND status = 'succeeded'},
			't'),
		'a scheduled run of generate_renewals succeeded');
	is($node->safe_psql('postgres', q{
		SELECT count(*) = count(DISTINCT (subscription_id, term_end)) AND count(*) > 0
		  FROM salesmgmt.subscription_renewal}),
		't', 'it opened renewals, one per subscription and term');
	$node->safe_psql('postgres', q{SELECT cron.unschedule('salesmgmt-renewals')});
	is($node->safe_psql('postgres', q{SELECT renewal_deals FROM salesmgmt.generate_renewals(90)}),
		'0', 'a run after it opens nothing more');
}

$node->stop;
done_testing();
