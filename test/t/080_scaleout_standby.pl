# BI and reads on a hot standby (docs/scale-out.md): every view of the
# salesmgmt schema (found in the catalog, so a new view is covered without
# touching this file) and the read functions (forecast, forecast_range,
# win_rates, the commission statement, the scorecards, the analytics
# functions, forecast_dist_agg) run on a streaming standby, in read-only
# transactions, as BI logins and as superuser, and give the primary's
# answers.  Nothing they call may write, cache in a table or take a lock a
# standby refuses.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'salesmgmt'\nsalesmgmt.reporting_currency = 'USD'\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION salesmgmt CASCADE');
$primary->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'scale=400', '-v', 'seed=5',
	  '-f', "$root/scripts/datagen.sql", '-d', $primary->connstr('postgres') ],
	'the data set loads on the primary');
$primary->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$root/test/sql/fill_every_table.sql",
	  '-d', $primary->connstr('postgres') ],
	'every table has rows');
# a lead model, for lead_conversion_probability
$primary->safe_psql('postgres', q{SELECT count(*) FROM salesmgmt.train_lead_model('1900-01-01')});
# a BI login
$primary->safe_psql('postgres', 'CREATE ROLE bi LOGIN IN ROLE salesmgmt_analyst');
$primary->safe_psql('postgres', 'VACUUM ANALYZE');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
# BI logins on replicas: read-only by default, as docs/scale-out.md says
$standby->append_conf('postgresql.conf', "default_transaction_read_only = on\n");
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

# the same query on both; the answer as one checksum of its sorted rows
sub answer
{
	my ($node, $role, $sql) = @_;
	my $set = $role ? "SET ROLE $role; " : '';
	my ($ret, $out, $err) = $node->psql('postgres',
		"${set}SELECT count(*) || ' rows ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') FROM ($sql) t",
		on_error_stop => 1);
	return $ret == 0 ? $out : "ERROR: $err";
}

# The BI role cannot read every view on the primary either (a view that
# calls a function or reads a table not granted to salesmgmt_analyst):
# those must fail the same way on the standby, and are listed at the end.
my @refused_on_primary;

sub same_answer
{
	my ($role, $sql, $name) = @_;
	my $p = answer($primary, $role, $sql);
	my $s = answer($standby, $role, $sql);
	if ($role && $p =~ /permission denied/)
	{
		push @refused_on_primary, $name;
		is($s, $p, "$name: refused on the standby as on the primary");
		return;
	}
	unlike($s, qr/^ERROR/, "$name runs on the standby") or diag($s);
	is($s, $p, "$name: the standby gives the primary's answer");
}

# every view of the schema, from the catalog
my @views = split /\n/, $primary->safe_psql('postgres', q{
	SELECT c.relname FROM pg_class c
	 WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind IN ('v', 'm')
	 ORDER BY 1});
cmp_ok(scalar(@views), '>=', 20, 'the schema has its views (' . scalar(@views) . ')');
foreach my $v (@views)
{
	same_answer(undef, "SELECT * FROM salesmgmt.$v", "view $v");
}
# and as a BI login (row-level security: analyst_read)
foreach my $v (@views)
{
	same_answer('bi', "SELECT * FROM salesmgmt.$v", "view $v as a BI login");
}

# the read functions, over the data set's quarters
my ($q_from, $q_to, $prev_from, $prev_to) = split /\|/, $primary->safe_psql('postgres', q{
	SELECT date_trunc('quarter', current_date)::date, (date_trunc('quarter', current_date) + interval '3 months - 1 day')::date,
	       (date_trunc('quarter', current_date) - interval '3 months')::date, (date_trunc('quarter', current_date) - interval '1 day')::date});
my $team = $primary->safe_psql('postgres', 'SELECT min(team_id) FROM salesmgmt.team WHERE parent_team_id IS NOT NULL');
my $pipeline = $primary->safe_psql('postgres', 'SELECT min(pipeline_id) FROM salesmgmt.pipeline');
my $account = $primary->safe_psql('postgres', 'SELECT min(account_id) FROM salesmgmt.account');
my $deal = $primary->safe_psql('postgres', "SELECT min(deal_id) FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id) WHERE s.outcome = 'open'");
my $lead = $primary->safe_psql('postgres', 'SELECT min(lead_id) FROM salesmgmt.lead');
my $scheme = $primary->safe_psql('postgres', 'SELECT min(scheme_id) FROM salesmgmt.kpi_scheme');

