# Training effect on a generated data set (scripts/datagen.sql -v training=1):
# the generator plants a +20 point win-rate effect for the completers of
# "Negotiation Mastery" and none for "Compliance Refresher".
# salesmgmt.training_effect must find the first (95% interval excludes
# zero and contains 20) and not the second (interval includes zero), agree
# with the plain-SQL point estimate of the benchmark
# (bench/training_reference.sql), and give the same interval every time
# (seeded bootstrap).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = SmCluster::node_with_db('training', 'src');
SmCluster::psql_file_ok($node, 'src', "$root/scripts/datagen.sql", 'data set with training loaded',
	'ON_ERROR_STOP=1', 'scale=10000', 'seed=7', 'training=1', 'anchor=2026-06-15');
SmCluster::psql_file_ok($node, 'src', "$root/bench/training_reference.sql", 'reference loaded',
	'ON_ERROR_STOP=1');

sub effect
{
	my ($course, $window) = @_;
	my $row = $node->safe_psql('src', qq{
		SELECT e.reps, e.estimate, e.ci_low, e.ci_high, coalesce(e.reason, '')
		  FROM salesmgmt.training_course c, salesmgmt.training_effect(c.course_id, $window) e
		 WHERE c.name = '$course'});
	return split /\|/, $row;
}

my ($reps, $est, $lo, $hi) = effect('Negotiation Mastery', 90);
note "Negotiation Mastery: $reps reps, estimate $est, 95% interval [$lo, $hi]";
cmp_ok($reps, '>=', 20, 'the planted course has its completers');
cmp_ok($lo, '>', 0, 'the planted effect is found: the interval excludes zero');
ok($lo <= 20 && 20 <= $hi, 'the interval contains the planted +20 points');

my ($reps0, $est0, $lo0, $hi0) = effect('Compliance Refresher', 90);
note "Compliance Refresher: $reps0 reps, estimate $est0, 95% interval [$lo0, $hi0]";
cmp_ok($reps0, '>=', 20, 'the null course has its completers');
ok($lo0 <= 0 && 0 <= $hi0, 'no effect is found where none was planted: the interval includes zero');

is(join('|', (effect('Negotiation Mastery', 90))[0 .. 3]), join('|', $reps, $est, $lo, $hi),
	'the same data give the same interval (seeded bootstrap)');

foreach my $window (30, 90, 120)
{
	is($node->safe_psql('src', qq{
		SELECT count(*) FROM salesmgmt.training_course c
		 CROSS JOIN LATERAL (SELECT e.kpi_id, e.reps, e.peers, e.estimate
		                       FROM salesmgmt.training_effect(c.course_id, $window) e
		                     EXCEPT
		                     SELECT * FROM training_bench.effect(c.course_id, $window)) d}),
		'0', "C and the plain-SQL reference agree on reps, peers and estimate ($window-day windows)");
}

# too few completers: no estimate, and the reason
my ($r1, $e1, $l1, $h1, $why) = split /\|/, $node->safe_psql('src', q{
	INSERT INTO salesmgmt.training_course (name, hours) VALUES ('Few takers', 2);
	INSERT INTO salesmgmt.training_course_kpi SELECT c.course_id, k.kpi_id FROM salesmgmt.training_course c, salesmgmt.kpi k
	 WHERE c.name = 'Few takers' AND k.code = 'close_rate';
	INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, status, enrolled_at, completed_at)
	SELECT r, c.course_id, 'completed', '2025-12-01', '2025-12-02' FROM salesmgmt.training_course c, generate_series(6, 8) r
	 WHERE c.name = 'Few takers';
	SELECT e.reps, coalesce(e.estimate::text, 'null'), e.ci_low, e.ci_high, e.reason
	  FROM salesmgmt.training_course c, salesmgmt.training_effect(c.course_id) e WHERE c.name = 'Few takers'});
is($e1, 'null', 'three completers give no estimate');
like($why, qr/: 3, fewer than the 5 needed/, 'and say why');

# the summary shows the stored estimate
$node->safe_psql('src', q{SELECT count(*) FROM salesmgmt.training_course c, salesmgmt.record_training_effect(c.course_id) r});
is($node->safe_psql('src', q{
	SELECT completed, effect_kpi, effect_estimate, effect_reason IS NULL
	  FROM salesmgmt.training_summary WHERE course_name = 'Negotiation Mastery'}),
	"23|close_rate|$est|t", 'training_summary shows the completions and the latest estimate');

$node->stop;
done_testing();
