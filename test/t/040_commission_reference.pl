# run_commissions (C), its set-based SQL reference
# (bench/commission_reference_setbased.sql) and its row-by-row PL/pgSQL
# reference (bench/commission_reference.sql) compute the same per-rep results
# and the same ledger, every column of every line, on a generated data set with the benchmark's plans (bench/commission_setup.sql):
# tiers of every mode, caps, splits, SPIFFs, overrides, payment basis, refund
# clawbacks, draws, three currencies.  Then the ledger, finalized, survives
# pg_dump and pg_restore, and still guards its final lines.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = SmCluster::node_with_db('commission', 'src');
SmCluster::psql_file_ok($node, 'src', "$root/scripts/datagen.sql", 'demo data loaded',
	'scale=2000', 'seed=7');
SmCluster::psql_file_ok($node, 'src', "$root/bench/commission_setup.sql", 'benchmark plans and a year of 3,000 won deals',
	'won=3000');
SmCluster::psql_file_ok($node, 'src', "$root/bench/commission_reference.sql", 'the row-by-row PL/pgSQL reference loaded',
	'ON_ERROR_STOP=1');
SmCluster::psql_file_ok($node, 'src', "$root/bench/commission_reference_setbased.sql", 'the set-based reference loaded',
	'ON_ERROR_STOP=1');
my ($start, $end) = split /\|/, $node->safe_psql('src', 'SELECT y_start, y_end FROM bench_year');

# every column but the two that name the row (line_id, created_at)
my $cols = 'period_start, period_end, rep_id, kind, status, deal_id, payment_id, plan_id, spiff_id,'
  . ' draw_id, source_rep_id, credited_at, plan_period_start, plan_period_end, share, credit, quota,'
  . ' attainment_before, attainment_after, tier, rate, tiers, earned_before, earned_after, capped,'
  . ' base, recoverable, reversed_at, amount, currency, reason, subscription_id, families';
is($node->safe_psql('src', qq{
	SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
	 WHERE attrelid = 'salesmgmt.commission_line'::regclass AND attnum > 0 AND NOT attisdropped
	   AND attname NOT IN ('line_id', 'created_at')}), $cols,
	'the comparison names every column of a ledger line');
# rows of one side missing from the other, both ways: per-rep results
# (tables) and ledger lines (every column)
sub differences
{
	my ($res_a, $res_b, $led_a, $led_b, $c) = @_;
	$c //= $cols;
	return qq{
	SELECT (SELECT count(*) FROM ((TABLE $res_a EXCEPT ALL TABLE $res_b) UNION ALL (TABLE $res_b EXCEPT ALL TABLE $res_a)) d)
	     + (SELECT count(*) FROM (
	          (SELECT $c FROM $led_a EXCEPT ALL SELECT $c FROM $led_b)
	          UNION ALL
	          (SELECT $c FROM $led_b EXCEPT ALL SELECT $c FROM $led_a)) d)};
}
foreach my $round (1, 2)
{
	$node->safe_psql('src', qq{
		DROP TABLE IF EXISTS c, r, s;
		CREATE TABLE c AS SELECT * FROM salesmgmt.run_commissions('$start', '$end');
		CREATE TABLE r AS SELECT * FROM commission_reference.run('$start', '$end');
		CREATE TABLE s AS SELECT * FROM commission_setbased.run('$start', '$end');});
	is($node->safe_psql('src', differences('c', 's', 'salesmgmt.commission_line', 'commission_setbased.line')), '0',
		"run $round: per-rep results and every column of every line agree with the set-based reference");
	is($node->safe_psql('src', differences('c', 'r', 'salesmgmt.commission_line', 'commission_reference.line')), '0',
		"run $round: per-rep results and every column of every line agree with the row-by-row reference");
}
is($node->safe_psql('src', 'SELECT count(*) > 1000 FROM salesmgmt.commission_line'), 't',
	'the ledgers compared are not empty');