my @calls;
push @calls, [ "forecast by $_", "SELECT * FROM salesmgmt.forecast('$prev_from', '$q_to', '$_')" ]
  foreach qw(rep team pipeline month quarter total);
push @calls,
  [ 'forecast as of a past moment', "SELECT * FROM salesmgmt.forecast('$prev_from', '$prev_to', 'team', '$prev_to'::timestamptz)" ],
  [ 'forecast in EUR', "SELECT * FROM salesmgmt.forecast('$prev_from', '$prev_to', 'total', NULL, 'EUR')" ],
  [ 'forecast_range', "SELECT * FROM salesmgmt.forecast_range('$q_from', '$q_to', NULL, 2000, 3)" ],
  [ 'forecast_range of a team', "SELECT * FROM salesmgmt.forecast_range('$q_from', '$q_to', $team, 2000, 3)" ],
  [ 'forecast_dist_agg', "SELECT salesmgmt.forecast_dist_agg(d.deal_id, d.amount, s.probability, 9, 500)::text FROM salesmgmt.deal d JOIN salesmgmt.stage s USING (stage_id) WHERE s.outcome = 'open'" ],
  [ 'win_rates', "SELECT * FROM salesmgmt.win_rates($pipeline)" ],
  [ 'win_rates as of', "SELECT * FROM salesmgmt.win_rates($pipeline, '$prev_from', '$prev_to'::timestamptz)" ],
  [ 'kpi_metrics', "SELECT * FROM salesmgmt.kpi_metrics()" ],
  [ 'scorecards', "SELECT * FROM salesmgmt.scorecard s JOIN salesmgmt.scorecard_item i USING (scorecard_id)" ],
  [ 'commission_statement', "SELECT * FROM salesmgmt.commission_statement" ],
  [ 'commission_line_explanation', "SELECT salesmgmt.commission_line_explanation(l) FROM salesmgmt.commission_line l" ],
  [ 'product_affinity', "SELECT * FROM salesmgmt.product_affinity()" ],
  [ 'next_best_products', "SELECT * FROM salesmgmt.next_best_products($account)" ],
  [ 'deal_checklist', "SELECT * FROM salesmgmt.deal_checklist($deal)" ],
  [ 'allowed_next_stages', "SELECT * FROM salesmgmt.allowed_next_stages($deal)" ],
  [ 'lead_conversion_probability', "SELECT salesmgmt.lead_conversion_probability($lead)" ],
  [ 'convert_amount', "SELECT salesmgmt.convert_amount(100, 'EUR', 'USD', '$prev_to')" ];

foreach my $c (@calls)
{
	same_answer(undef, $c->[1], $c->[0]);
}
foreach my $c (grep { $_->[0] =~ /^(forecast|win_rates|commission_statement|product_affinity)/ } @calls)
{
	same_answer('bi', $c->[1], "$c->[0] as a BI login");
}

# an explicitly read-only transaction on the primary gives the same too
is(answer($primary, undef, "SELECT * FROM salesmgmt.forecast_range('$q_from', '$q_to', NULL, 2000, 3)"),
	answer($standby, undef, "SELECT * FROM salesmgmt.forecast_range('$q_from', '$q_to', NULL, 2000, 3)"),
	'forecast_range: the same seed gives the same answer on either server');

# writes are refused there, with the standby's error (not a salesmgmt one)
my ($ret, $out, $err) = $standby->psql('postgres', "SELECT salesmgmt.snapshot_forecast('$q_from', '$q_to')");
like($err, qr/read-only transaction/, 'snapshot_forecast (a write) is refused on the standby');

# a change on the primary reaches the standby's answers (caches follow replay)
$primary->safe_psql('postgres', "UPDATE salesmgmt.stage SET probability = 0.5 WHERE probability = 0.1");
$primary->wait_for_catchup($standby);
same_answer(undef, "SELECT * FROM salesmgmt.forecast('$prev_from', '$q_to', 'team')", 'forecast after a stage change');
# learned probabilities (win_rates inside forecast and forecast_range)
$primary->safe_psql('postgres', "UPDATE salesmgmt.pipeline SET probability_source = 'historical'");
$primary->wait_for_catchup($standby);
same_answer(undef, "SELECT * FROM salesmgmt.forecast('$prev_from', '$q_to', 'team')", 'forecast with learned probabilities');
same_answer(undef, "SELECT * FROM salesmgmt.forecast_range('$q_from', '$q_to', NULL, 2000, 3)", 'forecast_range with learned probabilities');

note('refused to the BI role on the primary too: ' . join(', ', @refused_on_primary)) if @refused_on_primary;

$standby->stop;
$primary->stop;
done_testing();
