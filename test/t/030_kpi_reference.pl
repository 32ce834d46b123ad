# compute_scorecards (C) and the plain SQL / PL/pgSQL reference of the
# benchmark (bench/kpi_reference.sql) give identical scorecards on a
# generated data set with reviews, CSAT, training and a custom metric, in
# the reporting currency of the deals (rates multiply) and in another one
# (reverse rates divide).  Then the KPI tables survive pg_dump/pg_restore,
# custom metric function and commit-time weight check included.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = SmCluster::node_with_db('kpi', 'src');
# a fixed "today", so that the data set is the same every day
SmCluster::psql_file_ok($node, 'src', "$root/scripts/datagen.sql", 'data set loaded',
	'ON_ERROR_STOP=1', 'scale=3000', 'seed=11', 'anchor=2026-06-15');
SmCluster::psql_file_ok($node, 'src', "$root/bench/kpi_data.sql", 'reviews, CSAT, training and the 15-KPI scheme loaded',
	'ON_ERROR_STOP=1');
SmCluster::psql_file_ok($node, 'src', "$root/bench/kpi_reference.sql", 'reference loaded', 'ON_ERROR_STOP=1');

my ($from, $to) = split /\|/, $node->safe_psql('src', q{
	SELECT (date_trunc('quarter', max(stage_entered_at)) - interval '1 year')::date,
	       (date_trunc('quarter', max(stage_entered_at)) - interval '1 day')::date
	  FROM salesmgmt.deal});
my $scheme = $node->safe_psql('src', q{SELECT scheme_id FROM salesmgmt.kpi_scheme WHERE name = 'Field sales 15'});

# the data is not trivial: every KPI has values, some reps lack some
$node->safe_psql('src', qq{SELECT count(*) FROM salesmgmt.compute_scorecards($scheme, '$from', '$to')});
my $coverage = $node->safe_psql('src', qq{
	SELECT count(*) FILTER (WHERE coverage = 100) > 0 AND count(*) FILTER (WHERE coverage < 100) > 0
	       AND count(DISTINCT grade) >= 3
	  FROM salesmgmt.scorecard WHERE scheme_id = $scheme});
is($coverage, 't', 'some reps have every KPI, some miss some; several grades');
is($node->safe_psql('src', qq{
	SELECT count(DISTINCT i.kpi_id) FROM salesmgmt.scorecard_item i WHERE i.value IS NOT NULL}),
	'15', 'all 15 KPIs have values');

# reporting in EUR needs CNY -> EUR; USD -> EUR comes from the reverse pair
$node->safe_psql('src', q{
	INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate)
	SELECT 'CNY', 'EUR', c.valid_from, round(c.rate / e.rate, 6)
	  FROM salesmgmt.currency_rate c
	  JOIN salesmgmt.currency_rate e ON e.valid_from = c.valid_from AND e.currency = 'EUR' AND e.quote_currency = 'USD'
	 WHERE c.currency = 'CNY' AND c.quote_currency = 'USD'});
