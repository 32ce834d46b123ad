# The learned lead score finds the signal scripts/datagen.sql plants in its
# leads (conversion rises with company size, referral sources and
# activities, falls for cold leads): the AUC on the held-out fifth is well
# above chance, the coefficients have the planted signs, training twice
# gives the same model, and probabilities follow the coefficients.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SmCluster;

my $root = $ENV{SM_ROOT} or die "SM_ROOT is not set";
my $node = SmCluster::node('leads_model');
$node->safe_psql('postgres', 'CREATE EXTENSION salesmgmt CASCADE');
SmCluster::psql_file_ok($node, 'postgres', "$root/scripts/datagen.sql", 'demo data with leads loaded',
	'scale=6000', 'seed=7');

my ($id, $ntrain, $ntest, $auc) = split /\|/, $node->safe_psql('postgres',
	q{SELECT model_id, n_train, n_test, auc FROM salesmgmt.train_lead_model('1900-01-01')});
cmp_ok($ntrain, '>', 1000, "trained on $ntrain closed leads");
cmp_ok($ntest, '>', 250, "held out $ntest");
cmp_ok($auc, '>', 0.70, "AUC on the held-out fifth is $auc, well above 0.5");

my %coef = map { my ($k, $v) = split /\|/; ($k => $v) } split /\n/, $node->safe_psql('postgres', qq{
	SELECT feature || coalesce(':' || category, ''), coefficient FROM salesmgmt.lead_model_feature WHERE model_id = $id});
cmp_ok($coef{log_company_size}, '>', 0.3, 'larger companies convert more');
cmp_ok($coef{log_activities}, '>', 0.1, 'engagement raises conversion');
cmp_ok($coef{'source:referral'}, '>', 0.1, 'referrals convert more');
cmp_ok($coef{'source:cold'}, '<', -0.1, 'cold leads convert less');
cmp_ok(abs($coef{'region:EMEA'} // 0), '<', abs($coef{'source:referral'}), 'an attribute without signal weighs less than one with');

is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM salesmgmt.train_lead_model('1900-01-01') m,
	       salesmgmt.lead_model_feature a JOIN salesmgmt.lead_model_feature b USING (position)
	 WHERE a.model_id = $id AND b.model_id = m.model_id AND a.coefficient <> b.coefficient}),
	'0', 'training is deterministic');

is($node->safe_psql('postgres', q{
	WITH p AS (SELECT l.source, salesmgmt.lead_conversion_probability(l.lead_id) AS p
	             FROM salesmgmt.lead l WHERE l.status IN ('new', 'working') AND l.source IN ('referral', 'cold'))
	SELECT avg(p) FILTER (WHERE source = 'referral') > avg(p) FILTER (WHERE source = 'cold')
	   AND min(p) > 0 AND max(p) < 1 FROM p}),
	't', 'open referral leads get higher probabilities than cold ones, all within (0, 1)');

my ($rc, $out, $err) = $node->psql('postgres', 'SELECT salesmgmt.lead_conversion_probability(-1)');
like($err, qr/lead -1 does not exist/, 'an unknown lead is refused (42704)');

$node->stop;
done_testing();
