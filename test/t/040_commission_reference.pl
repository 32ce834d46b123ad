# run_commissions (C) and its PL/pgSQL reference (bench/commission_reference.sql)
# compute the same per-rep results and the same ledger, line for line, on a
# generated data set with the benchmark's plans (bench/commission_setup.sql):
# tiers of every mode, caps, splits, SPIFFs, overrides, payment basis, refund
# clawbacks, draws, three currencies.  Then the ledger, finalized, survives
# pg_dump and pg_restore, and still guards its final lines.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = PostgreSQL::Test::Cluster->new('commission');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'salesmgmt'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION salesmgmt CASCADE');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'scale=2000', '-v', 'seed=7', '-f', "$root/scripts/datagen.sql",
	  '-d', $node->connstr('src') ],
	'demo data loaded');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'won=3000', '-f', "$root/bench/commission_setup.sql",
	  '-d', $node->connstr('src') ],
	'benchmark plans and a year of 3,000 won deals');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$root/bench/commission_reference.sql",
	  '-d', $node->connstr('src') ],
	'the PL/pgSQL reference loaded');
my ($start, $end) = split /\|/, $node->safe_psql('src', 'SELECT y_start, y_end FROM bench_year');

# every column but the two that name the row (line_id, created_at)
my $cols = 'period_start, period_end, rep_id, kind, status, deal_id, payment_id, plan_id, spiff_id,'
  . ' draw_id, source_rep_id, credited_at, plan_period_start, plan_period_end, share, credit, quota,'
  . ' attainment_before, attainment_after, tier, rate, tiers, earned_before, earned_after, capped,'
  . ' base, recoverable, reversed_at, amount, currency, reason';
is($node->safe_psql('src', qq{
	SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
	 WHERE attrelid = 'salesmgmt.commission_line'::regclass AND attnum > 0 AND NOT attisdropped
	   AND attname NOT IN ('line_id', 'created_at')}), $cols,
	'the comparison names every column of a ledger line');
my $compare = qq{
	SELECT (SELECT count(*) FROM ((TABLE c EXCEPT ALL TABLE r) UNION ALL (TABLE r EXCEPT ALL TABLE c)) d)
	     + (SELECT count(*) FROM (
	          (SELECT $cols FROM salesmgmt.commission_line EXCEPT ALL SELECT $cols FROM commission_reference.line)
	          UNION ALL
	          (SELECT $cols FROM commission_reference.line EXCEPT ALL SELECT $cols FROM salesmgmt.commission_line)) d)};
foreach my $round (1, 2)
{
	$node->safe_psql('src', qq{
		DROP TABLE IF EXISTS c, r;
		CREATE TABLE c AS SELECT * FROM salesmgmt.run_commissions('$start', '$end');
		CREATE TABLE r AS SELECT * FROM commission_reference.run('$start', '$end');});
	is($node->safe_psql('src', $compare), '0',
		"run $round: per-rep results and every column of every line agree with the reference");
}
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

# finalize, dump, restore: the ledger and its guards come back
is($node->safe_psql('src', "SELECT salesmgmt.finalize_commissions('$start', '$end') > 0"), 't',
	'the year finalized');
my $dump = $PostgreSQL::Test::Utils::tmp_check . '/commission.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ], 'pg_restore');
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