# the comparison sees a change of any one column of any one line, and of a
# per-rep result: each column of one line that has a value, then a result
# row, changed in a copy of the set-based reference's output
foreach my $col (split /,\s*/, $cols)
{
  SKIP:
	{
		# subscription_id and families: null on every line of the
		# benchmark's plans (no new-ARR plan, no family weights)
		skip "$col is null on every line compared", 1
		  if $node->safe_psql('src', "SELECT count($col) FROM commission_setbased.line") eq '0';
		is($node->safe_psql('src', qq{
			CREATE TEMP TABLE l AS SELECT * FROM commission_setbased.line;
			UPDATE l SET $col = NULL WHERE line_id = (SELECT min(line_id) FROM l WHERE $col IS NOT NULL);
			SELECT (} . differences('c', 's', 'salesmgmt.commission_line', 'l') . ') > 0'),
			't', "a line whose $col differs is found");
	}
}
is($node->safe_psql('src', qq{
	CREATE TEMP TABLE t AS TABLE s;
	UPDATE t SET payout = payout + 0.01 WHERE rep_id = (SELECT min(rep_id) FROM t);
	SELECT (} . differences('c', 't', 'salesmgmt.commission_line', 'commission_setbased.line') . ') > 0'),
	't', 'a per-rep result that differs is found');

my %kinds = map { split /\|/ } split /\n/, $node->safe_psql('src',
	'SELECT kind, count(*) FROM salesmgmt.commission_line GROUP BY kind');
foreach my $k (qw(earned spiff override clawback draw))
{
	cmp_ok($kinds{$k} // 0, '>', 0, "the comparison covers $k lines");
}
is($node->safe_psql('src', 'SELECT count(*) > 0 FROM salesmgmt.commission_line WHERE tiers IS NOT NULL'),
	't', 'and lines that cross tiers');
is($node->safe_psql('src', 'SELECT count(*) > 0 FROM salesmgmt.commission_line WHERE capped'),
	't', 'and capped lines');

# A small hand-made data set (test/sql/commission_edges.sql) reaches what
# the generated year does not: tiers crossed downwards by refunds on payment
# basis (negative catch-ups), caps, no quota, a zero quota, quarterly quotas
# prorated into a monthly plan and converted by the reverse pair, plans
# without tiers, overrides on payment basis, SPIFF windows, two refunds of a
# deal (the second clawback limited to what is left), guarantees, and a
# recoverable draw outstanding into the next quarter.  Two quarters in turn.
$node->safe_psql('postgres', 'CREATE DATABASE edges');
$node->safe_psql('edges', 'CREATE EXTENSION salesmgmt CASCADE');
foreach my $f ('test/sql/commission_edges.sql', 'bench/commission_reference.sql',
	'bench/commission_reference_setbased.sql')
{
	SmCluster::psql_file_ok($node, 'edges', "$root/$f", "edges: $f loaded", 'ON_ERROR_STOP=1');
}
foreach my $q ([ '2025-01-01', '2025-03-31' ], [ '2025-04-01', '2025-06-30' ])
{
	my ($qs, $qe) = @$q;
	$node->safe_psql('edges', qq{
		DROP TABLE IF EXISTS c, r, s;
		CREATE TABLE c AS SELECT * FROM salesmgmt.run_commissions('$qs', '$qe');
		CREATE TABLE r AS SELECT * FROM commission_reference.run('$qs', '$qe');
		CREATE TABLE s AS SELECT * FROM commission_setbased.run('$qs', '$qe');});
	is($node->safe_psql('edges', differences('r', 's', 'commission_reference.line', 'commission_setbased.line')), '0',
		"edges $qs: the two references agree on every column of every line");
	is($node->safe_psql('edges', differences('c', 's', 'salesmgmt.commission_line', 'commission_setbased.line')), '0',
		"edges $qs: C and the set-based reference agree on every column of every line");
}
my %seen = map { split /\|/ } split /\n/, $node->safe_psql('edges', q{
	SELECT 'down', count(*) FROM salesmgmt.commission_line WHERE tier < (tiers->0->>'tier')::int
	UNION ALL SELECT 'catch-up', count(*) FROM salesmgmt.commission_line WHERE tiers::text LIKE '%catch_up%'
	UNION ALL SELECT 'capped', count(*) FROM salesmgmt.commission_line WHERE capped
	UNION ALL SELECT 'no quota', count(*) FROM salesmgmt.commission_line WHERE kind = 'earned' AND quota IS NULL
	UNION ALL SELECT 'zero quota', count(*) FROM salesmgmt.commission_line WHERE kind = 'earned' AND quota = 0
	UNION ALL SELECT 'limited clawback', count(*) FROM salesmgmt.commission_line WHERE kind = 'clawback' AND rate = 1
	UNION ALL SELECT 'guarantee', count(*) FROM salesmgmt.commission_line WHERE reason = 'guarantee'
	UNION ALL SELECT 'recovery of an earlier draw', count(*) FROM salesmgmt.commission_line
	           WHERE reason = 'recovery' AND period_start = '2025-04-01'});
foreach my $k (sort keys %seen)
{
	cmp_ok($seen{$k}, '>', 0, "edges: the comparison covers $k lines");
}
# finalize, dump, restore: the ledger and its guards come back
is($node->safe_psql('src', "SELECT salesmgmt.finalize_commissions('$start', '$end') > 0"), 't',
	'the year finalized');
SmCluster::dump_restore($node, 'commission.dump');
foreach my $t (qw(commission_plan commission_tier commission_spiff commission_assignment
	commission_draw commission_period commission_line))
{
	my $q = "SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY t::text)) FROM salesmgmt.$t t";
	is($node->safe_psql('dst', $q), $node->safe_psql('src', $q), "$t restored");
}
my ($rc, $out, $err) = $node->psql('dst', 'UPDATE salesmgmt.commission_line SET amount = 0');
like($err, qr/is final/, 'restored final lines cannot be changed');
($rc, $out, $err) = $node->psql('dst', "SELECT * FROM salesmgmt.run_commissions('$start', '$end')");
like($err, qr/is finalized/, 'the restored finalized year cannot run again');
is($node->safe_psql('dst', "SELECT count(*) FROM salesmgmt.run_commissions('$end'::date + 1, '$end'::date + 31)")
	  > 0 ? 'ok' : 'none', 'ok', 'the next month runs on the restored ledger');

$node->stop;
done_testing();