foreach my $currency ('USD', 'EUR')
{
	my $cmp = $node->safe_psql('src', qq{
		SET salesmgmt.reporting_currency = '$currency';
		CREATE TEMP TABLE c_out AS SELECT * FROM salesmgmt.compute_scorecards($scheme, '$from', '$to');
		CREATE TEMP VIEW lines AS
			SELECT s.rep_id, s.score, s.grade, s.rank, s.coverage, i.kpi_id, i.value, i.score AS kpi_score,
			       i.weight, i.effective_weight, i.method, i.direction, i.target, i.floor, i.cap
			  FROM salesmgmt.scorecard s JOIN salesmgmt.scorecard_item i USING (scorecard_id)
			 WHERE s.scheme_id = $scheme;
		CREATE TEMP TABLE c_lines AS SELECT * FROM lines;
		SET client_min_messages = warning;
		CREATE TEMP TABLE r_out AS SELECT * FROM kpi_ref.compute_scorecards($scheme, '$from', '$to');
		CREATE TEMP TABLE r_lines AS SELECT * FROM lines;
		SELECT (SELECT count(*) FROM c_out) || '|' || (SELECT count(*) FROM r_out) || '|'
		       || (SELECT count(*) FROM (SELECT * FROM c_out EXCEPT SELECT * FROM r_out) x) || '|'
		       || (SELECT count(*) FROM (SELECT * FROM r_out EXCEPT SELECT * FROM c_out) x) || '|'
		       || (SELECT count(*) FROM (SELECT * FROM c_lines EXCEPT SELECT * FROM r_lines) x) || '|'
		       || (SELECT count(*) FROM (SELECT * FROM r_lines EXCEPT SELECT * FROM c_lines) x) || '|'
		       || (SELECT count(*) FROM c_lines)});
	my ($nc, $nr, $c_only, $r_only, $cl_only, $rl_only, $lines) = split /\|/, $cmp;
	cmp_ok($nc, '>', 20, "$currency: scorecards computed ($nc)");
	is($nr, $nc, "$currency: the reference scores as many reps");
	is("$c_only/$r_only", '0/0', "$currency: same scores, grades, ranks and details");
	is($lines, $nc * 15, "$currency: 15 lines per scorecard");
	is("$cl_only/$rl_only", '0/0', "$currency: same stored lines");
}
# the EUR run converted every won deal's credit to EUR on its close date:
# each scored rep's revenue equals the same sum taken in plain SQL with
# salesmgmt.convert_amount (to the cent), and some reps have revenue
my ($scored, $with_revenue, $wrong) = split /\|/, $node->safe_psql('src', qq{
	WITH credit AS (
		SELECT coalesce(sp.rep_id, d.owner_rep_id) AS rep_id, coalesce(sp.share, 1) AS share,
		       d.amount, d.currency, d.closed_at
		  FROM salesmgmt.deal d
		  JOIN salesmgmt.stage st ON st.stage_id = d.stage_id
		  LEFT JOIN salesmgmt.deal_split sp ON sp.deal_id = d.deal_id
		 WHERE st.outcome = 'won' AND d.closed_at >= '$from'::date AND d.closed_at < '$to'::date + 1),
	expected AS (
		SELECT rep_id, sum(salesmgmt.convert_amount(amount * share, currency, 'EUR', closed_at::date)) AS v
		  FROM credit GROUP BY rep_id),
	got AS (
		SELECT s.rep_id, i.value
		  FROM salesmgmt.scorecard s
		  JOIN salesmgmt.scorecard_item i USING (scorecard_id)
		  JOIN salesmgmt.kpi k USING (kpi_id)
		 WHERE s.scheme_id = $scheme AND k.code = 'revenue')
	SELECT count(*) || '|' || count(*) FILTER (WHERE g.value > 0) || '|'
	       || count(*) FILTER (WHERE g.value IS NULL OR abs(g.value - coalesce(e.v, 0)) >= 0.01)
	  FROM got g LEFT JOIN expected e USING (rep_id)});
cmp_ok($with_revenue, '>', 10, "EUR: $with_revenue of $scored scored reps have revenue");
is($wrong, '0', 'EUR: every rep\'s revenue is its won credit converted to EUR on the close dates');

# the KPI tables survive a dump and restore, and the restored data computes
SmCluster::dump_restore($node, 'kpi.dump');
foreach my $t (qw(review csat_response training_course training_enrollment recognition kpi kpi_scheme
				  kpi_scheme_item scorecard scorecard_item))
{
	my $q = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
	  . " FROM salesmgmt.$t t";
	is($node->safe_psql('dst', $q), $node->safe_psql('src', $q), "table $t restored with the same rows");
}
is($node->safe_psql('dst', qq{SELECT count(*) > 20 FROM salesmgmt.compute_scorecards($scheme, '$from', '$to')}),
	't', 'the restored scheme computes, custom metric included');

$node->stop;
done_testing();
